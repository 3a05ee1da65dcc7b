//! A job queue on PostgreSQL, worked from any number of machines.
//!
//! Producers push jobs onto a `Deque` in schema `jobs` of the database;
//! workers on any host lease them (at-least-once: a worker that dies
//! leaves its jobs to the others once their leases run out), store a
//! result in an `Index` in schema `results`, and ack. Only the opening
//! lines differ from the same program on a directory.
//!
//! ```text
//! cargo run --features postgres --example pg_queue -- postgres://USER@HOST/DB produce 1000
//! cargo run --features postgres --example pg_queue -- postgres://USER@HOST/DB work     # on every machine
//! cargo run --features postgres --example pg_queue -- postgres://USER@HOST/DB status
//! ```

use std::process::ExitCode;
use std::time::Duration;

use diskq::{Deque, Index, LeaseOptions};
use serde::{Deserialize, Serialize};

/// One job (stored as MessagePack).
#[derive(Debug, Serialize, Deserialize)]
struct Job {
    id: u64,
    text: String,
}

/// What a worker made of a job.
#[derive(Debug, Serialize, Deserialize)]
struct Done {
    worker: String,
    checksum: u64,
}

fn checksum(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn run(url: &str, command: &str, arg: Option<&str>) -> diskq::Result<()> {
    // The only backend-specific lines: where the deque and the index live.
    let jobs: Deque<Job> = Deque::open(format!("{url}#jobs"))?;
    let results: Index<u64, Done> = Index::open(format!("{url}#results"))?;
    match command {
        "produce" => {
            let n: u64 = arg.and_then(|a| a.parse().ok()).unwrap_or(100);
            let batch: Vec<Job> = (0..n)
                .map(|id| Job {
                    id,
                    text: format!("job number {id}"),
                })
                .collect();
            jobs.extend(&batch)?;
            println!("pushed {n} jobs");
        }
        "work" => {
            let me = format!(
                "{}:{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into()),
                std::process::id()
            );
            let opts = LeaseOptions::new(Duration::from_secs(30)).max_deliveries(5);
            let mut done = 0;
            loop {
                match jobs.lease_timeout(&opts, Duration::from_secs(2))? {
                    Some(lease) => {
                        let job = lease.value();
                        results.insert(
                            &job.id,
                            &Done {
                                worker: me.clone(),
                                checksum: checksum(&job.text),
                            },
                        )?;
                        lease.ack()?;
                        done += 1;
                    }
                    // Nothing queued, nothing leased anywhere: the work is over.
                    None if jobs.backlog()?.is_empty() => break,
                    None => {}
                }
            }
            println!("{me}: {done} jobs done");
        }
        "status" => {
            let backlog = jobs.backlog()?;
            println!(
                "queued {}, leased {}, results {}",
                backlog.queued,
                backlog.leased,
                results.len()?
            );
        }
        other => eprintln!("unknown command {other}: produce [N] | work | status"),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(url), Some(command)) = (args.first(), args.get(1)) else {
        eprintln!("usage: pg_queue postgres://USER@HOST/DB produce [N] | work | status");
        return ExitCode::FAILURE;
    };
    match run(url, command, args.get(2).map(String::as_str)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut message = e.to_string();
            let mut cause = std::error::Error::source(&e);
            while let Some(c) = cause {
                message += &format!(": {c}");
                cause = c.source();
            }
            eprintln!("pg_queue: {message}");
            ExitCode::FAILURE
        }
    }
}

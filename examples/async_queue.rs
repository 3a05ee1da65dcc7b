//! The queue example's consumers as async tasks: producer processes push
//! tasks onto a `Deque`, and one tokio program consumes them with many
//! tasks (`diskq::tokio`), each awaiting `pop_front_timeout`. A waiting
//! task holds no thread: a hundred consumers run on two worker threads.
//!
//! The program starts the producers (itself with `--produce`), spawns the
//! consumer tasks, and when the producers are done pushes one `Stop` per
//! task. Each task records what it did in an `Index` (task -> consumer)
//! and counts its work with `incr`; at the end the program checks that
//! every task was done exactly once.
//!
//! ```text
//! cargo run --release --features tokio --example async_queue -- [--producers N] [--consumers N] [--tasks N] [--dir PATH]
//! ```

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use diskq::Side;
use diskq::tokio::{Cache, Deque, Index};
use serde::{Deserialize, Serialize};

/// One message on the queue (stored as MessagePack).
#[derive(Debug, Serialize, Deserialize)]
enum Task {
    /// Hash `text` a number of `rounds`.
    Work {
        producer: usize,
        n: u64,
        text: String,
        rounds: u32,
    },
    /// No more work: the consumer task that takes this ends.
    Stop,
}

struct Args {
    producers: usize,
    consumers: usize,
    tasks: u64,
    dir: PathBuf,
    produce: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        producers: 2,
        consumers: 100,
        tasks: 20_000,
        dir: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("example-async-queue"),
        produce: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let number = |s: String, name: &str| s.parse::<u64>().map_err(|e| format!("{name}: {e}"));
        match arg.as_str() {
            "--producers" => args.producers = number(value(&arg)?, &arg)? as usize,
            "--consumers" => args.consumers = number(value(&arg)?, &arg)? as usize,
            "--tasks" => args.tasks = number(value(&arg)?, &arg)?,
            "--dir" => args.dir = PathBuf::from(value(&arg)?),
            "--produce" => args.produce = Some(number(value(&arg)?, &arg)? as usize),
            "-h" | "--help" => {
                return Err("usage: async_queue [--producers N] [--consumers N] [--tasks N] [--dir PATH]".into());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.producers == 0 || args.consumers == 0 {
        return Err("--producers and --consumers must be at least 1".into());
    }
    Ok(args)
}

fn builder() -> diskq::CacheBuilder {
    diskq::Cache::builder()
        .timeout(Duration::from_secs(120))
        .eviction_policy(diskq::EvictionPolicy::None)
}

/// FNV-1a, a few rounds: stands in for real work.
fn work(text: &str, rounds: u32) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for _ in 0..rounds {
        for b in text.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// A producer process: sync, since it never waits.
fn produce(id: usize, args: &Args) -> diskq::Result<()> {
    let tasks: diskq::Deque<Task> = diskq::Deque::from_cache(builder().open(args.dir.join("tasks"))?);
    let share = args.tasks / args.producers as u64 + u64::from((id as u64) < args.tasks % args.producers as u64);
    let all: Vec<Task> = (0..share)
        .map(|n| Task::Work {
            producer: id,
            n,
            text: format!("task {n} of producer {id}"),
            rounds: 50,
        })
        .collect();
    for batch in all.chunks(100) {
        tasks.extend(batch)?;
    }
    Ok(())
}

/// One consumer task.
async fn consume(id: usize, tasks: Deque<Task>, done: Index<String, usize>, counts: Cache) -> diskq::Result<()> {
    loop {
        // Waits without a thread until any process pushes.
        let task = match tasks.pop_front_timeout(Duration::from_secs(60)).await {
            Ok(Some(task)) => task,
            Ok(None) => return Err(diskq::Error::InvalidUse("no task for 60 s".into())),
            // An item that is no Task: out of the way, whole, and go on.
            Err(e) if e.is_decode() => {
                if let Some(key) = tasks.dead_letter_undecodable(Side::Front).await? {
                    eprintln!("consumer {id}: moved item {key} to the dead-letter queue: {e}");
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        match task {
            Task::Stop => return Ok(()),
            Task::Work {
                producer,
                n,
                text,
                rounds,
            } => {
                std::hint::black_box(work(&text, rounds));
                done.insert(&format!("{producer}:{n}"), &id).await?;
                counts.incr(format!("consumer:{id}"), 1, 0).await?;
            }
        }
    }
}

fn threads() -> String {
    std::fs::read_dir("/proc/self/task").map_or_else(|_| "?".into(), |d| d.count().to_string())
}

async fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)?;
    }
    let open = |name: &str| -> diskq::Result<diskq::Cache> { builder().open(args.dir.join(name)) };
    let tasks: Deque<Task> = diskq::Deque::from_cache(open("tasks")?).into();
    let done: Index<String, usize> = diskq::Index::from_cache(open("done")?).into();
    let counts = Cache::from(open("counts")?);
    let started = Instant::now();
    let consumers: Vec<_> = (0..args.consumers)
        .map(|id| tokio::spawn(consume(id, tasks.clone(), done.clone(), counts.clone())))
        .collect();
    println!(
        "{} consumer tasks waiting; threads in this process: {}",
        args.consumers,
        threads()
    );
    let producers = (0..args.producers)
        .map(|id| {
            Command::new(std::env::current_exe()?)
                .args(["--produce", &id.to_string(), "--dir"])
                .arg(&args.dir)
                .args(["--tasks", &args.tasks.to_string()])
                .args(["--producers", &args.producers.to_string()])
                .spawn()
        })
        .collect::<Result<Vec<_>, _>>()?;
    for mut p in producers {
        // Waiting for a child process blocks: off the runtime's threads.
        let status = tokio::task::spawn_blocking(move || p.wait()).await??;
        if !status.success() {
            return Err(format!("a producer failed: {status}").into());
        }
    }
    println!(
        "{} producers pushed {} tasks in {:.2?}",
        args.producers,
        args.tasks,
        started.elapsed()
    );
    // Stops go behind every task, so consumers finish the work first.
    let stops: Vec<Task> = (0..args.consumers).map(|_| Task::Stop).collect();
    tasks.extend(&stops).await?;
    for c in consumers {
        c.await??;
    }
    let elapsed = started.elapsed();

    let mut total = 0;
    for id in 0..args.consumers {
        total += counts.get::<u64>(format!("consumer:{id}")).await?.unwrap_or(0);
    }
    let distinct = done.len().await? as u64;
    if distinct != args.tasks || total != args.tasks || !tasks.backlog().await?.is_empty() {
        return Err(format!(
            "{distinct} distinct tasks done, {total} in all, for {} pushed",
            args.tasks
        )
        .into());
    }
    println!(
        "all {} tasks done exactly once by {} consumer tasks in {elapsed:.2?} ({:.0} tasks/s); threads: {}",
        args.tasks,
        args.consumers,
        args.tasks as f64 / elapsed.as_secs_f64(),
        threads()
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let result = match args.produce {
        Some(id) => produce(id, &args).map_err(Into::into),
        None => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(Into::into)
            .and_then(|rt| rt.block_on(run(&args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let causes: String = std::iter::successors(e.source(), |c| c.source())
                .map(|c| format!(": {c}"))
                .collect();
            eprintln!("error: {e}{causes}");
            ExitCode::FAILURE
        }
    }
}

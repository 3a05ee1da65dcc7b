//! Spread jobs over worker processes through one diskq directory.
//!
//! The parent pushes jobs onto a queue in the cache, starts worker processes
//! (this same program with `--worker`), and waits. Each worker pulls jobs until
//! the queue is empty, stores each result under its own key and counts its
//! work with an atomic `incr`. No job is taken twice: a pull is one SQLite
//! transaction. At the end the parent checks that every job has exactly one
//! result and prints who did what.
//!
//! ```text
//! cargo run --release --example cache -- [--workers N] [--jobs N] [--dir PATH]
//! ```

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use diskq::{Cache, PullOptions, PushOptions};

const QUEUE: &str = "jobs";

struct Args {
    workers: usize,
    jobs: u64,
    dir: PathBuf,
    worker: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2),
        jobs: 10_000,
        dir: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("example-cache"),
        worker: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--workers" => args.workers = value("--workers")?.parse().map_err(|e| format!("--workers: {e}"))?,
            "--jobs" => args.jobs = value("--jobs")?.parse().map_err(|e| format!("--jobs: {e}"))?,
            "--dir" => args.dir = PathBuf::from(value("--dir")?),
            "--worker" => args.worker = Some(value("--worker")?.parse().map_err(|e| format!("--worker: {e}"))?),
            "-h" | "--help" => {
                return Err("usage: cache [--workers N] [--jobs N] [--dir PATH]".into());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

/// The work of one job: the length of the Collatz sequence from `n`.
fn collatz_steps(mut n: u64) -> u64 {
    let mut steps = 0;
    while n > 1 {
        n = if n.is_multiple_of(2) { n / 2 } else { 3 * n + 1 };
        steps += 1;
    }
    steps
}

fn worker(id: usize, cache: &Cache) -> diskq::Result<()> {
    let pull = PullOptions::new().prefix(QUEUE).retry(true);
    while let Some((_key, n)) = cache.pull_with::<u64>(&pull)? {
        let steps = collatz_steps(n);
        // A job's result and the worker's tally commit together.
        cache.transact(|c| {
            c.set(format!("result:{n}"), &steps)?;
            c.incr(format!("done-by:{id}"), 1, 0)?;
            Ok::<_, diskq::Error>(())
        })?;
    }
    Ok(())
}

fn parent(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)?;
    }
    let cache = Cache::builder().timeout(Duration::from_secs(120)).open(&args.dir)?;
    let started = Instant::now();
    // One transaction for all the pushes: one commit instead of thousands.
    cache.transact(|c| {
        for n in 1..=args.jobs {
            c.push_with(&n, &PushOptions::new().prefix(QUEUE))?;
        }
        Ok::<_, diskq::Error>(())
    })?;
    println!("pushed {} jobs into {}", args.jobs, args.dir.display());

    let exe = std::env::current_exe()?;
    let children: Vec<_> = (0..args.workers)
        .map(|id| {
            Command::new(&exe)
                .args(["--worker", &id.to_string(), "--dir"])
                .arg(&args.dir)
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("a worker failed: {status}").into());
        }
    }
    let elapsed = started.elapsed();

    let mut total = 0;
    for id in 0..args.workers {
        let done: u64 = cache.get(format!("done-by:{id}"))?.unwrap_or(0);
        println!("worker {id}: {done} jobs");
        total += done;
    }
    let mut longest = (0, 0);
    for n in 1..=args.jobs {
        let steps: u64 = cache
            .get(format!("result:{n}"))?
            .ok_or_else(|| format!("job {n} has no result"))?;
        if steps > longest.1 {
            longest = (n, steps);
        }
    }
    if total != args.jobs {
        return Err(format!("{total} jobs done for {} pushed", args.jobs).into());
    }
    println!(
        "all {} jobs done exactly once by {} processes in {:.2?} ({:.0} jobs/s); longest chain: {} ({} steps)",
        args.jobs,
        args.workers,
        elapsed,
        args.jobs as f64 / elapsed.as_secs_f64(),
        longest.0,
        longest.1
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
    let result = match args.worker {
        Some(id) => Cache::builder()
            .timeout(Duration::from_secs(120))
            .open(&args.dir)
            .and_then(|cache| worker(id, &cache))
            .map_err(Into::into),
        None => parent(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The error, then each cause (diskq's messages do not repeat them).
            let causes: String = std::iter::successors(e.source(), |c| c.source())
                .map(|c| format!(": {c}"))
                .collect();
            eprintln!("error: {e}{causes}");
            ExitCode::FAILURE
        }
    }
}

//! Producers and consumers in separate OS processes, sharing one `Deque`.
//!
//! The parent starts the consumers first (this program with `--consume`):
//! they block in `pop_front_timeout`, woken by pushes from other processes.
//! Then it starts the producers (`--produce`), which push tasks in batches
//! with `extend`. When the producers are done, the parent pushes one `Stop`
//! per consumer. Consumers record each task in an `Index` (task -> consumer)
//! and count their work with `incr`; the parent checks that every task was
//! done exactly once. A consumer that meets an item that is no `Task` moves
//! it out of the way with `dead_letter_undecodable` instead of stopping.
//!
//! ```text
//! cargo run --release --example queue -- [--producers N] [--consumers N] [--tasks N] [--dir PATH]
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant};

use diskq::{Cache, Deque, Index, Side};
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
    /// No more work: the consumer that takes this exits.
    Stop,
}

struct Args {
    producers: usize,
    consumers: usize,
    tasks: u64,
    dir: PathBuf,
    role: Option<(String, usize)>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        producers: 2,
        consumers: 2,
        tasks: 20_000,
        dir: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("example-queue"),
        role: None,
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
            "--produce" | "--consume" => args.role = Some((arg.clone(), number(value(&arg)?, &arg)? as usize)),
            "-h" | "--help" => {
                return Err("usage: queue [--producers N] [--consumers N] [--tasks N] [--dir PATH]".into());
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if args.producers == 0 || args.consumers == 0 {
        return Err("--producers and --consumers must be at least 1".into());
    }
    Ok(args)
}

fn open(dir: &Path) -> diskq::Result<(Deque<Task>, Index<String, usize>, Cache)> {
    let builder = || {
        Cache::builder()
            .timeout(Duration::from_secs(120))
            .eviction_policy(diskq::EvictionPolicy::None)
    };
    Ok((
        Deque::from_cache(builder().open(dir.join("tasks"))?),
        Index::from_cache(builder().open(dir.join("done"))?),
        builder().open(dir.join("counts"))?,
    ))
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

fn produce(id: usize, args: &Args) -> diskq::Result<()> {
    let (tasks, _, _) = open(&args.dir)?;
    let share = args.tasks / args.producers as u64 + u64::from((id as u64) < args.tasks % args.producers as u64);
    let all: Vec<Task> = (0..share)
        .map(|n| Task::Work {
            producer: id,
            n,
            text: format!("task {n} of producer {id}"),
            rounds: 50,
        })
        .collect();
    // A batch of 100 pushes is one transaction, one commit.
    for batch in all.chunks(100) {
        tasks.extend(batch)?;
    }
    Ok(())
}

fn consume(id: usize, args: &Args) -> diskq::Result<()> {
    let (tasks, done, counts) = open(&args.dir)?;
    loop {
        // Blocks without spinning until any process pushes.
        let task = match tasks.pop_front_timeout(Duration::from_secs(60)) {
            Ok(Some(task)) => task,
            Ok(None) => return Err(diskq::Error::InvalidUse("no task for 60 s".into())),
            // An item that is no Task (another program pushed it, or a
            // Python Deque appended a pickle) stays at the front, where every
            // consumer would meet it: move it to the dead-letter queue, whole,
            // and go on. `None`: another consumer moved it first.
            Err(e) if e.is_decode() => {
                if let Some(key) = tasks.dead_letter_undecodable(Side::Front)? {
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
                done.insert(&format!("{producer}:{n}"), &id)?;
                counts.incr(format!("consumer:{id}"), 1, 0)?;
            }
        }
    }
}

fn spawn(role: &str, id: usize, args: &Args) -> std::io::Result<Child> {
    // A child works out its share from the same numbers as the parent.
    Command::new(std::env::current_exe()?)
        .args([role, &id.to_string(), "--dir"])
        .arg(&args.dir)
        .args(["--tasks", &args.tasks.to_string()])
        .args(["--producers", &args.producers.to_string()])
        .args(["--consumers", &args.consumers.to_string()])
        .spawn()
}

fn wait(children: Vec<Child>) -> Result<(), Box<dyn std::error::Error>> {
    for mut child in children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("a child process failed: {status}").into());
        }
    }
    Ok(())
}

fn parent(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)?;
    }
    let (tasks, done, counts) = open(&args.dir)?;
    let started = Instant::now();
    let consumers = (0..args.consumers)
        .map(|id| spawn("--consume", id, args))
        .collect::<Result<Vec<_>, _>>()?;
    let producers = (0..args.producers)
        .map(|id| spawn("--produce", id, args))
        .collect::<Result<Vec<_>, _>>()?;
    wait(producers)?;
    println!(
        "{} producers pushed {} tasks in {:.2?}",
        args.producers,
        args.tasks,
        started.elapsed()
    );
    // Stops go behind every task, so consumers finish the work first.
    tasks.extend(&(0..args.consumers).map(|_| Task::Stop).collect::<Vec<_>>())?;
    wait(consumers)?;
    let elapsed = started.elapsed();

    let mut total = 0;
    for id in 0..args.consumers {
        let n: u64 = counts.get(format!("consumer:{id}"))?.unwrap_or(0);
        println!("consumer {id}: {n} tasks");
        total += n;
    }
    let distinct = done.len()? as u64;
    if distinct != args.tasks || total != args.tasks || !tasks.backlog()?.is_empty() {
        return Err(format!(
            "{distinct} distinct tasks done, {total} in all, for {} pushed",
            args.tasks
        )
        .into());
    }
    println!(
        "all {} tasks done exactly once by {} consumer processes in {elapsed:.2?} ({:.0} tasks/s)",
        args.tasks,
        args.consumers,
        args.tasks as f64 / elapsed.as_secs_f64()
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
    let result = match &args.role {
        Some((role, id)) if role == "--produce" => produce(*id, &args).map_err(Into::into),
        Some((_, id)) => consume(*id, &args).map_err(Into::into),
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

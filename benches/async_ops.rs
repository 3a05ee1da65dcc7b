//! The cost of awaiting an operation (`diskq::tokio`) against calling the
//! sync one, and against running the sync call on tokio's blocking pool.
//!
//! `cargo bench --features tokio --bench async_ops`: `get` of a 100-byte
//! value and `push_back` of one, each three ways: the sync call, the
//! awaited async call (inline, as `diskq::tokio` runs it, with its yield or
//! budget check), and `spawn_blocking` of the sync call awaited (the other
//! way an async API could run it). The async loops run inside one task on
//! a 2-worker runtime, so a measurement is the awaited call alone, not a
//! `block_on` per call.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use diskq::Cache;
use tokio::runtime::Runtime;

fn value(n: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + n * 17) % 251) as u8).collect()
}

/// Times `iters` runs of `op` inside a task on `rt`.
fn timed<F, Fut>(rt: &Runtime, iters: u64, op: F) -> Duration
where
    F: Fn(u64) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    rt.block_on(async move {
        tokio::spawn(async move {
            let start = Instant::now();
            for i in 0..iters {
                op(i).await;
            }
            start.elapsed()
        })
        .await
        .expect("the timing task")
    })
}

fn async_ops(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = Cache::open(dir.path()).expect("open");
    let small = value(1, 100);
    for n in 0..10_000 {
        cache.set_bytes(format!("key-{n}"), &small).expect("set");
    }
    let acache = diskq::tokio::Cache::from(cache.clone());

    let mut get = c.benchmark_group("get 100 B");
    let mut n = 0u64;
    get.bench_function("sync", |b| {
        b.iter(|| {
            n = (n + 1) % 10_000;
            black_box(cache.get_bytes(format!("key-{n}")).expect("get"));
        })
    });
    get.bench_function("awaited (inline)", |b| {
        b.iter_custom(|iters| {
            let acache = acache.clone();
            timed(&rt, iters, move |i| {
                let acache = acache.clone();
                async move {
                    black_box(acache.get_bytes(format!("key-{}", i % 10_000)).await.expect("get"));
                }
            })
        })
    });
    get.bench_function("spawn_blocking", |b| {
        b.iter_custom(|iters| {
            let cache = cache.clone();
            timed(&rt, iters, move |i| {
                let cache = cache.clone();
                async move {
                    let got = tokio::task::spawn_blocking(move || cache.get_bytes(format!("key-{}", i % 10_000)));
                    black_box(got.await.expect("task").expect("get"));
                }
            })
        })
    });
    get.finish();

    let deque: diskq::Deque<Vec<u8>> = diskq::Deque::from_cache(cache.clone());
    let adeque = diskq::tokio::Deque::from(deque.clone());
    let mut push = c.benchmark_group("push_back 100 B");
    push.bench_function("sync", |b| b.iter(|| deque.push_back(black_box(&small)).expect("push")));
    push.bench_function("awaited (inline)", |b| {
        b.iter_custom(|iters| {
            let (adeque, small) = (adeque.clone(), small.clone());
            timed(&rt, iters, move |_| {
                let (adeque, small) = (adeque.clone(), small.clone());
                async move { adeque.push_back(black_box(&small)).await.expect("push") }
            })
        })
    });
    push.bench_function("spawn_blocking", |b| {
        b.iter_custom(|iters| {
            let (deque, small) = (deque.clone(), small.clone());
            timed(&rt, iters, move |_| {
                let (deque, small) = (deque.clone(), small.clone());
                async move {
                    let pushed = tokio::task::spawn_blocking(move || deque.push_back(&small));
                    pushed.await.expect("task").expect("push");
                }
            })
        })
    });
    push.finish();
    deque.clear().expect("clear");
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = async_ops
}
criterion_main!(benches);

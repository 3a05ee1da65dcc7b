//! Micro-benchmarks of single Cache operations (criterion).
//!
//! `cargo bench --bench ops`: set, get hit, get miss, incr, push, pull,
//! 1 MiB set and streamed read, and the Deque's single and batched pushes and
//! pops. The workloads of `shared/BENCH.md` are `benches/workloads.rs`
//! (`bash benches/compare.sh`). Each group runs on a fresh directory with
//! default settings; values are 100 random-looking bytes unless named.

use std::hint::black_box;
use std::io::Read;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use diskq::{Cache, Deque};

fn value(n: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + n * 17) % 251) as u8).collect()
}

fn ops(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = Cache::open(dir.path()).expect("open");
    let small = value(1, 100);
    for n in 0..10_000 {
        cache.set_bytes(format!("key-{n}"), &small).expect("set");
    }

    let mut n = 0u64;
    c.bench_function("set 100 B", |b| {
        b.iter(|| {
            n += 1;
            cache
                .set_bytes(format!("set-{}", n % 20_000), black_box(&small))
                .expect("set");
        })
    });
    let mut n = 0u64;
    c.bench_function("get hit", |b| {
        b.iter(|| {
            n = (n + 1) % 10_000;
            black_box(cache.get_bytes(format!("key-{n}")).expect("get"));
        })
    });
    let mut n = 0u64;
    c.bench_function("get miss", |b| {
        b.iter(|| {
            n += 1;
            black_box(cache.get_bytes(format!("absent-{n}")).expect("get"));
        })
    });
    c.bench_function("incr", |b| {
        b.iter(|| black_box(cache.incr("counter", 1, 0).expect("incr")))
    });
    c.bench_function("push", |b| b.iter(|| cache.push(black_box(&small[..])).expect("push")));
    // The pushes above left items to pull; each batch tops the queue up first
    // (untimed), so every timed pull finds one.
    c.bench_function("pull", |b| {
        b.iter_batched(
            || cache.push(&small[..]).expect("push"),
            |_| black_box(cache.pull::<serde_bytes::ByteBuf>().expect("pull").expect("an item")),
            BatchSize::SmallInput,
        )
    });
    c.bench_function("push + pull", |b| {
        b.iter(|| {
            cache.push(black_box(&small[..])).expect("push");
            black_box(cache.pull::<serde_bytes::ByteBuf>().expect("pull"));
        })
    });

    let large = value(2, 1 << 20);
    c.bench_function("set 1 MiB (file)", |b| {
        b.iter(|| cache.set_bytes("large", black_box(&large)).expect("set"))
    });
    c.bench_function("read 1 MiB (file, streamed)", |b| {
        let mut buf = vec![0u8; 64 << 10];
        b.iter_batched(
            || cache.read("large").expect("read").expect("present"),
            |mut reader| while reader.read(&mut buf).expect("read") > 0 {},
            BatchSize::SmallInput,
        )
    });
}

/// Deque throughput: single pushes and pops against batches of 100.
fn deque(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let d: Deque<u64> = Deque::open(dir.path()).expect("open");
    let batch: Vec<u64> = (0..100).collect();
    let mut group = c.benchmark_group("deque");
    group.throughput(criterion::Throughput::Elements(1));
    group.bench_function("push_back + pop_front", |b| {
        b.iter(|| {
            d.push_back(black_box(&7)).expect("push");
            black_box(d.pop_front().expect("pop"));
        })
    });
    group.bench_function("push_back + lease + ack", |b| {
        b.iter(|| {
            d.push_back(black_box(&7)).expect("push");
            let lease = d
                .lease(std::time::Duration::from_secs(60))
                .expect("lease")
                .expect("an item");
            black_box(lease.ack().expect("ack"));
        })
    });
    group.throughput(criterion::Throughput::Elements(100));
    group.bench_function("extend 100 + pop_front_many 100", |b| {
        b.iter(|| {
            d.extend(black_box(&batch)).expect("extend");
            black_box(d.pop_front_many(100).expect("pop"));
        })
    });
    group.finish();
}

/// Short runs: the whole suite takes a few minutes on a shared 2-core machine.
fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = ops, deque
}
criterion_main!(benches);

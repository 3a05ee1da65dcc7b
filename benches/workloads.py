"""The workloads of shared/BENCH.md on python-diskcache, printing the same
JSON lines as benches/workloads.rs (with "impl": "python-diskcache").

Run by benches/compare.sh with the virtual environment's python:
    target/pyenv/bin/python benches/workloads.py [--only W1,W5]

W1-W8, W10, W11 and W12 as BENCH.md names them; W9 (batches of 100) is
done with `Deque` inside `transact()`, python-diskcache's way to batch.
W11's consumers poll `Deque.popleft()` with a 1 ms sleep when it is empty:
the library has no blocking pop, and that is how its users wait. The
multi-process workloads (W5, W8, W11, W12) start this script again with a role
argument; each child opens the directory, prints "ready", waits for "go" on
stdin, works, then prints its result.
"""

import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

import diskcache

IMP = "python-diskcache"
N = 20_000
VALUE_LEN = 100
BATCH = 100
THREADS = 8
PER_THREAD = 2_500
PER_CHILD = 10_000
STOP = 2**64 - 1


def key(n):
    return f"key-{n}"


def values(n, length, seed):
    rng = random.Random(seed)
    return [rng.randbytes(length) for _ in range(n)]


def scratch():
    base = os.environ.get("DISKQ_BENCH_DIR")
    if base:
        os.makedirs(base, exist_ok=True)
    return tempfile.TemporaryDirectory(dir=base)


def quantile_us(sorted_ns, q):
    if not sorted_ns:
        return 0.0
    return sorted_ns[round((len(sorted_ns) - 1) * q)] / 1000.0


def report(workload, phase, ops, seconds, lat_ns=None, raw=False, nbytes=None, **extra):
    line = {
        "impl": IMP,
        "workload": workload,
        "phase": phase,
        "ops": ops,
        "seconds": seconds,
        "ops_per_s": ops / seconds,
    }
    if nbytes is not None:
        line["mb_per_s"] = nbytes / 1e6 / seconds
    if lat_ns is not None:
        s = sorted(lat_ns)
        line["median_us"] = quantile_us(s, 0.5)
        line["p99_us"] = quantile_us(s, 0.99)
        if raw:
            line["latencies_us"] = [round(ns / 1000.0, 2) for ns in lat_ns]
    line.update(extra)
    print(json.dumps(line), flush=True)


def w1_w3(only):
    with scratch() as d:
        cache = diskcache.Cache(d)
        keys = [key(n) for n in range(N)]
        vals = values(N, VALUE_LEN, 1)
        clock = time.perf_counter_ns
        lat = []
        for k, v in zip(keys, vals):
            start = clock()
            cache.set(k, v)
            lat.append(clock() - start)
        if wanted(only, "W1"):
            report("W1", "set", N, sum(lat) / 1e9, lat, raw=True)
        if wanted(only, "W2"):
            lat = []
            for k in keys:
                start = clock()
                got = cache.get(k)
                lat.append(clock() - start)
                assert got is not None
            report("W2", "get hit", N, sum(lat) / 1e9, lat, raw=True)
        if wanted(only, "W3"):
            lat = []
            for n in range(N, 2 * N):
                k = key(n)
                start = clock()
                got = cache.get(k)
                lat.append(clock() - start)
                assert got is None
            report("W3", "get miss", N, sum(lat) / 1e9, lat)
        cache.close()


def w4():
    clock = time.perf_counter_ns
    with scratch() as d:
        dq = diskcache.Deque(directory=d)
        vals = values(N, VALUE_LEN, 4)
        lat = []
        for v in vals:
            start = clock()
            dq.append(v)
            lat.append(clock() - start)
        report("W4", "push_back", N, sum(lat) / 1e9, lat)
        lat = []
        for _ in range(N):
            start = clock()
            dq.popleft()
            lat.append(clock() - start)
        report("W4", "pop_front", N, sum(lat) / 1e9, lat)


def peak_rss_kb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def w6():
    count, size = 200, 1 << 20
    with scratch() as d:
        cache = diskcache.Cache(d)
        big = bytearray(values(1, size, 6)[0])
        start = time.perf_counter()
        for n in range(count):
            big[:8] = n.to_bytes(8, "little")
            cache.set(key(n), bytes(big))
        report("W6", "set 1 MiB", count, time.perf_counter() - start, nbytes=count * size)
        hwm = peak_rss_kb()
        start = time.perf_counter()
        total = 0
        for n in range(count):
            f = cache.get(key(n), read=True)
            while True:
                chunk = f.read(64 << 10)
                if not chunk:
                    break
                total += len(chunk)
            f.close()
        secs = time.perf_counter() - start
        assert total == count * size
        report(
            "W6",
            "read 1 MiB (streamed)",
            count,
            secs,
            nbytes=count * size,
            peak_rss_growth_kb=peak_rss_kb() - hwm,
        )
        start = time.perf_counter()
        for n in range(count):
            assert len(cache.get(key(n))) == size
        report("W6", "get 1 MiB", count, time.perf_counter() - start, nbytes=count * size)
        cache.close()


def w7():
    clock = time.perf_counter_ns
    with scratch() as d:
        idx = diskcache.Index(d)
        keys = [key(n) for n in range(N)]
        vals = values(N, VALUE_LEN, 7)
        lat = []
        for k, v in zip(keys, vals):
            start = clock()
            idx[k] = v
            lat.append(clock() - start)
        report("W7", "insert", N, sum(lat) / 1e9, lat)
        start = time.perf_counter()
        seen = list(idx)
        secs = time.perf_counter() - start
        assert seen == keys
        report("W7", "iterate keys", N, secs)


def w9():
    with scratch() as d:
        dq = diskcache.Deque(directory=d)
        vals = values(N, VALUE_LEN, 9)
        start = time.perf_counter()
        for i in range(0, N, BATCH):
            with dq.transact():
                for v in vals[i : i + BATCH]:
                    dq.append(v)
        report("W9", "push batches of 100", N, time.perf_counter() - start)
        start = time.perf_counter()
        taken = 0
        while taken < N:
            with dq.transact():
                for _ in range(BATCH):
                    dq.popleft()
                    taken += 1
        report("W9", "pop batches of 100", N, time.perf_counter() - start)


def w10():
    with scratch() as d:
        cache = diskcache.Cache(d)
        vals = values(PER_THREAD, VALUE_LEN, 10)
        barrier = threading.Barrier(THREADS + 1)
        lats = [None] * THREADS

        def writer(t):
            keys = [key(t * PER_THREAD + i) for i in range(PER_THREAD)]
            clock = time.perf_counter_ns
            lat = []
            barrier.wait()
            for k, v in zip(keys, vals):
                start = clock()
                cache.set(k, v)
                lat.append(clock() - start)
            lats[t] = lat

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(THREADS)]
        for th in threads:
            th.start()
        barrier.wait()
        start = time.perf_counter()
        for th in threads:
            th.join()
        secs = time.perf_counter() - start
        assert len(cache) == THREADS * PER_THREAD
        report("W10", "8 threads set", THREADS * PER_THREAD, secs, [x for l in lats for x in l])
        cache.close()


W12_WRITERS = 8
W12_PER_WRITER = 2_000


def w12_items(ident):
    keys = [key(ident * W12_PER_WRITER + i) for i in range(W12_PER_WRITER)]
    return keys, values(W12_PER_WRITER, VALUE_LEN, 120 + ident)


def timed_sets(cache, keys, vals):
    clock = time.perf_counter_ns
    lat = []
    for k, v in zip(keys, vals):
        start = clock()
        cache.set(k, v)
        lat.append(clock() - start)
    return lat


def w12_report(phase, secs, lat):
    s = sorted(lat)
    report(
        "W12",
        phase,
        len(lat),
        secs,
        lat,
        raw=True,
        p999_us=quantile_us(s, 0.999),
        max_us=quantile_us(s, 1.0),
    )


def w12():
    total = W12_WRITERS * W12_PER_WRITER
    with scratch() as d:
        cache = diskcache.Cache(d)
        workers = [spawn("setter", d, i) for i in range(W12_WRITERS)]
        start = go(workers)
        lat = []
        for w in workers:
            lat.extend(int(x) for x in finish(w).split())
        secs = time.perf_counter() - start
        assert len(lat) == total and len(cache) == total
        w12_report("8 processes set", secs, lat)
        cache.close()
    with scratch() as d:
        cache = diskcache.Cache(d)
        barrier = threading.Barrier(W12_WRITERS + 1)
        lats = [None] * W12_WRITERS

        def writer(t):
            keys, vals = w12_items(t)
            barrier.wait()
            lats[t] = timed_sets(cache, keys, vals)

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(W12_WRITERS)]
        for th in threads:
            th.start()
        barrier.wait()
        start = time.perf_counter()
        for th in threads:
            th.join()
        secs = time.perf_counter() - start
        assert len(cache) == total
        w12_report("8 threads set", secs, [x for l in lats for x in l])
        cache.close()


# ---- Multi-process workloads ----


def spawn(role, directory, ident):
    p = subprocess.Popen(
        [sys.executable, __file__, "--role", role, directory, str(ident)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = p.stdout.readline()
    assert line.strip() == "ready", f"child {role} {ident} did not start"
    return p


def go(workers):
    start = time.perf_counter()
    for p in workers:
        p.stdin.write("go\n")
        p.stdin.flush()
    return start


def finish(p):
    out = p.stdout.read()
    assert p.wait() == 0, "a child failed"
    return out


def item(ident):
    return ident.to_bytes(8, "little") + b"\xa5" * (VALUE_LEN - 8)


def w5():
    with scratch() as d:
        dq = diskcache.Deque(directory=d)
        producers = [spawn("producer", d, i) for i in range(2)]
        consumers = [spawn("consumer", d, i) for i in range(2)]
        start = go(consumers)
        go(producers)
        for p in producers:
            finish(p)
        for _ in range(2):
            dq.append(item(STOP))
        taken, per = [], []
        for c in consumers:
            ids = [int(x) for x in finish(c).split()]
            per.append(len(ids))
            taken.extend(ids)
        secs = time.perf_counter() - start
        exactly_once = sorted(taken) == list(range(2 * PER_CHILD))
        assert exactly_once
        report(
            "W5",
            "2 producers + 2 consumers",
            2 * PER_CHILD,
            secs,
            exactly_once=exactly_once,
            per_consumer=per,
        )


def w8():
    with scratch() as d:
        fanout = diskcache.FanoutCache(d, shards=4)
        writers = [spawn("fanout", d, i) for i in range(2)]
        start = go(writers)
        retries = sum(int(finish(w).strip()) for w in writers)
        secs = time.perf_counter() - start
        for n in range(2 * PER_CHILD):
            assert fanout.get(key(n)) is not None
        report("W8", "2 processes set", 2 * PER_CHILD, secs, timeouts_retried=retries)
        fanout.close()


W11_ITEMS = 100
W11_INTERVALS_MS = (1, 20, 100)


def w11_summary(lat_ns):
    """The W11 fields beside median_us and p99_us (as benches/workloads.rs)."""
    s = sorted(lat_ns)
    return {
        "p90_us": quantile_us(s, 0.9),
        "max_us": quantile_us(s, 1.0),
        "latencies_us": [round(ns / 1000.0, 1) for ns in s],
    }


def w11_phase(interval, consumers):
    return f"every {interval} ms, {consumers} consumer{'s' if consumers > 1 else ''}"


def w11_pace(push, interval):
    """Calls push(wall_ns) W11_ITEMS times, one every `interval` ms."""
    start = time.perf_counter()
    for n in range(W11_ITEMS):
        pause = start + interval * n / 1000.0 - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        push(time.time_ns())
    return start


def w11():
    """Wake latency across processes: this process pushes its wall-clock
    time every 1, 20 and 100 ms; 1, then 4, consumer processes poll."""
    for consumers in (1, 4):
        for interval in W11_INTERVALS_MS:
            with scratch() as d:
                dq = diskcache.Deque(directory=d)
                workers = [spawn("waiter", d, i) for i in range(consumers)]
                go(workers)
                # As diskq's W11: let the consumers start waiting first.
                time.sleep(0.2)
                start = w11_pace(dq.append, interval)
                for _ in workers:
                    dq.append(0)
                secs = time.perf_counter() - start
                lat = []
                for w in workers:
                    lat.extend(int(x) for x in finish(w).split())
                assert len(lat) == W11_ITEMS, "W11: every item is popped once"
                report("W11", w11_phase(interval, consumers), W11_ITEMS, secs, lat, **w11_summary(lat))


def child(role, directory, ident):
    def ready():
        print("ready", flush=True)
        sys.stdin.readline()

    if role == "producer":
        dq = diskcache.Deque(directory=directory)
        items = [item(ident * PER_CHILD + i) for i in range(PER_CHILD)]
        ready()
        for v in items:
            dq.append(v)
    elif role == "consumer":
        dq = diskcache.Deque(directory=directory)
        ready()
        ids = []
        # python-diskcache has no blocking pop: poll, pausing 1 ms when empty.
        while True:
            try:
                v = dq.popleft()
            except IndexError:
                time.sleep(0.001)
                continue
            n = int.from_bytes(v[:8], "little")
            if n == STOP:
                break
            ids.append(n)
        print(" ".join(map(str, ids)), flush=True)
    elif role == "waiter":
        dq = diskcache.Deque(directory=directory)
        ready()
        lat = []
        while True:
            try:
                pushed = dq.popleft()
            except IndexError:
                time.sleep(0.001)
                continue
            if pushed == 0:
                break
            lat.append(max(0, time.time_ns() - pushed))
        print(" ".join(map(str, lat)), flush=True)
    elif role == "fanout":
        f = diskcache.FanoutCache(directory, shards=4)
        vals = values(PER_CHILD, VALUE_LEN, 80 + ident)
        keys = [key(ident * PER_CHILD + i) for i in range(PER_CHILD)]
        ready()
        retries = 0
        for k, v in zip(keys, vals):
            # A busy shard times out after 10 ms and set returns False.
            while not f.set(k, v):
                retries += 1
        print(retries, flush=True)
    elif role == "setter":
        cache = diskcache.Cache(directory)
        keys, vals = w12_items(ident)
        ready()
        lat = timed_sets(cache, keys, vals)
        print(" ".join(map(str, lat)), flush=True)
    else:
        raise SystemExit(f"unknown role {role}")


def wanted(only, ident):
    return not only or ident in only


def main():
    args = sys.argv[1:]
    if args and args[0] == "--role":
        child(args[1], args[2], int(args[3]))
        return
    only = []
    if "--only" in args:
        only = [s.strip().upper() for s in args[args.index("--only") + 1].split(",")]
    if any(wanted(only, w) for w in ("W1", "W2", "W3")):
        w1_w3(only)
    steps = [
        ("W4", w4),
        ("W5", w5),
        ("W6", w6),
        ("W7", w7),
        ("W8", w8),
        ("W9", w9),
        ("W11", w11),
        ("W10", w10),
        ("W12", w12),
    ]
    for ident, fn in steps:
        if wanted(only, ident):
            fn()


if __name__ == "__main__":
    main()

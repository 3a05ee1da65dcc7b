"""Merges the JSON lines of the workload runs (diskq, python-diskcache, the
raw-SQLite ceiling, Redis, diskq's PostgreSQL backend with synchronous_commit
on and off) into the tables of shared/BENCH.md, checks the targets of issues
9, 15 and 16, writes benches/RESULTS.md and draws benches/latency-get.svg,
benches/latency-set.svg and benches/latency-wake.svg.

Standard library only. Called by benches/compare.sh:
    python3 benches/merge.py --diskq D.jsonl --python P.jsonl --ceiling C.jsonl \
        --redis R.jsonl --pg-sync-on ON.jsonl --pg-sync-off OFF.jsonl \
        --command "bash benches/compare.sh" --out benches
"""

import argparse
import datetime
import json
import math
import os
import subprocess

IMPLS = ("diskq", "python-diskcache", "ceiling", "redis")
# diskq's PostgreSQL backend (W4, W5, W9, W11), by synchronous_commit.
PG = ("diskq-pg sync on", "diskq-pg sync off")
ALL = IMPLS + PG

# W11's phases, (interval ms, consumers) in table order.
W11 = [(i, c) for c in (1, 4) for i in (1, 20, 100)]


def w11_phase(interval, consumers):
    return f"every {interval} ms, {consumers} consumer{'s' if consumers > 1 else ''}"

# (workload, phase, unit) in table order; unit "MB/s" reads mb_per_s.
ROWS = [
    ("W1", "set", "ops/s"),
    ("W2", "get hit", "ops/s"),
    ("W3", "get miss", "ops/s"),
    ("W4", "push_back", "ops/s"),
    ("W4", "pop_front", "ops/s"),
    ("W5", "2 producers + 2 consumers", "items/s"),
    ("W6", "set 1 MiB", "MB/s"),
    ("W6", "get 1 MiB", "MB/s"),
    ("W6", "read 1 MiB (streamed)", "MB/s"),
    ("W7", "insert", "ops/s"),
    ("W7", "iterate keys", "keys/s"),
    ("W8", "2 processes set", "ops/s"),
    ("W9", "push batches of 100", "items/s"),
    ("W9", "pop batches of 100", "items/s"),
    ("W10", "8 threads set", "ops/s"),
    ("W12", "8 processes set", "ops/s"),
    ("W12", "8 threads set", "ops/s"),
]

PERCENTILES = [50, 75, 90, 95, 99, 99.5, 99.9, 99.99]


def load(path):
    """Each measurement's median round (by its rate), with the round count."""
    rounds = {}
    if not path or not os.path.exists(path):
        return {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                r = json.loads(line)
                rounds.setdefault((r["workload"], r["phase"]), []).append(r)
    out = {}
    for k, rs in rounds.items():
        if k[0] == "W11" or (k[0] == "W13" and all("latencies_us" in r for r in rs)):
            out[k] = pooled(rs)
            continue
        rs.sort(key=lambda r: r.get("mb_per_s", r["ops_per_s"]))
        chosen = dict(rs[(len(rs) - 1) // 2])
        chosen["rounds"] = len(rs)
        chosen["spread"] = "{:.0f}–{:.0f}".format(
            rs[0].get("mb_per_s", rs[0]["ops_per_s"]), rs[-1].get("mb_per_s", rs[-1]["ops_per_s"])
        )
        out[k] = chosen
    return out


def pooled(rs):
    """W11 and W13: a round is only 100 (W11) or 1,000 (W13) items (W11's
    p99 is its second-worst), so the latencies of every round are pooled and
    the percentiles taken over all of them; the spread is that of the
    rounds' medians."""
    lat = sorted(v for r in rs for v in r.get("latencies_us", []))
    chosen = dict(rs[0])
    chosen["rounds"] = len(rs)
    meds = sorted(r["median_us"] for r in rs)
    chosen["spread"] = f"p50 {meds[0]:.0f}–{meds[-1]:.0f} µs"
    chosen["ops"] = len(lat)
    chosen["seconds"] = sum(r["seconds"] for r in rs)
    chosen["ops_per_s"] = chosen["ops"] / chosen["seconds"]
    chosen["latencies_us"] = lat
    for name, q in (("median_us", 0.5), ("p90_us", 0.9), ("p99_us", 0.99), ("max_us", 1.0)):
        chosen[name] = lat[round((len(lat) - 1) * q)] if lat else 0.0
    return chosen


def rate(rec, unit):
    if rec is None:
        return None
    return rec.get("mb_per_s") if unit == "MB/s" else rec.get("ops_per_s")


def fmt(x):
    if x is None:
        return "–"
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.1f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(x):
    return "–" if x is None else f"{x:.2f}×"


def main_table(data):
    """Every implementation's rate; the PostgreSQL columns (and their ratios
    to diskq on a directory) only when the run had them."""
    with_pg = any(data[i] for i in PG)
    head = "| workload | unit | diskq | python-diskcache | ceiling | Redis |"
    rule = "| --- | --- | ---: | ---: | ---: | ---: |"
    if with_pg:
        head += " diskq-pg sync on | diskq-pg sync off |"
        rule += " ---: | ---: |"
    head += " diskq ÷ python-diskcache | diskq ÷ ceiling | diskq ÷ Redis |"
    rule += " ---: | ---: | ---: |"
    if with_pg:
        head += " pg on ÷ diskq | pg off ÷ diskq | pg off ÷ pg on |"
        rule += " ---: | ---: | ---: |"
    lines = [head, rule]
    for w, phase, unit in ROWS:
        d, p, c, r, on, off = (rate(data[i].get((w, phase)), unit) for i in ALL)
        line = f"| {w} {phase} | {unit} | {fmt(d)} | {fmt(p)} | {fmt(c)} | {fmt(r)} |"
        if with_pg:
            line += f" {fmt(on)} | {fmt(off)} |"
        line += f" {fmt_ratio(ratio(d, p))} | {fmt_ratio(ratio(d, c))} | {fmt_ratio(ratio(d, r))} |"
        if with_pg:
            line += f" {fmt_ratio(ratio(on, d))} | {fmt_ratio(ratio(off, d))} | {fmt_ratio(ratio(off, on))} |"
        lines.append(line)
    return lines


def wake_table(data):
    """W11: push-to-pop latency per (interval, consumers) and implementation."""
    lines = [
        "| push every | consumers | implementation | p50 µs | p90 µs | p99 µs | max µs | p50 ÷ Redis p50 | items |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for interval, consumers in W11:
        key = ("W11", w11_phase(interval, consumers))
        redis = data["redis"].get(key, {}).get("median_us")
        for i in ALL:
            r = data[i].get(key)
            if r is None:
                continue
            lines.append(
                f"| {interval} ms | {consumers} | {i} | {fmt(r['median_us'])} | {fmt(r['p90_us'])} | "
                f"{fmt(r['p99_us'])} | {fmt(r['max_us'])} | {fmt_ratio(ratio(r['median_us'], redis))} | {r['ops']} |"
            )
    return lines


def contention_table(data):
    """W12: per-set latency with 8 writers (processes, then threads), from
    every set's latency when the run kept them."""
    lines = [
        "| writers | implementation | sets/s | p50 µs | p99 µs | p99.9 µs | max µs | blocking checkpoints |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for phase in ("8 processes set", "8 threads set"):
        for i in IMPLS:
            r = data[i].get(("W12", phase))
            if r is None:
                continue
            lat = sorted(r.get("latencies_us") or [])
            q = (lambda x: lat[min(len(lat) - 1, int(round((len(lat) - 1) * x)))]) if lat else (lambda x: None)
            p999 = r.get("p999_us", q(0.999))
            lines.append(
                f"| {phase.split(' set')[0]} | {i} | {fmt(r['ops_per_s'])} | {fmt(r.get('median_us'))} | "
                f"{fmt(r.get('p99_us'))} | {fmt(p999)} | {fmt(r.get('max_us', q(1.0)))} | "
                f"{r.get('blocking_checkpoints', '')} |"
            )
    return lines


def contention_section(data):
    """The W12 part of RESULTS.md, when the run had W12 (issue 16)."""
    table = contention_table(data)
    if len(table) <= 2:
        return []
    rows = ["| target | value | goal | met |", "| --- | ---: | ---: | --- |"]
    d = data["diskq"].get(("W12", "8 processes set"))
    p = data["python-diskcache"].get(("W12", "8 processes set"))
    if d:
        rows.append(f"| W12 8 processes: diskq p99.9 | {fmt(d.get('p999_us'))} µs | ≤ 2,000 µs | "
                    f"{'yes' if d.get('p999_us', 1e18) <= 2000 else 'no'} |")
        rows.append(f"| W12 8 processes: diskq max | {fmt(d.get('max_us'))} µs | ≤ 20,000 µs | "
                    f"{'yes' if d.get('max_us', 1e18) <= 20000 else 'no'} |")
        if p and p.get("p999_us") and d.get("p999_us"):
            v = p["p999_us"] / d["p999_us"]
            rows.append(f"| W12 8 processes: python-diskcache p99.9 ÷ diskq p99.9 | {fmt_ratio(v)} | ≥ 20× | "
                        f"{'yes' if v >= 20 else 'no'} |")
    return [
        "## Writers under contention (W12, issue 16)",
        "",
        "8 processes set at once, 2,000 distinct 100-byte values each; then 8 threads of one "
        "process. Each set is timed. The picture `latency-set.svg` shows one writer (W1) and 8 "
        "writer processes (W12) for diskq and python-diskcache.",
        "",
        *table,
        "",
        *rows,
        "",
    ]


def client_table(data):
    """Redis through benches/redis_peer.rs (the peer's numbers) beside
    redis-benchmark's C client on the same server: a check that the peer's
    client costs no more than Redis's own."""
    c = data.get("redis-benchmark", {})
    lines = [
        "| workload | diskq ops/s | Redis, redis_peer.rs: ops/s | p50 µs | Redis, redis-benchmark: ops/s | p50 µs "
        "| diskq ÷ Redis (redis-benchmark) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for w, phase in (("W2", "get hit"), ("W4", "push_back"), ("W4", "pop_front")):
        d, r, rc = (src.get((w, phase)) for src in (data["diskq"], data["redis"], c))
        if r is None and rc is None:
            continue
        lines.append(
            f"| {w} {phase} | {fmt(rate(d, 'ops/s'))} | {fmt(rate(r, 'ops/s'))} | "
            f"{fmt((r or {}).get('median_us'))} | {fmt(rate(rc, 'ops/s'))} | {fmt((rc or {}).get('median_us'))} | "
            f"{fmt_ratio(ratio(rate(d, 'ops/s'), rate(rc, 'ops/s')))} |"
        )
    return lines


def wake_targets(data):
    """Issue 15, point 1: an idle queue (a push every 100 ms) wakes a
    blocked consumer in another process with p50 <= 0.2 ms, p99 <= 2 ms,
    and p50 <= 2x Redis BRPOP's p50 in the same run."""
    rows = []

    def add(name, value, goal, ok):
        state = "–" if ok is None else ("met" if ok else "**not met**")
        rows.append(f"| {name} | {value} | {goal} | {state} |")

    for interval, consumers in W11:
        key = ("W11", w11_phase(interval, consumers))
        d = data["diskq"].get(key)
        r = data["redis"].get(key)
        if d is None:
            continue
        v = ratio(d["median_us"], r["median_us"] if r else None)
        if interval == 100:
            add(f"W11 {key[1]}: diskq p50", f"{fmt(d['median_us'])} µs", "≤ 200 µs", d["median_us"] <= 200)
            add(f"W11 {key[1]}: diskq p99", f"{fmt(d['p99_us'])} µs", "≤ 2,000 µs", d["p99_us"] <= 2000)
            add(f"W11 {key[1]}: diskq p50 ÷ Redis BRPOP p50", fmt_ratio(v), "≤ 2×", None if v is None else v <= 2)
        else:
            add(f"W11 {key[1]}: diskq p50 ÷ Redis BRPOP p50", fmt_ratio(v), "report", None)
    return ["| target | measured | goal | |", "| --- | ---: | --- | --- |"] + rows


def detail_table(data):
    lines = [
        "| workload | implementation | ops | seconds | median µs | p99 µs | extra |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    skip = {
        "impl", "workload", "phase", "ops", "seconds", "ops_per_s", "mb_per_s", "median_us", "p99_us",
        "latencies_us", "version",
    }
    skip |= {"p90_us", "max_us"}
    rows = [(w, phase) for w, phase, _ in ROWS] + [("W11", w11_phase(*k)) for k in W11] + [("W13", "lateness")]
    for w, phase in rows:
        for i in ALL:
            r = data[i].get((w, phase))
            if r is None:
                continue
            extra = ", ".join(f"{k}={v}" for k, v in r.items() if k not in skip)
            med = f"{r['median_us']:.1f}" if "median_us" in r else "–"
            p99 = f"{r['p99_us']:.1f}" if "p99_us" in r else "–"
            lines.append(f"| {w} {phase} | {i} | {r['ops']} | {r['seconds']:.3f} | {med} | {p99} | {extra} |")
    return lines


def targets(data):
    d, p, c = (data[i] for i in IMPLS[:3])

    def r(impl, w, phase, unit="ops/s"):
        return rate(impl.get((w, phase)), unit)

    rows = []

    def add(name, value, goal, ok):
        state = "–" if ok is None else ("met" if ok else "**not met**")
        rows.append(f"| {name} | {value} | {goal} | {state} |")

    for w, phase in (("W2", "get hit"), ("W3", "get miss")):
        vp = ratio(r(d, w, phase), r(p, w, phase))
        vc = ratio(r(c, w, phase), r(d, w, phase))
        add(f"{w} {phase}: diskq ÷ python-diskcache", fmt_ratio(vp), "≥ 3×", None if vp is None else vp >= 3)
        add(f"{w} {phase}: ceiling ÷ diskq", fmt_ratio(vc), "≤ 1.3×", None if vc is None else vc <= 1.3)
    for w, phase in (("W2", "get hit"), ("W3", "get miss")):
        vb = ratio(r(c, w, phase), r(p, w, phase))
        add(f"{w} {phase}: ceiling ÷ python-diskcache (the bound on the 3× above)", fmt_ratio(vb), "info", None)
    for w, phase in (("W1", "set"), ("W4", "push_back"), ("W4", "pop_front"), ("W7", "insert")):
        vc = ratio(r(c, w, phase), r(d, w, phase))
        add(f"{w} {phase}: ceiling ÷ diskq", fmt_ratio(vc), "≤ 1.2×", None if vc is None else vc <= 1.2)
        # Throughput of one-write-per-transaction runs is dominated by the
        # checkpoints' fsyncs on a shared disk; the median op is CPU and WAL
        # writes, the part diskq controls.
        dm = d.get((w, phase), {}).get("median_us")
        cm = c.get((w, phase), {}).get("median_us")
        vm = ratio(dm, cm)
        add(
            f"{w} {phase}: diskq ÷ ceiling median latency ({fmt(dm)} / {fmt(cm)} µs)",
            fmt_ratio(vm),
            "≤ 1.2×",
            None if vm is None else vm <= 1.2,
        )
    for w, phase in (("W5", "2 producers + 2 consumers"), ("W8", "2 processes set")):
        vp = ratio(r(d, w, phase), r(p, w, phase))
        add(f"{w}: diskq ÷ python-diskcache", fmt_ratio(vp), "≥ 1.5×", None if vp is None else vp >= 1.5)
    once = d.get(("W5", "2 producers + 2 consumers"), {}).get("exactly_once")
    add("W5: every item taken exactly once (diskq)", str(once), "true", None if once is None else once is True)
    for phase in ("set 1 MiB", "get 1 MiB", "read 1 MiB (streamed)"):
        vp = ratio(r(d, "W6", phase, "MB/s"), r(p, "W6", phase, "MB/s"))
        add(f"W6 {phase}: diskq ÷ python-diskcache (MB/s)", fmt_ratio(vp), "≥ 1×", None if vp is None else vp >= 1)
    growth = d.get(("W6", "read 1 MiB (streamed)"), {}).get("peak_rss_growth_kb")
    if growth is not None:
        add("W6 read: growth of peak RSS over 200 MiB read", f"{growth} KiB", "bounded (≪ 1 MiB)", growth < 1024)
    for a, b in (("push batches of 100", "push_back"), ("pop batches of 100", "pop_front")):
        v = ratio(r(d, "W9", a), r(d, "W4", b))
        add(f"W9 {a} ÷ W4 {b} (diskq, items/s)", fmt_ratio(v), "≥ 6×", None if v is None else v >= 6)
    w10 = r(d, "W10", "8 threads set")
    add("W10: 8 threads ÷ 1 thread (diskq W10 ÷ W1)", fmt_ratio(ratio(w10, r(d, "W1", "set"))), "report", None)
    add("W10: diskq ÷ python-diskcache", fmt_ratio(ratio(w10, r(p, "W10", "8 threads set"))), "report", None)
    add("W10: diskq ÷ ceiling (8 threads, 8 connections)", fmt_ratio(ratio(w10, r(c, "W10", "8 threads set"))), "report", None)
    return ["| target | measured | goal | |", "| --- | ---: | --- | --- |"] + rows


def percentiles(lat, pcts=PERCENTILES):
    s = sorted(lat)
    if not s:
        return []
    return [s[min(len(s) - 1, round((len(s) - 1) * q / 100.0))] for q in pcts]


# W11 has 100 items a round: p99.9 and beyond would only repeat the max,
# so its picture ends at the max, drawn where p99.9 would be.
WAKE_PERCENTILES = [50, 75, 90, 95, 99, 100]


def svg(title, series, path, pcts=PERCENTILES, right=150):
    """A log-log picture: x = percentile (as 1/(1-p)), y = latency in µs.
    A percentile of 100 (the max) is drawn one decade right of p99."""
    W, H, L, R, T, B = 640 + right - 150, 400, 70, right, 40, 50
    pts = {name: percentiles(lat, pcts) for name, lat, _ in series if lat}
    allv = [v for vs in pts.values() for v in vs if v > 0]
    if not allv:
        return
    ylo = math.floor(math.log10(min(allv)))
    yhi = math.ceil(math.log10(max(allv)))
    if yhi == ylo:
        yhi += 1
    xs = [math.log10(100.0 / (100.0 - (99.9 if p == 100 else p))) for p in pcts]
    xlo, xhi = xs[0], xs[-1]

    def X(x):
        return L + (x - xlo) / (xhi - xlo) * (W - L - R)

    def Y(v):
        return T + (yhi - math.log10(max(v, 10**ylo))) / (yhi - ylo) * (H - T - B)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{L}" y="22" font-size="15" font-weight="bold">{title}</text>',
    ]
    for e in range(ylo, yhi + 1):
        y = Y(10**e)
        label = f"{10**e:g} µs" if e >= 0 else f"{10**e:g} µs"
        out.append(f'<line x1="{L}" y1="{y:.1f}" x2="{W - R}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    for p, x in zip(pcts, xs):
        label = "max" if p == 100 else f"p{p:g}"
        out.append(f'<line x1="{X(x):.1f}" y1="{T}" x2="{X(x):.1f}" y2="{H - B}" stroke="#eee"/>')
        out.append(f'<text x="{X(x):.1f}" y="{H - B + 16}" text-anchor="middle">{label}</text>')
    out.append(f'<text x="{(L + W - R) / 2:.0f}" y="{H - 10}" text-anchor="middle">percentile (log scale of 1/(1−p))</text>')
    out.append(f'<rect x="{L}" y="{T}" width="{W - L - R}" height="{H - T - B}" fill="none" stroke="#888"/>')
    for i, (name, lat, style) in enumerate(series):
        vs = pts.get(name)
        if not vs:
            continue
        color, dash = style
        d = " ".join(f"{'M' if j == 0 else 'L'}{X(x):.1f},{Y(v):.1f}" for j, (x, v) in enumerate(zip(xs, vs)))
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="2"{extra}/>')
        for x, v in zip(xs, vs):
            out.append(f'<circle cx="{X(x):.1f}" cy="{Y(v):.1f}" r="3" fill="{color}"><title>{name}: {v:.1f} µs</title></circle>')
        ly = T + 20 + i * 20
        out.append(f'<line x1="{W - R + 10}" y1="{ly}" x2="{W - R + 34}" y2="{ly}" stroke="{color}" stroke-width="2"{extra}/>')
        out.append(f'<text x="{W - R + 40}" y="{ly + 4}">{name}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


STYLES = {
    "diskq": ("#1f77b4", None),
    "python-diskcache": ("#ff7f0e", None),
    "ceiling": ("#888888", "5,4"),
    "redis": ("#d62728", None),
    "diskq-pg sync on": ("#2ca02c", None),
    "diskq-pg sync off": ("#9467bd", None),
}


def lateness_table(data):
    """W13: how late each delayed item was taken (pop time − due time)."""
    lines = [
        "| implementation | items | p50 µs | p90 µs | p99 µs | max µs | rounds | spread of the rounds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for i in ALL:
        r = data[i].get(("W13", "lateness"))
        if r is None:
            continue
        lines.append(
            f"| {i} | {r['ops']} | {fmt(r.get('median_us'))} | {fmt(r.get('p90_us'))} | {fmt(r.get('p99_us'))} | "
            f"{fmt(r.get('max_us'))} | {r['rounds']} | {r['spread']} |"
        )
    return lines


def lateness_section(data):
    """The W13 part of RESULTS.md, when the run had W13 (issue 20)."""
    table = lateness_table(data)
    if len(table) <= 2:
        return []
    return [
        "## Delayed items: lateness (W13, issue 20)",
        "",
        "1,000 delayed items, one due every millisecond over 1 s, all pushed before the first is due; "
        "one consumer waits in `Deque::pop_front_timeout` and takes them as they come due. Lateness = "
        "pop time − due time (no item may come out early: checked). The items of every round are pooled "
        "before the percentiles are taken.",
        "",
        *table,
        "",
    ]


def pg_section(data, pgver):
    """What the PostgreSQL columns are, when the run had them."""
    if not any(data[i] for i in PG):
        return []
    return [
        "## PostgreSQL backend",
        "",
        f"The `diskq-pg` columns and rows are diskq's PostgreSQL backend ({pgver or 'PostgreSQL'}), "
        "`benches/workloads.rs` built with `--features postgres`, on a throwaway cluster that "
        "`benches/compare.sh` starts on the same machine (127.0.0.1, TCP loopback, trust "
        "authentication, `fsync` on, otherwise the defaults), each workload on a fresh schema. Each "
        "round ran W4, W5, W9 and W11 on it twice: `synchronous_commit = on` (the default: a commit "
        "returns once its WAL is flushed to disk) and `synchronous_commit = off` (a commit returns "
        "before the flush; a crash of the server can lose the last few hundred milliseconds of "
        "commits, never corrupt), set with `ALTER SYSTEM` and a reload, checked with `SHOW` before "
        "each run. The directory backend (`diskq`) commits with SQLite's `synchronous = NORMAL` in WAL "
        "mode, which does not fsync per commit either: `sync off` is its like for durability.",
        "",
    ]


def curve_table(data):
    lines = [
        "| op | implementation | " + " | ".join(f"p{p:g}" for p in PERCENTILES) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in PERCENTILES) + " |",
    ]
    for w, phase in (("W1", "set"), ("W2", "get hit")):
        for i in IMPLS:
            lat = data[i].get((w, phase), {}).get("latencies_us")
            if lat:
                lines.append(f"| {w} {phase} | {i} | " + " | ".join(f"{v:.1f}" for v in percentiles(lat)) + " |")
    return lines


def wake_section(data):
    """The W11 part of RESULTS.md, when the run had W11."""
    table = wake_table(data)
    if len(table) <= 2:
        return []
    return [
        "## Wake latency across processes (W11, issue 15)",
        "",
        "One producer process pushes its wall-clock time every 1, 20 and 100 ms (100 items each); "
        "1, then 4, consumer processes wait: diskq in `Deque::pop_front_timeout`, python-diskcache "
        "polling `Deque.popleft()` with a 1 ms sleep when empty (it has no blocking pop), Redis in "
        "`BRPOP` (the producer `LPUSH`es). Latency = pop time − push time. The items of every round "
        "are pooled before the percentiles are taken (a round alone has 100).",
        "",
        "![wake latency](latency-wake.svg)",
        "",
        *table,
        "",
        *wake_targets(data),
        "",
    ]


def client_section(data):
    """The check of the Redis peer's client, when the run had Redis."""
    table = client_table(data)
    if len(table) <= 2:
        return []
    return [
        "## Redis: the client's share",
        "",
        "Every Redis number above comes through `benches/redis_peer.rs`, a RESP client in Rust over "
        "one TCP connection per process (`TCP_NODELAY`, one write per command). For the single-client "
        "ops, `redis-benchmark` (Redis's C client, one connection, no pipelining) ran against the same "
        "server: similar medians mean the peer's client adds nothing of its own. Its ops/s are wall "
        "time; the peer's W2 and W4 rates, as diskq's, are the sum of the timed ops.",
        "",
        *table,
        "",
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--diskq")
    ap.add_argument("--python")
    ap.add_argument("--ceiling")
    ap.add_argument("--command", default="bash benches/compare.sh")
    ap.add_argument("--out", default="benches")
    ap.add_argument("--redis")
    ap.add_argument("--redis-benchmark")
    ap.add_argument("--pg-sync-on")
    ap.add_argument("--pg-sync-off")
    a = ap.parse_args()
    data = {
        "diskq": load(a.diskq),
        "python-diskcache": load(a.python),
        "ceiling": load(a.ceiling),
        "redis": load(a.redis),
        "redis-benchmark": load(a.redis_benchmark),
        "diskq-pg sync on": load(a.pg_sync_on),
        "diskq-pg sync off": load(a.pg_sync_off),
    }

    for w, phase, name, title in (
        ("W2", "get hit", "latency-get.svg", "get (W2, 20,000 hits): latency by percentile"),
        ("W1", "set", "latency-set.svg", "set (W1 one writer; W12 8 writer processes): latency by percentile"),
    ):
        series = [(i, data[i].get((w, phase), {}).get("latencies_us"), STYLES[i]) for i in IMPLS]
        if w == "W1":
            for i in ("diskq", "python-diskcache"):
                lat = data[i].get(("W12", "8 processes set"), {}).get("latencies_us")
                if lat:
                    series.append((f"{i}, 8 processes", lat, (STYLES[i][0], "6,3")))
        svg(title, series, os.path.join(a.out, name), right=230 if w == "W1" else 150)
    wake = []
    for i in ("diskq", "python-diskcache", "redis") + PG:
        color, _ = STYLES[i]
        # One consumer only for PostgreSQL: the legend has room for eight.
        for consumers, dash in ((1, None), (4, "6,3")) if i not in PG else ((1, None),):
            lat = data[i].get(("W11", w11_phase(100, consumers)), {}).get("latencies_us")
            if lat or i not in PG:
                wake.append((f"{i}, {consumers} consumer{'s' if consumers > 1 else ''}", lat, (color, dash)))
    svg(
        "wake (W11, a push every 100 ms): push-to-pop latency by percentile",
        wake,
        os.path.join(a.out, "latency-wake.svg"),
        pcts=WAKE_PERCENTILES,
        right=200,
    )

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cores = os.cpu_count()
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        rev = "?"
    pyver = next((r["version"] for r in data["python-diskcache"].values() if "version" in r), "")
    redisver = next((r["version"] for r in data["redis"].values() if "version" in r), "")
    pgver = next((r["version"] for i in PG for r in data[i].values() if "version" in r), "")
    table = main_table(data)
    print("\n".join(table))
    print()
    print("\n".join(targets(data)))
    wake = wake_table(data)
    if len(wake) > 2:
        print()
        print("\n".join(wake))
        print()
        print("\n".join(wake_targets(data)))
    late = lateness_table(data)
    if len(late) > 2:
        print()
        print("\n".join(late))

    md = [
        "# diskq benchmark results",
        "",
        f"- date: {now}",
        f"- cores: {cores} (`nproc`), a machine shared with other work: absolute numbers are noisy, "
        "ratios within one run are what count",
        f"- command: `{a.command}`",
        "- each implementation ran the workloads in turn, for several rounds; every number is the median "
        "round of its measurement (the rounds and the spread of the rate are in the last table)",
        f"- diskq at commit {rev} (plus the working tree of that run){', python-diskcache ' + pyver if pyver else ''}"
        f"{', ' + redisver if redisver else ''}{', ' + pgver + ' (synchronous_commit on and off)' if pgver else ''}",
        "- workloads: `shared/BENCH.md`; diskq in `benches/workloads.rs`, python-diskcache in "
        "`benches/workloads.py`, the raw-SQLite ceiling in `benches/ceiling.rs`, Redis in "
        "`benches/redis_peer.rs` (a throwaway `redis-server` on 127.0.0.1, no persistence, a RESP "
        "client in Rust, one connection per process; W2, W4, W5, W11), diskq's PostgreSQL backend "
        "(`diskq-pg`, the same `benches/workloads.rs` on a throwaway local cluster; W4, W5, W9, W11; "
        "below)",
        "",
        "## Throughput",
        "",
        *table,
        "",
        "## Targets (issue 9)",
        "",
        *targets(data),
        "",
        *pg_section(data, pgver),
        *wake_section(data),
        *lateness_section(data),
        *contention_section(data),
        *client_section(data),
        "## Latency by percentile (µs)",
        "",
        "![get latency](latency-get.svg) ![set latency](latency-set.svg)",
        "",
        *curve_table(data),
        "",
        "## Every measurement",
        "",
        *detail_table(data),
        "",
    ]
    notes = os.path.join(a.out, "NOTES.md")
    if os.path.exists(notes):
        with open(notes) as f:
            md += [f.read().rstrip(), ""]
    with open(os.path.join(a.out, "RESULTS.md"), "w") as f:
        f.write("\n".join(md))


if __name__ == "__main__":
    main()

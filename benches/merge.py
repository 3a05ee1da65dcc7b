"""Merges the JSON lines of the three workload runs into the table of
shared/BENCH.md, checks the targets of issue 9, writes benches/RESULTS.md
and draws benches/latency-get.svg and benches/latency-set.svg.

Standard library only. Called by benches/compare.sh:
    python3 benches/merge.py --diskq D.jsonl --python P.jsonl --ceiling C.jsonl \
        --command "bash benches/compare.sh" --out benches
"""

import argparse
import datetime
import json
import math
import os
import subprocess

IMPLS = ("diskq", "python-diskcache", "ceiling")

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
        rs.sort(key=lambda r: r.get("mb_per_s", r["ops_per_s"]))
        chosen = dict(rs[(len(rs) - 1) // 2])
        chosen["rounds"] = len(rs)
        chosen["spread"] = "{:.0f}–{:.0f}".format(
            rs[0].get("mb_per_s", rs[0]["ops_per_s"]), rs[-1].get("mb_per_s", rs[-1]["ops_per_s"])
        )
        out[k] = chosen
    return out


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
    lines = [
        "| workload | unit | diskq | python-diskcache | ceiling | diskq ÷ python-diskcache | diskq ÷ ceiling |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for w, phase, unit in ROWS:
        d, p, c = (rate(data[i].get((w, phase)), unit) for i in IMPLS)
        lines.append(
            f"| {w} {phase} | {unit} | {fmt(d)} | {fmt(p)} | {fmt(c)} | "
            f"{fmt_ratio(ratio(d, p))} | {fmt_ratio(ratio(d, c))} |"
        )
    return lines


def detail_table(data):
    lines = [
        "| workload | implementation | ops | seconds | median µs | p99 µs | extra |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    skip = {
        "impl", "workload", "phase", "ops", "seconds", "ops_per_s", "mb_per_s", "median_us", "p99_us",
        "latencies_us", "version",
    }
    for w, phase, _ in ROWS:
        for i in IMPLS:
            r = data[i].get((w, phase))
            if r is None:
                continue
            extra = ", ".join(f"{k}={v}" for k, v in r.items() if k not in skip)
            med = f"{r['median_us']:.1f}" if "median_us" in r else "–"
            p99 = f"{r['p99_us']:.1f}" if "p99_us" in r else "–"
            lines.append(f"| {w} {phase} | {i} | {r['ops']} | {r['seconds']:.3f} | {med} | {p99} | {extra} |")
    return lines


def targets(data):
    d, p, c = (data[i] for i in IMPLS)

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


def percentiles(lat):
    s = sorted(lat)
    if not s:
        return []
    return [s[min(len(s) - 1, round((len(s) - 1) * q / 100.0))] for q in PERCENTILES]


def svg(title, series, path):
    """A log-log picture: x = percentile (as 1/(1-p)), y = latency in µs."""
    W, H, L, R, T, B = 640, 400, 70, 150, 40, 50
    pts = {name: percentiles(lat) for name, lat, _ in series if lat}
    allv = [v for vs in pts.values() for v in vs if v > 0]
    if not allv:
        return
    ylo = math.floor(math.log10(min(allv)))
    yhi = math.ceil(math.log10(max(allv)))
    if yhi == ylo:
        yhi += 1
    xs = [math.log10(100.0 / (100.0 - p)) for p in PERCENTILES]
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
    for p, x in zip(PERCENTILES, xs):
        out.append(f'<line x1="{X(x):.1f}" y1="{T}" x2="{X(x):.1f}" y2="{H - B}" stroke="#eee"/>')
        out.append(f'<text x="{X(x):.1f}" y="{H - B + 16}" text-anchor="middle">p{p:g}</text>')
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


STYLES = {"diskq": ("#1f77b4", None), "python-diskcache": ("#ff7f0e", None), "ceiling": ("#888888", "5,4")}


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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--diskq")
    ap.add_argument("--python")
    ap.add_argument("--ceiling")
    ap.add_argument("--command", default="bash benches/compare.sh")
    ap.add_argument("--out", default="benches")
    a = ap.parse_args()
    data = {"diskq": load(a.diskq), "python-diskcache": load(a.python), "ceiling": load(a.ceiling)}

    for w, phase, name, title in (
        ("W2", "get hit", "latency-get.svg", "get (W2, 20,000 hits): latency by percentile"),
        ("W1", "set", "latency-set.svg", "set (W1, 20,000 new keys): latency by percentile"),
    ):
        series = [(i, data[i].get((w, phase), {}).get("latencies_us"), STYLES[i]) for i in IMPLS]
        svg(title, series, os.path.join(a.out, name))

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cores = os.cpu_count()
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:
        rev = "?"
    pyver = data["python-diskcache"].get(("W1", "set"), {}).get("version", "")
    table = main_table(data)
    print("\n".join(table))
    print()
    print("\n".join(targets(data)))

    md = [
        "# diskq benchmark results",
        "",
        f"- date: {now}",
        f"- cores: {cores} (`nproc`), a machine shared with other work: absolute numbers are noisy, "
        "ratios within one run are what count",
        f"- command: `{a.command}`",
        "- each implementation ran the workloads in turn, for several rounds; every number is the median "
        "round of its measurement (the rounds and the spread of the rate are in the last table)",
        f"- diskq at commit {rev} (plus the working tree of that run){', python-diskcache ' + pyver if pyver else ''}",
        "- workloads: `shared/BENCH.md`; diskq in `benches/workloads.rs`, python-diskcache in "
        "`benches/workloads.py`, the raw-SQLite ceiling in `benches/ceiling.rs`",
        "",
        "## Throughput",
        "",
        *table,
        "",
        "## Targets (issue 9)",
        "",
        *targets(data),
        "",
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

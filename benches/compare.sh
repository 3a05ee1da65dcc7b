#!/usr/bin/env bash
# Runs the workloads W1–W10 of shared/BENCH.md on diskq, on python-diskcache
# and on the raw-SQLite ceiling, prints the table and writes
# benches/RESULTS.md, benches/latency-get.svg and benches/latency-set.svg.
#
#     bash benches/compare.sh            # everything, 5 rounds (about 3–9 minutes on 2 cores)
#     bash benches/compare.sh W1,W2      # some workloads only (results in the target dir)
#     DISKQ_BENCH_ROUNDS=1 bash benches/compare.sh
#
# python-diskcache comes from PyPI into the virtual environment target/pyenv
# (the one tests/interop.rs uses), made here if missing. Respects
# CARGO_TARGET_DIR. The scratch directories go under the target directory, so
# every implementation writes to the same file system.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
only=${1:-}
only_args=()
if [[ -n "$only" ]]; then
    only_args=(--only "$only")
fi

target=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
out="$target/bench-results"
mkdir -p "$out"
export DISKQ_BENCH_DIR="$target/bench-scratch"
mkdir -p "$DISKQ_BENCH_DIR"

venv="$root/target/pyenv"
if ! "$venv/bin/python" -c 'import diskcache' 2>/dev/null; then
    echo "compare.sh: making $venv with python-diskcache from PyPI" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade diskcache
fi
pyver=$("$venv/bin/python" -c 'import diskcache; print(diskcache.__version__)')

echo "compare.sh: building the bench programs" >&2
cargo bench --quiet --no-run --bench workloads --bench ceiling >&2

# The machine is shared and noisy: run the three in turn, several rounds,
# and keep each measurement's median round (merge.py).
rounds=${DISKQ_BENCH_ROUNDS:-5}
: >"$out/diskq.jsonl"
: >"$out/ceiling.jsonl"
: >"$out/python.jsonl"
for round in $(seq 1 "$rounds"); do
    echo "compare.sh: round $round of $rounds: diskq" >&2
    cargo bench --quiet --bench workloads -- "${only_args[@]}" >>"$out/diskq.jsonl"
    echo "compare.sh: round $round of $rounds: raw-SQLite ceiling" >&2
    cargo bench --quiet --bench ceiling -- "${only_args[@]}" >>"$out/ceiling.jsonl"
    echo "compare.sh: round $round of $rounds: python-diskcache $pyver" >&2
    "$venv/bin/python" benches/workloads.py "${only_args[@]}" |
        python3 -c 'import json, sys
v = sys.argv[1]
for line in sys.stdin:
    r = json.loads(line); r["version"] = v; print(json.dumps(r))' "$pyver" >>"$out/python.jsonl"
done

# A partial run must not replace the committed results: it writes beside
# its JSON lines instead.
dest=benches
if [[ -n "$only" ]]; then
    dest="$out"
fi
command="bash benches/compare.sh${only:+ $only}"
python3 benches/merge.py --diskq "$out/diskq.jsonl" --python "$out/python.jsonl" \
    --ceiling "$out/ceiling.jsonl" --command "$command" --out "$dest"
echo "compare.sh: wrote $dest/RESULTS.md, $dest/latency-get.svg, $dest/latency-set.svg" >&2

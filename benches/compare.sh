#!/usr/bin/env bash
# Runs the workloads W1–W13 of shared/BENCH.md on diskq, on python-diskcache,
# on the raw-SQLite ceiling, (W2, W4, W5, W11) on Redis and (W4, W5, W9,
# W11) on diskq's PostgreSQL backend, with synchronous_commit on and off;
# prints the tables and writes benches/RESULTS.md, benches/latency-get.svg,
# benches/latency-set.svg and benches/latency-wake.svg.
#
#     bash benches/compare.sh            # everything, 5 rounds (about 8–15 minutes on 2 cores)
#     bash benches/compare.sh W2,W11     # some workloads only (results in the target dir)
#     DISKQ_BENCH_ROUNDS=1 bash benches/compare.sh
#
# python-diskcache comes from PyPI into the virtual environment target/pyenv
# (the one tests/interop.rs uses), made here if missing. redis-server comes
# from the system packages (apt-get, as root) if it is not installed; a
# throwaway server runs under the target directory on 127.0.0.1, a free port,
# no persistence, and is stopped on exit; benches/redis_peer.rs is its client.
# PostgreSQL likewise: the newest /usr/lib/postgresql/*/bin (apt-get install
# postgresql, as root, if there is none); a throwaway cluster under the
# target directory on 127.0.0.1, a free port, trust authentication (loopback
# only), fsync on (the defaults but for the port), stopped on exit. As root
# the server runs as the `postgres` user (PostgreSQL refuses root), as
# tests/support/pg.rs does. Each round runs benches/workloads.rs, built with
# --features postgres, on it twice: synchronous_commit on and off (ALTER
# SYSTEM + reload, checked with SHOW before the run).
# Respects CARGO_TARGET_DIR. The scratch directories go under the target
# directory, so every implementation writes to the same file system.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
only=${1:-}
only_args=()
if [[ -n "$only" ]]; then
    only_args=(--only "$only")
fi
# Whether workload $1 is in this run.
wants() {
    [[ -z "$only" ]] || [[ ",${only^^}," == *",$1,"* ]]
}
with_redis=false
for w in W2 W4 W5 W11; do
    if wants "$w"; then
        with_redis=true
    fi
done
# The workloads of the PostgreSQL backend in this run.
pg_only=()
for w in W4 W5 W9 W11; do
    if wants "$w"; then
        pg_only+=("$w")
    fi
done
pg_only=$(IFS=,; echo "${pg_only[*]}")

# Stops the throwaway servers this script started (on exit, however it ends).
redis_pid=
pg_dir=
cleanup() {
    if [[ -n "$redis_pid" ]]; then
        kill "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
    fi
    if [[ -n "$pg_dir" && -f "$pg_dir/data/postmaster.pid" ]]; then
        as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null 2>&1 || true
        rm -rf "$pg_dir/data"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Runs a command as the PostgreSQL server's user: `postgres` when root.
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

target=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
out="$target/bench-results"
mkdir -p "$out"
export DISKQ_BENCH_DIR="$target/bench-scratch"
mkdir -p "$DISKQ_BENCH_DIR"

venv="$root/target/pyenv"
if [[ ! -x "$venv/bin/python" ]]; then
    echo "compare.sh: making $venv" >&2
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import diskcache' 2>/dev/null; then
    echo "compare.sh: installing python-diskcache from PyPI into $venv" >&2
    "$venv/bin/pip" install --quiet --upgrade diskcache
fi
pyver=$("$venv/bin/python" -c 'import diskcache; print(diskcache.__version__)')

if $with_redis; then
    if ! command -v redis-server >/dev/null 2>&1; then
        if [[ $(id -u) -ne 0 ]]; then
            echo "compare.sh: redis-server is not installed (apt-get install redis-server, as root)" >&2
            exit 1
        fi
        echo "compare.sh: installing redis-server from the system packages" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >&2
    fi
    redis_dir="$target/bench-redis"
    rm -rf "$redis_dir"
    mkdir -p "$redis_dir"
    redis_port=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
    redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
        --dir "$redis_dir" --logfile "$redis_dir/redis.log" --daemonize no &
    redis_pid=$!
    ping='import socket, sys, time
for _ in range(100):
    try:
        with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                break
    except OSError:
        pass
    time.sleep(0.1)
else:
    sys.exit("compare.sh: redis-server did not answer")'
    if ! python3 -c "$ping" "$redis_port"; then
        cat "$redis_dir/redis.log" >&2
        exit 1
    fi
    redisver="Redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')"
    echo "compare.sh: $redisver on 127.0.0.1:$redis_port" >&2
fi

if [[ -n "$pg_only" ]]; then
    pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [[ -z "$pg_bin" || ! -x "$pg_bin/initdb" ]]; then
        if [[ $(id -u) -ne 0 ]]; then
            echo "compare.sh: PostgreSQL is not installed (apt-get install postgresql, as root)" >&2
            exit 1
        fi
        echo "compare.sh: installing postgresql from the system packages" >&2
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
        pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    fi
    pg_dir="$target/bench-pg"
    rm -rf "$pg_dir"
    mkdir -p "$pg_dir"
    if [[ $(id -u) -eq 0 ]]; then
        chown postgres "$pg_dir"
    fi
    pg_port=$(python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
    # initdb's --no-sync only skips flushing the new cluster's files; the
    # server runs with fsync on, as a user's would.
    if ! as_pg "$pg_bin/initdb" -D "$pg_dir/data" -A trust -U postgres --no-sync -E UTF8 \
        >"$pg_dir/initdb.log" 2>&1; then
        cat "$pg_dir/initdb.log" >&2
        exit 1
    fi
    if ! as_pg "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 \
        -o "-h 127.0.0.1 -p $pg_port -k $pg_dir -c max_connections=200" start >/dev/null; then
        cat "$pg_dir/server.log" >&2
        exit 1
    fi
    pg_url="postgres://postgres@127.0.0.1:$pg_port/postgres"
    pgver=$("$pg_bin/postgres" --version | sed 's/^postgres (PostgreSQL) /PostgreSQL /')
    echo "compare.sh: $pgver on 127.0.0.1:$pg_port (fsync on)" >&2
fi
# Sets the cluster's synchronous_commit to $1 for new sessions and waits
# until a new session sees it.
pg_sync() {
    "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -qAt \
        -c "ALTER SYSTEM SET synchronous_commit = $1" -c "SELECT pg_reload_conf()" >/dev/null
    for _ in $(seq 1 100); do
        if [[ $("$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -qAt \
            -c "SHOW synchronous_commit") == "$1" ]]; then
            return 0
        fi
        sleep 0.1
    done
    echo "compare.sh: synchronous_commit did not become $1" >&2
    exit 1
}

echo "compare.sh: building the bench programs" >&2
cargo bench --quiet --no-run --bench workloads --bench ceiling --bench redis_peer >&2
if [[ -n "$pg_only" ]]; then
    cargo bench --quiet --no-run --features postgres --bench workloads >&2
fi

# The machine is shared and noisy: run the three in turn, several rounds,
# and keep each measurement's median round (merge.py).
rounds=${DISKQ_BENCH_ROUNDS:-5}
# Adds "version" to each JSON line of a peer.
stamp='import json, sys
v = sys.argv[1]
for line in sys.stdin:
    r = json.loads(line); r["version"] = v; print(json.dumps(r))'
# The same for the PostgreSQL runs, with the synchronous_commit of the run.
stamp_pg='import json, sys
v, sync = sys.argv[1], sys.argv[2]
for line in sys.stdin:
    r = json.loads(line); r["version"] = v; r["synchronous_commit"] = sync; print(json.dumps(r))'
: >"$out/diskq.jsonl"
: >"$out/ceiling.jsonl"
: >"$out/python.jsonl"
: >"$out/redis.jsonl"
: >"$out/redis-benchmark.jsonl"
: >"$out/pg-sync-on.jsonl"
: >"$out/pg-sync-off.jsonl"
for round in $(seq 1 "$rounds"); do
    echo "compare.sh: round $round of $rounds: diskq" >&2
    cargo bench --quiet --bench workloads -- "${only_args[@]}" >>"$out/diskq.jsonl"
    echo "compare.sh: round $round of $rounds: raw-SQLite ceiling" >&2
    cargo bench --quiet --bench ceiling -- "${only_args[@]}" >>"$out/ceiling.jsonl"
    echo "compare.sh: round $round of $rounds: python-diskcache $pyver" >&2
    "$venv/bin/python" benches/workloads.py "${only_args[@]}" |
        python3 -c "$stamp" "$pyver" >>"$out/python.jsonl"
    if $with_redis; then
        echo "compare.sh: round $round of $rounds: $redisver" >&2
        cargo bench --quiet --bench redis_peer -- --port "$redis_port" "${only_args[@]}" |
            python3 -c "$stamp" "$redisver" >>"$out/redis.jsonl"
        if command -v redis-benchmark >/dev/null 2>&1; then
            cargo bench --quiet --bench redis_peer -- --port "$redis_port" --c-client "${only_args[@]}" |
                python3 -c "$stamp" "$redisver" >>"$out/redis-benchmark.jsonl"
        fi
    fi
    if [[ -n "$pg_only" ]]; then
        # Alternate which setting goes first, so neither always runs on a
        # server just warmed up by the other.
        if ((round % 2)); then syncs="on off"; else syncs="off on"; fi
        for sync in $syncs; do
            pg_sync "$sync"
            echo "compare.sh: round $round of $rounds: diskq on $pgver, synchronous_commit=$sync" >&2
            DISKQ_BENCH_PG_URL="$pg_url" cargo bench --quiet --features postgres --bench workloads -- \
                --only "$pg_only" | python3 -c "$stamp_pg" "$pgver" "$sync" >>"$out/pg-sync-$sync.jsonl"
        done
    fi
done

# A partial run must not replace the committed results: it writes beside
# its JSON lines instead.
dest=benches
if [[ -n "$only" ]]; then
    dest="$out"
fi
command="bash benches/compare.sh${only:+ $only}"
python3 benches/merge.py --diskq "$out/diskq.jsonl" --python "$out/python.jsonl" \
    --ceiling "$out/ceiling.jsonl" --redis "$out/redis.jsonl" \
    --redis-benchmark "$out/redis-benchmark.jsonl" --pg-sync-on "$out/pg-sync-on.jsonl" \
    --pg-sync-off "$out/pg-sync-off.jsonl" --command "$command" --out "$dest"
echo "compare.sh: wrote $dest/RESULTS.md, $dest/latency-get.svg, $dest/latency-set.svg, $dest/latency-wake.svg" >&2

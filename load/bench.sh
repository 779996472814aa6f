#!/usr/bin/env bash
# Reproduces BENCHMARKS.md: lifecycle commands/s over HTTP against the raw-insert
# ceiling, on SQLite and PostgreSQL, at 16 and 64 clients. Loopback only.
#   load/bench.sh [SECONDS]      (default 20 s measured after 3 s warm-up per phase)
# PostgreSQL: 127.0.0.1:5432, user postgres, trust auth; the database yiwang_load is
# dropped and created for each run.
# BENCH_BIN: the service binary to measure (default: this checkout's release build,
# built first; an older build for an A/B, the load tool staying this one);
# BENCH_CLIENTS (default "16 64") and BENCH_ENGINES (default "sqlite postgres")
# narrow the run; BENCH_OUT (default target/bench) is where results go. Variables
# of the service (YIWANG_APPEND_LINGER, YIWANG_PG_WRITERS) pass through.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
out="${BENCH_OUT:-target/bench}"
clients_list="${BENCH_CLIENTS:-16 64}"
engines="${BENCH_ENGINES:-sqlite postgres}"
mkdir -p "$out"
cargo build --release -p yiwang -p yiwang-load
bin="${BENCH_BIN:-target/release/yiwang}"
# A run that counted errors (the ceiling's own SQLite writers can time out on the
# file lock) does not stop the others; the script still fails at the end.
failed=0
for clients in $clients_list; do
  for engine in $engines; do
    uptime | tee "$out/$engine-$clients.load"
    case "$engine" in
      sqlite)
        dir=$(mktemp -d)
        target/release/yiwang-load run --bin "$bin" \
          --database-url "sqlite://$dir/yiwang.db" --clients "$clients" --duration "$secs" --warmup 3 \
          --json "$out/sqlite-$clients.json" | tee "$out/sqlite-$clients.txt" || failed=1
        rm -rf "$dir"
        ;;
      postgres)
        psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS yiwang_load" -c "CREATE DATABASE yiwang_load"
        target/release/yiwang-load run --bin "$bin" \
          --database-url postgres://postgres@127.0.0.1:5432/yiwang_load --clients "$clients" --duration "$secs" --warmup 3 \
          --json "$out/postgres-$clients.json" | tee "$out/postgres-$clients.txt" || failed=1
        ;;
      *) echo "unknown engine $engine" >&2; exit 2 ;;
    esac
  done
done
grep -E '^(sqlite|postgres) |^append batches' "$out"/*.txt
exit "$failed"

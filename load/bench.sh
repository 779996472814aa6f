#!/usr/bin/env bash
# Reproduces BENCHMARKS.md: lifecycle commands/s over HTTP against the raw-insert
# ceiling, on SQLite and PostgreSQL, at 16 and 64 clients. Loopback only.
#   load/bench.sh [SECONDS]      (default 20 s measured after 3 s warm-up per phase)
# PostgreSQL: 127.0.0.1:5432, user postgres, trust auth; the database yiwang_load is
# dropped and created for each run.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-20}"
out="${BENCH_OUT:-target/bench}"
mkdir -p "$out"
cargo build --release -p yiwang -p yiwang-load
for clients in 16 64; do
  dir=$(mktemp -d)
  target/release/yiwang-load run --bin target/release/yiwang \
    --database-url "sqlite://$dir/yiwang.db" --clients "$clients" --duration "$secs" --warmup 3 \
    --json "$out/sqlite-$clients.json" | tee "$out/sqlite-$clients.txt"
  rm -rf "$dir"
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS yiwang_load" -c "CREATE DATABASE yiwang_load"
  target/release/yiwang-load run --bin target/release/yiwang \
    --database-url postgres://postgres@127.0.0.1:5432/yiwang_load --clients "$clients" --duration "$secs" --warmup 3 \
    --json "$out/postgres-$clients.json" | tee "$out/postgres-$clients.txt"
done
grep -h -E '^(sqlite|postgres) ' "$out"/*.txt

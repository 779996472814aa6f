#!/usr/bin/env bash
# Reproduces BENCHMARKS.md "Queue search over 100,000 tickets": GET /api/v1/tickets?q=
# by number, by a two-character word, by an address fragment and by a street, next
# to a bare lookup by id in the same run, on SQLite and PostgreSQL. Loopback only.
#   load/bench-search.sh [TICKETS] [REQUESTS]     (default 100000 tickets, 300 requests per query)
# PostgreSQL: 127.0.0.1:5432, user postgres, trust auth; the database yiwang_search
# is dropped and created for each run.
set -euo pipefail
cd "$(dirname "$0")/.."
tickets="${1:-100000}"
requests="${2:-300}"
out="${BENCH_OUT:-target/bench}"
mkdir -p "$out"
cargo build --release -p yiwang -p yiwang-load
dir=$(mktemp -d)
target/release/yiwang-load search --bin target/release/yiwang \
  --database-url "sqlite://$dir/yiwang.db?mode=rwc" --tickets "$tickets" -n "$requests" \
  --json "$out/search-sqlite.json" | tee "$out/search-sqlite.txt"
rm -rf "$dir"
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS yiwang_search" -c "CREATE DATABASE yiwang_search"
target/release/yiwang-load search --bin target/release/yiwang \
  --database-url postgres://postgres@127.0.0.1:5432/yiwang_search --tickets "$tickets" -n "$requests" \
  --json "$out/search-postgres.json" | tee "$out/search-postgres.txt"

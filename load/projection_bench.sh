#!/usr/bin/env bash
# Issue 4 figures (BENCHMARKS.md, "Projections"): with EVENTS events of simulated
# ticket history loaded, on SQLite and on PostgreSQL:
#   - seed speed (yiwang-load seed, through the library's store, no HTTP);
#   - rebuild speed of the unit_stats projection (yiwang replay, run twice);
#   - import speed (yiwang import of an IMPORT_LINES-line file into a fresh database);
#   - latency of the stats and appraisal endpoints over HTTP (yiwang-load query),
#     each next to the HTTP floor (GET /healthz, same run).
#
#   load/projection_bench.sh [EVENTS]            (default 1000000)
#
# Environment:
#   YIWANG_BENCH_PG_URL  a PostgreSQL server on loopback, e.g.
#                        postgres://postgres@127.0.0.1:5432/postgres. The script creates
#                        yiwang_bench_<pid> and yiwang_bench_<pid>_import there and drops
#                        them at the end. Unset: SQLite only.
#   ENGINES              default "sqlite postgres" (postgres only with the URL above)
#   BENCH_OUT            outputs (default target/bench/projections)
#   SEED_CLIENTS         seed tasks (default 64)
#   IMPORT_LINES         lines of the import file (default 20000)
#   QUERY_N              measured requests per route (default 200), QUERY_CONCURRENCY (1),
#   QUERY_MAX_SECS       at most this long per route (default 120; fewer requests then)
#   YIWANG_IMPORT_JOBS   tickets `yiwang import` imports at once (its default: 8)
#   SKIP_BUILD=1         use the release binaries as they are
#   KEEP_DBS=1           keep the seeded databases (SQLite: printed path; PostgreSQL:
#                        yiwang_bench_<pid>) for a closer look; drop / delete them yourself
#   QUERY_DB_URL         only the queries, on this database seeded before (e.g. one kept
#                        with KEEP_DBS=1); set ENGINES to its engine. No seed, replay or
#                        import; the database is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

events="${1:-1000000}"
out="${BENCH_OUT:-target/bench/projections}"
clients="${SEED_CLIENTS:-64}"
import_lines="${IMPORT_LINES:-20000}"
query_n="${QUERY_N:-200}"
query_c="${QUERY_CONCURRENCY:-1}"
query_secs="${QUERY_MAX_SECS:-120}"
pg_url="${YIWANG_BENCH_PG_URL:-}"
engines="${ENGINES:-sqlite postgres}"
Y=target/release/yiwang
L=target/release/yiwang-load
export YIWANG_LOG_FORMAT=json
export RUST_LOG="${RUST_LOG:-warn}"

mkdir -p "$out"
results="$out/results.tsv"
: > "$results"
: > "$out/run.log"

log() {
  echo "[$(date -u +%H:%M:%S) load $(cut -d' ' -f1-3 /proc/loadavg)] $*" | tee -a "$out/run.log" >&2
}
# record ENGINE METRIC VALUE: one line of results.tsv, with the 1-minute load average.
record() {
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$(cut -d' ' -f1 /proc/loadavg)" >> "$results"
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

serve_pid=""
tmp_dir=""
pg_dbs=()
cleanup() {
  if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
    kill -TERM "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
  fi
  if [ "${KEEP_DBS:-}" = "1" ]; then
    return
  fi
  for db in "${pg_dbs[@]}"; do
    psql "$pg_url" -qc "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
  done
  if [ -n "$tmp_dir" ]; then rm -rf "$tmp_dir"; fi
}
trap cleanup EXIT

if [ "${SKIP_BUILD:-}" != "1" ]; then
  log "cargo build --release --workspace"
  cargo build --release --workspace
fi

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "cpus: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "events: $events, seed clients: $clients, import lines: $import_lines, query n: $query_n x $query_c"
} | tee "$out/machine.txt"

if [ -z "${QUERY_DB_URL:-}" ]; then
  log "import file: $import_lines lines"
  $L import-file --lines "$import_lines" --out "$out/import.ndjson" --seed 7 | tee "$out/import-file.txt"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

db_size() { # ENGINE URL
  case "$1" in
    sqlite) du -cb "${2#sqlite://}"* | tail -1 | cut -f1 ;;
    postgres) psql "$2" -tAc "SELECT pg_database_size(current_database())" ;;
  esac
}

# The routes measured, as label|path.
routes=(
  "stats-current-month|/api/v1/stats/units?granularity=month"
  "stats-months-2026|/api/v1/stats/units?granularity=month&from=2026-01-01&to=2026-11-30"
  "stats-hg-quarters|/api/v1/stats/units?unit=hg&granularity=quarter&from=2026-01-01"
  "stats-days-2026-11|/api/v1/stats/units?granularity=day&from=2026-11-01"
  "appraisal-2026-Q3|/api/v1/appraisal?period=2026-Q3"
  "appraisal-2026-10|/api/v1/appraisal?period=2026-10"
  "appraisal-2026|/api/v1/appraisal?period=2026"
)

bench_engine() { # ENGINE URL IMPORT_URL
  local engine="$1" url="$2" import_url="$3"
  if [ -z "${QUERY_DB_URL:-}" ]; then
    load_engine "$engine" "$url" "$import_url"
  fi
  query_engine "$engine" "$url"
}

load_engine() { # ENGINE URL IMPORT_URL: seed, rebuild, import
  local engine="$1" url="$2" import_url="$3"
  log "$engine: migrate, org load --demo"
  $Y migrate --database-url "$url" > /dev/null
  $Y org load --demo --database-url "$url" > /dev/null

  log "$engine: seed $events events ($clients tasks)"
  $L seed --database-url "$url" --events "$events" --clients "$clients" --seed 1 \
    2> "$out/$engine-seed.log" | tee "$out/$engine-seed.txt"
  record "$engine" seed_events_per_s "$(sed -nE 's/^seeded .*: ([0-9]+) events\/s$/\1/p' "$out/$engine-seed.txt")"
  record "$engine" db_bytes "$(db_size "$engine" "$url")"

  for i in 1 2; do
    log "$engine: replay #$i"
    $Y replay --database-url "$url" 2> "$out/$engine-replay-$i.log" | tee "$out/$engine-replay-$i.txt"
    record "$engine" "replay_${i}_events_per_s" \
      "$(sed -nE 's/^unit_stats: rebuilt from .* \(([0-9]+) events\/s\)$/\1/p' "$out/$engine-replay-$i.txt")"
  done

  log "$engine: import $import_lines lines into a fresh database"
  $Y migrate --database-url "$import_url" > /dev/null
  $Y org load --demo --database-url "$import_url" > /dev/null
  local t0 t1
  t0=$(now)
  $Y import "$out/import.ndjson" --database-url "$import_url" \
    2> "$out/$engine-import.log" | tee "$out/$engine-import.txt"
  t1=$(now)
  local secs lines evs
  secs=$(elapsed "$t0" "$t1")
  lines=$(sed -nE 's/^lines applied: ([0-9]+)$/\1/p' "$out/$engine-import.txt")
  evs=$(sed -nE 's/^events appended: ([0-9]+)$/\1/p' "$out/$engine-import.txt")
  record "$engine" import_wall_s "$secs"
  record "$engine" import_lines_per_s "$(awk -v n="$lines" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')"
  record "$engine" import_events_per_s "$(awk -v n="$evs" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')"
}

query_engine() { # ENGINE URL: serve, then each route
  local engine="$1" url="$2"

  local token port base
  token=$($Y token create --user bench --role admin --unit etdz --database-url "$url" 2>/dev/null | tail -1)
  port=$(free_port)
  base="http://127.0.0.1:$port"
  log "$engine: serve on $base"
  $Y serve --addr "127.0.0.1:$port" --database-url "$url" > "$out/$engine-serve.log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 1 240); do
    curl -sf "$base/healthz" > /dev/null 2>&1 && break
    kill -0 "$serve_pid" 2>/dev/null || { echo "serve exited; see $out/$engine-serve.log" >&2; exit 1; }
    sleep 0.5
  done
  # Measure the service at rest: after the SLA watcher's first round, the projection
  # runner's catch-up and the hash-chain verification that `serve` runs at start
  # (hourly after that; it reads the whole log).
  sleep 10
  local t_wait
  t_wait=$(now)
  for _ in $(seq 1 600); do
    if curl -sf "$base/metrics" | grep -qE '^yiwang_verify_last_run_timestamp_seconds [1-9]'; then
      log "$engine: start-up verification done after $(elapsed "$t_wait" "$(now)") s more"
      break
    fi
    curl -sf "$base/metrics" | grep -q '^yiwang_verify_last_run_timestamp_seconds' || break
    sleep 1
  done
  for r in "${routes[@]}"; do
    local label="${r%%|*}" path="${r#*|}"
    local status
    status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$base$path")
    if [ "$status" != "200" ]; then
      log "$engine: $path answers $status; not measured"
      record "$engine" "$label" "status $status"
      continue
    fi
    log "$engine: query $path"
    $L query --url "$base" --token "$token" --path "$path" -n "$query_n" --concurrency "$query_c" --max-seconds "$query_secs" \
      --json "$out/$engine-$label.json" | tee "$out/$engine-$label.txt"
    record "$engine" "$label" "$(jq -r '[.route.requests, .route.p50_ms, .route.p99_ms, .route.max_ms, .floor.p50_ms, .floor.p99_ms, .route.mean_body_bytes] | map(tostring) | join(" ")' "$out/$engine-$label.json")"
  done
  kill -TERM "$serve_pid"
  wait "$serve_pid" || true
  serve_pid=""
}

if [ -n "${QUERY_DB_URL:-}" ]; then
  for engine in $engines; do
    bench_engine "$engine" "$QUERY_DB_URL" ""
  done
  engines=""
fi
for engine in $engines; do
  case "$engine" in
    sqlite)
      tmp_dir=$(mktemp -d /tmp/yiwang-projbench-XXXXXX)
      bench_engine sqlite "sqlite://$tmp_dir/yiwang.db" "sqlite://$tmp_dir/import.db"
      if [ "${KEEP_DBS:-}" = "1" ]; then
        log "sqlite: kept $tmp_dir"
      else
        rm -rf "$tmp_dir"
      fi
      tmp_dir=""
      ;;
    postgres)
      if [ -z "$pg_url" ]; then
        log "postgres: YIWANG_BENCH_PG_URL is not set; skipped"
        continue
      fi
      db="yiwang_bench_$$"
      pg_dbs+=("$db" "${db}_import")
      psql "$pg_url" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" \
        -c "DROP DATABASE IF EXISTS ${db}_import" -c "CREATE DATABASE ${db}_import"
      base_url="${pg_url%/*}"
      bench_engine postgres "$base_url/$db" "$base_url/${db}_import"
      if [ "${KEEP_DBS:-}" = "1" ]; then
        log "postgres: kept $db and ${db}_import"
      else
        psql "$pg_url" -qc "DROP DATABASE IF EXISTS $db" -c "DROP DATABASE IF EXISTS ${db}_import"
      fi
      pg_dbs=()
      ;;
    *) echo "unknown engine $engine" >&2; exit 2 ;;
  esac
done

log "done; results in $results"
echo
echo "engine	metric	value	load1"
cat "$results"

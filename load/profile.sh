#!/usr/bin/env bash
# Reproduces BENCHMARKS.md "Where one command's cost goes (issue 24, point 1)": one
# command kind at a time (create, replay, assign, sign, handle, verify, feedback,
# close) at 16 and 64 clients, per command the service's and PostgreSQL's CPU,
# statements, commits, rows and index entries written, WAL; then SQLite.
#
# PostgreSQL runs as a throw-away cluster of its own on this machine (initdb in
# /tmp, removed at the end) with pg_stat_statements preloaded, so statements can be
# counted and no other database's work lands in its CPU and WAL figures. It copies
# the settings that matter (memory, WAL, checkpoints, autovacuum, fsync, TLS…) from
# the server at PROFILE_PG_LIKE, the one load/bench.sh measures.
#
#   load/profile.sh [CREATE_SECONDS]     (default 10; each later phase acts once on
#                                         every ticket the create phase made)
# Environment: PROFILE_CLIENTS ("16 64"), PROFILE_ENGINES ("postgres sqlite"),
#   PROFILE_PG_PORT (5499), PROFILE_PG_LIKE (postgres://postgres@127.0.0.1:5432/postgres),
#   PROFILE_PG_URL_PARAMS (appended to the service's database URL, e.g. "?sslmode=disable"),
#   CARGO_TARGET_DIR (target), PROFILE_OUT ($CARGO_TARGET_DIR/profile).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
tdir="${CARGO_TARGET_DIR:-target}"
out="${PROFILE_OUT:-$tdir/profile}"
clients="${PROFILE_CLIENTS:-16 64}"
engines="${PROFILE_ENGINES:-postgres sqlite}"
port="${PROFILE_PG_PORT:-5499}"
like="${PROFILE_PG_LIKE:-postgres://postgres@127.0.0.1:5432/postgres}"
params="${PROFILE_PG_URL_PARAMS:-}"
mkdir -p "$out"
cargo build --release -p yiwang -p yiwang-load
bin="$tdir/release/yiwang"
load="$tdir/release/yiwang-load"
{
  echo "commit $(git rev-parse HEAD)$(git diff --quiet HEAD -- src || echo ' (src modified)')"
  date -u
  uptime
  echo "cores $(nproc), CLK_TCK $(getconf CLK_TCK)"
} | tee "$out/run.txt"

# PostgreSQL runs as the postgres user when this script runs as root.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pgdir=""
stop_pg() {
  if [ -n "$pgdir" ]; then
    as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$pgdir"
  fi
}
trap stop_pg EXIT

if [[ " $engines " == *" postgres "* ]]; then
  pgbin="${PROFILE_PG_BIN:-$(dirname "$(readlink -f "$(command -v initdb)")")}"
  pgdir=$(mktemp -d /tmp/yiwang-profile-pg.XXXXXX)
  if [ "$(id -u)" = 0 ]; then chown postgres: "$pgdir"; fi
  as_pg "$pgbin/initdb" -D "$pgdir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
  {
    echo "# copied from $like"
    psql "$like" -Atc "SELECT name || ' = ''' || current_setting(name) || '''' FROM pg_settings
      WHERE name IN ('shared_buffers','max_wal_size','min_wal_size','checkpoint_timeout',
        'checkpoint_completion_target','autovacuum','fsync','synchronous_commit',
        'full_page_writes','wal_compression','wal_buffers','wal_level','wal_sync_method',
        'wal_writer_delay','commit_delay','commit_siblings','work_mem','jit','max_connections',
        'huge_pages','ssl','ssl_cert_file','ssl_key_file')"
    echo "# the profiler's own"
    echo "port = $port"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$pgdir'"
    echo "shared_preload_libraries = 'pg_stat_statements'"
    echo "pg_stat_statements.track_utility = on"
  } | as_pg tee -a "$pgdir/data/postgresql.conf" >"$out/postgresql.conf.txt"
  as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w start >/dev/null
  echo "throw-away PostgreSQL $(psql -h 127.0.0.1 -p "$port" -U postgres -Atc 'SHOW server_version') on port $port; settings in $out/postgresql.conf.txt"
fi

for engine in $engines; do
  for c in $clients; do
    case "$engine" in
      postgres)
        psql -h 127.0.0.1 -p "$port" -U postgres -qc "DROP DATABASE IF EXISTS yiwang_profile" \
          -c "CREATE DATABASE yiwang_profile"
        url="postgres://postgres@127.0.0.1:$port/yiwang_profile$params"
        ;;
      sqlite)
        dir=$(mktemp -d)
        url="sqlite://$dir/yiwang.db"
        ;;
      *) echo "unknown engine $engine" >&2; exit 2 ;;
    esac
    "$load" profile --bin "$bin" --database-url "$url" --clients "$c" --duration "$secs" \
      --json "$out/$engine-$c.json" | tee "$out/$engine-$c.txt"
    if [ "$engine" = sqlite ]; then rm -rf "$dir"; fi
  done
done
uptime | tee -a "$out/run.txt"

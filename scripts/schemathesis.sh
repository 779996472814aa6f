#!/usr/bin/env bash
# schemathesis against the OpenAPI document of a running yiwang: every check, the
# default warnings as failures (scripts/schemathesis.toml). It starts the binary on a
# temporary SQLite database with the demo organisation and an admin token (as the
# contract smoke test does), runs
#     schemathesis run http://127.0.0.1:PORT/api/v1/openapi.json -H 'Authorization: Bearer …'
# and exits non-zero on any failure or warning. Needs schemathesis (pinned below:
# `pip install schemathesis==$SCHEMATHESIS_VERSION`, or set SCHEMATHESIS to its path).
#
#   scripts/schemathesis.sh                  # target/debug/yiwang, 10 examples per operation (about 3.5 min)
#   YIWANG_BIN=target/release/yiwang MAX_EXAMPLES=100 scripts/schemathesis.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
BIN="${YIWANG_BIN:-$PWD/target/debug/yiwang}"
ST="${SCHEMATHESIS:-schemathesis}"
MAX_EXAMPLES="${MAX_EXAMPLES:-10}"
[ -x "$BIN" ] || { echo "no binary at $BIN: cargo build first" >&2; exit 2; }
have=$("$ST" --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' || true)
if [ "$have" != "$SCHEMATHESIS_VERSION" ]; then
  echo "schemathesis $SCHEMATHESIS_VERSION is needed (found: ${have:-none}): pip install schemathesis==$SCHEMATHESIS_VERSION" >&2
  exit 2
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/yiwang-schemathesis.XXXXXX")
db="sqlite://$dir/yiwang.db"
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

"$BIN" migrate --database-url "$db" >/dev/null
"$BIN" org load --demo --database-url "$db" >/dev/null
token=$("$BIN" token create --user schemathesis --role admin --database-url "$db" | tail -n 1 | tr -d '[:space:]')
# Open311 takes its key as a parameter (`api_key`), not as the bearer header: a
# hotline agent's, which may post requests and read the district's.
open311_key=$("$BIN" token create --user schemathesis-open311 --role hotline_agent --unit etdz --database-url "$db" | tail -n 1 | tr -d '[:space:]')
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
# Public reads on, so that Open311's reads without a key are part of the run.
"$BIN" serve --addr "127.0.0.1:$port" --database-url "$db" --open311-public-reads >"$dir/serve.log" 2>&1 &
pid=$!
python3 - "$base" <<'PY'
import sys, time, urllib.request
for _ in range(300):
    try:
        if urllib.request.urlopen(sys.argv[1] + "/healthz", timeout=1).status == 200:
            sys.exit(0)
    except Exception:
        time.sleep(0.1)
sys.exit("the server did not become healthy")
PY

status=0
# From the temporary folder: schemathesis keeps a cache of its own in the working
# directory.
# The settings with this run's Open311 key among the fixed parameters.
config="$dir/schemathesis.toml"
sed "s/^\[parameters\]\$/[parameters]\n\"query.api_key\" = \"$open311_key\"/" \
  "$PWD/scripts/schemathesis.toml" >"$config"
grep -q '^"query.api_key"' "$config" || { echo "no [parameters] table in scripts/schemathesis.toml" >&2; exit 1; }
cd "$dir"
"$ST" --config-file "$config" run "$base/api/v1/openapi.json" \
  -H "Authorization: Bearer $token" \
  --max-examples "$MAX_EXAMPLES" \
  --seed 23 \
  --generation-database none \
  --no-color \
  --report junit --report-dir "$dir/report" || status=$?
if [ "$status" -ne 0 ]; then
  echo "schemathesis failed (exit $status); the server's log:" >&2
  tail -n 40 "$dir/serve.log" >&2
fi
exit "$status"

#!/usr/bin/env bash
# The README's walk-through, "A ticket from accepted to closed, with curl", run as a
# new user would run it: the README's first command (`serve`, default settings, in
# an empty directory), then the section's shell block(s) exactly as written, in a
# shell with a clean environment, except two substitutions: `Y` names the built
# binary instead of `cargo run --release --quiet --` (the same program, without a
# second build), and the port is a free one instead of 8080. Then it checks that
# the ticket ended `closed` with its seven events. CI runs it (.ci/run) after the
# contract smoke test.
#
#   scripts/readme-walkthrough.sh            # target/debug/yiwang (cargo build first)
#   YIWANG_BIN=target/release/yiwang scripts/readme-walkthrough.sh
#
# Needs what the README's prerequisites list for it: curl and jq.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
BIN="${YIWANG_BIN:-$ROOT/target/debug/yiwang}"
SECTION="## A ticket from accepted to closed, with curl"

fail() { echo "readme-walkthrough: $*" >&2; exit 1; }
[ -x "$BIN" ] || fail "no binary at $BIN (cargo build --bin yiwang first)"
for tool in curl jq python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (README: Prerequisites)"
done

# The section's ```sh blocks, from its heading to the next heading of its level.
block="$(awk -v h="$SECTION" '
  $0 == h { inside = 1; next }
  inside && /^## / { exit }
  inside && /^```sh$/ { code = 1; next }
  inside && code && /^```$/ { code = 0; next }
  inside && code { print }
' README.md)"
[ -n "$block" ] || fail "README.md has no shell block under \"$SECTION\""
Y_LINE='Y="cargo run --release --quiet --"'
grep -qxF "$Y_LINE" <<<"$block" || fail "the walk-through no longer sets $Y_LINE: update this script"
grep -q '127\.0\.0\.1:8080' <<<"$block" || fail "the walk-through no longer names 127.0.0.1:8080: update this script"

WORK="$(mktemp -d)"
SERVER=""
cleanup() {
  # A second SIGTERM cuts the shutdown's drain short (README: Operations, Stopping).
  if [ -n "$SERVER" ]; then
    kill "$SERVER" 2>/dev/null || true
    sleep 0.2
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
block="${block//"$Y_LINE"/Y=\"$BIN\"}"
block="${block//127.0.0.1:8080/127.0.0.1:$PORT}"

# A clean environment (no YIWANG_* of the caller's): the defaults the README assumes.
clean=(env -i "PATH=$PATH" "HOME=${HOME:-/root}" "LANG=C.UTF-8")
cd "$WORK"
"${clean[@]}" "$BIN" serve --addr "127.0.0.1:$PORT" >serve.log 2>&1 &
SERVER=$!
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  kill -0 "$SERVER" 2>/dev/null || { cat serve.log >&2; fail "serve exited"; }
  sleep 0.1
done
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || { cat serve.log >&2; fail "serve not up in 30 s"; }

# The block as written, then the checks, in one shell (they read its ID and DISP;
# expanded there, hence the single quotes).
# shellcheck disable=SC2016
checks='
state=$(curl -s $API/tickets/$ID -H "Authorization: Bearer $DISP" | jq -r .state)
versions=$(curl -s $API/tickets/$ID/events -H "Authorization: Bearer $DISP" | jq -c "[.items[].version]")
echo "== ticket $ID: state $state, event versions $versions"
[ "$state" = closed ] || { echo "the ticket is $state, not closed" >&2; exit 1; }
[ "$versions" = "[1,2,3,4,5,6,7]" ] || { echo "events $versions, not seven" >&2; exit 1; }
'
echo "== running the README's walk-through against $BIN on port $PORT"
if ! "${clean[@]}" bash -euo pipefail -c "$block
$checks" 2>&1 | tee walkthrough.out; then
  echo "--- serve log" >&2
  tail -20 serve.log >&2
  fail "the walk-through failed"
fi
# What the reader sees: the close printed the state closed, the events list ends at 7.
grep -q '"state":"closed"' walkthrough.out || fail "no act printed the state closed"
[ "$(grep -c '"type":' walkthrough.out)" -eq 7 ] || fail "the last command did not print seven events"
echo "== readme-walkthrough: ok"

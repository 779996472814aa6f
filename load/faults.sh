#!/usr/bin/env bash
# The fault suite (issue 5; RELIABILITY.md records its last run): the realistic mix
# under kill -9, a database outage, dropped answers, a full disk, a three-instance
# cluster and a rolling restart of two instances behind a /readyz-checking balancer,
# on SQLite and PostgreSQL, each followed by the invariant check.
#   load/faults.sh            the full suite (20 kills, a 20 s outage; ~5 minutes after the build)
#   load/faults.sh --quick    the short one CI runs (5 kills, a 10 s outage; ~2 minutes;
#                             `rolling` adds 47 s, measured on the debug build)
#   load/faults.sh ... ARGS   more yiwang-load faults options (see load/README.md)
#   FAULTS_PROFILE=debug load/faults.sh --quick   the same on the debug build (CI)
# PostgreSQL: YIWANG_TEST_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres
# (each scenario creates and drops its own database there). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
typed="$*"
args=(--kills 20 --outage-secs 20 --seconds 20 --clients 16)
if [ "${1:-}" = "--quick" ]; then
  shift
  args=(--kills 5 --outage-secs 10 --seconds 8 --clients 8)
fi
out="${FAULTS_OUT:-target/faults}"
mkdir -p "$out"
# FAULTS_PROFILE=debug runs the debug build that `cargo test` has mostly built
# already: CI does, to save a release build of several minutes. The figures of
# RELIABILITY.md come from release builds.
profile="${FAULTS_PROFILE:-release}"
if [ "$profile" = "debug" ]; then
  cargo build -p yiwang -p yiwang-load --bins
else
  cargo build --release -p yiwang -p yiwang-load
fi
# The command as typed, recorded in the JSON (RELIABILITY.md names the run it shows).
export YIWANG_FAULTS_COMMAND="${FAULTS_PROFILE:+FAULTS_PROFILE=$FAULTS_PROFILE }load/faults.sh${typed:+ $typed}"
"target/$profile/yiwang-load" faults --bin "target/$profile/yiwang" "${args[@]}" \
  --json "$out/faults.json" "$@"

#!/usr/bin/env bash
# RELIABILITY.md from the last run of the fault suite, in one command:
#   load/faults.sh && load/reliability.sh          (or: load/reliability.sh FILE.json)
# Keeps the run's JSON as load/faults-last-run.json: `cargo test -p yiwang-load`
# fails when RELIABILITY.md is not what that JSON and load/RELIABILITY.template.md
# give, so the document cannot drift from the run it names or be edited by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
json="${1:-target/faults/faults.json}"
[ -f "$json" ] || { echo "no $json: run load/faults.sh first" >&2; exit 1; }
[ "$json" -ef load/faults-last-run.json ] || cp "$json" load/faults-last-run.json
cargo run -q -p yiwang-load -- report-reliability load/faults-last-run.json > RELIABILITY.md.new
mv RELIABILITY.md.new RELIABILITY.md
echo "RELIABILITY.md written from $json (kept as load/faults-last-run.json)"

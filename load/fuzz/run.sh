#!/usr/bin/env bash
# Coverage-guided fuzzing of the command parser with cargo fuzz (libFuzzer):
#   load/fuzz/run.sh [SECONDS] [--dev]   (default 300 s; CI runs 60 --dev)
# --dev builds without optimisation: about half the build time, fewer executions a
# second; for the short run of CI, where the build dominates.
# Needs the nightly toolchain (rustup) and cargo-fuzz (installed from crates.io if
# missing). Starts from the seed bodies in load/fuzz/seeds; what it learns goes to
# load/fuzz/corpus (not committed). A crash is saved under load/fuzz/artifacts and
# fails the run. Prints libFuzzer's execution count.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-300}"
profile=()
if [ "${2:-}" = "--dev" ]; then profile=(--dev); fi
if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: no nightly toolchain (rustup toolchain list); cargo fuzz cannot run here: skipped"
  exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz from crates.io"
  cargo install --locked cargo-fuzz >/dev/null
fi
mkdir -p corpus/command_body
# -s none: the target is safe Rust; what is hunted is a panic or a 5xx, not memory
# errors, and without AddressSanitizer it builds and runs several times faster.
set +e
cargo +nightly fuzz run -s none "${profile[@]}" command_body corpus/command_body seeds -- \
  -max_total_time="$secs" -max_len=65536 -print_final_stats=1 >target-fuzz.log 2>&1
rc=$?
set -e
grep -E "^(Done [0-9]+ runs|==[0-9]+==|SUMMARY|thread .* panicked)" target-fuzz.log || true
if [ "$rc" -ne 0 ]; then
  tail -40 target-fuzz.log
  echo "fuzz: FAILED with status $rc (log: load/fuzz/target-fuzz.log; the input is under load/fuzz/artifacts)"
  exit 1
fi
runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' target-fuzz.log | awk '{print $2}')
echo "fuzz: ${runs:-?} executions in ${secs} s, no crash"
rm -f target-fuzz.log

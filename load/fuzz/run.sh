#!/usr/bin/env bash
# Coverage-guided fuzzing of the command parser with libFuzzer (libfuzzer-sys):
#   load/fuzz/run.sh [SECONDS] [--dev]   (default 300 s; CI runs 60 --dev)
# --dev builds without optimisation: about half the build time, fewer executions a
# second; for the short run of CI, where the build dominates.
#
# This builds the target the way `cargo fuzz run -s none` does (the same
# SanitizerCoverage flags, `--cfg fuzzing`, debug assertions) but with plain cargo
# on the stable toolchain, so a fresh machine does not first compile cargo-fuzz from
# crates.io (minutes of CI). `cargo fuzz` itself still works from load/fuzz for
# anyone who has it. No AddressSanitizer: the target is safe Rust; what is hunted is
# a panic or a 5xx, not memory errors, and without ASan it builds and runs several
# times faster.
#
# Starts from the seed bodies in load/fuzz/seeds; what it learns goes to
# load/fuzz/corpus (not committed). A crash is saved under load/fuzz/artifacts and
# fails the run. Prints libFuzzer's execution count.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-300}"
profile=release
build=(--release)
if [ "${2:-}" = "--dev" ]; then
  profile=debug
  build=()
fi
triple="$(rustc -vV | sed -n 's/^host: //p')"
# --target keeps these flags off build scripts and proc macros, as cargo fuzz does.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cllvm-args=-sanitizer-coverage-stack-depth \
--cfg fuzzing -Cdebug-assertions -Coverflow-checks"
echo "fuzz: building command_body ($profile, $triple)"
# Its own target directory whatever CARGO_TARGET_DIR says: the flags above make
# every crate differ from the main build's anyway, and the binary is found below.
cargo build --locked "${build[@]}" --target "$triple" --target-dir "$PWD/target" --bin command_body
mkdir -p corpus/command_body artifacts/command_body
set +e
"$PWD/target/$triple/$profile/command_body" -artifact_prefix=artifacts/command_body/ \
  -max_total_time="$secs" -max_len=65536 -print_final_stats=1 \
  corpus/command_body seeds >target-fuzz.log 2>&1
rc=$?
set -e
grep -E "^(Done [0-9]+ runs|==[0-9]+==|SUMMARY|thread .* panicked)" target-fuzz.log || true
if [ "$rc" -ne 0 ]; then
  tail -40 target-fuzz.log
  echo "fuzz: FAILED with status $rc (log: load/fuzz/target-fuzz.log; the input is under load/fuzz/artifacts/command_body)"
  exit 1
fi
runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' target-fuzz.log | awk '{print $2}')
echo "fuzz: ${runs:-?} executions in ${secs} s, no crash"
rm -f target-fuzz.log

#!/usr/bin/env bash
# Builds the fuzz targets once and runs each for a short time (default 20 s) from its
# committed seeds, so that a change that makes a parser panic, or breaks a property a
# target checks, fails. .ci/run calls it; it runs by hand the same way:
#
#   fuzz/run-smoke.sh                    # every target, 20 s each
#   FUZZ_SECONDS=60 fuzz/run-smoke.sh jwt settings
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
# The build has debug assertions (overflow checks) and no sanitizer: the code under test
# is safe Rust, and without AddressSanitizer the build is shorter and each target runs
# about twice as fast. A crash leaves its input in fuzz/artifacts/<target>/ and the
# reproduction command in the output.
set -uo pipefail
cd "$(dirname "$0")"

SECONDS_EACH=${FUZZ_SECONDS:-20}
TOOLCHAIN=${FUZZ_TOOLCHAIN:-nightly}
FLAGS=(--debug-assertions --sanitizer none)
ALL=(authorization_header token_form basic_credentials scopes redirect_uri jwt introspection settings templates)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL[@]}"); fi

if ! cargo "+$TOOLCHAIN" fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz (or the $TOOLCHAIN toolchain) is missing: cargo install cargo-fuzz --locked" >&2
  exit 2
fi

echo "+ cargo +$TOOLCHAIN fuzz build ${FLAGS[*]}"
start=$(date +%s)
cargo "+$TOOLCHAIN" fuzz build "${FLAGS[@]}" || exit 1
echo "built in $(( $(date +%s) - start )) s"

logs=$(mktemp -d)
failed=()
for t in "${TARGETS[@]}"; do
  if [ ! -d "seeds/$t" ]; then
    echo "no seeds for target $t" >&2
    failed+=("$t")
    continue
  fi
  mkdir -p "corpus/$t"
  # The grown corpus first: libFuzzer writes new inputs into the first directory.
  if cargo "+$TOOLCHAIN" fuzz run "${FLAGS[@]}" "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$SECONDS_EACH" -timeout=10 -print_final_stats=1 \
      >"$logs/$t.log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log")
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logs/$t.log")
    echo "ok    $t: ${runs:-?} executions, ${speed:-?}/s"
  else
    echo "FAIL  $t" >&2
    grep -E -A 20 "panicked|ERROR: libFuzzer|SUMMARY" "$logs/$t.log" | head -n 60 >&2
    grep -E "^(Reproduce|cargo fuzz run|Minimize)" -A 2 "$logs/$t.log" >&2
    failed+=("$t")
  fi
done
echo "fuzz smoke run: $(( $(date +%s) - start )) s in all"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz targets failed: ${failed[*]} (logs in $logs)" >&2
  exit 1
fi
rm -rf "$logs"

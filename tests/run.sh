#!/usr/bin/env bash
# `make test` once the local control plane is up (tests/cluster/cluster-up.sh).
#
# 1. Builds every test target (debug).
# 2. Runs, side by side:
#    - every test binary but the benchmarks (cargo runs them one after
#      another). The end-to-end suite (tests/e2e/) is one binary whose tests
#      run side by side too (RUST_TEST_THREADS, 32 unless set: at 64 the
#      ~100 operators, simulators and the niced release build starved the
#      API server on two cores, 60 s request timeouts), each in a
#      namespace of its own; they mostly wait on analysis intervals;
#    - the benchmarks' small versions (`cargo test --bench '*'`), which wait on
#      real time as well;
#    - at the lowest CPU priority, the release build of `serin` that
#      tests/readme.rs runs as the README writes it (`cargo run --release --
#      demo` waits for this build, then finds it fresh), then a check of the
#      image's build without the demo.
# 3. Prints where the time went (tests/report-times.py).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=/dev/null
source target/testbed/env

report=target/test-report
rm -rf "$report"
mkdir -p "$report"
export SERIN_TEST_TIMES="$PWD/$report/e2e-times.tsv"
phases="$report/phases.tsv"
stamp=(python3 tests/report-times.py stamp)

# Runs "$@" and appends its wall time to the phases under the name $1.
timed() {
  local name=$1 start=$SECONDS rc=0
  shift
  "$@" || rc=$?
  printf '%s\t%s\n' "$name" "$((SECONDS - start))" >>"$phases"
  return $rc
}

timed "build the tests (debug)" cargo test --workspace --all-targets --all-features --no-run || exit $?

export RUST_TEST_THREADS="${RUST_TEST_THREADS:-32}"
# Also checks the operator image's build (Dockerfile: no `demo` feature).
release_build() {
  nice -n 19 cargo build --release --bin serin >"$report/release-build.log" 2>&1 &&
    nice -n 19 cargo check --no-default-features --bin serin >>"$report/release-build.log" 2>&1
}
benches() {
  cargo test --workspace --bench '*' --all-features --no-fail-fast </dev/null 2>&1 |
    "${stamp[@]}" "$report/benches.log" >/dev/null
}
run_tests() {
  cargo test --workspace --lib --bins --tests --examples --all-features --no-fail-fast 2>&1 |
    "${stamp[@]}" "$report/tests.log"
}

timed "build serin (release; in the background, niced)" release_build &
release=$!
timed "the benchmarks' small versions (beside the tests)" benches &
bench=$!
status=0
timed "run the tests" run_tests || status=$?

bench_status=0
wait "$bench" || bench_status=$?
echo
echo "== the benchmarks' small versions (cargo test --bench '*') =="
cut -f2- "$report/benches.log" | grep -v '^<end>$'
[[ $bench_status == 0 ]] || status=$bench_status
if ! wait "$release"; then
  echo "the release build failed:"
  tail -20 "$report/release-build.log"
  status=1
fi

python3 tests/report-times.py report "$phases" "$SERIN_TEST_TIMES" "$report/tests.log" "$report/benches.log"
exit "$status"

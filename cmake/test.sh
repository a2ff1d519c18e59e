#!/usr/bin/env bash
# Builds and runs the whole test suite: a release build with warnings as errors, then the same
# suite under ASan+UBSan, then a brief libFuzzer run of the frame decoder, then a quick benchmark
# run that proves the benchmarks still work.
set -euo pipefail
cd "$(dirname "$0")/.."
bash cmake/deps.sh
jobs=${MPROC_TEST_JOBS:-2}
stage() { echo; echo "=== $1 ($(date +%T))"; }
start=$(date +%s)

stage "release build"
cmake -S . -B build/ci-release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPROC_WERROR=ON >/dev/null
cmake --build build/ci-release
stage "release tests"
ctest --test-dir build/ci-release --output-on-failure -j "$jobs" --timeout 300

stage "asan+ubsan build"
cmake -S . -B build/ci-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMPROC_WERROR=ON \
  -DMPROC_SANITIZE=address -DMPROC_BUILD_BENCH=OFF >/dev/null
cmake --build build/ci-asan
stage "asan+ubsan tests"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  LSAN_OPTIONS=suppressions="$PWD/tests/lsan.supp" \
  ctest --test-dir build/ci-asan --output-on-failure -j "$jobs" --timeout 300 -LE package

stage "fuzz: frame decoder, briefly (clang libFuzzer, ASan+UBSan)"
cmake -S . -B build/ci-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMPROC_FUZZ=ON >/dev/null
cmake --build build/ci-fuzz --target frame_fuzz
mkdir -p build/ci-fuzz/corpus
cp tests/fuzz/corpus/* build/ci-fuzz/corpus/
build/ci-fuzz/tests/fuzz/frame_fuzz -max_total_time="${MPROC_FUZZ_SECONDS:-20}" -print_final_stats=1 \
  build/ci-fuzz/corpus 2>&1 | tail -n 3

if [ -x tests/bench/run ]; then
  stage "benchmarks (quick)"
  tests/bench/run --quick --build-dir build/ci-release --out build/ci-release/bench-results.json
fi
echo; echo "all green in $(( $(date +%s) - start )) s"

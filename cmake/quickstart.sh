#!/usr/bin/env bash
# Quick start: install dependencies, build (Release), run the flagship example.
set -euo pipefail
cd "$(dirname "$0")/.."
bash cmake/deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DMPROC_BUILD_TESTS=OFF
cmake --build build/release
./build/release/examples/hello_process

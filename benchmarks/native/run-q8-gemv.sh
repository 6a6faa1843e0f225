#!/usr/bin/env bash
# Builds and runs the native Q8_0 row-product reference (q8_gemv.c) over a Q8_0 GGUF file
# (e.g. the bench-moe model: java -jar jobs/target/moestream.jar make-model --preset bench --type q8_0 --out /tmp/bench-moe-q8_0.gguf).
# Prints one JSON line per thread count: M block-dots/s and GB/s of weights read.
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)"
gcc -O3 -march=native -fopenmp "$dir/q8_gemv.c" -o /tmp/moestream-q8-gemv
exec /tmp/moestream-q8-gemv "${1:-/tmp/bench-moe-q8_0.gguf}" "${2:-2}"

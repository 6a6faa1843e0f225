#!/usr/bin/env bash
# Builds and runs kquant_layout.c: the runtime's Q4_K or Q5_K one-activation row kernel
# (model-runtime/src/main/c/kquant_zmm.h) on rows in place against the same numbers on rows repacked
# sixteen at a time; one JSON line per run, and the bit-equality check first. Args: TYPE (q4_k or
# q5_k), THREADS (2), MB of weights (160, about one bench-moe token's worth), TASK_ROWS (512, the
# rows of one pool task). gb_per_s counts the file's bytes; gb_per_cpu_s is per CPU-second of all threads.
set -euo pipefail
dir="$(cd "$(dirname "$0")" && pwd)"
jhome="${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}"
gcc -O2 -std=gnu11 -ffp-contract=off -Wno-unused-function -I "$dir/../../model-runtime/src/main/c" \
  -I "$jhome/include" -I "$jhome/include/linux" "$dir/kquant_layout.c" -o /tmp/moestream-kquant-layout -lpthread -lm
exec /tmp/moestream-kquant-layout "${1:-q4_k}" "${2:-2}" "${3:-160}" "${4:-512}"

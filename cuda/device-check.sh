#!/usr/bin/env bash
# One-shot check of the CUDA backend on a GPU machine with no Java or Maven, from the kit made by
# package-device-check.sh (this script sits in the kit). It
#   1. prints nvidia-smi,
#   2. runs the JUnit tests tagged "gpu", everything against the exact CPU path: each op on random
#      inputs with poisoned outputs against the CPU engine's pieces (products, expert products and
#      embedding rows of every weight type: F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q2_K..Q6_K, IQ4_NL, MXFP4;
#      the router, bias and gated adds, scale), KV blocks sealed on the GPU byte-identical to
#      the engine's cache (F32, F16, int8, int4), every oracle model in oracle/ (llama, Mixtral,
#      qwen3moe, qwen2moe, bailingmoe2) against the CPU engine with identical greedy tokens and logits
#      within 1e-3 relative (F32 weights) / 1e-2 (F16, BF16, Q8_0, Q4_0), batched passes equal to
#      single sequences, KV blocks to and from the engine's cache, split-K attention over 1500
#      positions with F32, F16, int8 and int4 blocks; then the block-type oracle models in oracle-types/
#      (K-quants and their _M mixes, IQ4_NL, BF16, Q5_0 fallbacks, granite's multipliers) teacher-forced
#      against the CPU engine: same greedy token and logits within 1e-2 at >= 90 % of the steps,
#   3. times decode at batch 1, 8 and 64 and a 512-token prefill on a generated >= 4 GB Q8_0 MoE
#      model, and prints bytes moved per step against the measured device-copy bandwidth.
# Results (nvidia-smi.txt, gpu-tests.log with the JUnit tree, bench.log, bench.md) go to $OUT if set,
# else ./device-check-results. (The kit's Java has no java.xml, so there are no JUnit XML reports.)
#
# usage: device-check.sh [kit dir]   env: DEVICE (0), BENCH_GB (4), BENCH_TYPE (Q8_0), SKIP_BENCH=1,
#        ORACLE_DIR (the kit's oracle/; e.g. model-runtime/src/test/resources/oracle of a checkout that
#        travels along, so the kit need not carry the models), TYPES_DIR (the kit's oracle-types/)
set -uo pipefail
kit=${1:-$(cd "$(dirname "$0")" && pwd)}
out=${OUT:-$PWD/device-check-results}
mkdir -p "$out"
chmod -R u+x "$kit/jre/bin" 2>/dev/null # a copy may have lost the executable bits
java="$kit/jre/bin/java"
[[ -x "$java" ]] || java=$(command -v java || true)
[[ -n "$java" ]] || { echo "no Java: run package-device-check.sh to make the kit (jre/)" >&2; exit 2; }
cp=$(ls "$kit"/lib/*.jar | grep -v junit-platform-console-standalone | paste -sd:)
console=$(ls "$kit"/lib/junit-platform-console-standalone-*.jar)
opts=(-Xmx48g --add-modules jdk.incubator.vector -Dmoestream.cuda.device="${DEVICE:-0}" -Dmoestream.oracle.dir="${ORACLE_DIR:-$kit/oracle}"
  -Dmoestream.oracle.types.dir="${TYPES_DIR:-$kit/oracle-types}")
status=0

echo "== nvidia-smi"
nvidia-smi 2>&1 | tee "$out/nvidia-smi.txt" || echo "nvidia-smi failed"

echo "== GPU tests (tag gpu)"
# launches synchronous, so a device fault is reported by the op (and test) that caused it
CUDA_LAUNCH_BLOCKING=1 "$java" "${opts[@]}" -jar "$console" execute --class-path "$kit/test-classes:$cp" --select-package io.moestream.cuda \
  --include-tag gpu --details tree 2>&1 | tee "$out/gpu-tests.log"
[[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "GPU TESTS FAILED"; status=1; }

if [[ "${SKIP_BENCH:-0}" != 1 ]]; then
  echo "== decode / prefill bench"
  OUT="$out" "$java" "${opts[@]}" -cp "$cp" io.moestream.cuda.DeviceBench --out "$out" --gb "${BENCH_GB:-4}" \
    --type "${BENCH_TYPE:-Q8_0}" --device "${DEVICE:-0}" 2>&1 | tee "$out/bench.log"
  [[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "BENCH FAILED"; status=1; }
fi

echo "== results in $out (status $status)"
exit $status

#!/usr/bin/env bash
# One-shot check of the CUDA backend on a GPU machine with no Java or Maven, from the kit made by
# package-device-check.sh (this script sits in the kit, cuda/target/device-kit of a checkout that
# travels with it). It
#   0. unpacks kit.tar.xz (jre/, lib/, test-classes/, oracle-types/) into KIT_UNPACK and runs
#      DeviceKitPreflight with the kit's Java: every oracle model loads (the checkout's
#      model-runtime/src/test/resources/oracle and the kit's oracle-types/), and the driver can use the
#      device; it stops here (status 2: models, 3: no usable CUDA device) before any GPU test,
#   1. prints nvidia-smi,
#   2. runs the JUnit tests tagged "gpu", everything against the exact CPU path: each op on random
#      inputs with poisoned outputs against the CPU engine's pieces (products, expert products and
#      embedding rows of every weight type: F32, F16, BF16, Q8_0, Q4_0, Q5_0, Q2_K..Q6_K, IQ4_NL, MXFP4;
#      the router, bias and gated adds, scale), KV blocks sealed on the GPU byte-identical to
#      the engine's cache (F32, F16, int8, int4), every in-tree oracle model (llama, Mixtral,
#      qwen3moe, qwen2moe, bailingmoe2) against the CPU engine with identical greedy tokens and logits
#      within 1e-2 (Q8_0, Q4_0), batched passes equal to single sequences, KV blocks to and from the
#      engine's cache, split-K attention over 1500 positions with F32, F16, int8 and int4 blocks; then
#      the block-type models in oracle-types/ (K-quants, IQ4_NL, BF16, MXFP4 with gpt-oss's sinks and
#      sliding windows, Q5_0 fallbacks, granite's multipliers, olmoe) teacher-forced against the CPU
#      engine: same greedy token and logits within 1e-2 at >= 90 % of the steps,
#   3. times decode at batch 1, 8 and 64 and a 512-token prefill on a generated >= 4 GB Q8_0 MoE
#      model, and prints bytes moved per step against the measured device-copy bandwidth.
# Results (preflight.txt, nvidia-smi.txt, gpu-tests.log with the JUnit tree, bench.log, bench.md) go to
# $OUT if set, else ./device-check-results. (The kit's Java has no java.xml: no JUnit XML reports.)
#
# usage: bash cuda/target/device-kit/device-check.sh   (from the checkout's root, or anywhere)
#   env: DEVICE (0), BENCH_GB (4), BENCH_TYPE (Q8_0), SKIP_BENCH=1, KIT_UNPACK (/tmp/moestream-device-kit),
#        ORACLE_DIR (the checkout's model-runtime/src/test/resources/oracle), TYPES_DIR (the kit's oracle-types/)
set -uo pipefail
kit=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$kit/../../.." && pwd) # the checkout that carried the kit (cuda/target/device-kit)
out=${OUT:-$PWD/device-check-results}
unpack=${KIT_UNPACK:-${TMPDIR:-/tmp}/moestream-device-kit}
mkdir -p "$out"

echo "== kit $kit -> $unpack"
[[ -f "$kit/kit.tar.xz" ]] || { echo "no $kit/kit.tar.xz: run cuda/package-device-check.sh to make the kit" >&2; exit 2; }
rm -rf "$unpack/jre" "$unpack/lib" "$unpack/test-classes" "$unpack/oracle-types" && mkdir -p "$unpack" || exit 2
if command -v xz >/dev/null 2>&1; then
  tar -C "$unpack" -xJf "$kit/kit.tar.xz"
else # python3's tarfile reads xz without the xz program
  python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2], **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))' \
    "$kit/kit.tar.xz" "$unpack"
fi || { echo "cannot unpack $kit/kit.tar.xz" >&2; exit 2; }
java="$unpack/jre/bin/java"
[[ -x "$java" ]] || { echo "no Java in the kit ($java)" >&2; exit 2; }
cp=$(ls "$unpack"/lib/*.jar | grep -v junit-platform-console-standalone | paste -sd:)
console=$(ls "$unpack"/lib/junit-platform-console-standalone-*.jar) || exit 2
oracle=${ORACLE_DIR:-$root/model-runtime/src/test/resources/oracle}
types=${TYPES_DIR:-$unpack/oracle-types}
opts=(-Xmx48g --add-modules jdk.incubator.vector -Dmoestream.cuda.device="${DEVICE:-0}" -Dmoestream.oracle.dir="$oracle"
  -Dmoestream.oracle.types.dir="$types")
status=0

echo "== preflight (models, driver)"
"$java" "${opts[@]}" -cp "$unpack/test-classes:$cp" io.moestream.cuda.DeviceKitPreflight "$oracle" "$types" "${DEVICE:-0}" 2>&1 \
  | tee "$out/preflight.txt"
preflight=${PIPESTATUS[0]}
if [[ $preflight -ne 0 ]]; then
  nvidia-smi > "$out/nvidia-smi.txt" 2>&1 || true
  echo "== PREFLIGHT FAILED (status $preflight): no GPU tests run; results in $out"
  exit "$preflight"
fi

echo "== nvidia-smi"
nvidia-smi 2>&1 | tee "$out/nvidia-smi.txt" || echo "nvidia-smi failed"

echo "== GPU tests (tag gpu)"
# launches synchronous, so a device fault is reported by the op (and test) that caused it
CUDA_LAUNCH_BLOCKING=1 "$java" "${opts[@]}" -jar "$console" execute --class-path "$unpack/test-classes:$cp" --select-package io.moestream.cuda \
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

#!/usr/bin/env bash
# Structured-output costs (docs/structured-output.md, "Measurements"): runs StructuredOutputBench on
# bench-moe Q4_0 (made once in $MODELS, default /tmp) and on the trained model, alternating the two
# models $REPEAT times; one JSON line per run in $OUT/structured-output-bench.jsonl. Each line has the
# extraction schema's compile time, the mask cost per step and decode tok/s with and without the
# constraint at batch 1 and 16, with the median constrained/unconstrained ratio of 6 back-to-back pairs (alternating which runs first).
# Usage: benchmarks/run-structured-output-bench.sh   (env: SKIP_BUILD=1, MODELS=/tmp, OUT=benchmarks/results,
#        REPEAT=2, TRAINED=path/to/trained-moe.gguf)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
models="${MODELS:-/tmp}"
out="${OUT:-benchmarks/results}"
repeat="${REPEAT:-2}"
trained="${TRAINED:-../shared/oracle/models/trained-moe-q8_0.gguf}"
if [ -z "${SKIP_BUILD:-}" ]; then
  mvn -B -ntp -q package -DskipTests -pl benchmarks -am
fi
# run from copies, so a rebuild while the bench runs does not change its classes
jars="$(mktemp -d)"
trap 'rm -rf "$jars"' EXIT
cp jobs/target/moestream.jar benchmarks/target/pipeline-bench.jar "$jars/"
java_opts=(--add-modules jdk.incubator.vector -Xmx2g -cp "$jars/moestream.jar:$jars/pipeline-bench.jar")
if [ ! -s "$models/bench-moe-q4_0.gguf" ]; then
  java --add-modules jdk.incubator.vector -jar "$jars/moestream.jar" make-model --preset bench --type q4_0 \
    --out "$models/bench-moe-q4_0.gguf" >/dev/null
fi
mkdir -p "$out"
result="$out/structured-output-bench.jsonl"
: > "$result"
for i in $(seq "$repeat"); do
  for m in "$models/bench-moe-q4_0.gguf:24" "$trained:48"; do
    line=$(java "${java_opts[@]}" io.moestream.benchmarks.StructuredOutputBench "${m%:*}" "${m##*:}" 2>/dev/null)
    echo "{\"run\":$i,\"file\":\"$(basename "${m%:*}")\",\"result\":$line}" | tee -a "$result"
  done
done
echo "results: $result"

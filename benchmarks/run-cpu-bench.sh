#!/usr/bin/env bash
# CPU inference bench on the bench-moe model (docs/benchmarks.md): makes the Q8_0 and Q4_0 files
# once (in $MODELS, default /tmp), then runs `moestream bench` for batch 1 and batch 16 with 2
# threads, each run twice, and writes one JSON object per run to $OUT/cpu-bench.jsonl. TYPES picks
# the files (q4_k_m is made by run-llama-compare.sh, with llama.cpp's llama-quantize).
# A baseline jar (BASELINE_JAR=path, e.g. the jar of an earlier commit) is run alternately with the
# current one, so both see the same machine load and the ratio between them means something.
# Usage: benchmarks/run-cpu-bench.sh   (env: SKIP_BUILD=1, MODELS=/tmp, OUT=benchmarks/results,
#        BASELINE_JAR=..., GEN=32, PROMPT=64, REPEAT=2, TYPES="q8_0 q4_0", BATCHES="1 16", THREADS=2)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
models="${MODELS:-/tmp}"
out="${OUT:-benchmarks/results}"
gen="${GEN:-32}"
prompt="${PROMPT:-64}"
repeat="${REPEAT:-2}"
types="${TYPES:-q8_0 q4_0}"
batches="${BATCHES:-1 16}"
threads="${THREADS:-2}"
if [ -z "${SKIP_BUILD:-}" ]; then
  mvn -B -ntp -q package -DskipTests -pl jobs -am
fi
jar=jobs/target/moestream.jar
java_opts=(--add-modules jdk.incubator.vector -Xmx2g)
for t in q8_0 q4_0; do
  if [ ! -s "$models/bench-moe-$t.gguf" ]; then
    java "${java_opts[@]}" -jar "$jar" make-model --preset bench --type "$t" --out "$models/bench-moe-$t.gguf" >/dev/null
  fi
done
for t in $types; do
  [ -s "$models/bench-moe-$t.gguf" ] || { echo "no $models/bench-moe-$t.gguf (q4_k_m: run benchmarks/run-llama-compare.sh once)" >&2; exit 1; }
done
mkdir -p "$out"
result="$out/cpu-bench.jsonl"
: > "$result"
run() { # label jar type batch
  local line
  line=$(java "${java_opts[@]}" -jar "$2" bench --model "$models/bench-moe-$3.gguf" --threads "$threads" --batch "$4" \
    --prompt-tokens "$prompt" --gen-tokens "$gen" --json 2>/dev/null)
  echo "{\"build\":\"$1\",\"type\":\"$3\",\"threads\":$threads,\"result\":$line}" | tee -a "$result"
}
for i in $(seq "$repeat"); do
  for t in $types; do
    for b in $batches; do
      run current "$jar" "$t" "$b"
      if [ -n "${BASELINE_JAR:-}" ]; then
        run baseline "$BASELINE_JAR" "$t" "$b"
      fi
    done
  done
done
echo "results: $result"

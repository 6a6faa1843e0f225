#!/usr/bin/env bash
# Decode speed of this runtime against llama.cpp on the same bench-moe files, side by side
# (docs/benchmarks.md, "Against llama.cpp"): for every configuration, `moestream bench` and
# llama.cpp's own benchmark run one after the other, REPEAT rounds, so both see the same machine
# load; prints each engine's decode tok/s, the ratio of medians and the spread of the per-round
# ratios, and writes one JSON line per run to $OUT/llama-compare.jsonl.
#
# llama.cpp: llama-bench (batch 1: -p 0 -n GEN) and llama-batched-bench (-npl B, -npp PROMPT,
# -ntg GEN, -fa off), THREADS threads (2), built by ../shared/tools/build-llama-cpp.sh into $LLAMA (default
# /tmp/llama-cpp/build/bin). Models (made once, in $MODELS): bench-moe Q8_0 and Q4_0 from
# `moestream make-model`, Q4_K_M quantized by llama-quantize from the F16 file make-model writes.
# Ours: `moestream bench --threads THREADS --batch B --prompt-tokens PROMPT --gen-tokens GEN` (Vector API on).
# With BASELINE_JAR=path (the jar of another build), that jar runs too in every round, so a change can
# be set against llama.cpp and against the build before it in the same minutes.
#
# Usage: benchmarks/run-llama-compare.sh
#   env: CONFIGS="q4_k_m:1 q4_k_m:16 q4_0:1 q8_0:1" (type:batch), GEN=128, PROMPT=16, REPEAT=3, THREADS=2,
#        LLAMA=/tmp/llama-cpp/build/bin, MODELS=/tmp, OUT=benchmarks/results, SKIP_BUILD=1, JAR=jobs/target/moestream.jar,
#        BASELINE_JAR=
# Runtime: 7.5 minutes with the defaults on a loaded 2-core machine, less when idle, once the models
# exist (+~3 min to make them the first time).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
llama="${LLAMA:-/tmp/llama-cpp/build/bin}"
models="${MODELS:-/tmp}"
out="${OUT:-benchmarks/results}"
gen="${GEN:-128}"
prompt="${PROMPT:-16}"
repeat="${REPEAT:-3}"
threads="${THREADS:-2}"
configs="${CONFIGS:-q4_k_m:1 q4_k_m:16 q4_0:1 q8_0:1}"
for p in llama-bench llama-batched-bench llama-quantize; do
  [ -x "$llama/$p" ] || { echo "no $llama/$p: build llama.cpp with ../shared/tools/build-llama-cpp.sh (LLAMA=dir)" >&2; exit 1; }
done
if [ -z "${SKIP_BUILD:-}" ]; then
  mvn -B -ntp -q package -DskipTests -pl jobs -am
fi
jar="${JAR:-jobs/target/moestream.jar}"
java_opts=(--add-modules jdk.incubator.vector -Xmx2g)
model() { echo "$models/bench-moe-$1.gguf"; }
for t in q8_0 q4_0; do
  [ -s "$(model $t)" ] || java "${java_opts[@]}" -jar "$jar" make-model --preset bench --type "$t" --out "$(model $t)" >/dev/null 2>&1
done
if [ ! -s "$(model q4_k_m)" ]; then
  [ -s "$(model f16)" ] || java "${java_opts[@]}" -jar "$jar" make-model --preset bench --type f16 --out "$(model f16)" >/dev/null 2>&1
  "$llama/llama-quantize" "$(model f16)" "$(model q4_k_m)" Q4_K_M >/dev/null 2>&1
fi
mkdir -p "$out"
result="$out/llama-compare.jsonl"
: > "$result"
load() { cut -d' ' -f1 /proc/loadavg; }

ours() { # type batch [jar engine-name]
  local l line
  l=$(load)
  line=$(java "${java_opts[@]}" -jar "${3:-$jar}" bench --model "$(model "$1")" --threads "$threads" --batch "$2" \
    --prompt-tokens "$prompt" --gen-tokens "$gen" --json 2>/dev/null)
  local tps
  tps=$(sed -n 's/.*"decode_tokens_per_s":\([0-9.]*\).*/\1/p' <<<"$line")
  echo "{\"engine\":\"${4:-moestream}\",\"type\":\"$1\",\"batch\":$2,\"threads\":$threads,\"decode_tokens_per_s\":$tps,\"load_before\":$l,\"result\":$line}" | tee -a "$result"
}

theirs() { # type batch
  local l tps
  l=$(load)
  if [ "$2" = 1 ]; then
    tps=$("$llama/llama-bench" -m "$(model "$1")" -t "$threads" -p 0 -n "$gen" -r 1 -o jsonl 2>/dev/null \
      | sed -n 's/.*"avg_ts": *\([0-9.eE+-]*\).*/\1/p' | tail -1)
  else
    tps=$("$llama/llama-batched-bench" -m "$(model "$1")" -t "$threads" -c $(( $2 * (prompt + gen) + 256 )) -b 512 -ub 512 \
      -npp "$prompt" -ntg "$gen" -npl "$2" -fa off --output-format jsonl 2>/dev/null \
      | sed -n 's/.*"speed_tg": *\([0-9.eE+-]*\).*/\1/p' | tail -1)
  fi
  echo "{\"engine\":\"llama.cpp\",\"type\":\"$1\",\"batch\":$2,\"threads\":$threads,\"decode_tokens_per_s\":${tps:-0},\"load_before\":$l}" | tee -a "$result"
}

for i in $(seq "$repeat"); do
  for c in $configs; do
    t=${c%%:*}
    b=${c##*:}
    # alternate which engine goes first, so neither always runs right after the other's warm-up
    if (( i % 2 )); then ours "$t" "$b"; theirs "$t" "$b"; else theirs "$t" "$b"; ours "$t" "$b"; fi
    if [ -n "${BASELINE_JAR:-}" ]; then ours "$t" "$b" "$BASELINE_JAR" baseline; fi
  done
done

python3 - "$result" <<'EOF'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
keys = []
for r in runs:
    k = (r["type"], r["batch"])
    if k not in keys:
        keys.append(k)
print()
base = any(r["engine"] == "baseline" for r in runs)
print(f"| bench-moe decode, {runs[0].get('threads', 2)} threads | moestream tok/s | llama.cpp tok/s | ratio of medians | per-round ratios: median, range, rounds >= 1 | load before |"
      + (" baseline tok/s | moestream / baseline, ratio of medians |" if base else ""))
print("|---|---|---|---|---|---|" + ("---|---|" if base else ""))
for t, b in keys:
    ours = [r["decode_tokens_per_s"] for r in runs if (r["type"], r["batch"]) == (t, b) and r["engine"] == "moestream"]
    theirs = [r["decode_tokens_per_s"] for r in runs if (r["type"], r["batch"]) == (t, b) and r["engine"] == "llama.cpp"]
    loads = [r["load_before"] for r in runs if (r["type"], r["batch"]) == (t, b)]
    before = [r["decode_tokens_per_s"] for r in runs if (r["type"], r["batch"]) == (t, b) and r["engine"] == "baseline"]
    rounds = [o / l for o, l in zip(ours, theirs) if l > 0]
    med = statistics.median(ours) / statistics.median(theirs) if ours and theirs and statistics.median(theirs) > 0 else float("nan")
    name = f"{t.upper()}, {'batch 1' if b == 1 else f'{b} sequences'}"
    print(f"| {name} | {', '.join(f'{v:.1f}' for v in ours)} | {', '.join(f'{v:.1f}' for v in theirs)} | **{med:.2f}** "
          f"| {f'{statistics.median(rounds):.2f}, {min(rounds):.2f}-{max(rounds):.2f}, {sum(x >= 1 for x in rounds)} of {len(rounds)}' if rounds else 'n/a'} "
          f"| {min(loads):.1f}-{max(loads):.1f} |"
          + (f" {', '.join(f'{v:.1f}' for v in before)} | **{statistics.median(ours) / statistics.median(before):.2f}** |" if base and before else ""))
EOF
echo "results: $result"

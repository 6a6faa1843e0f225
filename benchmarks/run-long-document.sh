#!/usr/bin/env bash
# Builds the job and bench jars, then runs the long-document end-to-end run
# (io.moestream.benchmarks.LongDocumentRun): a synthetic 33,280-context model (make-model --preset long),
# a 32,768-token document in parts through Kafka into the job (RocksDB state, incremental checkpoints),
# a task failure injected half-way through the ingestion, then a question cached vs re-prefilled.
# Prints (and with --out writes) one JSON object; docs/benchmarks.md records a run.
# Usage: benchmarks/run-long-document.sh [--tokens 32768] [--part-tokens 2048] [--checkpoint-interval-ms 2000]
#   [--token-budget 256] [--attention-budget 1048576] [--out FILE]
# HEAP (default 1g) is the JVM's -Xmx: the bound the run must stay within.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if [ -z "${SKIP_BUILD:-}" ]; then
  mvn -B -ntp -q package -DskipTests -pl benchmarks -am
fi
exec java "-Xmx${HEAP:-1g}" --add-modules jdk.incubator.vector \
  -cp jobs/target/moestream.jar:benchmarks/target/pipeline-bench.jar io.moestream.benchmarks.LongDocumentRun "$@"

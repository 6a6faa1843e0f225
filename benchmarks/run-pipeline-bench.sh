#!/usr/bin/env bash
# Builds the job jar and the bench jar, then runs the pipeline throughput bench
# (io.moestream.benchmarks.PipelineBench); results in benchmarks/results/pipeline-bench.{json,png}.
# Usage: benchmarks/run-pipeline-bench.sh [--count N] [--max-tokens N] [--batch-size N] [--seed S] [--rounds N] [--out DIR]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if [ -z "${SKIP_BUILD:-}" ]; then
  mvn -B -ntp -q package -DskipTests -pl benchmarks -am
fi
exec java -Xmx2g -Djava.awt.headless=true --add-modules jdk.incubator.vector \
  -cp jobs/target/moestream.jar:benchmarks/target/pipeline-bench.jar io.moestream.benchmarks.PipelineBench "$@"

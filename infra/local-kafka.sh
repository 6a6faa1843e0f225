#!/usr/bin/env bash
# A local single-node Kafka (KRaft) broker with moestream's topics, in the foreground.
# Usage: infra/local-kafka.sh [PORT]   (default 9092)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
jar="$root/jobs/target/moestream.jar"
if [ ! -f "$jar" ]; then
  echo "building $jar ..." >&2
  (cd "$root" && mvn -B -ntp -q package -DskipTests)
fi
exec java -jar "$jar" kafka --port "${1:-9092}"

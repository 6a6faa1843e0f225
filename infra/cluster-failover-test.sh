#!/usr/bin/env bash
# End-to-end failover check on a real multi-process Flink cluster:
#   1. a local Kafka broker (moestream.jar kafka) with 2-partition topics;
#   2. COUNT seeded prompts (STATELESS / DOCUMENT / CONVERSATION mix, max_tokens 8) and their documents;
#   3. the reference: that input through the job on a local MiniCluster (moestream.jar run),
#      failure-free, with its own topics;
#   4. a standalone Flink cluster (infra/flink-cluster.sh: JobManager + 2 TaskManagers, 1 slot each),
#      the job submitted with the Flink CLI at parallelism 2; the same input sent again, paced;
#   5. after ~30% of the answers are committed, kill -9 one TaskManager, start a replacement;
#   6. read every answer with read_committed: none lost, none duplicated, every text (and token id
#      list) identical to the reference.
# The last line is "lost=N duplicated=N mismatched=N"; the exit status is 0 only when all three are 0.
#
# Usage: infra/cluster-failover-test.sh [COUNT]   (default 1000; needs jobs/target/moestream.jar)
# Environment: FAILOVER_SEED (7), FAILOVER_RATE (20 prompts/s to the cluster), FAILOVER_KAFKA_PORT (19192), FLINK_REST_PORT (18181), FLINK_RPC_PORT (16223),
#              FAILOVER_KEEP=1 keeps the work directory infra/work/failover
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
count="${1:-1000}"
seed="${FAILOVER_SEED:-7}"
rate="${FAILOVER_RATE:-20}"
kafka_port="${FAILOVER_KAFKA_PORT:-19192}"
jar="$root/jobs/target/moestream.jar"
work="$root/infra/work/failover"
export FLINK_WORK_DIR="$work/flink"
export FLINK_REST_PORT="${FLINK_REST_PORT:-18181}"
export FLINK_RPC_PORT="${FLINK_RPC_PORT:-16223}"
cluster="$root/infra/flink-cluster.sh"
bootstrap="127.0.0.1:$kafka_port"
started=$SECONDS

log() { echo "[failover $((SECONDS - started))s] $*" >&2; }
check() { java -Xmx256m -cp "$jar" "$root/infra/failover/FailoverCheck.java" "$@"; }

[ -f "$jar" ] || { log "no $jar: build it first (mvn -B -ntp package -DskipTests)"; exit 2; }

kafka_pid=""
reference_pid=""
producer_pid=""
reported=""
cleanup() {
  local status=$?
  [ -n "$reference_pid" ] && kill "$reference_pid" 2>/dev/null && wait "$reference_pid" 2>/dev/null
  [ -n "$producer_pid" ] && kill "$producer_pid" 2>/dev/null
  "$cluster" stop >/dev/null 2>&1 || true
  if [ -n "$kafka_pid" ]; then
    kill "$kafka_pid" 2>/dev/null || true
    wait "$kafka_pid" 2>/dev/null || true
  fi
  if [ $status -eq 0 ] && [ -z "${FAILOVER_KEEP:-}" ]; then
    rm -rf "$work"
  elif [ -z "$reported" ]; then
    log "logs kept in $work"
  fi
  exit $status
}
trap cleanup EXIT
"$cluster" stop >/dev/null 2>&1 || true  # leftovers of an interrupted run
rm -rf "$work"
mkdir -p "$work/models"

# the model must be a file at the same path on every TaskManager (the job's default would be
# extracted on the submitting client only)
model_entry=io/moestream/runtime/models/trained-moe-q4_k_m.gguf
(cd "$work/models" && jar xf "$jar" "$model_entry")
model="$work/models/$model_entry"

log "starting Kafka on $bootstrap"
java -Xmx512m -jar "$jar" kafka --port "$kafka_port" --partitions 2 > "$work/kafka.out" 2> "$work/kafka.log" &
kafka_pid=$!
for _ in $(seq 120); do grep -q bootstrap.servers "$work/kafka.out" 2>/dev/null && break; sleep 0.5; done
grep -q bootstrap.servers "$work/kafka.out" || { log "Kafka did not start (see $work/kafka.log)"; exit 2; }
check topics "$bootstrap" 2 reference.documents reference.prompts reference.generations reference.errors \
    reference.contexts

log "producing $count prompts (seed $seed) for the reference run"
check produce "$bootstrap" reference.documents reference.prompts "$count" "$seed"

common=(-Dmoestream.checkpoint.interval=1s)
log "reference run: the same input through the job on a MiniCluster, no failure"
ref_start=$SECONDS
java -Xmx1g --add-modules jdk.incubator.vector -jar "$jar" run --bootstrap-servers "$bootstrap" --parallelism 2 \
    --model "$model" "${common[@]}" -Dmoestream.kafka.group-id=reference -Dmoestream.kafka.transactional-id-prefix=reference \
    -Dmoestream.topic.documents=reference.documents -Dmoestream.topic.prompts=reference.prompts \
    -Dmoestream.topic.generations=reference.generations -Dmoestream.topic.errors=reference.errors \
    -Dmoestream.topic.contexts=reference.contexts > "$work/reference.log" 2>&1 &
reference_pid=$!
check await "$bootstrap" reference.generations "$count" 900 >&2 || { log "the reference run did not answer every prompt"; exit 2; }
kill "$reference_pid"; wait "$reference_pid" 2>/dev/null || true; reference_pid=""
log "reference run took $((SECONDS - ref_start))s"

log "starting the Flink cluster (JobManager + 2 TaskManagers)"
"$cluster" start 2
job_start=$SECONDS
job="$("$cluster" submit "$jar" --moestream.kafka.bootstrap-servers "$bootstrap" --moestream.parallelism 2 \
    --moestream.model.path "$model" --moestream.checkpoint.interval 1s \
    --moestream.kafka.group-id cluster --moestream.kafka.transactional-id-prefix cluster)"
log "job $job submitted at parallelism 2; producing the same $count prompts at $rate/s"
# paced, so that answers are committed steadily and the kill lands mid-run (a backlog sent at once
# would sit ahead of the checkpoint barriers and be committed in a few large steps)
check produce "$bootstrap" moe.documents moe.prompts "$count" "$seed" "$rate" > "$work/produce.log" 2>&1 &
producer_pid=$!

kill_at=$((count * 3 / 10))
check await "$bootstrap" moe.generations "$kill_at" 600 >&2 || { log "fewer than $kill_at answers before the kill"; exit 2; }
"$cluster" kill-taskmanager 1
log "killed taskmanager-1 after $kill_at answers; starting a replacement"
"$cluster" start-taskmanager 3

wait "$producer_pid" || { producer_pid=""; log "producing the prompts failed (see $work/produce.log)"; exit 2; }
producer_pid=""
log "waiting for all $count answers"
set +e
check compare "$bootstrap" reference.generations moe.generations "$count" 900 | tee "$work/result.txt"
status=${PIPESTATUS[0]}
set -e
restarts="$(grep -c 'switched from state RUNNING to RESTARTING' "$FLINK_WORK_DIR/log/jobmanager.log" || true)"
log "cluster run took $((SECONDS - job_start))s (job restarts: ${restarts:-0}), total $((SECONDS - started))s"
"$cluster" cancel "$job" >/dev/null 2>&1 || true
[ "$status" -ne 0 ] || [ -n "${FAILOVER_KEEP:-}" ] && log "logs kept in $work"
reported=1
tail -n 1 "$work/result.txt"
exit "$status"

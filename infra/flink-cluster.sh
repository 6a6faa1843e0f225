#!/usr/bin/env bash
# A standalone Flink 2.2 session cluster built from Maven artifacts (flink-dist is not on Maven
# Central): one JobManager and N TaskManager JVMs on 127.0.0.1, the job submitted with Flink's own
# CLI (CliFrontend). Everything it starts has a PID file and a log under its work directory.
#
# Usage: infra/flink-cluster.sh COMMAND [ARGS]
#   start [N]                  JobManager + N TaskManagers (default 2); returns when all N are registered
#   start-taskmanager [ID]     one more TaskManager (e.g. a replacement); ID defaults to the next free number
#   kill-taskmanager ID        kill -9 TaskManager ID (failure injection)
#   submit JAR [ARGS...]       flink run --detached -c $FLINK_JOB_CLASS JAR ARGS; prints the job id
#   cancel JOB_ID              cancel a job
#   jobs                       the jobs the cluster knows (REST /jobs/overview)
#   status                     which processes run, and the cluster overview
#   stop                       stop every process this work directory started (TaskManagers first)
#   classpath                  print the Flink runtime class path (resolved with Maven, cached)
#
# Environment (defaults in brackets):
#   FLINK_WORK_DIR   [infra/work/flink]  conf copy, logs, PID files, checkpoints, savepoints
#   FLINK_REST_PORT  [18081]             REST / web UI port
#   FLINK_RPC_PORT   [16123]             JobManager RPC port
#   FLINK_JOB_CLASS  [io.moestream.jobs.MoeStreamJob]
#   JAVA             [java]
#
# Configuration: infra/flink/conf/config.yaml and log4j.properties, copied into
# $FLINK_WORK_DIR/conf with the ports and directories above filled in.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
work="${FLINK_WORK_DIR:-$root/infra/work/flink}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
rest_port="${FLINK_REST_PORT:-18081}"
rpc_port="${FLINK_RPC_PORT:-16123}"
job_class="${FLINK_JOB_CLASS:-io.moestream.jobs.MoeStreamJob}"
java="${JAVA:-java}"
conf_src="$root/infra/flink/conf"
conf="$work/conf"
logs="$work/log"
pids="$work/pids"
rest="http://127.0.0.1:$rest_port"

# What flink-dist's config.yaml puts into env.java.default-opts.all (needed on Java 17+).
default_java_opts=(
  --add-exports=java.base/sun.net.util=ALL-UNNAMED
  --add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED
  --add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED
  --add-opens=java.base/java.lang=ALL-UNNAMED
  --add-opens=java.base/java.net=ALL-UNNAMED
  --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens=java.base/java.text=ALL-UNNAMED
  --add-opens=java.base/java.time=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
  --add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED
)

log() { echo "[flink-cluster] $*" >&2; }
die() { log "$*"; exit 1; }

# The Flink runtime class path: infra/flink-classpath/pom.xml resolved by Maven, cached until the pom changes.
classpath() {
  local pom="$root/infra/flink-classpath/pom.xml" cached="$root/infra/work/flink.classpath"
  if [ ! -s "$cached" ] || [ "$pom" -nt "$cached" ]; then
    mkdir -p "$(dirname "$cached")"
    log "resolving the Flink class path with Maven ($pom)"
    # offline first (the usual case once the jars are in ~/.m2), online if something is missing
    mvn -q -B -ntp -o -f "$pom" dependency:build-classpath -Dmdep.outputFile="$cached" >/dev/null 2>&1 \
      || mvn -q -B -ntp -f "$pom" dependency:build-classpath -Dmdep.outputFile="$cached" >&2 \
      || die "cannot resolve the Flink class path"
  fi
  cat "$cached"
}

# $conf/config.yaml = infra/flink/conf/config.yaml with this work directory's ports and paths
write_conf() {
  mkdir -p "$conf" "$logs" "$pids" "$work/plugins" "$work/tmp"
  cp "$conf_src/log4j.properties" "$conf/log4j.properties"
  cp "$conf_src/log4j.properties" "$conf/log4j-cli.properties"
  sed -e "s|^rest.port:.*|rest.port: $rest_port|" \
      -e "s|^jobmanager.rpc.port:.*|jobmanager.rpc.port: $rpc_port|" \
      -e "s|^execution.checkpointing.dir:.*|execution.checkpointing.dir: file://$work/checkpoints|" \
      -e "s|^execution.checkpointing.savepoint-dir:.*|execution.checkpointing.savepoint-dir: file://$work/savepoints|" \
      "$conf_src/config.yaml" > "$conf/config.yaml"
  echo "io.tmp.dirs: $work/tmp" >> "$conf/config.yaml"
  echo "web.tmpdir: $work/tmp" >> "$conf/config.yaml"
}

# env.java.opts.all from config.yaml (a flat key on one line)
java_opts_all() {
  sed -n 's/^env\.java\.opts\.all:[[:space:]]*//p' "$conf/config.yaml"
}

# the two result lines of BashJavaUtils: JVM flags, then -D dynamic properties
resource_params() {
  local cp="$1" command="$2" out
  out="$("$java" -cp "$cp" -Dlog4j2.level=WARN org.apache.flink.runtime.util.bash.BashJavaUtils "$command" --configDir "$conf" 2>&1)" \
    || die "BashJavaUtils $command failed: $out"
  echo "$out" | sed -n 's/^BASH_JAVA_UTILS_EXEC_RESULT://p' | tail -n 2
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# launch NAME MAIN_CLASS RESOURCE_COMMAND [ARGS...]: a daemon JVM with its PID file and log
launch() {
  local name="$1" main="$2" resources="$3"; shift 3
  local cp params jvm dynamic
  alive "$pids/$name.pid" && die "$name is already running (pid $(cat "$pids/$name.pid"))"
  cp="$(classpath)"
  params="$(resource_params "$cp" "$resources")"
  jvm="$(echo "$params" | sed -n 1p)"
  dynamic="$(echo "$params" | sed -n 2p)"
  # shellcheck disable=SC2086  # JVM flags and -D pairs are word lists on purpose
  FLINK_CONF_DIR="$conf" FLINK_PLUGINS_DIR="$work/plugins" nohup "$java" $jvm "${default_java_opts[@]}" $(java_opts_all) \
      -Dlog.file="$logs/$name.log" -Dlog4j.configurationFile="file:$conf/log4j.properties" \
      -classpath "$cp" "$main" --configDir "$conf" "$@" $dynamic \
      > "$logs/$name.out" 2>&1 < /dev/null &
  echo $! > "$pids/$name.pid"
  log "$name started (pid $!, log $logs/$name.log)"
}

rest_get() { curl -sf --max-time 5 "$rest$1"; }

registered_taskmanagers() {
  local n
  n="$(rest_get /overview 2>/dev/null | sed -n 's/.*"taskmanagers":\([0-9]*\).*/\1/p')"
  echo "${n:-0}"
}

taskmanagers_at_least() { [ "$(registered_taskmanagers)" -ge "$1" ]; }

await() { # await SECONDS DESCRIPTION COMMAND...
  local seconds="$1" what="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@"; do
    [ $SECONDS -lt $deadline ] || die "timed out after ${seconds}s waiting for $what (logs in $logs)"
    sleep 0.5
  done
}

next_taskmanager_id() {
  local i=1
  while [ -f "$pids/taskmanager-$i.pid" ]; do i=$((i + 1)); done
  echo "$i"
}

start_taskmanager() {
  local id="${1:-$(next_taskmanager_id)}"
  launch "taskmanager-$id" org.apache.flink.runtime.taskexecutor.TaskManagerRunner GET_TM_RESOURCE_PARAMS
}

start() {
  local n="${1:-2}" i
  write_conf
  if ! alive "$pids/jobmanager.pid"; then
    launch jobmanager org.apache.flink.runtime.entrypoint.StandaloneSessionClusterEntrypoint GET_JM_RESOURCE_PARAMS \
        --executionMode cluster
  fi
  await 120 "the JobManager's REST endpoint $rest" rest_get /overview >/dev/null
  for ((i = 1; i <= n; i++)); do
    alive "$pids/taskmanager-$i.pid" || start_taskmanager "$i"
  done
  await 120 "$n TaskManagers to register" taskmanagers_at_least "$n"
  log "cluster up: $rest, $(registered_taskmanagers) TaskManagers, work directory $work"
}

kill_taskmanager() {
  local id="${1:?kill-taskmanager needs an id}" pidfile="$pids/taskmanager-$1.pid"
  alive "$pidfile" || die "taskmanager-$id is not running"
  kill -9 "$(cat "$pidfile")"
  log "taskmanager-$id killed with SIGKILL (pid $(cat "$pidfile"))"
  mv "$pidfile" "$pidfile.killed"
}

cli() {
  local cp
  cp="$(classpath)"
  # shellcheck disable=SC2046
  FLINK_CONF_DIR="$conf" FLINK_PLUGINS_DIR="$work/plugins" "$java" "${default_java_opts[@]}" $(java_opts_all) \
      -Dlog.file="$logs/cli.log" -Dlog4j.configurationFile="file:$conf/log4j-cli.properties" \
      -classpath "$cp" org.apache.flink.client.cli.CliFrontend "$@"
}

submit() {
  local jar="${1:?submit needs the job jar}"; shift
  [ -f "$jar" ] || die "no job jar at $jar"
  [ -f "$conf/config.yaml" ] || die "the cluster is not started (no $conf/config.yaml)"
  local out
  out="$(cli run --detached --class "$job_class" "$jar" "$@" 2>&1)" || { echo "$out" >&2; die "submission failed"; }
  echo "$out" | grep -o 'JobID [0-9a-f]\{32\}' | awk '{print $2}' | tail -n 1 | grep . || { echo "$out" >&2; die "no job id in the CLI output"; }
}

stop_process() { # stop_process PIDFILE: SIGTERM, then SIGKILL after 20 s
  local pidfile="$1" pid i
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 40; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -9 "$pid" 2>/dev/null || true
      log "$(basename "$pidfile" .pid) did not stop within 20 s, killed"
    else
      log "$(basename "$pidfile" .pid) stopped"
    fi
  fi
  rm -f "$pidfile"
}

stop() {
  local f
  for f in "$pids"/taskmanager-*.pid; do [ -f "$f" ] && stop_process "$f"; done
  rm -f "$pids"/*.killed
  [ -f "$pids/jobmanager.pid" ] && stop_process "$pids/jobmanager.pid"
  return 0
}

status() {
  local f state
  for f in "$pids"/*.pid; do
    [ -f "$f" ] || continue
    if alive "$f"; then state=running; else state=dead; fi
    echo "$(basename "$f" .pid) pid $(cat "$f") $state"
  done
  rest_get /overview && echo || echo "REST $rest not answering"
}

command="${1:-}"
[ $# -gt 0 ] && shift
case "$command" in
  start) start "$@" ;;
  start-taskmanager) write_conf; start_taskmanager "$@" ;;
  kill-taskmanager) kill_taskmanager "$@" ;;
  submit) submit "$@" ;;
  cancel) cli cancel "${1:?cancel needs a job id}" ;;
  jobs) rest_get /jobs/overview; echo ;;
  status) status ;;
  stop) stop ;;
  classpath) classpath ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

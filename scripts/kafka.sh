#!/usr/bin/env bash
# A real Apache Kafka broker for live mode and the Kafka tests, without Docker or a tarball:
# Maven fetches the jars from Maven Central into .cache/kafka/<version>/libs, and `up` runs one
# combined broker + controller (KRaft) on 127.0.0.1 in the background.
#
#   bash scripts/kafka.sh fetch    jars into the cache (skipped when already there)
#   bash scripts/kafka.sh up       format fresh storage, start, wait until it answers
#   bash scripts/kafka.sh down     stop (SIGTERM, then SIGKILL) and remove its data
#   bash scripts/kafka.sh pause    stop, keeping its data (a broker outage in a fault test)
#   bash scripts/kafka.sh resume   start again on the kept data
#   bash scripts/kafka.sh status   exit 0 and the bootstrap address when running, 3 when not
#
# Environment:
#   KAFKA_PORT (19092)             client listener; data, pid and log files are per port
#   KAFKA_CONTROLLER_PORT          KRaft controller listener, default KAFKA_PORT + 1
#   KAFKA_VERSION (3.9.2)          the latest 3.9 patch on Maven Central when this was written
#   KAFKA_HEAP_OPTS (-Xms256m -Xmx512m)
#   KAFKA_START_TIMEOUT_S (60)     how long `up` waits for the broker to answer
#   KAFKA_STOP_TIMEOUT_S (30)      how long `down` waits after SIGTERM before SIGKILL
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/process.sh
source "$root/scripts/lib/process.sh"
version="${KAFKA_VERSION:-3.9.2}"
port="${KAFKA_PORT:-19092}"
controller_port="${KAFKA_CONTROLLER_PORT:-$((port + 1))}"
cache="$root/.cache/kafka"
libs="$cache/$version/libs"
data="$cache/data-$port"
config="$cache/server-$port.properties"
pid_file="$cache/broker-$port.pid"
log_file="$cache/broker-$port.log"
bootstrap="127.0.0.1:$port"

die() {
  echo "kafka.sh: $*" >&2
  exit 1
}

# Serialises fetch / up / down for one port, so two test workers or terminals cannot start two
# brokers on one data directory or copy jars over each other.
lock() {
  mkdir -p "$cache"
  exec 9>"$cache/$1.lock"
  flock -w 300 9 || die "another kafka.sh $1 has held $cache/$1.lock for 5 minutes"
}

require_java() {
  command -v java >/dev/null || die "java is not installed: Kafka $version needs Java 17 (apt-get install openjdk-17-jre-headless)"
}

fetch() {
  if [[ -f "$libs/.complete" ]]; then
    echo "kafka $version: jars already in ${libs#"$root/"}"
    return
  fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Kafka's jars: apt-get install maven"
  lock fetch
  [[ -f "$libs/.complete" ]] && return
  local started=$SECONDS staging="$libs.partial"
  rm -rf "$staging"
  echo "kafka $version: fetching jars and their runtime dependencies from Maven Central"
  # Maven's output is shown only when it fails (it colours even quiet, batch-mode output).
  mvn -q -B --no-transfer-progress -f "$root/scripts/kafka/pom.xml" \
    -Dkafka.version="$version" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$staging" \
    >"$cache/fetch.log" 2>&1 ||
    {
      cat "$cache/fetch.log" >&2
      rm -rf "$staging"
      die "Maven could not fetch Kafka $version (its output is above)"
    }
  # A half-copied folder never passes for a complete one: rename, then mark.
  rm -rf "$libs"
  mv "$staging" "$libs"
  touch "$libs/.complete"
  echo "kafka $version: $(find "$libs" -name '*.jar' | wc -l) jars in ${libs#"$root/"} ($((SECONDS - started)) s)"
}

# The pid of this port's broker when it is alive and really ours (pid files outlive reboots and
# pids get reused), else nothing.
broker_pid() {
  [[ -f "$pid_file" ]] || return 0
  local pid
  pid="$(<"$pid_file")"
  if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $config"; then
    echo "$pid"
  fi
}

read -ra heap_opts <<<"${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
java_opts=(
  "${heap_opts[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError
  -Djava.awt.headless=true "-Dlog4j.configuration=file:$root/scripts/kafka/log4j.properties"
)

write_config() {
  cat >"$config" <<EOF
# Written by scripts/kafka.sh up; removed by down.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data
# Topics are created on purpose with their partition counts (harness/live/kafka-config.ts).
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
# One node: nobody else can join, so the first consumer of a group need not wait 3 s for them.
group.initial.rebalance.delay.ms=0
EOF
}

# Polls with kafkajs, as the harness itself will talk to the broker: ready means a client gets
# an answer to a metadata request, not merely that the port is open.
wait_until_answering() {
  local pid="$1"
  [[ -d "$root/node_modules/kafkajs" ]] || die "node_modules/kafkajs is missing: run npm ci first"
  (cd "$root" && node --input-type=module -e '
    import { Kafka, logLevel } from "kafkajs";
    const [bootstrap, pid, timeoutS] = process.argv.slice(1);
    const deadline = Date.now() + Number(timeoutS) * 1000;
    const kafka = new Kafka({
      clientId: "phasebench-kafka-sh",
      brokers: [bootstrap],
      logLevel: logLevel.NOTHING,
      connectionTimeout: 1000,
      requestTimeout: 2000,
      retry: { retries: 0 },
    });
    for (;;) {
      try {
        process.kill(Number(pid), 0);
      } catch {
        process.exit(3);
      }
      const admin = kafka.admin();
      try {
        await admin.connect();
        await admin.listTopics();
        await admin.disconnect();
        process.exit(0);
      } catch {
        await admin.disconnect().catch(() => {});
      }
      if (Date.now() > deadline) process.exit(1);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  ' "$bootstrap" "$pid" "${KAFKA_START_TIMEOUT_S:-60}")
}

# up: fresh storage. resume: the storage a 'pause' kept (a broker restart that loses nothing).
up() {
  start_broker fresh
}

resume() {
  [[ -f "$data/meta.properties" ]] || die "no paused broker's storage in ${data#"$root/"}: use 'up'"
  start_broker keep
}

# Stops the broker but keeps its storage, so 'resume' brings it back with every topic and offset.
pause() {
  lock "broker-$port"
  local pid
  pid="$(broker_pid)"
  [[ -n "$pid" ]] || die "no broker running on $bootstrap"
  terminate_pid "$pid" "${KAFKA_STOP_TIMEOUT_S:-30}" "kafka.sh: broker"
  rm -f "$pid_file"
  echo "kafka: stopped the broker on $bootstrap (pid $pid), storage kept for 'resume'"
}

format_storage() {
  # A KRaft cluster id is 16 random bytes in URL-safe base64; one starting with '-' would read
  # as an option on the command line.
  local cluster_id="-"
  while [[ "$cluster_id" == -* ]]; do
    cluster_id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
  done
  java "${java_opts[@]}" -cp "$libs/*" kafka.tools.StorageTool format \
    --cluster-id "$cluster_id" --config "$config" >>"$log_file" 2>&1 ||
    {
      tail -n 20 "$log_file" >&2
      remove_broker_files
      die "formatting KRaft storage in ${data#"$root/"} failed"
    }
}

start_broker() {
  local mode="$1"
  [[ -f "$libs/.complete" ]] ||
    die "Kafka $version's jars are not in ${libs#"$root/"}: run 'bash scripts/kafka.sh fetch' first (needs Maven and Maven Central)"
  require_java
  lock "broker-$port"
  local pid
  pid="$(broker_pid)"
  if [[ -n "$pid" ]]; then
    wait_until_answering "$pid" || die "a broker (pid $pid) runs on $bootstrap but does not answer; try 'bash scripts/kafka.sh down'"
    echo "kafka $version: already running on $bootstrap (pid $pid)"
    return
  fi

  local started=$SECONDS listener
  for listener in "$port" "$controller_port"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$listener") 2>/dev/null; then
      die "port $listener on 127.0.0.1 is in use by another process: choose another KAFKA_PORT"
    fi
  done
  if [[ "$mode" == keep ]]; then
    rm -f "$pid_file"
    echo "--- resumed on kept storage" >>"$log_file"
  else
    rm -rf "$data" "$pid_file"
    mkdir -p "$data"
    write_config
    : >"$log_file"
    format_storage
  fi

  # setsid: the broker outlives this script and the test run that started it, and a Ctrl-C in
  # that terminal does not kill it half-way; `down` is what stops it. 9>&-: the broker must not
  # inherit the lock, or the next `down` would wait for the broker it is meant to stop.
  setsid java "${java_opts[@]}" -cp "$libs/*" kafka.Kafka "$config" </dev/null >>"$log_file" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$pid_file"

  local status=0
  wait_until_answering "$pid" || status=$?
  if ((status != 0)); then
    # The cause (a bind error, a bad setting) is logged well before the shutdown lines at the end.
    echo "--- first errors in ${log_file#"$root/"}:" >&2
    grep -E '^\[[^]]*\] (ERROR|FATAL) ' "$log_file" | head -n 5 >&2 || true
    echo "--- its last lines:" >&2
    tail -n 15 "$log_file" >&2
    if ((status == 3)); then
      remove_broker_files
      die "the broker exited while starting (log above)"
    fi
    stop_broker
    die "the broker did not answer on $bootstrap within ${KAFKA_START_TIMEOUT_S:-60} s (log above)"
  fi
  echo "kafka $version: up on $bootstrap (pid $pid, started in $((SECONDS - started)) s, log ${log_file#"$root/"})"
}

stop_broker() {
  local pid
  pid="$(broker_pid)"
  if [[ -n "$pid" ]]; then
    terminate_pid "$pid" "${KAFKA_STOP_TIMEOUT_S:-30}" "kafka.sh: broker"
    echo "kafka: stopped the broker on $bootstrap (pid $pid)"
  else
    echo "kafka: no broker running on $bootstrap"
  fi
  remove_broker_files
}

# The log stays: it is what tells why a broker failed or what it did.
remove_broker_files() {
  rm -rf "$data" "$pid_file" "$config"
}

down() {
  lock "broker-$port"
  stop_broker
}

status() {
  local pid
  pid="$(broker_pid)"
  if [[ -n "$pid" ]]; then
    echo "kafka $version: running on $bootstrap (pid $pid, log ${log_file#"$root/"})"
  else
    echo "kafka $version: not running on $bootstrap"
    exit 3
  fi
}

case "${1:-}" in
fetch) fetch ;;
up) up ;;
down) down ;;
pause) pause ;;
resume) resume ;;
status) status ;;
*)
  echo "usage: bash scripts/kafka.sh fetch|up|down|pause|resume|status   (KAFKA_PORT=$port)" >&2
  exit 2
  ;;
esac

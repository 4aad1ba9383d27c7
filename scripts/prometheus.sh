#!/usr/bin/env bash
# A real Prometheus on 127.0.0.1 for backfilled simulated runs, live-mode scraping and the
# metrics tests: Debian's prometheus package (apt-get install prometheus), no Docker.
#
#   bash scripts/prometheus.sh up       start on a TSDB folder, wait until /-/ready answers
#   bash scripts/prometheus.sh down     stop (SIGTERM, then SIGKILL); the TSDB folder is kept
#   bash scripts/prometheus.sh status   exit 0 and the URL when running, 3 when not
#
# Environment:
#   PROMETHEUS_PORT (19090)              HTTP listener on 127.0.0.1; pid and log files are per port
#   PROMETHEUS_TSDB                      data folder, e.g. one `phasebench backfill --tsdb` wrote
#                                        (default .cache/prometheus/data-<port>)
#   PROMETHEUS_CONFIG                    (deploy/prometheus/standalone.yml: no scrape targets)
#   PROMETHEUS_RETENTION (10y)           backfilled runs are placed in the past; a short
#                                        retention would delete their blocks on load
#   PROMETHEUS_BIN (prometheus)
#   PROMETHEUS_START_TIMEOUT_S (60)      how long `up` waits for /-/ready
#   PROMETHEUS_STOP_TIMEOUT_S (30)       how long `down` waits after SIGTERM before SIGKILL
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/process.sh
source "$root/scripts/lib/process.sh"
port="${PROMETHEUS_PORT:-19090}"
cache="$root/.cache/prometheus"
tsdb="$(realpath -m "${PROMETHEUS_TSDB:-$cache/data-$port}")"
config="$(realpath -m "${PROMETHEUS_CONFIG:-$root/deploy/prometheus/standalone.yml}")"
retention="${PROMETHEUS_RETENTION:-10y}"
bin="${PROMETHEUS_BIN:-prometheus}"
pid_file="$cache/prometheus-$port.pid"
log_file="$cache/prometheus-$port.log"
listen="127.0.0.1:$port"
url="http://$listen"

die() {
  echo "prometheus.sh: $*" >&2
  exit 1
}

# Serialises up / down for one port, so two test workers or terminals cannot start two servers.
lock() {
  mkdir -p "$cache"
  exec 9>"$cache/server-$port.lock"
  flock -w 120 9 || die "another prometheus.sh has held $cache/server-$port.lock for 2 minutes"
}

# The pid of this port's server when it is alive and really ours (pid files outlive reboots and
# pids get reused), else nothing.
server_pid() {
  [[ -f "$pid_file" ]] || return 0
  local pid
  pid="$(<"$pid_file")"
  if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--web.listen-address=$listen"; then
    echo "$pid"
  fi
}

ready() {
  curl -fsS -o /dev/null --max-time 2 "$url/-/ready" 2>/dev/null
}

up() {
  command -v "$bin" >/dev/null || die "$bin is not installed: apt-get install prometheus (Debian/Ubuntu), or set PROMETHEUS_BIN"
  command -v curl >/dev/null || die "curl is needed to wait for Prometheus: apt-get install curl"
  [[ -f "$config" ]] || die "no Prometheus config at $config"
  lock
  local pid
  pid="$(server_pid)"
  if [[ -n "$pid" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "--storage.tsdb.path=$tsdb " ||
      die "a Prometheus (pid $pid) already runs on $url with another TSDB folder: 'bash scripts/prometheus.sh down' first"
    ready || die "a Prometheus (pid $pid) runs on $url but is not ready; try 'bash scripts/prometheus.sh down'"
    echo "prometheus: already running on $url (pid $pid, TSDB $tsdb)"
    return
  fi

  local started=$SECONDS
  mkdir -p "$tsdb"
  : >"$log_file"
  # setsid: the server outlives this script and the test run that started it, and a Ctrl-C in
  # that terminal does not kill it half-way; `down` stops it. 9>&-: it must not inherit the lock.
  setsid "$bin" \
    "--config.file=$config" \
    "--storage.tsdb.path=$tsdb" \
    "--storage.tsdb.retention.time=$retention" \
    "--web.listen-address=$listen" \
    --web.enable-remote-write-receiver \
    </dev/null >>"$log_file" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$pid_file"

  local deadline=$((SECONDS + ${PROMETHEUS_START_TIMEOUT_S:-60}))
  until ready; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "--- last lines of $log_file:" >&2
      tail -n 30 "$log_file" >&2
      rm -f "$pid_file"
      die "Prometheus exited while starting (log above)"
    fi
    if ((SECONDS > deadline)); then
      echo "--- last lines of $log_file:" >&2
      tail -n 30 "$log_file" >&2
      stop_server
      die "Prometheus was not ready on $url within ${PROMETHEUS_START_TIMEOUT_S:-60} s (log above)"
    fi
    sleep 0.2
  done
  echo "prometheus: up on $url (pid $pid, TSDB $tsdb, retention $retention, ready in $((SECONDS - started)) s, log ${log_file#"$root/"})"
}

stop_server() {
  local pid
  pid="$(server_pid)"
  if [[ -n "$pid" ]]; then
    terminate_pid "$pid" "${PROMETHEUS_STOP_TIMEOUT_S:-30}" "prometheus.sh: server"
    echo "prometheus: stopped the server on $url (pid $pid)"
  else
    echo "prometheus: no server running on $url"
  fi
  rm -f "$pid_file"
}

down() {
  lock
  stop_server
}

status() {
  local pid
  pid="$(server_pid)"
  if [[ -n "$pid" ]]; then
    echo "prometheus: running on $url (pid $pid, log ${log_file#"$root/"})"
  else
    echo "prometheus: not running on $url"
    exit 3
  fi
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
*)
  echo "usage: bash scripts/prometheus.sh up|down|status   (PROMETHEUS_PORT=$port PROMETHEUS_TSDB=<dir>)" >&2
  exit 2
  ;;
esac

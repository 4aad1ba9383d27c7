# Shared by scripts/kafka.sh and scripts/prometheus.sh (sourced, not run).

# terminate_pid PID TIMEOUT_S WHO: SIGTERM, wait up to TIMEOUT_S seconds for a clean exit, then
# SIGKILL and wait for it to go. WHO names the process in the warning ("kafka.sh: broker").
terminate_pid() {
  local pid="$1" timeout="$2" who="$3" waited=0
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && ((waited < timeout * 10)); do
    sleep 0.1
    waited=$((waited + 1))
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$who (pid $pid) still running ${timeout} s after SIGTERM: sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
}

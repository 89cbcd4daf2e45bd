# Shell helpers shared by bench/run.sh and bench/scaleout.sh (sourced, not run).

stop_pid() {  # PID: TERM, wait up to 10 s, then KILL it and its children
  local pid="$1" kids; kids="$(pgrep -P "$pid" || true)"
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  for k in $kids; do kill -0 "$k" 2>/dev/null && kill -KILL "$k" 2>/dev/null; done
  return 0
}

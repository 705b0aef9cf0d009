# Shared by the demos (sourced, not run): cleanup of the processes in $pids and of $work on
# exit, section titles, and bounded polling.

cleanup() {
  exec 2>/dev/null  # no job notices for the processes killed below
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# Polls a command every 100 ms for at most $1 seconds.
wait_until() {
  local limit=$1; shift
  for _ in $(seq 1 $((limit * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "demo: timed out waiting for: $*" >&2
  return 1
}

#!/usr/bin/env bash
# The handoff story on one host, with real processes:
#   1. handoffd starts on a fresh data directory;
#   2. a processor agent (handoffctl serve + processor.sh) waits for work;
#   3. the analyzer hands it intent.handoff.process.v1 (a handoff id and a record count);
#   4. mid-way, the processor is killed with SIGKILL;
#   5. a new processor starts; after the lease runs out it gets the intent again, with the
#      last checkpoint, and resumes at the step where the first one stopped;
#   6. the analyzer waits for the result and prints the intent's event history.
# Usage: examples/demo.sh [build-dir]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd)
bin="$build/daemons"
work=$(mktemp -d /tmp/handoff-demo.XXXXXX)
export HANDOFF_SOCKET="ipc://$work/handoffd.sock"
export PATH="$bin:$PATH"
processor_address="agent://demo/local/processor"
pids=()

cleanup() {
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Polls a condition (a command) every 100 ms for at most $1 seconds.
wait_until() {
  local limit=$1; shift
  for _ in $(seq 1 $((limit * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "demo: timed out waiting for: $*" >&2
  return 1
}
checkpoint_step() {
  handoffctl --json get "$1" | sed -n 's/.*"step": *\([0-9]*\).*/\1/p' | head -n 1
}
step_at_least() { [ "$(checkpoint_step "$1")" -ge "$2" ] 2>/dev/null; }

say "1. start handoffd (data in $work/data)"
cat >"$work/node.toml" <<TOML
[node]
name = "node-a"
data_dir = "$work/data"
agent_endpoint = "$HANDOFF_SOCKET"
TOML
handoffd --config "$work/node.toml" 2>"$work/handoffd.log" &
pids+=($!)
wait_until 10 handoffctl status
handoffctl status

say "2. start the processor agent ($processor_address)"
handoffctl serve --as "$processor_address" --exec "exec sh '$here/processor.sh'" \
  2>"$work/processor-1.log" &
first_processor=$!
pids+=($first_processor)

say "3. the analyzer hands off the work"
intent=$(handoffctl send --from agent://demo/local/analyzer --to "$processor_address" \
  --type intent.handoff.process.v1 --lease 2s \
  --payload '{"handoff_id":"hf-2026-001","record_count":8}')
echo "send returned intent $intent (already on disk)"

say "4. kill the processor with SIGKILL once it has checkpointed step 3"
wait_until 30 step_at_least "$intent" 3
kill -9 "$first_processor"
echo "processor killed; last checkpoint: step $(checkpoint_step "$intent")"
sed 's/^/    /' "$work/processor-1.log" | grep 'processor:' || true

say "5. start a new processor; it gets the intent back after the 2s lease"
handoffctl serve --as "$processor_address" --exec "exec sh '$here/processor.sh'" \
  2>"$work/processor-2.log" &
pids+=($!)

say "6. the analyzer waits for the result"
handoffctl wait "$intent" --timeout 60s
sed 's/^/    /' "$work/processor-2.log" | grep 'processor:' || true

say "the intent"
handoffctl get "$intent"
say "its event history"
handoffctl events "$intent"
echo
echo "demo finished: the processor was killed at step 3 and attempt 2 resumed from its checkpoint."

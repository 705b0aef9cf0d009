#!/usr/bin/env bash
# The handoff story with Python agents (examples/python/), on one daemon:
#   1. handoffd starts; the processor (a Python Agent) waits for work;
#   2. the analyzer (a Python Client) hands off intent.handoff.process.v1 and waits;
#   3. the processor is killed with SIGKILL mid-way, after its step-3 checkpoint;
#   4. a new processor starts: the intent comes back (attempt 2) with its checkpoint and
#      resumes at step 4; the analyzer prints the result and the history.
# Usage: examples/python_demo.sh [build-dir]. Runs Debian's /usr/bin/python3, which sees
# python3-zmq and python3-msgpack (a python3 earlier on PATH may not).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd)
python=/usr/bin/python3
work=$(mktemp -d /tmp/handoff-pydemo.XXXXXX)
export PATH="$build/daemons:$PATH"
export PYTHONPATH="$here/../python"
export HANDOFF_SOCKET="ipc://$work/handoffd.sock"
pids=()

# shellcheck source=examples/lib.sh
. "$here/lib.sh"
step_at_least() {
  local step
  step=$(handoffctl --json get "$1" | sed -n 's/.*"step": *\([0-9]*\).*/\1/p' | head -n 1)
  [ "${step:-0}" -ge "$2" ]
}
start_processor() {
  "$python" "$here/python/processor.py" >>"$work/processor.log" 2>&1 &
  pids+=($!)
  processor_pid=$!
}

cat >"$work/handoffd.toml" <<TOML
[node]
name = "py-demo"
data_dir = "$work/data"
agent_endpoint = "$HANDOFF_SOCKET"
TOML

say "1. start handoffd and a Python processor agent"
handoffd --config "$work/handoffd.toml" 2>>"$work/handoffd.log" &
pids+=($!)
wait_until 15 handoffctl status
start_processor

say "2. the Python analyzer hands off the work and waits for it"
id=$("$python" "$here/python/analyzer.py" send 8)
echo "analyzer: stored intent $id (send_intent returned only then)"
"$python" "$here/python/analyzer.py" wait "$id" >"$work/analyzer.out" &
pids+=($!)
analyzer_pid=$!

say "3. kill the processor with SIGKILL once it has checkpointed step 3"
wait_until 60 step_at_least "$id" 3
kill -9 "$processor_pid"; wait "$processor_pid" 2>/dev/null || true
echo "processor killed; the intent's checkpoint is step 3 and its lease runs out in 2 s"

say "4. start a new processor: attempt 2 resumes at step 4"
start_processor
wait "$analyzer_pid"
sed 's/^/    /' "$work/processor.log"
cat "$work/analyzer.out"
grep -q '"resumed_after_step": 3\|resumed_after_step.: 3' "$work/analyzer.out"
echo
echo "python demo finished: the processor was killed mid-way; attempt 2 resumed from the step-3"
echo "checkpoint and nothing was lost."

#!/usr/bin/env bash
# The handoff story across two daemons on this machine, with real processes:
#   0. each node gets a CURVE key pair, and lists the other's public key in [[peers]];
#   1. node-a (the analyzer's host) and node-b (the processor's host) start and link up,
#      encrypted and authenticated;
#   2. a processor agent (handoffctl serve + processor.sh) waits for work on node-b;
#   3. the analyzer hands intent.handoff.process.v1 (a handoff id and a record count) to
#      node-a, which stores it and forwards it to node-b;
#   4. mid-way, the processor is killed with SIGKILL;
#   5. node-b's daemon is killed too, and more work is handed off while it is down: it waits
#      in node-a's outbox;
#   6. node-b and a new processor start; the first intent is delivered again with its last
#      checkpoint and resumes where it stopped; the waiting ones go out;
#   7. node-a, the origin, shows each intent's lifecycle and full event history.
# Usage: examples/demo.sh [build-dir]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd)
bin="$build/daemons"
work=$(mktemp -d /tmp/handoff-demo.XXXXXX)
export PATH="$bin:$PATH"
processor="agent://demo/b/processor"
pids=()

# shellcheck source=examples/lib.sh
. "$here/lib.sh"
free_port() {
  local port
  while true; do
    port=$((30000 + RANDOM % 20000))
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
}
a() { handoffctl --socket "ipc://$work/node-a.sock" "$@"; }
b() { handoffctl --socket "ipc://$work/node-b.sock" "$@"; }
checkpoint_step() { a --json get "$1" | sed -n 's/.*"step": *\([0-9]*\).*/\1/p' | head -n 1; }
step_at_least() { [ "$(checkpoint_step "$1")" -ge "$2" ] 2>/dev/null; }
peer_connected() { a --json status | grep -q '"connected": true'; }
peer_disconnected() { a --json status | grep -q '"connected": false'; }

port_a=$(free_port)
port_b=$(free_port)
write_config() {  # name, port, peer, peer port, route pattern for the peer, peer's key, [node] extra
  cat >"$work/$1.toml" <<TOML
[node]
name = "$1"
data_dir = "$work/$1"
agent_endpoint = "ipc://$work/$1.sock"
peer_endpoint = "tcp://127.0.0.1:$2"
peer_heartbeat = "250ms"
${7:-}

[[peers]]
name = "$3"
endpoint = "tcp://127.0.0.1:$4"
public_key = "$6"

[[routes]]
match = "$5"
node = "$3"
TOML
}

say "0. give each node a key pair (peer links are CURVE-encrypted and authenticated)"
# node-a's key in a file of its own; node-b's made in its data directory on first need.
key_a=$(handoffd --keygen "$work/node-a.key")
write_config node-b "$port_b" node-a "$port_a" "agent://demo/a/*" "$key_a"
key_b=$(handoffd --config "$work/node-b.toml" --show-public-key)
write_config node-a "$port_a" node-b "$port_b" "agent://demo/b/*" "$key_b" \
  "secret_key_file = \"$work/node-a.key\""
echo "node-a public key: $key_a (listed in node-b's [[peers]])"
echo "node-b public key: $key_b (listed in node-a's [[peers]])"
start_node() {
  handoffd --config "$work/$1.toml" 2>>"$work/$1.log" &
  pids+=($!)
  eval "pid_${1//-/_}=$!"
}
start_processor() {
  handoffctl --socket "ipc://$work/node-b.sock" serve --as "$processor" \
    --exec "exec sh '$here/processor.sh'" 2>>"$work/processor.log" &
  pids+=($!)
  processor_pid=$!
}

say "1. start node-a (analyzer's host) and node-b (processor's host), linked over TCP"
start_node node-a
start_node node-b
wait_until 15 a status
wait_until 15 b status
wait_until 15 peer_connected
a status | grep -E 'node:|peer_security:|peer:'

say "2. start the processor agent on node-b ($processor)"
start_processor

say "3. the analyzer hands off the work through node-a"
first=$(a send --from agent://demo/a/analyzer --to "$processor" \
  --type intent.handoff.process.v1 --lease 2s \
  --payload '{"handoff_id":"hf-2026-001","record_count":8}')
echo "node-a stored intent $first (send returned only then) and forwards it to node-b"

say "4. kill the processor with SIGKILL once it has checkpointed step 3"
wait_until 60 step_at_least "$first" 3
kill -9 "$processor_pid"; wait "$processor_pid" 2>/dev/null || true
echo "processor killed; node-a's copy shows the last checkpoint: step $(checkpoint_step "$first")"

say "5. kill node-b's daemon too, and hand off more work while it is down"
kill -9 "$pid_node_b"; wait "$pid_node_b" 2>/dev/null || true
second=$(a send --from agent://demo/a/analyzer --to "$processor" \
  --type intent.handoff.process.v1 --lease 2s \
  --payload '{"handoff_id":"hf-2026-002","record_count":3}')
third=$(a send --from agent://demo/a/analyzer --to "$processor" \
  --type intent.handoff.process.v1 --lease 2s \
  --payload '{"handoff_id":"hf-2026-003","record_count":3}')
echo "sent $second and $third; they wait in node-a's outbox:"
wait_until 15 peer_disconnected
a status | grep -E 'peer:'

say "6. restart node-b and a processor; the first intent resumes from its checkpoint"
start_node node-b
wait_until 15 b status
start_processor
for id in "$first" "$second" "$third"; do
  printf '%s -> ' "$id"
  a wait "$id" --timeout 90s
done
grep 'processor:' "$work/processor.log" | sed 's/^/    /'

say "the first intent, as its origin node-a sees it"
a get "$first"
say "its event history on node-a (the node column says where each event happened)"
a events "$first"
echo
echo "demo finished: the processor and node-b were both killed mid-way; nothing was lost, and"
echo "attempt 2 resumed from the step-3 checkpoint."

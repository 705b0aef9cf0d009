#!/bin/sh
# A benchmark killed with SIGKILL (no chance to clean up) takes its daemons with it: each gets
# SIGTERM when the benchmark's process dies (PR_SET_PDEATHSIG, bench_daemons.cc) and stops.
# Run by ctest: bench_kill_check.sh HANDOFF_BENCH HANDOFFD
set -u
bench=$1
handoffd=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() {
  echo "bench_kill_check: $*" >&2
  exit 1
}
# A stand-in for handoffd that notes its pid (the same as the daemon's: it execs it).
cat >"$work/handoffd" <<EOF
#!/bin/sh
echo \$\$ >>"$work/pids"
exec "$handoffd" "\$@"
EOF
chmod +x "$work/handoffd"
"$bench" --nodes 2 --count 100000000 --handoffd "$work/handoffd" >/dev/null 2>&1 &
bench_pid=$!
started() { [ -f "$work/pids" ] && [ "$(wc -l <"$work/pids")" -ge 2 ]; }
i=0
until started; do
  i=$((i + 1))
  [ $i -le 300 ] || fail "the benchmark's two daemons did not start within 30 s"
  sleep 0.1
done
kill -9 "$bench_pid"
wait "$bench_pid" 2>/dev/null
for pid in $(cat "$work/pids"); do
  i=0
  while kill -0 "$pid" 2>/dev/null && [ "$(ps -o stat= -p "$pid" | cut -c1)" != Z ]; do
    i=$((i + 1))
    [ $i -le 100 ] || { kill -9 "$pid"; fail "daemon $pid still ran 10 s after its benchmark was killed"; }
    sleep 0.1
  done
done
echo "bench_kill_check: both daemons stopped once the benchmark was killed"

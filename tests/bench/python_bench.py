#!/usr/bin/python3
"""python_bench: the durable handoff round trip, driven by the Python client (docs/performance.md).

Starts its own handoffd on a temporary directory (fsync on unless --no-fsync), then agent A
sends intents with a 1 KiB payload and waits for each outcome while agent B (a Python Agent)
completes them; prints round trips per second and the latency of each round trip (send to
outcome received), with the conditions. Every result is checked.

    /usr/bin/python3 tests/bench/python_bench.py [--window 1] [--count 2000] [--api sync|aio]
        [--transport stream|zeromq]

--api sync: the blocking Client and Agent (threads; window 1 only). --api aio: handoff.aio,
`window` round trips in flight on one event loop. --transport zeromq starts the daemon with
agent_stream = false, so that the clients and agents talk ZeroMQ (default: its stream socket).
Debian's /usr/bin/python3 (it sees
python3-zmq and python3-msgpack).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))

import handoff  # noqa: E402
from handoff import aio  # noqa: E402

ADDRESS = "agent://bench/b/worker"


def start_daemon(handoffd: str, root: Path, fsync: bool, stream: bool) -> subprocess.Popen:
    endpoint = f"ipc://{root}/bench.sock"
    (root / "bench.toml").write_text(
        "[node]\nname = \"bench\"\n"
        f'data_dir = "{root}/data"\nagent_endpoint = "{endpoint}"\n'
        f"fsync = {'true' if fsync else 'false'}\n"
        f"agent_stream = {'true' if stream else 'false'}\n"
    )
    proc = subprocess.Popen([handoffd, "--config", str(root / "bench.toml")],
                            stderr=open(root / "handoffd.log", "wb"))
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with handoff.Client(endpoint, timeout=1.0) as c:
                c.status()
            return proc
        except handoff.HandoffError:
            time.sleep(0.02)
    proc.kill()
    raise SystemExit(f"handoffd did not start; see {root}/handoffd.log")


def payload(i: int, size: int) -> dict:
    return {"i": i, "pad": "x" * max(0, size - 24)}


def run_sync(endpoint: str, count: int, size: int) -> list:
    agent = handoff.Agent(ADDRESS, lambda t: {"i": t.payload["i"]}, endpoint=endpoint)
    runner = threading.Thread(target=agent.run, daemon=True)
    runner.start()
    latencies = []
    with handoff.Client(endpoint) as client:
        for i in range(count):
            start = time.perf_counter()
            intent_id = client.send_intent(intent_type="intent.bench.v1", to_agent=ADDRESS,
                                           payload=payload(i, size))
            outcome = client.wait_for(intent_id, timeout=60)
            if outcome["status"] != "COMPLETED" or outcome["result"] != {"i": i}:
                raise SystemExit(f"round trip {i} came back wrong: {outcome}")
            latencies.append(time.perf_counter() - start)
    agent.stop()
    runner.join(30)
    return latencies


async def run_aio(endpoint: str, count: int, size: int, window: int, batches: bool) -> list:
    agent = aio.Agent(ADDRESS, credit=window, endpoint=endpoint, batches=batches)

    @agent.handler
    async def complete(task: aio.Task):
        return {"i": task.payload["i"]}

    runner = asyncio.get_running_loop().create_task(agent.run())
    latencies = []
    next_i = 0

    async def sender(client: aio.Client) -> None:
        nonlocal next_i
        while next_i < count:
            i = next_i
            next_i += 1
            start = time.perf_counter()
            intent_id = await client.send_intent(intent_type="intent.bench.v1", to_agent=ADDRESS,
                                                 payload=payload(i, size))
            outcome = await client.wait_for(intent_id, timeout=120)
            if outcome["status"] != "COMPLETED" or outcome["result"] != {"i": i}:
                raise SystemExit(f"round trip {i} came back wrong: {outcome}")
            latencies.append(time.perf_counter() - start)

    async with aio.Client(endpoint, batches=batches) as client:
        await asyncio.gather(*(sender(client) for _ in range(window)))
    agent.stop()
    await runner
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--window", type=int, default=1)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--payload", type=int, default=1024)
    parser.add_argument("--api", choices=["sync", "aio"], default=None)
    parser.add_argument("--no-fsync", action="store_true")
    parser.add_argument("--protocol", type=int, choices=[1, 2], default=2,
                        help="aio only: 2 (default) batches requests and replies, 1 does not")
    parser.add_argument("--transport", choices=["stream", "zeromq"], default="stream",
                        help="zeromq: the daemon serves no stream socket, so everyone uses ZeroMQ")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--handoffd", default=os.environ.get(
        "HANDOFFD", str(ROOT / "build" / "daemons" / "handoffd")))
    args = parser.parse_args()
    api = args.api or ("sync" if args.window == 1 else "aio")
    if api == "sync" and args.window != 1:
        raise SystemExit("--api sync runs one round trip at a time: use --window 1")
    root = Path(tempfile.mkdtemp(prefix="hpyb-"))
    daemon = start_daemon(args.handoffd, root, not args.no_fsync, args.transport == "stream")
    endpoint = f"ipc://{root}/bench.sock"
    try:
        started = time.perf_counter()
        if api == "sync":
            latencies = run_sync(endpoint, args.count, args.payload)
        else:
            latencies = asyncio.run(run_aio(endpoint, args.count, args.payload, args.window,
                                           args.protocol == 2))
        seconds = time.perf_counter() - started
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
        shutil.rmtree(root, ignore_errors=True)
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e6
    report = {
        "round_trips_per_s": int(len(latencies) / seconds),
        "p50_us": int(pick(0.50)),
        "p99_us": int(pick(0.99)),
        "max_us": int(latencies[-1] * 1e6),
        "completed": len(latencies),
        "count": args.count,
        "window": args.window,
        "payload": args.payload,
        "fsync": not args.no_fsync,
        "api": api,
        "transport": args.transport,
        "protocol": args.protocol if api == "aio" else 1,
        "wait": "request",
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"durable handoff round trip, Python client ({api}): window {args.window}, "
          f"{args.count} round trips, {args.payload}-byte payload, "
          f"fsync {'on' if not args.no_fsync else 'off'}, over {args.transport}, a wait request "
          "after each send")
    print(f"  {'round trips/s':<18} {report['round_trips_per_s']:>12}")
    print(f"  {'p50 latency':<18} {report['p50_us'] / 1000:>12.3f} ms")
    print(f"  {'p99 latency':<18} {report['p99_us'] / 1000:>12.3f} ms")


if __name__ == "__main__":
    main()

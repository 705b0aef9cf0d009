"""The agent's side against a real handoffd: many intents, kills and restarts, cancels,
failures, human questions, several addresses on one connection, and C++ interoperation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Dict, List

import pytest

import handoff

from conftest import HERE, Daemon, wait_until

WORKER = "agent://acme/py/worker"


class Running:
    """An Agent run in a thread for the length of a `with` block."""

    def __init__(self, agent: handoff.Agent) -> None:
        self.agent = agent
        self.thread = threading.Thread(target=agent.run, daemon=True)

    def __enter__(self) -> handoff.Agent:
        self.thread.start()
        return self.agent

    def __exit__(self, *exc) -> None:
        self.agent.stop()
        self.thread.join(30)
        assert not self.thread.is_alive()


def send(client: handoff.Client, n: int, to: str = WORKER, **extra) -> str:
    return client.send_intent(
        intent_type="intent.test.double.v1", to_agent=to, payload={"n": n}, **extra
    )


def test_a_thousand_intents_from_a_python_sender_to_a_python_agent(daemon: Daemon) -> None:
    handled: Dict[str, int] = {}
    lock = threading.Lock()

    def double(task: handoff.Task):
        with lock:
            handled[task.intent_id] = handled.get(task.intent_id, 0) + 1
        return {"n": task.payload["n"], "double": 2 * task.payload["n"]}

    agent = handoff.Agent(WORKER, double, credit=8, endpoint=daemon.endpoint)
    with Running(agent), daemon.client() as client:
        ids = [send(client, n) for n in range(1000)]
        for n, intent_id in enumerate(ids):
            outcome = client.wait_for(intent_id, timeout=60)
            assert outcome["status"] == "COMPLETED"
            assert outcome["result"] == {"n": n, "double": 2 * n}
    assert set(handled) == set(ids)


AGENT_SCRIPT = textwrap.dedent(
    """
    import sys, threading
    sys.path.insert(0, sys.argv[1])
    import handoff

    def process(task):
        step = (task.checkpoint or {}).get("step", 0)
        start = step
        while step < 5:
            step += 1
            task.save_checkpoint({"step": step})
            if step == 2 and task.attempt == 1:
                threading.Event().wait()  # stuck here until killed
        return {"resumed_from": start, "attempt": task.attempt}

    handoff.Agent(sys.argv[2], process, endpoint=sys.argv[3]).run()
    print("stopped cleanly", flush=True)
    """
)


def start_agent_process(daemon: Daemon, tmp_root: Path) -> subprocess.Popen:
    script = tmp_root / "agent.py"
    script.write_text(AGENT_SCRIPT)
    return subprocess.Popen(
        [sys.executable, str(script), str(HERE.parent), WORKER, daemon.endpoint],
        stdout=subprocess.PIPE,
        text=True,
    )


def test_an_agent_killed_mid_work_resumes_from_its_checkpoint_on_attempt_2(
    daemon: Daemon, tmp_root: Path
) -> None:
    with daemon.client() as client:
        intent_id = send(client, 5, lease=1)
        first = start_agent_process(daemon, tmp_root)
        try:
            assert wait_until(lambda: client.get(intent_id)["checkpoint"] == {"step": 2}, 30)
        finally:
            first.kill()
            first.wait(10)
        second = start_agent_process(daemon, tmp_root)
        try:
            outcome = client.wait_for(intent_id, timeout=60)
        finally:
            second.send_signal(signal.SIGTERM)
            out, _ = second.communicate(timeout=30)
        assert outcome["status"] == "COMPLETED"
        assert outcome["delivery_attempt"] == 2
        assert outcome["result"] == {"resumed_from": 2, "attempt": 2}
        assert outcome["checkpoint"] == {"step": 5}
        # SIGTERM stopped the loop cleanly.
        assert second.returncode == 0
        assert "stopped cleanly" in out


def test_a_canceled_intent_stops_its_handler(daemon: Daemon) -> None:
    stopped = threading.Event()
    started = threading.Event()

    def forever(task: handoff.Task):
        started.set()
        try:
            for _ in range(600):  # work in small steps: interrupted between two of them
                time.sleep(0.1)
        except handoff.Canceled:
            stopped.set()
            raise
        return "never"

    agent = handoff.Agent(WORKER, forever, endpoint=daemon.endpoint)
    with Running(agent), daemon.client() as client:
        intent_id = send(client, 1, lease=0.6)
        assert started.wait(15)
        client.cancel(intent_id, reason="not needed")
        assert stopped.wait(15)
        assert client.get(intent_id)["status"] == "CANCELED"
        # A checkpoint after the cancel raises Canceled too.
        checkpoint_error: List[BaseException] = []

        def checkpointing(task: handoff.Task):
            client.cancel(task.intent_id)
            try:
                task.save_checkpoint({"step": 1})
            except handoff.Canceled as e:
                checkpoint_error.append(e)
                raise

        agent._handler = checkpointing
        second = send(client, 2)
        assert wait_until(lambda: checkpoint_error != [], 15)
        assert client.get(second)["status"] == "CANCELED"


def test_exceptions_fail_the_attempt_and_permanent_errors_fail_the_intent(daemon: Daemon) -> None:
    def flaky(task: handoff.Task):
        if task.payload["n"] < 0:
            raise handoff.PermanentError("negative input", code="bad_input")
        if task.attempt == 1:
            raise RuntimeError("transient")
        return {"attempt": task.attempt}

    agent = handoff.Agent(WORKER, flaky, endpoint=daemon.endpoint)
    with Running(agent), daemon.client() as client:
        retried = send(client, 1, retry_initial=0.1)
        failed = send(client, -1)
        outcome = client.wait_for(retried, timeout=30)
        assert outcome["status"] == "COMPLETED"
        assert outcome["result"] == {"attempt": 2}
        assert outcome["last_error"]["message"] == "RuntimeError: transient"
        dead = client.wait_for(failed, timeout=30)
        assert dead["status"] == "FAILED"
        assert dead["error"] == {"code": "bad_input", "message": "negative input", "retryable": False}


def test_a_handler_asks_a_human_and_resumes_with_the_decision(daemon: Daemon) -> None:
    def ask(task: handoff.Task):
        if task.approval is None:
            task.save_checkpoint({"asked": True})
            task.request_approval("Go ahead?", ["yes", "no"])
            return None
        return {"decision": task.approval["decision"], "checkpoint": task.checkpoint}

    agent = handoff.Agent(WORKER, ask, endpoint=daemon.endpoint)
    with Running(agent), daemon.client() as client:
        intent_id = send(client, 1)
        assert wait_until(lambda: [i["intent_id"] for i in client.approvals()] == [intent_id], 15)
        client.approve(intent_id, outcome="yes", actor="alice")
        outcome = client.wait_for(intent_id, timeout=30)
        assert outcome["result"] == {"decision": "yes", "checkpoint": {"asked": True}}


def test_one_agent_serves_sixteen_addresses_over_one_connection(daemon: Daemon) -> None:
    addresses = [f"agent://acme/py/worker-{i}" for i in range(16)]
    served: Dict[str, int] = {}
    lock = threading.Lock()

    def count(task: handoff.Task):
        with lock:
            served[task.intent["to_agent"]] = served.get(task.intent["to_agent"], 0) + 1
        return task.payload["n"]

    agent = handoff.Agent(addresses, count, credit=1, endpoint=daemon.endpoint)
    with Running(agent), daemon.client() as client:
        ids = [send(client, n, to=address) for address in addresses for n in range(3)]
        for intent_id in ids:
            assert client.wait_for(intent_id, timeout=60)["status"] == "COMPLETED"
        receivers = client.status()["receivers"]
    assert served == {address: 3 for address in addresses}
    assert {r["address"] for r in receivers} == set(addresses)


def test_python_and_cpp_interoperate(daemon: Daemon, tmp_root: Path) -> None:
    # A Python client, a C++ agent (handoffctl serve runs a command per intent).
    serve = subprocess.Popen(
        [daemon.handoffd.replace("handoffd", "handoffctl"), "serve", "--as", WORKER, "--exec",
         "cat"],
        env=dict(os.environ, HANDOFF_SOCKET=daemon.endpoint),
    )
    try:
        with daemon.client() as client:
            intent_id = send(client, 21)
            outcome = client.wait_for(intent_id, timeout=30)
            assert outcome["status"] == "COMPLETED"
            assert outcome["result"] == {"n": 21}  # cat echoes the payload
    finally:
        serve.terminate()
        serve.wait(15)
    # A C++ client (handoffctl send), a Python agent.
    agent = handoff.Agent(WORKER, lambda task: {"got": task.payload}, endpoint=daemon.endpoint)
    with Running(agent):
        sent = daemon.ctl("send", "--to", WORKER, "--type", "intent.test.double.v1",
                          "--payload", '{"n": 4}', "--wait", "--timeout", "30s")
        assert sent.returncode == 0, sent.stderr
        assert '"got"' in sent.stdout and '"n"' in sent.stdout


def test_the_agent_loop_rides_out_a_daemon_restart(daemon: Daemon) -> None:
    agent = handoff.Agent(WORKER, lambda task: task.payload["n"], endpoint=daemon.endpoint,
                          refresh_interval=0.2)
    with Running(agent):
        with daemon.client() as client:
            assert client.wait_for(send(client, 1), timeout=30)["result"] == 1
        daemon.kill()
        daemon.start()
        # The agent registers again with the new daemon by itself and serves what comes.
        with daemon.client() as client:
            ids = [send(client, n) for n in range(2, 12)]
            for n, intent_id in zip(range(2, 12), ids):
                assert client.wait_for(intent_id, timeout=30)["result"] == n


def test_an_agent_started_before_its_daemon_waits_for_it(tmp_root: Path) -> None:
    d = Daemon(tmp_root, "node-late")
    agent = handoff.Agent(WORKER, lambda task: "served", endpoint=d.endpoint, refresh_interval=0.2)
    with Running(agent):
        d.start()
        try:
            with d.client() as client:
                assert client.wait_for(send(client, 1), timeout=30)["result"] == "served"
        finally:
            d.kill()


def test_a_full_disk_holds_the_lease_and_the_result_until_the_disk_is_freed(
    tmp_root: Path,
) -> None:
    """The data directory is a small tmpfs, filled up while the handler works: its checkpoint
    and its result are refused with NotStored and sent again, the heartbeats holding the lease,
    until the disk is freed. Nothing is redone. Needs root to mount; skipped otherwise."""
    d = Daemon(tmp_root, "node-full", 'map_size = "256MiB"')
    data = tmp_root / "node-full-data"
    data.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(data)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        d.start()
        started, go = threading.Event(), threading.Event()
        runs: List[int] = []

        def handler(task: handoff.Task):
            runs.append(task.attempt)
            started.set()
            assert go.wait(60)
            task.save_checkpoint({"step": 1})
            return {"done": True}

        with d.client() as client:
            x = client.send_intent(intent_type="intent.work.v1", to_agent=WORKER, lease=1.0)
            agent = handoff.Agent(WORKER, handler, endpoint=d.endpoint)
            with Running(agent):
                assert started.wait(20)
                with open(data / "filler", "wb") as f:  # the disk fills up
                    try:
                        while True:
                            f.write(b"f" * 65536)
                            f.flush()
                    except OSError:
                        pass
                refused = 0
                for n in range(20000):
                    try:
                        client.send_intent(intent_type="intent.bulk.v1",
                                           to_agent="agent://acme/py/nobody",
                                           payload={"blob": "b" * 8000})
                    except handoff.NotStored as e:
                        assert "nothing of it took effect" in e.message
                        refused += 1
                        if refused == 3:
                            break
                assert refused == 3
                assert client.status()["accepting_sends"] is False
                before = client.status()["failed_commits"]
                go.set()
                # Retries keep failing for longer than the lease; the lease holds.
                assert wait_until(lambda: client.status()["failed_commits"] >= before + 6, 30)
                now = client.get(x)
                assert now["status"] == "IN_PROGRESS" and now["delivery_attempt"] == 1
                os.remove(data / "filler")  # the disk is freed
                done = client.wait_for(x, timeout=30)
                assert done["status"] == "COMPLETED"
                assert done["result"] == {"done": True}
                assert done["checkpoint"] == {"step": 1}
                assert runs == [1]
                assert wait_until(lambda: client.status()["accepting_sends"] is True, 10)
    finally:
        if d.proc is not None:
            d.kill()
        subprocess.run(["umount", "-l", str(data)], capture_output=True)

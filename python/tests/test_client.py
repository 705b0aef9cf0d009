"""The sender's side against a real handoffd: every call, every send option, every error."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

import handoff
from handoff.client import Connection
from handoff.errors import error_for

from conftest import Daemon, wait_until

PROCESSOR = "agent://myorg/production/processor"


def work(**extra):
    intent = {
        "intent_type": "intent.handoff.process.v1",
        "to_agent": PROCESSOR,
        "payload": {"handoff_id": "HO-2026-0033", "records": 1200},
    }
    intent.update(extra)
    return intent


def take_delivery(daemon: Daemon, address: str = PROCESSOR) -> dict:
    """Plays the agent by hand: registers for `address` and returns the next intent pushed."""
    conn = Connection(daemon.endpoint)
    try:
        conn.call("receive", {"address": address, "credit": 1})
        push = conn.next_push(15)
        assert push is not None, "no delivery"
        return push["intent"]
    finally:
        conn.close()


def complete_next(daemon: Daemon, result) -> str:
    intent = take_delivery(daemon)
    with daemon.client() as client:
        client.complete(intent["intent_id"], result, intent["delivery_attempt"])
    return intent["intent_id"]


def test_send_get_events_list_and_status(daemon: Daemon) -> None:
    with daemon.client() as client:
        intent_id = client.send_intent(work())
        assert len(intent_id) == 36
        got = client.get(intent_id)
        assert got["status"] == "SUBMITTED"
        assert got["payload"] == {"handoff_id": "HO-2026-0033", "records": 1200}
        assert [e["event_type"] for e in client.events(intent_id)] == [
            "intent.created",
            "intent.submitted",
        ]
        assert [e["seq"] for e in client.events(intent_id, since=1)] == [2]
        # Keywords alone work too, and list filters.
        other = client.send_intent(
            intent_type="intent.other.v1", to_agent="agent://myorg/production/other"
        )
        listed = [i["intent_id"] for i in client.list(status="SUBMITTED")]
        assert listed == [other, intent_id]  # newest first
        assert [i["intent_id"] for i in client.list(to_agent=PROCESSOR)] == [intent_id]
        assert "payload" not in client.list(limit=1)[0] or client.list(limit=1)[0]["payload"] is None
        status = client.status()
        assert status["node"] == "node-py"
        assert status["intents"]["SUBMITTED"] == 2


def test_intent_ids_made_by_one_process_increase_even_within_a_millisecond() -> None:
    import uuid

    # Thousands in a few milliseconds: a counter after the time keeps them in order (intents
    # list newest first by id).
    ids = [handoff.new_intent_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 7 and uuid.UUID(i).variant == uuid.RFC_4122 for i in ids)
    # From several threads at once, too.
    made: list = []
    lock = threading.Lock()

    def make() -> None:
        mine = [handoff.new_intent_id() for _ in range(1000)]
        assert mine == sorted(mine)
        with lock:
            made.extend(mine)

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 4000


def test_an_address_hands_out_its_queue_in_id_order(daemon: Daemon) -> None:
    # docs/protocol.md: ids that increase are delivered in the order they were made, whatever
    # order they were sent in (and random ids in the order they sort).
    ids = [handoff.new_intent_id() for _ in range(4)]
    assert ids == sorted(ids)
    delivered = []
    conn = Connection(daemon.endpoint)
    try:
        with daemon.client() as client:
            for i in (2, 0, 3, 1):
                client.send(work(), intent_id=ids[i])
            # One receiving connection, one intent at a time: a connection per intent would
            # leave the closed ones registered, and a push to one of those comes back only
            # after its lease.
            conn.call("receive", {"address": PROCESSOR, "credit": 1})
            for n in range(4):
                push = conn.next_push(15)
                assert push is not None, "no delivery"
                intent = push["intent"]
                delivered.append(intent["intent_id"])
                client.complete(intent["intent_id"], {"n": n}, intent["delivery_attempt"])
    finally:
        conn.close()
    assert delivered == ids


def test_wait_for_returns_the_outcome(daemon: Daemon) -> None:
    with daemon.client() as client:
        intent_id = client.send_intent(work())
        agent = threading.Thread(target=complete_next, args=(daemon, {"ok": 1}))
        agent.start()
        outcome = client.wait_for(intent_id, timeout=30)
        agent.join(30)
        assert outcome["status"] == "COMPLETED"
        assert outcome["result"] == {"ok": 1}
        assert outcome["payload"] == work()["payload"]
        lean = client.wait_for(intent_id, timeout=30, payload=False)
        assert lean["status"] == "COMPLETED"
        assert lean["result"] == {"ok": 1}
        assert lean["payload"] is None
        with pytest.raises(handoff.TimedOut) as timed_out:
            client.wait_for(client.send_intent(work()), timeout=0.5)
        assert timed_out.value.intent["status"] == "SUBMITTED"
        assert timed_out.value.code == "timed_out"


def test_every_send_option_reaches_the_record(daemon: Daemon) -> None:
    with daemon.client() as client:
        parent = client.send_intent(work())
        chosen = handoff.new_intent_id()
        deadline = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
        receipt = client.send(
            work(),
            intent_id=chosen,
            from_agent="agent://myorg/production/analyzer",
            correlation_id="corr-7",
            parent_id=parent,
            lease=5,
            deadline=deadline,
            max_attempts=3,
            retry_initial=0.5,
            retry_multiplier=3.0,
            retry_max=10,
            reply_to="agent://myorg/production/inbox",
        )
        assert receipt == {**receipt, "intent_id": chosen, "status": "SUBMITTED", "created": True}
        got = client.get(chosen)
        assert got["from_agent"] == "agent://myorg/production/analyzer"
        assert got["correlation_id"] == "corr-7"
        assert got["parent_id"] == parent
        assert got["lease_ms"] == 5000
        assert abs(got["deadline"] - int(deadline.timestamp() * 1000)) <= 1
        assert got["max_attempts"] == 3
        assert got["retry_initial_ms"] == 500
        assert got["retry_multiplier"] == 3.0
        assert got["retry_max_ms"] == 10000
        assert got["reply_to"] == "agent://myorg/production/inbox"
        # The same intent id again is the same intent; an idempotency key names the request.
        again = client.send(work(), intent_id=chosen, from_agent="agent://myorg/production/analyzer")
        assert again["created"] is False
        first = client.send_intent(work(), idempotency_key="order-1")
        assert client.send_intent(work(), idempotency_key="order-1") == first


def test_approvals_approve_reject_replay_dlq_purge_audit_cancel(daemon: Daemon) -> None:
    with daemon.client() as client:
        held = client.send_intent(work(), require_approval=True, prompt="Ship it?",
                                  outcomes=["ship", "hold"])
        other = client.send_intent(work(), require_approval={"question": "Really?"})
        assert client.get(held)["status"] == "WAITING"
        pending = {i["intent_id"]: i for i in client.approvals()}
        assert set(pending) == {held, other}
        assert pending[held]["approval"]["question"] == "Ship it?"
        assert client.approve(held, comment="ok", outcome="ship", actor="alice")["status"] == "SUBMITTED"
        assert client.reject(other, comment="no")["status"] == "CANCELED"
        with pytest.raises(handoff.Conflict):
            client.approve(held)  # already decided
        # A dead letter, replayed and purged.
        client.cancel(held)  # out of the way of the next delivery
        dead = client.send_intent(work())
        delivered = take_delivery(daemon)
        assert delivered["intent_id"] == dead
        client.fail(dead, "broken input", code="bad_input", retryable=False,
                    attempt=delivered["delivery_attempt"])
        assert [i["intent_id"] for i in client.dlq()] == [dead]
        assert client.get(dead)["error"]["code"] == "bad_input"
        again = client.replay(dead)
        assert client.get(again)["replay_of"] == dead
        client.purge(dead)
        with pytest.raises(handoff.NotFound):
            client.get(dead)
        entries = client.audit()
        assert [e["audit_seq"] for e in entries] == sorted(e["audit_seq"] for e in entries)
        assert client.audit(since=entries[-2]["audit_seq"]) == entries[-1:]
        assert client.cancel(again, reason="obsolete")["status"] == "CANCELED"
        with pytest.raises(handoff.Conflict):
            client.cancel(again)


def test_every_error_class_carries_its_code_and_message(daemon: Daemon, tmp_root) -> None:
    with daemon.client() as client:
        with pytest.raises(handoff.NotFound) as e:
            client.get(handoff.new_intent_id())
        assert e.value.code == "not_found" and e.value.message
        with pytest.raises(handoff.InvalidArgument) as e:
            client.send_intent(work(to_agent="agent://Not Valid"))
        assert e.value.code == "invalid_argument"
        with pytest.raises(handoff.InvalidArgument):
            client.send_intent(work(payload=[1, 2]))  # checked before sending
        with pytest.raises(handoff.InvalidArgument) as e:
            client.send_intent(work(lease_seconds=3))
        assert "unknown send option" in e.value.message
        # Extreme values: refused here or by the daemon, with the field named, nothing stored.
        for bad, field in [({"lease": -1}, "lease"), ({"retry_multiplier": float("nan")},
                           "retry_multiplier"), ({"retry_initial": 1e12}, "retry_initial_ms"),
                           ({"deadline": 1e300}, "send"), ({"max_attempts": 2**40}, "max_attempts")]:
            with pytest.raises(handoff.InvalidArgument) as e:
                client.send_intent(work(**bad))
            assert field in e.value.message, (bad, e.value.message)
        # A payload must be showable as JSON: no bytes, integer keys or NaN.
        for bad, where in [({"blob": b"\x00\x01"}, "payload.blob: binary"),
                           ({"n": {1: "x"}}, "payload.n: a map key is an integer"),
                           ({"x": float("nan")}, "payload.x: NaN")]:
            with pytest.raises(handoff.InvalidArgument) as e:
                client.send_intent(work(payload=bad))
            assert where in e.value.message, (bad, e.value.message)
        assert client.list() == []
        chosen = client.send_intent(work())
        with pytest.raises(handoff.AlreadyExists):
            client.send_intent(work(intent_id=chosen, payload={"other": True}))
        client.cancel(chosen)
        with pytest.raises(handoff.Conflict):
            client.cancel(chosen)
        with pytest.raises(handoff.Canceled):
            client.checkpoint(chosen, {"step": 1})
        for err in (handoff.NotFound, handoff.Conflict):
            assert issubclass(err, handoff.HandoffError)
    # Codes the daemon sends that are hard to provoke map to their classes too.
    for code, cls in [("corruption", handoff.Corruption), ("io_error", handoff.IOFailure),
                      ("resource_exhausted", handoff.ResourceExhausted),
                      ("unavailable", handoff.Unavailable), ("timed_out", handoff.TimedOut),
                      ("cancelled", handoff.Canceled), ("already_exists", handoff.AlreadyExists)]:
        err = error_for(code, "m")
        assert type(err) is cls and err.code == code and err.message == "m"
    assert error_for("brand_new", "m").code == "brand_new"


def test_a_full_store_refuses_sends_with_resource_exhausted(make_daemon) -> None:
    d = make_daemon("node-full", 'map_size = "1MiB"\nmax_payload_bytes = "256KiB"\n')
    d.start()
    with d.client() as client:
        with pytest.raises(handoff.ResourceExhausted) as e:
            for i in range(64):
                client.send_intent(work(payload={"blob": "x" * 200_000, "i": i}))
        assert e.value.code == "resource_exhausted"


def test_a_missing_or_stalled_daemon_is_unavailable_within_the_timeout(daemon: Daemon, tmp_root) -> None:
    started = time.monotonic()
    with pytest.raises(handoff.Unavailable):
        handoff.Client(f"ipc://{tmp_root}/nobody.sock")
    # after the start grace (1 s for a daemon that is starting), not after a timeout
    assert time.monotonic() - started < 2.0
    with daemon.client(timeout=1.0) as client:
        daemon.proc.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(handoff.Unavailable) as e:
                client.status()
            assert time.monotonic() - started < 3.0
            assert "did not answer 'status'" in e.value.message
        finally:
            daemon.proc.send_signal(signal.SIGCONT)
        assert client.status()["node"] == "node-py"


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "zeromq"])
def test_wait_for_survives_a_daemon_sigkill_and_restart(daemon: Daemon, stream: bool) -> None:
    with daemon.client(stream=stream) as client:
        assert client.transport == ("stream" if stream else "zeromq")
        intent_id = client.send_intent(work())
        outcome = {}
        waiter = threading.Thread(
            target=lambda: outcome.update(client.wait_for(intent_id, timeout=60)))
        waiter.start()
        with daemon.client() as watcher:  # the wait is parked with the daemon to be killed
            assert wait_until(lambda: watcher.status()["waiters"] >= 1)
        daemon.kill()
        daemon.start()
        assert complete_next(daemon, {"after": "restart"}) == intent_id
        waiter.join(60)
        assert outcome["status"] == "COMPLETED"
        assert outcome["result"] == {"after": "restart"}


def test_pause_holds_deliveries_until_resume_and_agents_shows_it(daemon: Daemon) -> None:
    with daemon.client() as client:
        reply = client.pause(PROCESSOR, reason="bad deploy", actor="human:py")
        assert reply["paused"] is True and reply["changed"] is True
        intent_id = client.send_intent(work())  # still accepted: it queues
        conn = Connection(daemon.endpoint)
        try:
            conn.call("receive", {"address": PROCESSOR, "credit": 1})
            assert conn.next_push(1.0) is None  # paused: nothing comes
            rows = {row["address"]: row for row in client.agents()}
            row = rows[PROCESSOR]
            assert row["paused"] is True
            assert row["pause_reason"] == "bad deploy"
            assert row["paused_by"] == "human:py"
            assert row["receivers"] == 1 and row["queued"] == 1
            assert row["last_heard"] > 0
            assert [p["address"] for p in client.status()["paused"]] == [PROCESSOR]
            assert client.resume(PROCESSOR, actor="human:py")["changed"] is True
            push = conn.next_push(15)
            assert push is not None and push["intent"]["intent_id"] == intent_id
        finally:
            conn.close()
        kinds = [(e["event_type"], e["intent_id"]) for e in client.audit()]
        assert ("address.paused", "") in kinds and ("address.resumed", "") in kinds
        with pytest.raises(handoff.InvalidArgument):
            client.pause("agent://not-an-address")


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"),
    reason="needs root and setpriv to act as another user (CI runs it as root)",
)
def test_a_socket_this_user_may_not_use_names_the_group_to_join(tmp_root) -> None:
    import grp
    import socket as pysocket

    try:
        group = grp.getgrnam("daemon")
    except KeyError:
        pytest.skip("no group 'daemon' on this host")
    # A listening socket in a directory of group daemon, mode 0770, as agent_socket_group
    # leaves it; the client runs as nobody, outside that group.
    os.chmod(tmp_root, 0o711)
    run_dir = tmp_root / "run"
    run_dir.mkdir()
    os.chown(run_dir, 0, group.gr_gid)
    os.chmod(run_dir, 0o770)
    path = run_dir / "handoffd.sock"
    listener = pysocket.socket(pysocket.AF_UNIX, pysocket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    os.chown(path, 0, group.gr_gid)
    os.chmod(path, 0o660)
    package = tmp_root / "pkg"
    shutil.copytree(Path(handoff.__file__).parent, package / "handoff")
    for root, dirs, files in os.walk(package):
        os.chmod(root, 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    code = (
        "import handoff\n"
        "try:\n"
        f"    handoff.Client('ipc://{path}')\n"
        "except handoff.Unavailable as e:\n"
        "    print(e.message)\n"
    )
    try:
        out = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             "/usr/bin/python3", "-c", code],
            env={"PYTHONPATH": str(package), "PATH": "/usr/bin:/bin"},
            capture_output=True, text=True, timeout=30,
        )
    finally:
        listener.close()
    assert out.returncode == 0, out.stderr
    assert f"permission denied on {path}: add this user to group daemon" in out.stdout

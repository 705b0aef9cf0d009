"""handoff.aio against a real handoffd: the same calls as coroutines, and an async agent."""

from __future__ import annotations

import asyncio

import pytest

import handoff
from handoff import aio

from conftest import Daemon

WORKER = "agent://acme/aio/worker"


def send_fields(n: int, **extra):
    fields = {"intent_type": "intent.test.double.v1", "to_agent": WORKER, "payload": {"n": n}}
    fields.update(extra)
    return fields


def record_frames(conn: aio.Connection) -> list:
    """Every frame the connection sends from now on, in a list it returns."""
    frames = []
    real_send = conn._send

    async def recording_send(frame: bytes) -> None:
        frames.append(frame)
        await real_send(frame)

    conn._send = recording_send
    return frames


def is_batch(frame: bytes) -> bool:
    """A msgpack array header: a batch, not one message."""
    return 0x90 <= frame[0] <= 0x9F or frame[0] in (0xDC, 0xDD)


def test_an_async_sender_and_an_async_agent(daemon: Daemon) -> None:
    async def main() -> None:
        agent = aio.Agent(WORKER, credit=4, endpoint=daemon.endpoint)
        seen = []

        @agent.handler
        async def double(task: aio.Task):
            await task.save_checkpoint({"seen": True})
            seen.append(task.intent_id)
            return {"double": 2 * task.payload["n"]}

        runner = asyncio.get_running_loop().create_task(agent.run())
        async with aio.Client(daemon.endpoint) as client:
            ids = await asyncio.gather(*(client.send_intent(send_fields(n)) for n in range(50)))
            outcomes = await asyncio.gather(*(client.wait_for(i, timeout=60) for i in ids))
            for n, outcome in enumerate(outcomes):
                assert outcome["status"] == "COMPLETED"
                assert outcome["result"] == {"double": 2 * n}
                assert outcome["checkpoint"] == {"seen": True}
            assert sorted(seen) == sorted(ids)
            lean = await client.wait_for(ids[1], timeout=60, payload=False)
            assert lean["result"] == {"double": 2} and lean["payload"] is None
            got = await client.get(ids[0])
            assert [e["event_type"] for e in await client.events(ids[0])][-1] == "intent.completed"
            assert got["status"] == "COMPLETED"
            assert len(await client.list(status="COMPLETED", limit=1000)) == 50
            assert (await client.status())["intents"]["COMPLETED"] == 50
            assert (await client.audit(limit=5))[0]["audit_seq"] == 1
        agent.stop()
        await asyncio.wait_for(runner, 30)

    asyncio.run(main())


def test_async_errors_timeouts_and_cancel(daemon: Daemon, tmp_root) -> None:
    async def main() -> None:
        with pytest.raises(handoff.Unavailable):
            aio.Client(f"ipc://{tmp_root}/nobody.sock")
        async with aio.Client(daemon.endpoint) as client:
            with pytest.raises(handoff.NotFound):
                await client.get(handoff.new_intent_id())
            with pytest.raises(handoff.InvalidArgument):
                await client.send_intent(send_fields(1, to_agent="not an address"))
            live = await client.send_intent(send_fields(1))
            with pytest.raises(handoff.TimedOut):
                await client.wait_for(live, timeout=0.3)
            held = await client.send_intent(send_fields(2), require_approval=True, prompt="ok?")
            assert [i["intent_id"] for i in await client.approvals()] == [held]
            assert (await client.reject(held))["status"] == "CANCELED"
            assert (await client.cancel(live))["status"] == "CANCELED"
            with pytest.raises(handoff.Conflict):
                await client.cancel(live)
            assert await client.dlq() == []

    asyncio.run(main())


def test_a_canceled_intent_cancels_its_async_handler(daemon: Daemon) -> None:
    async def main() -> None:
        started = asyncio.Event()
        stopped = asyncio.Event()
        agent = aio.Agent(WORKER, endpoint=daemon.endpoint)

        @agent.handler
        async def forever(task: aio.Task):
            started.set()
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                stopped.set()
                raise

        runner = asyncio.get_running_loop().create_task(agent.run())
        async with aio.Client(daemon.endpoint) as client:
            intent_id = await client.send_intent(send_fields(1, lease=0.6))
            await asyncio.wait_for(started.wait(), 15)
            await client.cancel(intent_id)
            await asyncio.wait_for(stopped.wait(), 15)
            assert (await client.get(intent_id))["status"] == "CANCELED"
        agent.stop()
        await asyncio.wait_for(runner, 30)

    asyncio.run(main())


def test_async_failures_are_retried_or_permanent(daemon: Daemon) -> None:
    async def main() -> None:
        agent = aio.Agent(WORKER, endpoint=daemon.endpoint)

        @agent.handler
        async def flaky(task: aio.Task):
            if task.payload["n"] < 0:
                raise handoff.PermanentError("negative", code="bad_input")
            if task.attempt == 1:
                raise ValueError("once")
            return task.attempt

        runner = asyncio.get_running_loop().create_task(agent.run())
        async with aio.Client(daemon.endpoint) as client:
            retried = await client.send_intent(send_fields(1, retry_initial=0.1))
            failed = await client.send_intent(send_fields(-1))
            assert (await client.wait_for(retried, timeout=30))["result"] == 2
            dead = await client.wait_for(failed, timeout=30)
            assert dead["status"] == "FAILED" and dead["error"]["code"] == "bad_input"
        agent.stop()
        await asyncio.wait_for(runner, 30)

    asyncio.run(main())


def test_async_pause_resume_and_agents(daemon: Daemon) -> None:
    async def main() -> None:
        async with aio.Client(daemon.endpoint) as client:
            assert (await client.pause(WORKER, reason="maintenance"))["changed"] is True
            await client.send_intent(send_fields(1))
            rows = {row["address"]: row for row in await client.agents()}
            assert rows[WORKER]["paused"] is True and rows[WORKER]["queued"] == 1
            assert (await client.resume(WORKER))["changed"] is True
            rows = {row["address"]: row for row in await client.agents()}
            assert rows[WORKER]["paused"] is False

    asyncio.run(main())


def test_concurrent_requests_go_in_batches_and_come_back_in_batches(daemon: Daemon) -> None:
    """Version 2: what coroutines send in one turn of the event loop is one frame, and the
    daemon's replies come batched; every request still gets its own reply."""

    async def main() -> None:
        async with aio.Client(daemon.endpoint) as client:
            conn = client._conn
            sent_frames = record_frames(conn)
            ids = await asyncio.gather(*(client.send_intent(send_fields(n)) for n in range(300)))
            assert conn.protocol == 2
            assert len(set(ids)) == 300
            batches = [f for f in sent_frames if is_batch(f)]
            assert batches, "300 concurrent sends went out one frame each"
            assert len(sent_frames) < 300
            listed = await client.list(to_agent=WORKER, limit=1000)
            assert sorted(i["intent_id"] for i in listed) == sorted(ids)

    asyncio.run(main())


def test_a_daemon_that_speaks_only_version_1_gets_one_message_per_request(tmp_root) -> None:
    """A stand-in for an older handoffd: it refuses version 2 as old daemons do, and must then
    get single version 1 messages, never a batch."""
    import threading

    import msgpack
    import zmq

    endpoint = f"ipc://{tmp_root}/old.sock"
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.bind(endpoint)
    seen = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            if not router.poll(50):
                continue
            identity, frame = router.recv_multipart()
            request = msgpack.unpackb(frame, raw=False)
            seen.append(request)
            if not isinstance(request, dict):
                continue  # an old daemon cannot read a batch: no answer
            if request.get("v") != 1:
                reply = {"v": 1, "rid": request.get("rid", 0), "ok": False,
                         "error": {"code": "invalid_argument",
                                   "message": "unsupported protocol version 2; this handoffd "
                                              "speaks version 1"}}
            else:
                reply = {"v": 1, "rid": request["rid"], "ok": True,
                         "intent_id": "01a20b67-dfc4-7000-9c02-2173baa0aecf",
                         "status": "SUBMITTED", "created": True}
            router.send_multipart([identity, msgpack.packb(reply)])

    server = threading.Thread(target=serve, daemon=True)
    server.start()

    async def main() -> None:
        async with aio.Client(endpoint) as client:
            results = await asyncio.gather(*(client.send(send_fields(n)) for n in range(20)))
            assert all(r["status"] == "SUBMITTED" for r in results)
            assert client._conn.protocol == 1

    try:
        asyncio.run(main())
    finally:
        stop.set()
        server.join(5)
        router.close(linger=0)
        context.term()
    assert all(isinstance(m, dict) for m in seen)
    assert [m["op"] for m in seen].count("send") == 20
    assert all(m["v"] == 1 for m in seen if m["op"] == "send")


def test_large_concurrent_requests_stay_under_the_frame_limit(daemon: Daemon) -> None:
    """Thirty 200 KiB sends in one turn are 6 MB, twice the daemon's frame limit (a frame over
    it costs the connection, and the requests a resend): batches close at 1 MiB."""

    async def main() -> None:
        async with aio.Client(daemon.endpoint, timeout=20) as client:
            conn = client._conn
            sent_frames = record_frames(conn)
            big = "x" * (200 * 1024)
            ids = await asyncio.gather(
                *(client.send_intent(send_fields(n, payload={"n": n, "data": big}))
                  for n in range(30)))
            assert len(set(ids)) == 30
            assert conn.protocol == 2
            batches = [f for f in sent_frames if is_batch(f)]
            assert batches, "thirty concurrent sends went out one frame each"
            assert max(len(f) for f in batches) <= 1 << 20

    asyncio.run(main())

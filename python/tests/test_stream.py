"""The stream transport (docs/protocol.md, "Stream transport") from Python: the blocking and
asyncio clients use the daemon's stream socket when it has one, ZeroMQ when told or when it has
none, and ride through a daemon killed and restarted."""

from __future__ import annotations

import asyncio
import os
import stat

import handoff
from handoff import _stream, aio
from handoff.client import Connection

from conftest import Daemon, wait_until

WORKER = "agent://acme/stream/worker"


def fields(n: int, **extra):
    intent = {"intent_type": "intent.stream.v1", "to_agent": WORKER, "payload": {"n": n}}
    intent.update(extra)
    return intent


def test_the_stream_socket_sits_beside_the_agent_socket(daemon: Daemon) -> None:
    path = _stream.path_for(daemon.endpoint)
    assert path == daemon.endpoint[len("ipc://"):] + ".stream"
    mode = os.stat(path).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    assert _stream.path_for("tcp://127.0.0.1:7000") is None
    assert _stream.path_for("ipc:///" + "a" * 100) is None  # longer than a socket path may be


def test_both_clients_use_the_stream_unless_told_not_to(daemon: Daemon) -> None:
    with daemon.client() as stream, daemon.client(stream=False) as zeromq:
        assert stream.transport == "stream"
        assert zeromq.transport == "zeromq"
        intent_id = stream.send_intent(fields(1))
        assert zeromq.get(intent_id)["payload"] == {"n": 1}
        assert stream.status()["agent_stream"] == _stream.path_for(daemon.endpoint)

    async def main() -> None:
        async with aio.Client(daemon.endpoint) as client, aio.Client(
            daemon.endpoint, stream=False
        ) as other:
            assert client.transport == "stream"
            assert other.transport == "zeromq"
            sent = await asyncio.gather(*(client.send(fields(n)) for n in range(50)))
            got = await asyncio.gather(*(other.get(s["intent_id"]) for s in sent))
            assert [g["payload"]["n"] for g in got] == list(range(50))

    asyncio.run(main())


def test_frames_larger_than_a_socket_buffer_go_both_ways(daemon: Daemon) -> None:
    big = "x" * (900 * 1024)  # under max_payload_bytes (1 MiB), far over a socket's buffer
    with daemon.client() as client:
        intent_id = client.send_intent(fields(1, payload={"blob": big}))
        assert client.get(intent_id)["payload"]["blob"] == big

    async def main() -> None:
        async with aio.Client(daemon.endpoint) as client:
            sent = await asyncio.gather(*(client.send(fields(n, payload={"blob": big})) for n in range(4)))
            got = await asyncio.gather(*(client.get(s["intent_id"]) for s in sent))
            assert all(g["payload"]["blob"] == big for g in got)

    asyncio.run(main())


def test_without_agent_stream_the_clients_use_zeromq(make_daemon) -> None:
    daemon = make_daemon(extra="agent_stream = false")
    daemon.start()
    assert not os.path.exists(_stream.path_for(daemon.endpoint))
    with daemon.client() as client:
        assert client.transport == "zeromq"
        client.send_intent(fields(1))
        assert "agent_stream" not in client.status()


def test_stream_clients_ride_through_a_daemon_killed_and_restarted(daemon: Daemon) -> None:
    with daemon.client() as client:
        first = client.send_intent(fields(1))
        daemon.kill()  # the socket files stay behind, stale
        daemon.start()
        assert client.transport == "stream"
        assert client.get(first)["payload"] == {"n": 1}

    async def main() -> None:
        async with aio.Client(daemon.endpoint) as client:
            second = await client.send_intent(fields(2))
            daemon.kill()
            daemon.start()
            assert (await client.get(second))["payload"] == {"n": 2}

    asyncio.run(main())


def test_a_closed_connection_is_forgotten_and_its_intent_keeps_its_lease(make_daemon) -> None:
    daemon = make_daemon(extra='receiver_timeout = "1h"')
    daemon.start()
    with daemon.client() as client:
        intent_id = client.send_intent(fields(1, lease=3600))
        inbox = Connection(daemon.endpoint)
        assert inbox.transport == "stream"
        inbox.call("receive", {"address": WORKER, "credit": 1})
        push = inbox.next_push(15)
        assert push is not None and push["intent"]["intent_id"] == intent_id
        inbox.close()

        def receivers() -> int:
            rows = [a for a in client.agents() if a["address"] == WORKER]
            return rows[0]["receivers"] if rows else 0

        assert wait_until(lambda: receivers() == 0)
        assert client.get(intent_id)["status"] == "DELIVERED"
        client.complete(intent_id, {"ok": True}, push["intent"]["delivery_attempt"])
        assert client.wait_for(intent_id, timeout=10)["status"] == "COMPLETED"

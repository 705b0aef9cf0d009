"""handoff over asyncio (zmq.asyncio): the same Client and Agent, as coroutines.

    from handoff import aio

    async def main():
        async with aio.Client() as client:
            intent_id = await client.send_intent({...})
            outcome = await client.wait_for(intent_id, timeout=300)

    agent = aio.Agent("agent://myorg/production/processor", credit=4)

    @agent.handler
    async def process(task):
        await task.save_checkpoint({"step": 1})
        return {"ok": True}

    asyncio.run(agent.run())

One connection serves any number of concurrent calls: a reader task hands each reply to the
call that waits for it by rid. When an intent is canceled, its handler's asyncio task is
cancelled (the handler sees asyncio.CancelledError, the asyncio way), and
``task.save_checkpoint`` and ``task.heartbeat`` raise handoff.Canceled.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Sequence, Union

import zmq
import zmq.asyncio

from . import _ops, _stream
from ._wire import (
    BATCH_PROTOCOL_VERSION,
    MAX_BATCH,
    MAX_BATCH_BYTES,
    PROTOCOL_VERSION,
    RESEND_INTERVAL,
    REQUEST_TIMEOUT,
    WAIT_CHUNK,
    WAIT_GRACE,
    check_intent_id,
    connect_dealer,
    decode_all,
    default_endpoint,
    encode,
    encode_batch,
    probe,
    raise_if_error,
)
from .errors import (
    Canceled,
    Conflict,
    HandoffError,
    InvalidArgument,
    NotStored,
    PermanentError,
    TimedOut,
    Unavailable,
)

log = logging.getLogger("handoff")


class Connection:
    """One connection to handoffd (its stream socket when it has one and ``stream`` is true,
    else a ZeroMQ DEALER); concurrent calls, replies matched by rid, pushes queued.

    It speaks agent protocol version 2 to a daemon that does (asked once, with `hello`): the
    requests that coroutines make in one turn of the event loop go out as one batch, and the
    daemon answers in batches too. A daemon that speaks only version 1 gets one message per
    request.
    """

    def __init__(
        self,
        endpoint: Optional[str] = None,
        timeout: float = REQUEST_TIMEOUT,
        resend_interval: float = RESEND_INTERVAL,
        batches: bool = True,
        stream: bool = True,
    ) -> None:
        self.endpoint = endpoint or default_endpoint()
        self.batches = batches
        self.timeout = timeout
        self.resend_interval = resend_interval
        path = _stream.path_for(self.endpoint) if stream else None
        # A Unix socket's connect does not wait: neither blocks the event loop.
        self._stream = _stream.AsyncStream.connect(path) if path is not None else None
        self._context: Any = None
        self._socket: Any = None
        if self._stream is None:
            probe(self.endpoint, grace=0.0)
            self._context = zmq.asyncio.Context()
            self._socket = self._context.socket(zmq.DEALER)
            connect_dealer(self._socket, self.endpoint)
        self._rid = 0
        self._waiting: Dict[int, asyncio.Future] = {}
        self._pushes: "asyncio.Queue[Dict[str, Any]]" = asyncio.Queue()
        self._reader: Optional[asyncio.Task] = None
        self._version = 0  # 0 until hello says: then 2 (batches) or 1
        self._hello: Optional[asyncio.Future] = None
        self._outgoing: List[bytes] = []  # requests of this turn of the event loop
        self._flushing = False

    @property
    def protocol(self) -> int:
        """The agent protocol version this connection speaks (0 before the first call)."""
        return self._version

    @property
    def transport(self) -> str:
        """"stream" (the daemon's stream socket) or "zeromq"."""
        return "stream" if self._stream is not None else "zeromq"

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass
        if self._stream is not None:
            self._stream.close()
            return
        self._socket.close(linger=0)
        self._context.term()

    def _start_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        if self._stream is not None:
            await self._stream.run(self._dispatch)
            return
        while True:
            self._dispatch(await self._socket.recv())

    def _dispatch(self, frame: bytes) -> None:
        """Hands each reply in `frame` to the call waiting for it, and queues each push."""
        try:
            messages = decode_all(frame)
        except HandoffError as e:
            log.warning("dropped a frame from handoffd: %s", e)
            return
        for message in messages:
            if "push" in message:
                self._pushes.put_nowait(message)
                continue
            waiter = self._waiting.get(message.get("rid", 0))
            if waiter is not None and not waiter.done():
                waiter.set_result(message)

    async def _send(self, frame: bytes) -> None:
        if self._stream is not None:
            self._stream.send(frame)
            return
        try:
            await self._socket.send(frame, zmq.DONTWAIT)
        except zmq.Again:
            pass  # the queue to a vanished daemon is full: the resend or the timeout decides

    async def _queue(self, frame: bytes) -> None:
        """Sends `frame` with whatever else this turn of the event loop sends: in a batch when
        the daemon reads them. The first request of a turn schedules the flush; the others
        only join it, so a lone request costs one task switch, not a wait."""
        if self._version < BATCH_PROTOCOL_VERSION:
            await self._send(frame)
            return
        self._outgoing.append(frame)
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        frames, self._outgoing, self._flushing = self._outgoing, [], False
        chunk: List[bytes] = []
        size = 0
        for frame in frames + [b""]:  # the empty sentinel sends the last chunk
            if chunk and (not frame or len(chunk) == MAX_BATCH or size + len(frame) > MAX_BATCH_BYTES):
                await self._send(chunk[0] if len(chunk) == 1 else encode_batch(chunk))
                chunk, size = [], 0
            if frame:
                chunk.append(frame)
                size += len(frame)

    async def _negotiate(self) -> None:
        """Asks the daemon once which version it speaks: hello with v 2, refused by a daemon
        that speaks only version 1."""
        if self._version:
            return
        if not self.batches:
            self._version = PROTOCOL_VERSION
            return
        if self._hello is None:
            self._hello = asyncio.get_running_loop().create_task(self._ask_version())
        self._version = await asyncio.shield(self._hello)

    async def _ask_version(self) -> int:
        try:
            reply = await self._exchange("hello", {}, BATCH_PROTOCOL_VERSION, self.timeout, True)
        except InvalidArgument:
            return PROTOCOL_VERSION  # "unsupported protocol version 2"
        except BaseException:
            self._hello = None  # ask again at the next call
            raise
        return BATCH_PROTOCOL_VERSION if reply.get("protocol", 1) >= 2 else PROTOCOL_VERSION

    async def call(
        self,
        op: str,
        fields: Mapping[str, Any],
        timeout: Optional[float] = None,
        resend: bool = True,
    ) -> Dict[str, Any]:
        """Sends `op` and returns its reply; raises its error, or Unavailable after `timeout`."""
        self._start_reader()
        await self._negotiate()
        limit = self.timeout if timeout is None else timeout
        return await self._exchange(op, fields, self._version, limit, resend)

    async def _exchange(
        self, op: str, fields: Mapping[str, Any], version: int, limit: float, resend: bool
    ) -> Dict[str, Any]:
        self._start_reader()
        self._rid += 1
        rid = self._rid
        frame = encode(op, rid, fields, version)
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        self._waiting[rid] = waiter
        try:
            await self._queue(frame)
            deadline = time.monotonic() + limit
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Unavailable(
                        f"handoffd at {self.endpoint} did not answer '{op}' within "
                        f"{int(limit * 1000)} ms"
                    )
                try:
                    reply = await asyncio.wait_for(
                        asyncio.shield(waiter), min(left, self.resend_interval) if resend else left
                    )
                except asyncio.TimeoutError:
                    if resend:
                        await self._send(frame)  # a daemon that restarted lost it
                    continue
                raise_if_error(reply)
                return reply
        finally:
            self._waiting.pop(rid, None)

    async def next_push(self, timeout: float) -> Optional[Dict[str, Any]]:
        self._start_reader()
        try:
            return await asyncio.wait_for(self._pushes.get(), timeout)
        except asyncio.TimeoutError:
            return None


class Client:
    """handoff.Client as coroutines; see that class for what each call does."""

    def __init__(
        self,
        endpoint: Optional[str] = None,
        timeout: float = REQUEST_TIMEOUT,
        resend_interval: float = RESEND_INTERVAL,
        batches: bool = True,
        stream: bool = True,
    ) -> None:
        """`batches=False` speaks agent protocol version 1: one message per request;
        `stream=False` talks over ZeroMQ even where the daemon has a stream socket."""
        self._conn = Connection(endpoint, timeout, resend_interval, batches, stream)

    @property
    def endpoint(self) -> str:
        return self._conn.endpoint

    @property
    def transport(self) -> str:
        """How this client reaches its daemon: "stream" or "zeromq"."""
        return self._conn.transport

    async def close(self) -> None:
        await self._conn.close()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def send_intent(self, intent: Optional[Mapping[str, Any]] = None, **options: Any) -> str:
        return (await self.send(intent, **options))["intent_id"]

    async def send(self, intent: Optional[Mapping[str, Any]] = None, **options: Any) -> Dict[str, Any]:
        return await self._conn.call("send", _ops.send_fields(intent, options))

    async def get(self, intent_id: str) -> Dict[str, Any]:
        reply = await self._conn.call("get", {"intent_id": check_intent_id(intent_id)})
        return _ops.intent_of(reply)

    async def events(self, intent_id: str, since: int = 0) -> List[Dict[str, Any]]:
        fields = {"intent_id": check_intent_id(intent_id), "since": since}
        return _ops.list_of(await self._conn.call("events", fields), "events")

    async def wait_for(
        self, intent_id: str, timeout: Optional[float] = None, payload: bool = True
    ) -> Dict[str, Any]:
        check_intent_id(intent_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        last: Optional[Dict[str, Any]] = None
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimedOut(f"intent {intent_id} has not ended within {timeout} s", intent=last)
            seconds, timeout_ms = _ops.wait_chunk(remaining, WAIT_CHUNK)
            try:
                reply = await self._conn.call(
                    "wait",
                    _ops.wait_fields(intent_id, timeout_ms, payload),
                    timeout=seconds + WAIT_GRACE,
                    resend=False,
                )
            except Unavailable:
                continue
            last = _ops.intent_of(reply)
            if reply.get("terminal"):
                return last

    async def list(
        self,
        status: Optional[str] = None,
        to_agent: Optional[str] = None,
        from_agent: Optional[str] = None,
        limit: int = 100,
    ) -> List[Dict[str, Any]]:
        reply = await self._conn.call("list", _ops.list_fields(status, to_agent, from_agent, limit))
        return _ops.list_of(reply, "intents")

    async def cancel(
        self, intent_id: str, reason: Optional[str] = None, actor: Optional[str] = None
    ) -> Dict[str, Any]:
        fields = {"intent_id": check_intent_id(intent_id), "reason": reason, "actor": actor}
        return await self._conn.call("cancel", fields, resend=False)

    async def approvals(self, limit: int = 100) -> List[Dict[str, Any]]:
        return _ops.pending_approvals(await self.list(status="WAITING", limit=limit))

    async def approve(
        self,
        intent_id: str,
        comment: Optional[str] = None,
        outcome: Optional[str] = None,
        actor: Optional[str] = None,
    ) -> Dict[str, Any]:
        fields = _ops.decide_fields(intent_id, comment, outcome, actor)
        return await self._conn.call("approve", fields, resend=False)

    async def reject(
        self, intent_id: str, comment: Optional[str] = None, actor: Optional[str] = None
    ) -> Dict[str, Any]:
        fields = _ops.decide_fields(intent_id, comment, None, actor)
        return await self._conn.call("reject", fields, resend=False)

    async def replay(self, intent_id: str, actor: Optional[str] = None) -> str:
        fields = {"intent_id": check_intent_id(intent_id), "actor": actor}
        return (await self._conn.call("replay", fields, resend=False))["intent_id"]

    async def dlq(self, limit: int = 100) -> List[Dict[str, Any]]:
        return await self.list(status="FAILED", limit=limit)

    async def purge(self, intent_id: str) -> None:
        await self._conn.call("purge", {"intent_id": check_intent_id(intent_id)}, resend=False)

    async def audit(self, since: int = 0, limit: int = 1000) -> List[Dict[str, Any]]:
        reply = await self._conn.call("audit", {"since": since, "limit": limit})
        return _ops.list_of(reply, "entries")

    async def status(self) -> Dict[str, Any]:
        return await self._conn.call("status", {})

    async def agents(self) -> List[Dict[str, Any]]:
        reply = await self._conn.call("agents", {})
        return _ops.list_of(reply, "agents")

    async def pause(
        self, address: str, reason: Optional[str] = None, actor: Optional[str] = None
    ) -> Dict[str, Any]:
        return await self._conn.call("pause", _ops.pause_fields(address, reason, actor))

    async def resume(self, address: str, actor: Optional[str] = None) -> Dict[str, Any]:
        return await self._conn.call("resume", _ops.pause_fields(address, None, actor))

    async def ack(self, intent_id: str, attempt: int = 0, start: bool = True) -> Dict[str, Any]:
        return await self._conn.call("ack", _ops.report_fields(intent_id, attempt, start=start))

    async def heartbeat(self, intent_id: str, attempt: int = 0) -> Dict[str, Any]:
        return await self._conn.call("heartbeat", _ops.report_fields(intent_id, attempt))

    async def checkpoint(self, intent_id: str, state: Any, attempt: int = 0) -> Dict[str, Any]:
        fields = _ops.report_fields(intent_id, attempt, state=state)
        return await self._conn.call("checkpoint", fields)

    async def complete(self, intent_id: str, result: Any = None, attempt: int = 0) -> Dict[str, Any]:
        fields = _ops.report_fields(intent_id, attempt, result=result)
        return await self._conn.call("complete", fields)

    async def fail(
        self,
        intent_id: str,
        message: str,
        code: str = "agent_error",
        retryable: bool = False,
        attempt: int = 0,
    ) -> Dict[str, Any]:
        fields = _ops.fail_fields(intent_id, attempt, code, message, retryable)
        return await self._conn.call("fail", fields)

    async def request_approval(
        self, intent_id: str, question: str, outcomes: Optional[List[str]] = None, attempt: int = 0
    ) -> Dict[str, Any]:
        fields = _ops.report_fields(intent_id, attempt, question=question, outcomes=outcomes or [])
        return await self._conn.call("request_approval", fields)


class Task(_ops.TaskFields):
    """One delivery, as handoff.Task, with coroutine calls."""

    def __init__(self, intent: Dict[str, Any], client: Client) -> None:
        self.intent = intent
        self._client = client
        self.canceled = False
        self.lease_lost = False
        self.suspended = False

    async def _check(self, call: Awaitable[Any]) -> Any:
        try:
            return await call
        except (Canceled, TimedOut) as e:
            self.canceled = True
            raise Canceled(f"intent {self.intent_id} ended: {e.message}") from None
        except Conflict:
            self.lease_lost = True
            raise

    async def save_checkpoint(self, state: Any) -> None:
        # Sent again while the daemon cannot store it (NotStored); the heartbeats hold the lease.
        while True:
            try:
                await self._check(self._client.checkpoint(self.intent_id, state, self.attempt))
                return
            except NotStored as e:
                if self.canceled or self.lease_lost:
                    raise
                log.warning("checkpoint of intent %s: %s; retrying", self.intent_id, e)
                await asyncio.sleep(_ops.NOT_STORED_PAUSE)

    async def heartbeat(self) -> None:
        await self._check(self._client.heartbeat(self.intent_id, self.attempt))

    async def request_approval(self, question: str, outcomes: Optional[List[str]] = None) -> None:
        await self._check(
            self._client.request_approval(self.intent_id, question, outcomes, self.attempt)
        )
        self.suspended = True


AsyncHandler = Callable[[Task], Awaitable[Any]]


class Agent(_ops.AgentSettings):
    """handoff.Agent for async handlers: every intent a task on the running event loop."""

    def __init__(
        self,
        address: Union[str, Sequence[str]],
        handler: Optional[AsyncHandler] = None,
        *,
        credit: int = 1,
        endpoint: Optional[str] = None,
        timeout: float = REQUEST_TIMEOUT,
        refresh_interval: float = 1.0,
        batches: bool = True,
    ) -> None:
        super().__init__(address, handler, credit, endpoint, timeout, refresh_interval)
        self.batches = batches
        self._stop: Optional[asyncio.Event] = None
        self._running: Dict[str, "tuple[Task, asyncio.Task]"] = {}

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def run(self, handler: Optional[AsyncHandler] = None) -> None:
        """Serves until stop(), SIGTERM or SIGINT; running handlers finish first."""
        self._take_handler(handler)
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        signals = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.stop)
                signals.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread
        client = None
        warned = False
        while client is None:
            try:
                client = Client(self.endpoint, self.timeout, batches=self.batches)
            except Unavailable as e:  # a daemon not running yet: wait for it
                if not warned:
                    log.warning("agent waits for handoffd: %s", e)
                    warned = True
                try:
                    await asyncio.wait_for(self._stop.wait(), self.refresh_interval)
                    return
                except asyncio.TimeoutError:
                    pass
        beats = loop.create_task(self._heartbeats(client))
        handlers: "set[asyncio.Task]" = set()
        try:
            last_register = 0.0
            warned = False
            while not self._stop.is_set():
                if time.monotonic() - last_register >= self.refresh_interval:
                    try:
                        for address in self.addresses:
                            await client._conn.call(
                                "receive", {"address": address, "credit": self.credit}
                            )
                        warned = False
                    except Unavailable as e:
                        if not warned:
                            log.warning("agent cannot register with handoffd (will keep trying): %s", e)
                            warned = True
                    last_register = time.monotonic()
                push = await client._conn.next_push(min(0.2, self.refresh_interval))
                if push is None:
                    continue
                intent = push.get("intent")
                if not isinstance(intent, dict) or "intent_id" not in intent:
                    log.warning("ignored an undecodable delivery")
                    continue
                job = loop.create_task(self._handle(Task(intent, client)))
                handlers.add(job)
                job.add_done_callback(handlers.discard)
        finally:
            self._stop.set()
            if handlers:
                await asyncio.gather(*handlers, return_exceptions=True)
            beats.cancel()
            await asyncio.gather(beats, return_exceptions=True)
            await client.close()
            for sig in signals:
                loop.remove_signal_handler(sig)

    async def _handle(self, task: Task) -> None:
        try:
            await task._client.ack(task.intent_id, task.attempt, start=True)
        except HandoffError as e:
            log.info("skipping intent %s (attempt %d): %s", task.intent_id, task.attempt, e)
            return
        job = asyncio.ensure_future(self._handler(task))  # type: ignore[misc]
        self._running[task.intent_id] = (task, job)
        outcome: Optional[Callable[[], Awaitable[Any]]] = None
        try:
            result = await job
            if not task.suspended and not task.canceled:
                outcome = lambda: task._client.complete(task.intent_id, result, task.attempt)
        except (Canceled, asyncio.CancelledError):
            if not task.canceled:
                raise  # cancelled from outside: the agent is going away
        except PermanentError as e:
            message, code = e.message, e.code
            outcome = lambda: task._client.fail(task.intent_id, message, code, False, task.attempt)
        except Exception as e:
            message = f"{type(e).__name__}: {e}"
            outcome = lambda: task._client.fail(
                task.intent_id, message, "agent_error", True, task.attempt
            )
        finally:
            if outcome is None or task.lease_lost:
                self._running.pop(task.intent_id, None)
        if outcome is not None and not task.lease_lost:
            # Still among the running, so that the heartbeats hold the lease while a report the
            # disk refuses (NotStored) is sent again.
            try:
                await self._report(task, outcome)
            finally:
                self._running.pop(task.intent_id, None)

    async def _report(self, task: Task, send: Callable[[], Awaitable[Any]]) -> None:
        intent_id = task.intent_id
        while True:
            if task.lease_lost or task.canceled:
                log.warning("the outcome of intent %s was dropped: its lease is lost", intent_id)
                return
            try:
                await send()
                return
            except _ops.FINAL_ERRORS as e:
                log.warning("the outcome of intent %s was refused: %s", intent_id, e)
                return
            except HandoffError as e:
                log.warning("reporting intent %s: %s; retrying", intent_id, e)
                await asyncio.sleep(0.5)

    async def _heartbeats(self, client: Client) -> None:
        while True:
            lease_ms = min((t.intent.get("lease_ms", 30000) for t, _ in self._running.values()),
                           default=3000)
            await asyncio.sleep(max(0.1, lease_ms / 3000.0))
            for task, job in list(self._running.values()):
                try:
                    await client.heartbeat(task.intent_id, task.attempt)
                except (Canceled, TimedOut):
                    task.canceled = True
                    job.cancel()
                except Conflict:
                    task.lease_lost = True
                except HandoffError as e:
                    log.debug("heartbeat for intent %s: %s", task.intent_id, e)


__all__ = ["Agent", "Client", "Connection", "Task"]

"""The blocking client: one connection to the local handoffd, every call bounded in time.

    from handoff import Client
    with Client() as client:
        intent_id = client.send_intent({
            "intent_type": "intent.handoff.process.v1",
            "to_agent": "agent://myorg/production/processor",
            "payload": {"handoff_id": "HO-2026-0033", "records": 1200},
        })
        outcome = client.wait_for(intent_id, timeout=300)

A Client may be shared by threads (calls take turns); an Agent gives each of its threads a
connection of its own.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Deque, Dict, List, Mapping, Optional

import zmq

from . import _ops, _stream
from ._wire import (
    RESEND_INTERVAL,
    REQUEST_TIMEOUT,
    START_GRACE,
    WAIT_CHUNK,
    WAIT_GRACE,
    check_intent_id,
    connect_dealer,
    decode,
    default_endpoint,
    encode,
    probe,
    raise_if_error,
)
from .errors import TimedOut, Unavailable


class Connection:
    """One connection to handoffd with request/reply matching (docs/protocol.md): over its
    stream socket when it has one and ``stream`` is true, else a ZeroMQ DEALER socket.

    ``call`` sends a request and waits for the reply with its rid, sending the request again
    after ``resend_interval`` of silence (a daemon that restarted lost it) until ``timeout``.
    Pushes that arrive meanwhile are kept for ``next_push``; replies to abandoned requests are
    dropped. One thread at a time.
    """

    def __init__(
        self,
        endpoint: Optional[str] = None,
        timeout: float = REQUEST_TIMEOUT,
        resend_interval: float = RESEND_INTERVAL,
        context: Optional[zmq.Context] = None,
        stream: bool = True,
    ) -> None:
        self.endpoint = endpoint or default_endpoint()
        self.timeout = timeout
        self.resend_interval = resend_interval
        self._stream: Optional[_stream.StreamSocket] = None
        self._socket: Any = None
        self._context: Optional[zmq.Context] = None
        self._own_context = False
        path = _stream.path_for(self.endpoint) if stream else None
        if path is not None:
            self._stream = _stream.StreamSocket.connect(path)
        if self._stream is None:
            probe(self.endpoint, grace=min(START_GRACE, timeout))
            if path is not None:  # a daemon that was starting makes its stream socket first
                self._stream = _stream.StreamSocket.connect(path)
        if self._stream is None:
            self._own_context = context is None
            self._context = context or zmq.Context()
            self._socket = self._context.socket(zmq.DEALER)
            connect_dealer(self._socket, self.endpoint)
        self._rid = 0
        self._pushes: Deque[Dict[str, Any]] = collections.deque()

    @property
    def transport(self) -> str:
        """"stream" (the daemon's stream socket) or "zeromq"."""
        return "stream" if self._stream is not None else "zeromq"

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            return
        self._socket.close(linger=0)
        if self._own_context and self._context is not None:
            self._context.term()

    def _send(self, frame: bytes) -> None:
        if self._stream is not None:
            self._stream.send(frame)
            return
        try:
            self._socket.send(frame, zmq.DONTWAIT)
        except zmq.Again:
            pass  # the queue to a vanished daemon is full: the resend or the timeout decides

    def _receive(self, timeout: float) -> Optional[Dict[str, Any]]:
        if self._stream is not None:
            frame = self._stream.receive(timeout)
            return decode(frame) if frame is not None else None
        if not self._socket.poll(max(0, int(timeout * 1000)), zmq.POLLIN):
            return None
        try:
            frame = self._socket.recv(zmq.DONTWAIT)
        except zmq.Again:
            return None
        return decode(frame)

    def call(
        self,
        op: str,
        fields: Mapping[str, Any],
        timeout: Optional[float] = None,
        resend: bool = True,
    ) -> Dict[str, Any]:
        """Sends `op` and returns its reply; raises its error, or Unavailable after `timeout`."""
        self._rid += 1
        rid = self._rid
        frame = encode(op, rid, fields)
        limit = self.timeout if timeout is None else timeout
        self._send(frame)
        reply = self.await_reply(rid, limit, frame if resend else None, op)
        if reply is None:
            raise Unavailable(
                f"handoffd at {self.endpoint} did not answer '{op}' within {int(limit * 1000)} ms"
            )
        return reply

    def await_reply(
        self, rid: int, timeout: float, resend: Optional[bytes] = None, op: str = ""
    ) -> Optional[Dict[str, Any]]:
        """The reply with `rid` within `timeout` (None if none came), resending `resend`."""
        now = time.monotonic()
        deadline = now + timeout
        sent = now
        while True:
            now = time.monotonic()
            if now >= deadline:
                return None
            wait = deadline - now
            if resend is not None:
                wait = min(wait, max(0.0, sent + self.resend_interval - now))
            message = self._receive(wait)
            if message is None:
                if resend is not None and time.monotonic() - sent >= self.resend_interval:
                    self._send(resend)
                    sent = time.monotonic()
                continue
            if "push" in message:
                self._pushes.append(message)
            elif message.get("rid") == rid:
                raise_if_error(message)
                return message

    def next_push(self, timeout: float) -> Optional[Dict[str, Any]]:
        """The next pushed message within `timeout`, or None."""
        if self._pushes:
            return self._pushes.popleft()
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(max(0.0, deadline - time.monotonic()))
            if message is None:
                return None
            if "push" in message:
                return message
            if time.monotonic() >= deadline:
                return None  # only stale replies came


class Client:
    """A connection to the local handoffd (``endpoint``: $HANDOFF_SOCKET or the default).

    Raises :class:`~handoff.Unavailable` at once if no daemon listens on an ipc:// endpoint.
    Every call returns or raises within ``timeout`` seconds (``wait_for`` within its own), and
    resends its request if the daemon restarts meanwhile. With ``stream`` (the default) it talks
    over the daemon's stream socket when it has one (docs/protocol.md, "Stream transport"),
    else over ZeroMQ; ``stream=False``: ZeroMQ always.
    """

    def __init__(
        self,
        endpoint: Optional[str] = None,
        timeout: float = REQUEST_TIMEOUT,
        resend_interval: float = RESEND_INTERVAL,
        stream: bool = True,
    ) -> None:
        self._conn = Connection(endpoint, timeout, resend_interval, stream=stream)
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return self._conn.endpoint

    @property
    def transport(self) -> str:
        """How this client reaches its daemon: "stream" or "zeromq"."""
        return self._conn.transport

    def close(self) -> None:
        """Closes the connection; the Client cannot be used after."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _call(self, op: str, fields: Mapping[str, Any], **kw: Any) -> Dict[str, Any]:
        with self._lock:
            return self._conn.call(op, fields, **kw)

    # --- Senders ---

    def send_intent(self, intent: Optional[Mapping[str, Any]] = None, **options: Any) -> str:
        """Stores an intent and returns its id once it is on disk.

        Give the intent as a dict, as keywords, or both: ``intent_type`` and ``to_agent``
        (required), ``payload`` (a dict), ``from_agent``, ``intent_id`` (made here when absent,
        so a resend cannot store it twice), ``correlation_id``, ``parent_id``, ``lease``
        (seconds), ``deadline`` (a datetime or Unix seconds), ``max_attempts``,
        ``retry_initial`` and ``retry_max`` (seconds), ``retry_multiplier``,
        ``idempotency_key``, ``reply_to``, ``require_approval`` (True, with ``prompt`` and
        ``outcomes``, or ``{"question", "outcomes"}``).
        """
        return self.send(intent, **options)["intent_id"]

    def send(self, intent: Optional[Mapping[str, Any]] = None, **options: Any) -> Dict[str, Any]:
        """As send_intent, returning the receipt: ``intent_id``, ``status``, ``created``."""
        return self._call("send", _ops.send_fields(intent, options))

    def get(self, intent_id: str) -> Dict[str, Any]:
        """The intent with its payload, checkpoint and result."""
        return _ops.intent_of(self._call("get", {"intent_id": check_intent_id(intent_id)}))

    def events(self, intent_id: str, since: int = 0) -> List[Dict[str, Any]]:
        """Its history: events with seq > since, oldest first."""
        reply = self._call("events", {"intent_id": check_intent_id(intent_id), "since": since})
        return _ops.list_of(reply, "events")

    def wait_for(
        self, intent_id: str, timeout: Optional[float] = None, payload: bool = True
    ) -> Dict[str, Any]:
        """Waits until the intent ends and returns it (``status``, ``result``, ``error``, ...).

        Raises TimedOut (with the live intent as ``.intent``) when ``timeout`` seconds pass
        first; None waits for ever. Rides out daemon restarts: a wait the daemon lost is sent
        again. With ``payload=False`` the intent comes without its payload (``payload`` is
        None), for a sender that has it: less to read back for large payloads.
        """
        check_intent_id(intent_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        last: Optional[Dict[str, Any]] = None
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimedOut(f"intent {intent_id} has not ended within {timeout} s", intent=last)
            seconds, timeout_ms = _ops.wait_chunk(remaining, WAIT_CHUNK)
            try:
                reply = self._call(
                    "wait",
                    _ops.wait_fields(intent_id, timeout_ms, payload),
                    timeout=seconds + WAIT_GRACE,
                    resend=False,
                )
            except Unavailable:
                continue  # lost with a daemon that restarted, or not running: ask again
            last = _ops.intent_of(reply)
            if reply.get("terminal"):
                return last

    def list(
        self,
        status: Optional[str] = None,
        to_agent: Optional[str] = None,
        from_agent: Optional[str] = None,
        limit: int = 100,
    ) -> List[Dict[str, Any]]:
        """Intents, newest first, without payload, checkpoint or result."""
        reply = self._call("list", _ops.list_fields(status, to_agent, from_agent, limit))
        return _ops.list_of(reply, "intents")

    def cancel(
        self, intent_id: str, reason: Optional[str] = None, actor: Optional[str] = None
    ) -> Dict[str, Any]:
        """Cancels a live intent. Conflict if it has ended (so it is not resent blindly)."""
        fields = {"intent_id": check_intent_id(intent_id), "reason": reason, "actor": actor}
        return self._call("cancel", fields, resend=False)

    def approvals(self, limit: int = 100) -> List[Dict[str, Any]]:
        """Intents waiting for a human decision."""
        return _ops.pending_approvals(self.list(status="WAITING", limit=limit))

    def approve(
        self,
        intent_id: str,
        comment: Optional[str] = None,
        outcome: Optional[str] = None,
        actor: Optional[str] = None,
    ) -> Dict[str, Any]:
        """Approves an intent waiting for a human (``outcome``: one of those offered)."""
        fields = _ops.decide_fields(intent_id, comment, outcome, actor)
        return self._call("approve", fields, resend=False)

    def reject(
        self, intent_id: str, comment: Optional[str] = None, actor: Optional[str] = None
    ) -> Dict[str, Any]:
        """Rejects an intent waiting for a human."""
        fields = _ops.decide_fields(intent_id, comment, None, actor)
        return self._call("reject", fields, resend=False)

    def replay(self, intent_id: str, actor: Optional[str] = None) -> str:
        """Sends an ended intent again as a new one; returns the new id."""
        fields = {"intent_id": check_intent_id(intent_id), "actor": actor}
        return self._call("replay", fields, resend=False)["intent_id"]

    def dlq(self, limit: int = 100) -> List[Dict[str, Any]]:
        """Dead letters: FAILED intents, newest first."""
        return self.list(status="FAILED", limit=limit)

    def purge(self, intent_id: str) -> None:
        """Deletes an ended intent and its history now."""
        self._call("purge", {"intent_id": check_intent_id(intent_id)}, resend=False)

    def audit(self, since: int = 0, limit: int = 1000) -> List[Dict[str, Any]]:
        """Events recorded on this node with audit_seq > since, in the order recorded."""
        return _ops.list_of(self._call("audit", {"since": since, "limit": limit}), "entries")

    def status(self) -> Dict[str, Any]:
        """The daemon's status (docs/protocol.md, `status`)."""
        return self._call("status", {})

    def agents(self) -> List[Dict[str, Any]]:
        """Every local address with receivers, queued intents or a pause: address,
        receivers, credit, in_flight, queued, last_heard (ms since the epoch, 0: never),
        paused (docs/protocol.md, `agents`)."""
        return _ops.list_of(self._call("agents", {}), "agents")

    def pause(
        self, address: str, reason: Optional[str] = None, actor: Optional[str] = None
    ) -> Dict[str, Any]:
        """Stops deliveries to `address` until resume(); sends to it still queue. Durable and
        audited; an address another node hosts is paused there (`forwarded_to`)."""
        return self._call("pause", _ops.pause_fields(address, reason, actor))

    def resume(self, address: str, actor: Optional[str] = None) -> Dict[str, Any]:
        """Delivers to a paused address again."""
        return self._call("resume", _ops.pause_fields(address, None, actor))

    # --- Agents' calls, for scripts that do not use Agent ---

    def ack(self, intent_id: str, attempt: int = 0, start: bool = True) -> Dict[str, Any]:
        return self._call("ack", _ops.report_fields(intent_id, attempt, start=start))

    def heartbeat(self, intent_id: str, attempt: int = 0) -> Dict[str, Any]:
        return self._call("heartbeat", _ops.report_fields(intent_id, attempt))

    def checkpoint(self, intent_id: str, state: Any, attempt: int = 0) -> Dict[str, Any]:
        return self._call("checkpoint", _ops.report_fields(intent_id, attempt, state=state))

    def complete(self, intent_id: str, result: Any = None, attempt: int = 0) -> Dict[str, Any]:
        return self._call("complete", _ops.report_fields(intent_id, attempt, result=result))

    def fail(
        self,
        intent_id: str,
        message: str,
        code: str = "agent_error",
        retryable: bool = False,
        attempt: int = 0,
    ) -> Dict[str, Any]:
        return self._call("fail", _ops.fail_fields(intent_id, attempt, code, message, retryable))

    def request_approval(
        self, intent_id: str, question: str, outcomes: Optional[List[str]] = None, attempt: int = 0
    ) -> Dict[str, Any]:
        fields = _ops.report_fields(intent_id, attempt, question=question, outcomes=outcomes or [])
        return self._call("request_approval", fields)


__all__ = ["Client", "Connection"]

"""The agent protocol's envelope (docs/protocol.md, "Agent protocol, version 2"): defaults,
encoding, batches, intent ids, and the checks the client makes before anything is sent."""

from __future__ import annotations

import grp
import os
import secrets
import socket
import threading
import time
import uuid
from typing import Any, Dict, List, Mapping, Optional, Sequence

import msgpack
import zmq

from .errors import Corruption, HandoffError, InvalidArgument, Unavailable, error_for

# The blocking client has one request in flight at a time and speaks version 1; handoff.aio
# speaks version 2 (batches) to a daemon that does.
PROTOCOL_VERSION = 1
BATCH_PROTOCOL_VERSION = 2
# Most messages in one batch (the daemon refuses more), and most bytes: the daemon drops a
# connection that sends a frame over its limit (twice max_payload_bytes plus 1 MiB), so a
# batch is closed at 1 MiB and a larger request goes alone.
MAX_BATCH = 1024
MAX_BATCH_BYTES = 1 << 20
SOCKET_ENV = "HANDOFF_SOCKET"
# A reply later than this is taken as lost (the daemon restarted) and the request is sent
# again; a call gives up after its timeout. The same figures as the C++ client.
RESEND_INTERVAL = 2.0
REQUEST_TIMEOUT = 10.0
# A parked wait is answered at its deadline: waits are sent in chunks of this, and silence
# this much longer than a chunk means the daemon lost it.
WAIT_CHUNK = 5.0
WAIT_GRACE = 1.5
# How long a client waits for a daemon started a moment ago to bind its ipc socket.
START_GRACE = 1.0


def default_endpoint() -> str:
    """$HANDOFF_SOCKET, else the daemon's default: ipc:///tmp/handoff-<uid>/handoffd.sock."""
    env = os.environ.get(SOCKET_ENV)
    if env:
        return env
    return f"ipc:///tmp/handoff-{os.getuid()}/handoffd.sock"


def probe(endpoint: str, grace: float = START_GRACE) -> None:
    """Raises Unavailable soon when nothing listens on an ipc:// endpoint.

    A ZeroMQ connect never fails; a plain connect() to the socket file tells "no daemon" in
    microseconds instead of after a request's timeout. A daemon started a moment ago gets
    `grace` seconds to bind its socket (asyncio callers pass 0: this blocks); a socket this
    user may not use is reported at once, with the group to join. Other transports are not
    probed.
    """
    if not endpoint.startswith("ipc://"):
        return
    path = endpoint[len("ipc://") :]
    deadline = time.monotonic() + grace
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return
        except PermissionError:
            raise Unavailable(_denied_message(path)) from None
        except OSError as e:
            if time.monotonic() >= deadline:
                raise Unavailable(
                    f"handoffd is not running at {endpoint} ({e.strerror or e}); start it with "
                    f"`handoffd`, or point {SOCKET_ENV} at its agent_endpoint"
                ) from None
        finally:
            s.close()
        time.sleep(0.02)


def _denied_message(path: str) -> str:
    """What to do about a socket this user may not use: the group to join."""
    group = ""
    for candidate in (path, os.path.dirname(path) or "."):
        try:
            gid = os.stat(candidate).st_gid
        except OSError:
            continue
        try:
            group = grp.getgrgid(gid).gr_name
        except KeyError:
            group = str(gid)
        break
    if not group:
        return f"permission denied on {path}: this user may not use the daemon's socket"
    return (
        f"permission denied on {path}: add this user to group {group} (the socket's group: "
        "its daemon's [node] agent_socket_group), then log in again"
    )


def connect_dealer(socket: Any, endpoint: str) -> None:
    """Sets up a DEALER (blocking or asyncio) as the protocol asks and connects it: no linger,
    and a routing id of its own so the daemon tells connections apart."""
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.ROUTING_ID, b"py-" + uuid.uuid4().hex.encode())
    socket.connect(endpoint)


_id_lock = threading.Lock()
_id_last_ms = 0
_id_counter = 0


def new_intent_id() -> str:
    """A UUIDv7 (time-ordered) in text form, as handoff makes them: within a process each is
    greater than the one before, even within a millisecond (a 12-bit counter after the time,
    RFC 9562's method 1, as the C++ library does), so intents list in the order they were
    made."""
    global _id_last_ms, _id_counter
    rand = bytearray(secrets.token_bytes(10))
    ms = int(time.time() * 1000)
    with _id_lock:
        if ms > _id_last_ms:
            _id_last_ms = ms
            _id_counter = rand[0] & 0x03  # a random start with room to count up
        else:
            _id_counter += 1
            if _id_counter > 0x0FFF:  # the millisecond's counter is used up: borrow the next
                _id_last_ms += 1
                _id_counter = 0
        ms, counter = _id_last_ms, _id_counter
    b = bytearray(ms.to_bytes(6, "big")) + rand
    b[6] = 0x70 | (counter >> 8)  # version 7, then the counter's top 4 bits
    b[7] = counter & 0xFF
    b[8] = 0x80 | (b[8] & 0x3F)  # variant 10
    return str(uuid.UUID(bytes=bytes(b)))


def check_intent_id(value: Any, field: str = "intent_id") -> str:
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} must be a string, not {type(value).__name__}")
    try:
        uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(f"{field} {value!r} is not a UUID") from None
    if len(value) != 36:
        raise InvalidArgument(f"{field} {value!r} is not a UUID in 36-character text form")
    return value


def encode(op: str, rid: int, fields: Mapping[str, Any], version: int = PROTOCOL_VERSION) -> bytes:
    message: Dict[str, Any] = {"v": version, "op": op, "rid": rid}
    for key, value in fields.items():
        if value is not None:
            message[key] = value
    try:
        return msgpack.packb(message, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as e:
        raise InvalidArgument(f"'{op}' cannot be encoded: {e}") from None


def decode(frame: bytes) -> Dict[str, Any]:
    message = _unpack(frame)
    if not isinstance(message, dict):
        raise Corruption("a frame from handoffd is not a map")
    return message


def decode_all(frame: bytes) -> List[Dict[str, Any]]:
    """The messages of a frame: the one of a message, or each of a batch, in order."""
    message = _unpack(frame)
    if isinstance(message, dict):
        return [message]
    if not isinstance(message, list) or not message or len(message) > MAX_BATCH:
        raise Corruption("a frame from handoffd is neither a map nor a batch of 1 to 1024 maps")
    if not all(isinstance(m, dict) for m in message):
        raise Corruption("a batch from handoffd holds something other than maps")
    return message


def encode_batch(frames: Sequence[bytes]) -> bytes:
    """One batch of already encoded messages (each a map): a msgpack array header, then them."""
    n = len(frames)
    if n < 16:
        header = bytes([0x90 | n])
    elif n <= 0xFFFF:
        header = b"\xdc" + n.to_bytes(2, "big")
    else:
        header = b"\xdd" + n.to_bytes(4, "big")
    return header + b"".join(frames)


def _unpack(frame: bytes) -> Any:
    try:
        return msgpack.unpackb(frame, raw=False, strict_map_key=False)
    except Exception as e:  # msgpack raises several unrelated types
        raise Corruption(f"a frame from handoffd does not decode: {e}") from None


def raise_if_error(reply: Mapping[str, Any]) -> None:
    if reply.get("ok", False):
        return
    error = reply.get("error") or {}
    if not isinstance(error, dict):
        raise Corruption("an error reply without an error map")
    raise error_for(str(error.get("code", "unknown")), str(error.get("message", "")))


def seconds_to_ms(value: Optional[float], field: str) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(f"{field} must be a number of seconds, not {type(value).__name__}")
    if value < 0:
        raise InvalidArgument(f"{field} must not be negative")
    return int(round(value * 1000))


__all__ = [
    "HandoffError",
    "default_endpoint",
    "probe",
    "connect_dealer",
    "new_intent_id",
    "check_intent_id",
    "encode",
    "encode_batch",
    "decode",
    "decode_all",
    "raise_if_error",
    "seconds_to_ms",
]

"""Errors raised by the handoff client: one class per code of the agent protocol.

Every error carries the protocol's ``code`` (a string such as ``"not_found"``) and the daemon's
``message`` (a sentence for people). Catch :class:`HandoffError` for all of them.
"""

from __future__ import annotations

from typing import Dict, Optional, Type


class HandoffError(Exception):
    """An error reported by handoffd, or by the client on its behalf."""

    code: str = "unknown"

    def __init__(self, message: str, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class NotFound(HandoffError):
    """No such intent."""

    code = "not_found"


class AlreadyExists(HandoffError):
    """An intent with that id exists with different content."""

    code = "already_exists"


class InvalidArgument(HandoffError):
    """A malformed request, a bad field, address or type, or a value over a limit."""

    code = "invalid_argument"


class Conflict(HandoffError):
    """Refused by the intent's state: already ended, lease lost, an illegal transition."""

    code = "conflict"


class Corruption(HandoffError):
    """Stored data (or a reply) does not decode."""

    code = "corruption"


class IOFailure(HandoffError):
    """The daemon's disk refused (full, failing). Protocol code ``io_error``."""

    code = "io_error"


class NotStored(HandoffError):
    """The daemon could not store the request (disk full, I/O error): nothing of it took
    effect and sending it again is safe. The agents retry their outcomes and checkpoints on it
    for as long as they hold the lease."""

    code = "not_stored"


class Unavailable(HandoffError):
    """The daemon is not running, not reachable, or not answering in time; retrying may help."""

    code = "unavailable"


class ResourceExhausted(HandoffError):
    """A capacity is used up: the store has no room for new sends, a queue is full."""

    code = "resource_exhausted"


class Canceled(HandoffError):
    """The intent was canceled, or passed its deadline, while an agent worked on it.

    Raised inside a handler by ``task.save_checkpoint`` and ``task.heartbeat``, and (in the
    thread-based :class:`~handoff.Agent`) at the next automatic heartbeat.
    """

    code = "cancelled"

    def __init__(self, message: str = "the intent was canceled", code: Optional[str] = None):
        super().__init__(message, code)


class TimedOut(HandoffError):
    """A bounded wait ran out, or the intent passed its deadline while an agent worked on it.

    When raised by ``wait_for``, ``intent`` holds the intent as last seen (still live).
    """

    code = "timed_out"

    def __init__(self, message: str, code: Optional[str] = None, intent: Optional[dict] = None):
        super().__init__(message, code)
        self.intent = intent


class PermanentError(Exception):
    """Raise from a handler to fail the intent for good (not retried).

    Any other exception fails the attempt as retryable: the intent is delivered again after its
    backoff while it has attempts left.
    """

    def __init__(self, message: str, code: str = "agent_error") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


_BY_CODE: Dict[str, Type[HandoffError]] = {
    cls.code: cls
    for cls in (
        NotFound,
        AlreadyExists,
        InvalidArgument,
        Conflict,
        Corruption,
        IOFailure,
        NotStored,
        Unavailable,
        ResourceExhausted,
        Canceled,
        TimedOut,
    )
}


def error_for(code: str, message: str) -> HandoffError:
    """The exception for a protocol error ``{code, message}``; unknown codes keep their name."""
    cls = _BY_CODE.get(code)
    if cls is None:
        return HandoffError(message, code)
    return cls(message)

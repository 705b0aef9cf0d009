"""What each client call sends and how its reply reads, shared by the blocking client
(client.py) and the asyncio one (aio.py): pure functions, no I/O."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from ._wire import check_intent_id, default_endpoint, new_intent_id, seconds_to_ms
from .errors import Canceled, Conflict, Corruption, InvalidArgument, NotFound, TimedOut

# The options of a send, as send_intent takes them (docs/protocol.md, `send`). Durations are in
# seconds (lease, retry_initial, retry_max) or in milliseconds with the protocol's own names;
# deadline is a datetime or Unix seconds (deadline_ms: Unix milliseconds).
SEND_OPTIONS = (
    "intent_type",
    "to_agent",
    "payload",
    "from_agent",
    "intent_id",
    "correlation_id",
    "parent_id",
    "lease",
    "lease_ms",
    "deadline",
    "deadline_ms",
    "max_attempts",
    "retry_initial",
    "retry_initial_ms",
    "retry_multiplier",
    "retry_max",
    "retry_max_ms",
    "idempotency_key",
    "reply_to",
    "require_approval",
    "prompt",
    "outcomes",
)


def _deadline_ms(value: Any) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument("deadline must be a datetime or Unix seconds")
    return int(value * 1000)


def _either(spec: Mapping[str, Any], seconds_key: str, ms_key: str) -> Optional[int]:
    if spec.get(seconds_key) is not None and spec.get(ms_key) is not None:
        raise InvalidArgument(f"give {seconds_key} or {ms_key}, not both")
    if spec.get(ms_key) is not None:
        value = spec[ms_key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument(f"{ms_key} must be an integer")
        return value
    return seconds_to_ms(spec.get(seconds_key), seconds_key)


def send_fields(intent: Optional[Mapping[str, Any]], options: Mapping[str, Any]) -> Dict[str, Any]:
    """The fields of a `send` for an intent given as a dict, keywords, or both."""
    spec: Dict[str, Any] = dict(intent or {})
    spec.update(options)
    unknown = sorted(set(spec) - set(SEND_OPTIONS))
    if unknown:
        raise InvalidArgument(
            f"unknown send option(s) {', '.join(unknown)}; known: {', '.join(SEND_OPTIONS)}"
        )
    for required in ("intent_type", "to_agent"):
        if not spec.get(required):
            raise InvalidArgument(f"a send needs {required}")
    payload = spec.get("payload", {})
    if payload is None:
        payload = {}
    if not isinstance(payload, Mapping):
        raise InvalidArgument(f"payload must be a dict (a JSON object), not {type(payload).__name__}")
    intent_id = spec.get("intent_id") or new_intent_id()
    check_intent_id(intent_id)
    if spec.get("parent_id") is not None:
        check_intent_id(spec["parent_id"], "parent_id")
    approval = spec.get("require_approval")
    if approval is None and (spec.get("prompt") is not None or spec.get("outcomes") is not None):
        raise InvalidArgument("prompt and outcomes go with require_approval")
    if approval is True or isinstance(approval, Mapping):
        detail = approval if isinstance(approval, Mapping) else {}
        question = detail.get("question", spec.get("prompt", "")) or ""
        outcomes = list(detail.get("outcomes", spec.get("outcomes") or []))
        approval = {"question": question, "outcomes": outcomes}
    elif approval in (False, None):
        approval = None
    else:
        raise InvalidArgument("require_approval must be True, False or {question, outcomes}")
    deadline = spec.get("deadline_ms")
    if deadline is None:
        deadline = _deadline_ms(spec.get("deadline"))
    elif spec.get("deadline") is not None:
        raise InvalidArgument("give deadline or deadline_ms, not both")
    return {
        "intent_id": intent_id,
        "intent_type": spec["intent_type"],
        "to_agent": spec["to_agent"],
        "payload": dict(payload),
        "from_agent": spec.get("from_agent"),
        "correlation_id": spec.get("correlation_id"),
        "parent_id": spec.get("parent_id"),
        "lease_ms": _either(spec, "lease", "lease_ms"),
        "deadline": deadline,
        "max_attempts": spec.get("max_attempts"),
        "retry_initial_ms": _either(spec, "retry_initial", "retry_initial_ms"),
        "retry_multiplier": spec.get("retry_multiplier"),
        "retry_max_ms": _either(spec, "retry_max", "retry_max_ms"),
        "idempotency_key": spec.get("idempotency_key"),
        "reply_to": spec.get("reply_to"),
        "approval": approval,
    }


def intent_of(reply: Mapping[str, Any]) -> Dict[str, Any]:
    intent = reply.get("intent")
    if not isinstance(intent, dict):
        raise Corruption("a reply without an intent")
    return intent


def list_of(reply: Mapping[str, Any], key: str) -> List[Dict[str, Any]]:
    items = reply.get(key)
    if not isinstance(items, list):
        raise Corruption(f"a reply without {key}")
    return items


def list_fields(
    status: Optional[str], to_agent: Optional[str], from_agent: Optional[str], limit: int
) -> Dict[str, Any]:
    return {"status": status, "to_agent": to_agent, "from_agent": from_agent, "limit": limit}


def pending_approvals(intents: Iterable[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """The WAITING intents a human has yet to decide, as `handoffctl approvals` lists them."""
    out = []
    for intent in intents:
        approval = intent.get("approval") or {}
        if intent.get("waiting_reason") == "HUMAN" and approval and not approval.get("decision"):
            out.append(dict(intent))
    return out


def decide_fields(
    intent_id: str, comment: Optional[str], outcome: Optional[str], actor: Optional[str]
) -> Dict[str, Any]:
    check_intent_id(intent_id)
    return {"intent_id": intent_id, "comment": comment, "outcome": outcome, "actor": actor}


def pause_fields(address: str, reason: Optional[str], actor: Optional[str]) -> Dict[str, Any]:
    if not isinstance(address, str) or not address:
        raise TypeError("address must be a non-empty str (agent://<org>/<env>/<name>)")
    return {"address": address, "reason": reason, "actor": actor}


def report_fields(intent_id: str, attempt: int, **extra: Any) -> Dict[str, Any]:
    check_intent_id(intent_id)
    fields: Dict[str, Any] = {"intent_id": intent_id, "attempt": attempt}
    fields.update(extra)
    return fields


def fail_fields(
    intent_id: str, attempt: int, code: str, message: str, retryable: bool
) -> Dict[str, Any]:
    return report_fields(
        intent_id,
        attempt,
        error={"code": code, "message": message, "retryable": bool(retryable)},
    )


# Errors after which an agent's outcome is not worth sending again: the intent has moved on.
# Between tries of a checkpoint or an outcome the daemon could not store (a full disk).
NOT_STORED_PAUSE = 0.5

FINAL_ERRORS = (Conflict, Canceled, TimedOut, NotFound, InvalidArgument)


class AgentSettings:
    """What both kinds of Agent are made with, checked once: the addresses (one, or several
    over one connection), the credit of each, the daemon, and the handler."""

    def __init__(
        self,
        address: Any,
        handler: Any,
        credit: int,
        endpoint: Optional[str],
        timeout: float,
        refresh_interval: float,
    ) -> None:
        self.addresses: List[str] = [address] if isinstance(address, str) else list(address)
        if not self.addresses:
            raise InvalidArgument("an Agent needs at least one address")
        if credit < 1:
            raise InvalidArgument("credit must be at least 1")
        self.credit = credit
        self.endpoint = endpoint or default_endpoint()
        self.timeout = timeout
        self.refresh_interval = refresh_interval
        self._handler = handler

    def handler(self, fn: Any) -> Any:
        """Decorator: makes `fn` this agent's handler."""
        self._handler = fn
        return fn

    def _take_handler(self, handler: Any) -> None:
        if handler is not None:
            self._handler = handler
        if self._handler is None:
            raise InvalidArgument("an Agent needs a handler: agent.run(fn) or @agent.handler")


class TaskFields:
    """What a delivery says, read from the pushed intent (shared by both kinds of Task)."""

    intent: Dict[str, Any]

    @property
    def intent_id(self) -> str:
        return self.intent["intent_id"]

    @property
    def intent_type(self) -> str:
        return self.intent.get("intent_type", "")

    @property
    def payload(self) -> Dict[str, Any]:
        return self.intent.get("payload") or {}

    @property
    def attempt(self) -> int:
        """This delivery's number: 1, then 2 after a redelivery, ..."""
        return int(self.intent.get("delivery_attempt", 0))

    @property
    def checkpoint(self) -> Any:
        """The latest checkpoint any earlier attempt saved, or None."""
        return self.intent.get("checkpoint")

    @property
    def approval(self) -> Optional[Dict[str, Any]]:
        """The human decision this delivery follows (after request_approval), or None."""
        return self.intent.get("approval")


def wait_fields(intent_id: str, timeout_ms: int, payload: bool) -> Dict[str, Any]:
    """A wait request's fields; without the payload when ``payload`` is False."""
    fields: Dict[str, Any] = {"intent_id": intent_id, "timeout_ms": timeout_ms}
    if not payload:
        fields["payload"] = False
    return fields


def wait_chunk(remaining: Optional[float], chunk: float) -> Tuple[float, int]:
    """How long the next parked wait lasts: (seconds, its timeout_ms)."""
    seconds = chunk if remaining is None else max(0.0, min(chunk, remaining))
    return seconds, int(seconds * 1000)

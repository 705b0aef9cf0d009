"""handoff: durable agent-to-agent handoffs, from Python.

A thin client of the local ``handoffd`` (docs/protocol.md): :class:`Client` hands work off and
waits for it, :class:`Agent` does it. ``handoff.aio`` has the same over asyncio.
"""

from ._wire import new_intent_id
from .agent import Agent, Task
from .client import Client
from .errors import (
    AlreadyExists,
    Canceled,
    Conflict,
    Corruption,
    HandoffError,
    InvalidArgument,
    IOFailure,
    NotFound,
    NotStored,
    PermanentError,
    ResourceExhausted,
    TimedOut,
    Unavailable,
)

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AlreadyExists",
    "Canceled",
    "Client",
    "Conflict",
    "Corruption",
    "HandoffError",
    "IOFailure",
    "InvalidArgument",
    "NotFound",
    "NotStored",
    "PermanentError",
    "ResourceExhausted",
    "Task",
    "TimedOut",
    "Unavailable",
    "new_intent_id",
]

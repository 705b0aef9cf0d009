"""The agent's side: a loop that receives intents for one or more addresses and runs a handler
for each, with automatic heartbeats, checkpoints that are durable when they return, and
outcomes reported until the daemon has them.

    from handoff import Agent, PermanentError

    agent = Agent("agent://myorg/production/processor", credit=2)

    @agent.handler
    def process(task):
        step = (task.checkpoint or {}).get("step", 0)
        while step < 8:
            step += 1                          # one step of work
            task.save_checkpoint({"step": step})
        return {"records_processed": 8}        # completes the intent

    agent.run()                                # until SIGTERM/SIGINT or agent.stop()

The handler's return value completes the intent; an exception fails the attempt, retried after
its backoff unless it is a PermanentError. Handlers run in threads (``credit`` of them per
address); each thread has its own connection to the daemon.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from . import _ops
from ._wire import REQUEST_TIMEOUT
from .client import Client, Connection
from .errors import (
    Canceled,
    Conflict,
    HandoffError,
    NotStored,
    PermanentError,
    TimedOut,
    Unavailable,
)

log = logging.getLogger("handoff")



class Task(_ops.TaskFields):
    """One delivery of an intent to this agent: what to do, and the calls to make about it."""

    def __init__(self, intent: Dict[str, Any], client: Client) -> None:
        self.intent: Dict[str, Any] = intent
        self._client = client
        self.canceled = False  # the daemon reported it canceled or past its deadline
        self.lease_lost = False  # delivered again since: stop, nothing will be accepted
        self.suspended = False  # handed to a human (request_approval): no outcome to send
        self._thread_id: Optional[int] = None  # the handler's thread, while it runs
        self._reporting = False  # its outcome is being sent: the heartbeats go on
        self._thread_lock = threading.Lock()  # guards _thread_id against a late interrupt

    def _check(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except (Canceled, TimedOut) as e:
            self.canceled = True
            raise Canceled(f"intent {self.intent_id} ended: {e.message}") from None
        except Conflict:
            self.lease_lost = True
            raise

    def save_checkpoint(self, state: Any) -> None:
        """Stores `state` as the intent's checkpoint; durable when this returns.

        Raises Canceled if the intent was canceled (stop working), Conflict if this attempt
        lost its lease.
        """
        # A checkpoint the disk could not take (NotStored) is sent again, the lease held by the
        # heartbeats, until it is stored or the intent is lost.
        while True:
            try:
                self._check(lambda: self._client.checkpoint(self.intent_id, state, self.attempt))
                return
            except NotStored as e:
                if self.canceled or self.lease_lost:
                    raise
                log.warning("checkpoint of intent %s: %s; retrying", self.intent_id, e)
                time.sleep(_ops.NOT_STORED_PAUSE)

    def heartbeat(self) -> None:
        """Extends the lease now (the agent also does it by itself); raises as save_checkpoint."""
        self._check(lambda: self._client.heartbeat(self.intent_id, self.attempt))

    def request_approval(self, question: str, outcomes: Optional[List[str]] = None) -> None:
        """Asks a human and gives the intent up until they decide: return from the handler next.

        The intent comes back, decision in ``task.approval`` and checkpoint kept, as a new
        delivery.
        """
        self._check(
            lambda: self._client.request_approval(self.intent_id, question, outcomes, self.attempt)
        )
        self.suspended = True


Handler = Callable[[Task], Any]


def _raise_in_thread(thread_id: int, exc: type) -> None:
    """Makes `exc` raise in another thread at its next Python instruction (CPython)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc))


class Agent(_ops.AgentSettings):
    """Receives intents for ``address`` (one, or several over one connection), ``credit`` at a
    time for each, and runs the handler on each."""

    def __init__(
        self,
        address: Union[str, Sequence[str]],
        handler: Optional[Handler] = None,
        *,
        credit: int = 1,
        endpoint: Optional[str] = None,
        timeout: float = REQUEST_TIMEOUT,
        refresh_interval: float = 1.0,
    ) -> None:
        super().__init__(address, handler, credit, endpoint, timeout, refresh_interval)
        self._stop = threading.Event()
        self._drained = threading.Event()  # every handler has returned after a stop
        self._running: Dict[str, Task] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self._clients: List[Client] = []

    def stop(self) -> None:
        """Asks run() to return: no new deliveries; running handlers finish first."""
        self._stop.set()

    # --- The loop ---

    def run(self, handler: Optional[Handler] = None) -> None:
        """Serves until stop(), SIGTERM or SIGINT. Rides out daemon restarts."""
        self._take_handler(handler)
        previous = self._install_signals()
        inbox = self._connect()
        if inbox is None:
            self._restore_signals(previous)
            return
        workers = ThreadPoolExecutor(
            max_workers=self.credit * len(self.addresses), thread_name_prefix="handoff-task"
        )
        beats = threading.Thread(target=self._heartbeats, name="handoff-heartbeat", daemon=True)
        beats.start()
        try:
            last_register = 0.0
            warned = False
            while not self._stop.is_set():
                if time.monotonic() - last_register >= self.refresh_interval:
                    # Idle, or due: register again. This is how a restarted daemon learns of us.
                    try:
                        for address in self.addresses:
                            inbox.call("receive", {"address": address, "credit": self.credit})
                        warned = False
                    except Unavailable as e:
                        if not warned:
                            log.warning("agent cannot register with handoffd (will keep trying): %s", e)
                            warned = True
                    last_register = time.monotonic()
                push = inbox.next_push(min(0.2, self.refresh_interval))
                if push is None:
                    continue
                intent = push.get("intent")
                if not isinstance(intent, dict) or "intent_id" not in intent:
                    log.warning("ignored an undecodable delivery")
                    continue
                workers.submit(self._handle, intent)
        finally:
            self._stop.set()
            workers.shutdown(wait=True)
            self._drained.set()
            beats.join(timeout=self.timeout)
            inbox.close()
            for client in self._clients:
                client.close()
            self._restore_signals(previous)

    def _connect(self) -> Optional[Connection]:
        """The inbox connection; waits for a daemon that is not running yet (None on stop)."""
        warned = False
        while not self._stop.is_set():
            try:
                return Connection(self.endpoint, self.timeout)
            except Unavailable as e:
                if not warned:
                    log.warning("agent waits for handoffd: %s", e)
                    warned = True
                self._stop.wait(self.refresh_interval)
        return None

    def _install_signals(self) -> Dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: self.stop())
        return previous

    @staticmethod
    def _restore_signals(previous: Dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def _client(self) -> Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = Client(self.endpoint, self.timeout)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _handle(self, intent: Dict[str, Any]) -> None:
        try:
            self._handle_task(Task(intent, self._client()))
        except Canceled:
            pass  # a heartbeat's interrupt that landed just after the handler returned

    def _handle_task(self, task: Task) -> None:
        try:
            task._client.ack(task.intent_id, task.attempt, start=True)
        except HandoffError as e:
            log.info("skipping intent %s (attempt %d): %s", task.intent_id, task.attempt, e)
            return
        with self._lock:
            self._running[task.intent_id] = task
        outcome: Optional[Callable[[], Any]] = None
        try:
            task._thread_id = threading.get_ident()
            try:
                result = self._handler(task)  # type: ignore[misc]
            finally:
                with task._thread_lock:
                    task._thread_id = None
            if not task.suspended and not task.canceled:
                outcome = lambda: task._client.complete(task.intent_id, result, task.attempt)
        except Canceled:
            task.canceled = True  # nothing to report: it ended without us
        except PermanentError as e:
            message, code = e.message, e.code  # `e` is gone after this block
            outcome = lambda: task._client.fail(
                task.intent_id, message, code, retryable=False, attempt=task.attempt
            )
        except Exception as e:  # the handler's failure is the intent's, not the loop's
            message = f"{type(e).__name__}: {e}"
            outcome = lambda: task._client.fail(
                task.intent_id, message, "agent_error", retryable=True, attempt=task.attempt
            )
        finally:
            if outcome is None or task.lease_lost:
                with self._lock:
                    self._running.pop(task.intent_id, None)
        if outcome is not None and not task.lease_lost:
            # Still among the running, so that the heartbeats hold the lease while a report
            # the disk refuses (NotStored) is sent again.
            task._reporting = True
            try:
                self._report(task, outcome)
            finally:
                with self._lock:
                    self._running.pop(task.intent_id, None)

    def _report(self, task: Task, send: Callable[[], Any]) -> None:
        """Sends an outcome until the daemon has it, refuses it for good, or the lease is
        lost."""
        intent_id = task.intent_id
        while True:
            if task.lease_lost or task.canceled:
                log.warning("the outcome of intent %s was dropped: its lease is lost", intent_id)
                return
            try:
                send()
                return
            except Canceled:
                return  # an outcome raced with the cancel; the cancel won
            except _ops.FINAL_ERRORS as e:
                log.warning("the outcome of intent %s was refused: %s", intent_id, e)
                return
            except HandoffError as e:
                log.warning("reporting intent %s: %s; retrying", intent_id, e)
                if self._stop.wait(0.5) and isinstance(e, Unavailable):
                    # Stopping: one more try, then the lease runs out and the intent goes again.
                    try:
                        send()
                    except HandoffError:
                        pass
                    return

    def _heartbeats(self) -> None:
        """Extends the lease of every running task every third of its lease, and tells a
        handler whose intent was canceled (Canceled, raised in its thread)."""
        client: Optional[Client] = None
        try:
            while not self._drained.is_set():
                with self._lock:
                    tasks = list(self._running.values())
                lease_ms = min((t.intent.get("lease_ms", 30000) for t in tasks), default=3000)
                if self._drained.wait(max(0.1, lease_ms / 3000.0)):
                    return
                with self._lock:
                    tasks = list(self._running.values())
                if not tasks:
                    continue
                if client is None:
                    try:
                        client = Client(self.endpoint, self.timeout)
                    except Unavailable:
                        continue
                for task in tasks:
                    self._beat(client, task)
        finally:
            if client is not None:
                client.close()

    @staticmethod
    def _beat(client: Client, task: Task) -> None:
        if task._thread_id is None and not task._reporting:
            return
        try:
            client.heartbeat(task.intent_id, task.attempt)
        except (Canceled, TimedOut):
            task.canceled = True
            with task._thread_lock:
                if task._thread_id is not None:
                    _raise_in_thread(task._thread_id, Canceled)
        except Conflict:
            task.lease_lost = True
        except HandoffError as e:
            log.debug("heartbeat for intent %s: %s", task.intent_id, e)


__all__ = ["Agent", "Task", "Handler"]

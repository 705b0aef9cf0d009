"""Fixtures: a real handoffd on a temporary directory and ipc endpoint, per test."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import handoff  # noqa: E402


def _binary(name: str) -> str:
    env = os.environ.get(name.upper())
    if env:
        return env
    built = HERE.parent.parent / "build" / "daemons" / name
    if built.exists():
        return str(built)
    found = shutil.which(name)
    if found:
        return found
    pytest.skip(f"{name} not found: build the project, or set {name.upper()}")
    return ""


def wait_until(condition: Callable[[], bool], timeout: float = 15.0, every: float = 0.02) -> bool:
    """Polls `condition` until it holds or `timeout` passes; returns whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


class Daemon:
    """A handoffd process with its own config, data directory, socket and log."""

    def __init__(self, root: Path, name: str = "node-py", extra: str = "") -> None:
        self.root = root
        self.name = name
        self.endpoint = f"ipc://{root}/{name}.sock"
        self.config = root / f"{name}.toml"
        self.log = root / f"{name}.log"
        self.config.write_text(
            "[node]\n"
            f'name = "{name}"\n'
            f'data_dir = "{root}/{name}-data"\n'
            f'agent_endpoint = "{self.endpoint}"\n' + extra + "\n"
        )
        self.proc: Optional[subprocess.Popen] = None
        self.handoffd = _binary("handoffd")

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [self.handoffd, "--config", str(self.config)], stdout=log, stderr=log
            )

        def up() -> bool:
            try:
                with handoff.Client(self.endpoint, timeout=1.0) as c:
                    c.status()
                return True
            except handoff.HandoffError:
                return False

        assert wait_until(up), f"handoffd did not start:\n{self.log.read_text()}"

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=15)
            self.proc = None

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=15)
        self.proc = None
        return code

    def client(self, **kw) -> handoff.Client:
        return handoff.Client(self.endpoint, **kw)

    def ctl(self, *args: str, input: Optional[str] = None) -> subprocess.CompletedProcess:
        env = dict(os.environ, HANDOFF_SOCKET=self.endpoint)
        return subprocess.run(
            [_binary("handoffctl"), *args],
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )


@pytest.fixture
def tmp_root() -> Iterator[Path]:
    # Short paths: an ipc socket path has at most 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="hpy-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def daemon(tmp_root: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_root)
    d.start()
    yield d
    if d.proc is not None:
        d.kill()


@pytest.fixture
def make_daemon(tmp_root: Path) -> Iterator[Callable[..., Daemon]]:
    made: List[Daemon] = []

    def make(name: str = "node-py", extra: str = "") -> Daemon:
        d = Daemon(tmp_root, name, extra)
        made.append(d)
        return d

    yield make
    for d in made:
        if d.proc is not None:
            d.kill()

"""Fixtures: a real `jobwire broker --in-memory` on random loopback ports, and condition waits.

The broker binary is $JOBWIRE_BIN/jobwire, else <repo>/.build/debug/jobwire (`swift build` first).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any, Callable, Optional

import pytest

from jobwire import JobsClient

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
BIN = os.environ.get("JOBWIRE_BIN") or os.path.join(ROOT, ".build", "debug")
JOBWIRE = os.path.join(BIN, "jobwire")
LIMIT = 60.0  # generous: the machine is shared; a wait that needs this long has failed anyway


def wait_until(condition: Callable[[], Any], what: str, timeout: float = LIMIT) -> Any:
    """Polls ``condition`` until it returns something truthy; fails the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


class Broker:
    """A `jobwire broker` process; ``restart()`` starts a new in-memory store on the same ports.

    With ``data`` it keeps its store in that folder instead, and ``events``/``commands`` say where it binds.
    """

    def __init__(self, tmp: str, data: Optional[str] = None, events: str = "tcp://127.0.0.1:*",
                 commands: str = "tcp://127.0.0.1:*") -> None:
        self.tmp = tmp
        self.data = data
        self.events = events
        self.commands = commands
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.clients: list[JobsClient] = []
        self.start()

    def start(self) -> None:
        if not os.access(JOBWIRE, os.X_OK):
            pytest.fail(f"{JOBWIRE} is missing: run `swift build` in {ROOT}, or set JOBWIRE_BIN")
        out = open(os.path.join(self.tmp, "broker.out"), "wb")
        log = open(os.path.join(self.tmp, "broker.log"), "ab")
        store = ["--data", self.data] if self.data else ["--in-memory"]
        self.proc = subprocess.Popen([JOBWIRE, "broker", *store, "--events", self.events,
                                      "--commands", self.commands], stdout=out, stderr=log)
        path = os.path.join(self.tmp, "broker.out")

        def first_line() -> Optional[str]:
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"the broker exited: {open(os.path.join(self.tmp, 'broker.log')).read()}")
            with open(path) as f:
                line = f.readline()
            return line if "listening: events " in line else None

        line = wait_until(first_line, "the broker to listen")
        match = re.search(r"events (\S+), commands (\S+),", line)
        assert match, line
        self.events, self.commands = match.group(1), match.group(2)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(LIMIT)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: the broker dies as a machine does, with nothing flushed or said."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(LIMIT)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self, **options: Any) -> JobsClient:
        client = JobsClient(self.commands, **options)
        self.clients.append(client)
        return client

    def env(self) -> dict[str, str]:
        return {**os.environ, "JOBWIRE_COMMANDS": self.commands, "JOBWIRE_EVENTS": self.events,
                "PYTHONPATH": os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


@pytest.fixture
def broker(tmp_path: Any) -> Iterator[Broker]:
    b = Broker(str(tmp_path))
    try:
        yield b
    finally:
        for client in b.clients:
            client.close()
        b.stop()


class Worker:
    """A `python -m jobwire worker` subprocess; its output goes to a log file."""

    def __init__(self, broker: Broker, target: str, *args: str, name: str = "pytest-workers",
                 env: Optional[dict[str, str]] = None) -> None:
        self.log_path = os.path.join(broker.tmp, f"worker-{time.monotonic_ns()}.log")
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jobwire", "worker", target, "--name", name, *args],
            stdout=self.log_file, stderr=subprocess.STDOUT, env={**broker.env(), **(env or {})}, cwd=broker.tmp)

    def log(self) -> str:
        with open(self.log_path) as f:
            return f.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(LIMIT)
        self.log_file.close()


@pytest.fixture
def workers(broker: Broker) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(target: str, *args: str, **options: Any) -> Worker:
        worker = Worker(broker, target, *args, **options)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()

"""The fault suite's plumbing: a real broker process, listener processes, a pipelined producer, and
the ledger that counts jobs by id from the broker's own event log.

Everything runs on loopback, as separate processes, the way a user runs Jobwire.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import sqlite3  # noqa: F401 (the suite uses h.sqlite3)
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import zmq

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
from jobwire import Client, JobwireTimeout  # the package clients/python (scripts/python-env.sh installs it)
from jobwire import ProtocolError as JobwireError

BUILD = os.environ.get("JOBWIRE_FAULT_BUILD", os.path.join(ROOT, ".build-fault", "debug"))
JOBWIRE = os.path.join(BUILD, "jobwire")
PYTHON = sys.executable
WORKER = os.path.join(ROOT, "faults", "worker.py")
TERMINAL = {"complete", "failed", "canceled"}


# The store the suite's brokers run on: "sqlite" (a data folder each) or "postgres" (a fresh schema each in
# the PostgreSQL database of POSTGRES_URL). suite.py --store sets them.
STORE = "sqlite"
POSTGRES_URL = os.environ.get("JOBWIRE_TEST_POSTGRES", "")
POSTGRES_SH = os.path.join(ROOT, "scripts", "postgres.sh")


def with_schema(url: str, schema: str) -> str:
    """`url` with `schema=NAME` in its query (replacing one it had)."""
    base, _, query = url.partition("?")
    params = [p for p in query.split("&") if p and not p.startswith("schema=")] + [f"schema={schema}"]
    return f"{base}?{'&'.join(params)}"


def fresh_schema() -> str:
    return f"t_{os.urandom(5).hex()}"


def via_port(url: str, port: int) -> str:
    """`url` with its host and port replaced by 127.0.0.1:`port` (a proxy in front of the server)."""
    scheme, _, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    user, at, _ = authority.rpartition("@")
    return f"{scheme}://{user}{at}127.0.0.1:{port}{slash}{path}"


def postgres_port(url: str) -> int:
    authority = url.partition("://")[2].partition("/")[0].rpartition("@")[2]
    return int(authority.rpartition(":")[2] or 5432)


def psql(url: str, sql: str, schema: Optional[str] = None) -> list[tuple[str, ...]]:
    """Rows of one SQL statement run with psql (text fields; the store's own schema first on the path)."""
    base = url.partition("?")[0]
    env = {**os.environ, **({"PGOPTIONS": f"-c search_path={schema}"} if schema else {})}
    # CSV: the values may hold any character (a former owner is listenerId U+001F instanceId, owners are
    # separated by newlines).
    out = subprocess.run(["psql", base, "-X", "-q", "--csv", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
                         capture_output=True, text=True, env=env, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"psql: {out.stderr.strip()}")
    return [tuple(record) for record in csv.reader(io.StringIO(out.stdout, newline="")) if record]


class Postgres:
    """A throwaway cluster of scripts/postgres.sh under a folder: started, restarted, stopped."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.url = ""

    def start(self) -> str:
        self.url = self._run("start")
        return self.url

    def restart(self) -> None:
        self._run("restart")

    def stop(self) -> None:
        self._run("stop")

    def _run(self, verb: str) -> str:
        out = subprocess.run([POSTGRES_SH, verb, self.folder], capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"scripts/postgres.sh {verb} failed: {out.stderr.strip()}")
        return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def say(*words: object) -> None:
    print("   ", *words, flush=True)


@dataclass
class Phase:
    """One attack of a hostile-client scenario, with what a bystander client and the broker showed."""

    name: str
    worst_ms: Optional[float] = None  # the bystander's slowest round trip while the attack ran (and after)
    p99_ms: Optional[float] = None
    baseline_ms: Optional[float] = None  # its slowest round trip in the second before the attack
    rss_mb: Optional[int] = None  # the broker's peak resident memory (VmHWM) up to the end of the attack
    unanswered: int = 0  # bystander requests that never got a reply (their wait counts as their latency)
    failures: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)  # what happened to the broker: crashed, stalled, killed...

    @property
    def result(self) -> str:
        return ("pass" if not self.failures else "FAIL") + (f" ({', '.join(self.tags)})" if self.tags else "")


@dataclass
class Row:
    """One scenario's figures; a hostile-client scenario has a phase per attack."""

    scenario: str
    jobs: int = 0
    kills: int = 0
    faults: int = 0
    inputs: int = 0
    lost: int = 0
    duplicated: int = 0
    reruns: int = 0
    explained: int = 0
    stuck: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: Optional[str] = None
    phases: list[Phase] = field(default_factory=list)

    def check(self, ok: bool, message: str, phase: Optional[Phase] = None) -> None:
        if not ok:
            if phase is not None:
                phase.failures.append(message)
                message = f"{phase.name}: {message}"
            self.failures.append(message)
            say("FAIL:", message)

    @property
    def result(self) -> str:
        if self.skipped:
            return "skipped"
        return "pass" if not self.failures else "FAIL"


# The postgres store's names for the SQLite schema's camelCase columns that the suite reads.
STORE_COLUMNS = {"formerOwners": "former_owners"}


class Broker:
    """`jobwire broker` on fixed loopback ports (so a restart keeps them) over a data folder, or with the
    postgres store over a fresh schema of its own (`store` names another URL: a standby's, a proxy's)."""

    def __init__(self, data: str, *args: str, events_port: Optional[int] = None, commands_port: Optional[int] = None,
                 store: Optional[str] = None):
        self.data = data
        self.args = list(args)
        self.schema: Optional[str] = None
        self.store: Optional[str] = store
        if store is None and STORE == "postgres":
            if not POSTGRES_URL:
                raise RuntimeError("the postgres store needs JOBWIRE_TEST_POSTGRES (suite.py --store postgres sets it)")
            self.schema = fresh_schema()
            self.store = with_schema(POSTGRES_URL, self.schema)
        elif store is not None:
            self.schema = dict(p.split("=", 1) for p in store.partition("?")[2].split("&") if "=" in p).get("schema")
        self.direct: Optional[str] = None  # the URL that store_rows reads through, when `store` is a proxy's
        self.listening_at: Optional[float] = None  # when the startup line came (a standby's: when it took over)
        self.listening = threading.Event()
        self.events = f"tcp://127.0.0.1:{events_port or free_port()}"
        self.commands = f"tcp://127.0.0.1:{commands_port or free_port()}"
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.log_path = os.path.join(os.path.dirname(data.rstrip("/")) or ".", os.path.basename(data.rstrip("/")) + ".broker.log")
        self.starts = 0
        self.kills = 0

    def start(self, timeout: float = 20.0, expect_listening: bool = True) -> Optional[str]:
        """Starts the broker; returns its first stdout line (None if it exited without one)."""
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"--- start {self.starts}\n".encode())
        log.flush()
        self.listening.clear()
        self.listening_at = None
        self.proc = subprocess.Popen([JOBWIRE, "broker", *self.store_args(), "--events", self.events, "--commands",
                                      self.commands, *self.args], stdout=subprocess.PIPE, stderr=log)
        log.close()
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        while "standby" in line and "listening" not in line:  # postgres store: stood by first, then took over
            line = self.proc.stdout.readline().decode()
        if "listening" in line:
            self.listening_at = time.monotonic()
            self.listening.set()
        if expect_listening and "listening" not in line:
            self.proc.wait(timeout)
            raise RuntimeError(f"broker did not start: {line!r}; log {self.log_path}:\n{self.log_tail()}")
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        return line or None

    def store_args(self) -> list[str]:
        return ["--store", self.store] if self.store else ["--data", self.data]

    def start_standby(self, timeout: float = 20.0) -> None:
        """Starts a broker that may come up as a standby (postgres store): returns when its log says
        `standby`, or when it prints its startup line (it was active at once). A reader thread marks the
        moment the startup line comes (`listening_at`, the `listening` event)."""
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"--- start {self.starts} (standby)\n".encode())
            log.flush()
            mark = log.tell()
            self.listening.clear()
            self.listening_at = None
            self.proc = subprocess.Popen([JOBWIRE, "broker", *self.store_args(), "--events", self.events, "--commands",
                                          self.commands, *self.args], stdout=subprocess.PIPE, stderr=log)
        proc = self.proc
        stood_by = threading.Event()  # a `standby` line on stdout (the log file is read for one too)

        def read() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                text = raw.decode(errors="replace")
                if "standby" in text:
                    stood_by.set()
                if "listening" in text and not self.listening.is_set():
                    self.listening_at = time.monotonic()
                    self.listening.set()

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.listening.is_set() or stood_by.is_set() or "standby" in self.log_since(mark):
                return
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"broker neither stood by nor started (exit {proc.poll()}); log {self.log_path}:\n"
                           f"{self.log_tail()}")

    def log_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 15) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.kills += 1

    def stop(self) -> Optional[int]:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self, timeout: float = 5.0) -> Client:
        return Client(self.commands, timeout=timeout)

    def store_rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Reads the store directly. The broker holds its store exclusively: when it runs, it is stopped
        for the read and started again; after a kill -9 its write-ahead log is read the same way. On the
        postgres store the rows come through psql while the broker runs; columns named in camelCase in the
        SQLite schema are asked for as the PostgreSQL schema names them (STORE_COLUMNS)."""
        if self.schema is not None:
            for sqlite_name, postgres_name in STORE_COLUMNS.items():
                sql = sql.replace(sqlite_name, postgres_name)
            return psql(self.direct or self.store or POSTGRES_URL, sql, self.schema)
        running = self.alive()
        if running:
            self.stop()
        db = sqlite3.connect(os.path.join(self.data, "jobwire.sqlite"))
        try:
            db.execute("PRAGMA locking_mode = EXCLUSIVE")
            return db.execute(sql).fetchall()
        finally:
            db.close()
            if running:
                self.start()


class Procs:
    """Listener processes: started, SIGKILLed, SIGSTOPped, and all cleaned up at the end."""

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.specs: dict[str, tuple[list[str], dict[str, str]]] = {}
        self.kills = 0
        self.killed: list[str] = []
        self.died: list[str] = []

    def python_worker(self, name: str, broker: Broker, threads: int = 2, jobs: str = "fault:*") -> str:
        log = os.path.join(self.workdir, f"{name}.log")
        cmd = [PYTHON, WORKER, "--commands", broker.commands, "--name", name, "--threads", str(threads),
               "--jobs", jobs, "--log", log]
        return self.start(name, cmd, {})

    def swift_handler(self, name: str, broker: Broker, work_ms: int = 20) -> str:
        cmd = [os.path.join(BUILD, "job-handler"), "--commands", broker.commands, "--events", broker.events, "--name", name]
        return self.start(name, cmd, {"JOBWIRE_WORK_MS": str(work_ms), "JOBWIRE_LOG_LEVEL": "warning"})

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> str:
        self.specs[name] = (cmd, env)
        out = open(os.path.join(self.workdir, f"{name}.out"), "ab")
        self.procs[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env})
        out.close()
        return name

    def restart(self, name: str) -> None:
        cmd, env = self.specs[name]
        self.start(name, cmd, env)

    def kill9(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.kills += 1
        self.killed.append(name)

    def signal(self, name: str, sig: int) -> None:
        self.procs[name].send_signal(sig)

    def supervise(self, stop: threading.Event, on_exit: Callable[[str], Optional[str]]) -> threading.Thread:
        """Restarts listeners that exit on their own (as `jobwire dev` would); `on_exit` names the new one."""

        def loop() -> None:
            while not stop.wait(0.2):
                for name in self.exited():
                    if name in self.killed or name in self.died:
                        continue
                    self.died.append(name)
                    on_exit(name)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        return thread

    def exited(self) -> list[str]:
        return [name for name, proc in self.procs.items() if proc.poll() is not None]

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGCONT)
                    proc.send_signal(signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()

    def lines(self, name: str) -> list[list[str]]:
        path = os.path.join(self.workdir, f"{name}.log")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [line.split() for line in f if line.strip()]


class Producer:
    """Creates jobs over one DEALER, up to `window` in flight, each with an idempotency key.

    A create is acknowledged when a success reply arrives. Requests without a reply after `timeout`
    (a broker killed meanwhile) or with an error reply are sent again with the same key, so the
    broker never creates one twice. `acked` maps the key to the job id the broker reported.
    """

    def __init__(self, commands: str, *, tag: str, job: str = "fault:work", window: int = 64, timeout: float = 3.0):
        self.commands = commands
        self.tag = tag
        self.type, self.operation = job.split(":", 1)
        self.window = window
        self.timeout = timeout
        self.acked: dict[str, str] = {}
        self.errors = 0
        self.resends = 0
        self.stop = threading.Event()
        self.thread: Optional[threading.Thread] = None

    def run(self, count: int, input_for: Callable[[int], dict[str, Any]] = lambda i: {}, rate: Optional[float] = None,
            extra: Optional[dict[str, Any]] = None) -> dict[str, str]:
        ctx = zmq.Context.instance()
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.commands)
        pending: dict[int, float] = {}
        todo = list(range(count))
        todo.reverse()
        started = time.monotonic()
        sent_total = 0
        base = len(self.acked)

        def request(i: int) -> bytes:
            params = {"type": self.type, "operation": self.operation, "source": f"us_src_{i}",
                      "idempotencyKey": f"{self.tag}-{i}", "input": input_for(i), **(extra or {})}
            return json.dumps({"jsonrpc": "2.0", "id": i, "method": "jobs.create", "params": params}).encode()

        while (todo or pending) and not self.stop.is_set():
            now = time.monotonic()
            while todo and len(pending) < self.window:
                if rate and sent_total >= (now - started) * rate:
                    break
                i = todo.pop()
                sock.send_multipart([b"", request(i)])
                pending[i] = now
                sent_total += 1
            if sock.poll(20, zmq.POLLIN):
                while True:
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    reply = json.loads(frames[-1])
                    i = reply.get("id")
                    if i not in pending:
                        continue
                    del pending[i]
                    if "result" in reply:
                        self.acked[f"{self.tag}-{i}"] = reply["result"]["id"]
                    else:
                        self.errors += 1
                        todo.append(i)
                        time.sleep(0.01)
            now = time.monotonic()
            for i, at in list(pending.items()):
                if now - at > self.timeout:
                    del pending[i]
                    self.resends += 1
                    todo.append(i)
        sock.close(0)
        return self.acked

    def start(self, *args: Any, **kwargs: Any) -> None:
        self.thread = threading.Thread(target=self.run, args=args, kwargs=kwargs, daemon=True)
        self.thread.start()

    def join(self) -> None:
        assert self.thread is not None
        self.thread.join()


@dataclass
class JobLedger:
    """What the broker's event log says happened to one job."""

    executing_attempts: list[int] = field(default_factory=list)  # attempts that reached executing, in order
    completed: int = 0
    failed: int = 0
    ready_attempts: list[int] = field(default_factory=list)
    outcome: Optional[str] = None
    first_exec_seq: dict[int, int] = field(default_factory=dict)
    abandoned: list[int] = field(default_factory=list)  # attempts released as "claim abandoned", never run


def ledger(client: Client, topics: Optional[list[str]] = None) -> tuple[dict[str, JobLedger], int]:
    """Every job event of the log, folded per job id. Returns (jobs, last seq)."""
    jobs: dict[str, JobLedger] = defaultdict(JobLedger)
    since = 0
    while True:
        reply = client.call("events.list", {"since": since, "limit": 10000, **({"topics": topics} if topics else {})},
                            timeout=30)
        for event in reply["events"]:
            job_id = (event.get("context") or {}).get("jobId")
            if job_id is None:
                continue
            payload = event.get("payload") or {}
            entry = jobs[job_id]
            attempt = int(payload.get("attempt") or 0)
            topic = event["topic"]
            if topic == "job:updated" and payload.get("status") == "executing" and attempt not in entry.executing_attempts:
                entry.executing_attempts.append(attempt)
                entry.first_exec_seq[attempt] = event["seq"]
            elif topic == "job:ready":
                entry.ready_attempts.append(attempt)
                if payload.get("info") == "claim abandoned" and entry.executing_attempts:
                    # The Swift SDK gives back at once a job handed to a claim it had stopped waiting for
                    # (jobs.release, attempt + 1): that attempt never ran a handler.
                    entry.abandoned.append(entry.executing_attempts.pop())
            elif topic == "job:completed":
                entry.completed += 1
            elif topic == "job:failed":
                entry.failed += 1
                entry.outcome = (payload.get("outcome") or {}).get("message")
        # A page may stop short of lastSeq with any number of events: nextSince says where to go on.
        next_since = int(reply.get("nextSince", reply["events"][-1]["seq"] if reply["events"] else reply["lastSeq"]))
        if next_since >= int(reply["lastSeq"]) or next_since <= since:
            return dict(jobs), int(reply["lastSeq"])
        since = next_since


def events(client: Client, topics: Optional[list[str]] = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    since = 0
    while True:
        reply = client.call("events.list", {"since": since, "limit": 10000, **({"topics": topics} if topics else {})},
                            timeout=30)
        out += reply["events"]
        next_since = int(reply.get("nextSince", reply["events"][-1]["seq"] if reply["events"] else reply["lastSeq"]))
        if next_since >= int(reply["lastSeq"]) or next_since <= since:
            return out
        since = next_since


def parse_ts(text: str) -> float:
    import calendar
    whole, _, rest = text.partition(".")
    return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + int(rest.rstrip("Z") or 0) / 1000


def statuses(client: Client, job_type: str = "fault") -> dict[str, str]:
    out: dict[str, str] = {}
    for job in client.list_all(type=job_type):
        out[job["id"]] = job["status"]
    return out


def wait_until(predicate: Callable[[], bool], timeout: float, every: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except (JobwireError, JobwireTimeout):
            pass
        time.sleep(every)
    return False


def wait_while_progress(remaining: Callable[[], int], stall: float, timeout: float) -> bool:
    """Waits until `remaining()` is 0; gives up when it has not moved for `stall` seconds."""
    deadline = time.monotonic() + timeout
    last, moved = None, time.monotonic()
    while time.monotonic() < deadline:
        try:
            now_left = remaining()
        except (JobwireError, JobwireTimeout):
            now_left = last
        if now_left == 0:
            return True
        if now_left != last:
            last, moved = now_left, time.monotonic()
        elif time.monotonic() - moved > stall:
            return False
        time.sleep(1)
    return False


def count_status(client: Client, status: str, job_type: str = "fault") -> int:
    return client.list(status=status, type=job_type, pageSize=1)["pagination"]["totalCount"]


def open_count(client: Client, job_type: str = "fault") -> int:
    """The jobs of `job_type` not ended. The ended ones are counted first, all of the type after: an ended job
    stays ended (the scenarios never retry or delete one), so a job that moves between two queries can only
    make the figure too high, never a false 0. Summing the open statuses, one query each, could: a lease that
    ran out between the `ready` and the `executing` query hid its job from both."""
    ended = sum(count_status(client, s, job_type) for s in ("complete", "failed", "canceled"))
    total = client.list(type=job_type, pageSize=1)["pagination"]["totalCount"]
    return total - ended


def workdir(name: str) -> str:
    base = os.environ.get("JOBWIRE_FAULT_DIR") or tempfile.gettempdir()
    return tempfile.mkdtemp(prefix=f"jobwire-fault-{name}-", dir=base)

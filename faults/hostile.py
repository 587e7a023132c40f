"""Hostile clients (issue #13): scenarios h1-h6 of the fault suite.

One client attacks a running broker (globs that match nothing over a long log, thousands of
subscriptions or huge ones, replies it never reads, a message of 400 big frames, a 100,000-link chain
of dependent jobs) while a bystander client (`faults/bystander.py`, a process of its own) times a
steady loop of `jobs.create` + `jobs.get` round trips, and the suite samples the broker's memory.
Targets: the bystander's worst round trip under 200 ms while the attack runs and until the broker has
caught up, the broker's peak resident memory (VmHWM) under 500 MB, the broker alive at the end, and
no acknowledged job lost. h6 (a deleted write-ahead log) checks that the broker refuses the store.

Every attack is bounded in count and in time, and stops early when the broker's RSS passes
JOBWIRE_FAULT_RSS_STOP_MB (1,536 by default; a failure); past JOBWIRE_FAULT_RSS_KILL_MB (3,072) the
suite SIGKILLs the broker, so that an unbounded broker cannot take the machine's memory.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from typing import Any, Callable, Optional

import zmq

import harness as h

TARGET_MS = 200.0
TARGET_MB = 500
SOFT_MB = int(os.environ.get("JOBWIRE_FAULT_RSS_STOP_MB", "1536"))
HARD_MB = int(os.environ.get("JOBWIRE_FAULT_RSS_KILL_MB", "3072"))
BYSTANDER = os.path.join(h.ROOT, "faults", "bystander.py")
JOB = "workbook:export"

Attack = Callable[["Memory"], Optional[str]]


# ---------------------------------------------------------------------------------------------
# Measuring


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in kB; (0, 0) once it has exited."""
    rss = hwm = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


class Memory:
    """Samples the broker's memory every 50 ms: its peak, and whether it passed the stop mark
    (`over`: attacks stop) or the kill mark (the suite SIGKILLs it)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_kb = 0
        self.over = threading.Event()
        self.killed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def sample(self) -> None:
        try:
            rss, hwm = memory_kb(self.pid)
        except (OSError, ValueError):
            return
        self.peak_kb = max(self.peak_kb, rss, hwm)
        if rss > SOFT_MB * 1024:
            self.over.set()
        if rss > HARD_MB * 1024 and not self.killed:
            self.killed = True
            h.say(f"the broker passed {HARD_MB} MB: SIGKILL")
            os.kill(self.pid, signal.SIGKILL)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.sample()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    @property
    def peak_mb(self) -> int:
        return self.peak_kb // 1024


class Bystander:
    """`faults/bystander.py` against the broker: started before an attack, stopped after it."""

    def __init__(self, commands: str, workdir: str, tag: str) -> None:
        self.out = os.path.join(workdir, f"{tag}.json")
        log = open(os.path.join(workdir, f"{tag}.log"), "ab")
        self.proc = subprocess.Popen([h.PYTHON, BYSTANDER, "--commands", commands, "--out", self.out, "--tag", tag],
                                     stdout=subprocess.PIPE, stderr=log)
        log.close()
        ready = threading.Event()
        out = self.proc.stdout
        assert out is not None
        threading.Thread(target=lambda: (out.readline(), ready.set()), daemon=True).start()
        if not ready.wait(30):
            raise RuntimeError("the bystander got no reply from the broker within 30 s")

    def stop(self, wait_for_reply: bool = True) -> dict[str, Any]:
        """Stops it; with `wait_for_reply` a request in flight may take 10 s more to be answered."""
        self.proc.send_signal(signal.SIGTERM if wait_for_reply else signal.SIGUSR1)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with open(self.out) as f:
            return json.load(f)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def answers(broker: h.Broker, within: float) -> bool:
    """Whether the broker answers `broker.info` within the time given."""
    if not broker.alive():
        return False
    dealer = Dealer(broker.commands, broker=broker)
    try:
        return dealer.receive(dealer.send("broker.info", {}), within) is not None
    finally:
        dealer.close()


def death(broker: h.Broker) -> str:
    """How a broker ended: its exit status and the last thing it logged."""
    code = broker.proc.poll() if broker.proc else None
    if code is not None and code < 0:
        try:
            status = f"killed by {signal.Signals(-code).name}"
        except ValueError:
            status = f"killed by signal {-code}"
    else:
        status = f"exit status {code}"
    said = [line for line in broker.log_tail(10).splitlines() if not line.startswith("--- start")]
    return status + (f", last words: {said[-1]}" if said else ", nothing logged")


class Hostile:
    """A scenario's run: its row, its work folder, and the bystander's acknowledged jobs to account for."""

    def __init__(self, row: h.Row, work: str) -> None:
        self.row = row
        self.work = work
        self.acked: set[str] = set()
        self.runs = 0

    def measure(self, name: str, broker: h.Broker, attack: Attack, *, recover: float = 30.0, settle: float = 1.0,
                memory: Optional[Memory] = None, held_by_libzmq_mb: int = 0) -> h.Phase:
        """Runs one attack with a bystander; records its latencies and the broker's peak memory.

        `held_by_libzmq_mb` is memory libzmq must hold before the broker sees anything (one whole
        multipart message: libzmq hands a message over only once its last frame is in, and caps frames,
        not their number): the memory target is then the broker's RSS before the attack plus that much
        plus 10%, which still fails a broker that copies the message."""
        phase = h.Phase(name)
        self.row.phases.append(phase)
        h.say(f"-- {name}")
        assert broker.proc is not None
        memory = memory or Memory(broker.proc.pid)
        self.runs += 1
        bystander = Bystander(broker.commands, self.work, f"bystander{self.runs}")
        time.sleep(1.0)  # the baseline: round trips before the attack
        try:
            rss_before = memory_kb(broker.proc.pid)[0] // 1024
        except (OSError, ValueError):
            rss_before = 0
        started = time.monotonic()
        note: Optional[str] = None
        try:
            note = attack(memory)
        except Exception as error:  # noqa: BLE001 (a broken attack is the scenario's failure, with its cause)
            self.row.check(False, f"the attack broke off: {type(error).__name__}: {error}", phase)
        attack_seconds = time.monotonic() - started
        recovered = answers(broker, recover)
        time.sleep(settle)
        result = bystander.stop(wait_for_reply=broker.alive())
        memory.close()
        self.acked |= set(result["acked"])
        samples = result["samples"]
        during = [ms for sent, ms, _, _ in samples if sent + ms / 1000 >= started]
        before = [ms for sent, ms, _, _ in samples if sent + ms / 1000 < started]
        phase.worst_ms = max(during, default=0.0)
        phase.p99_ms = percentile(during, 0.99)
        phase.baseline_ms = max(before, default=0.0)
        phase.rss_mb = memory.peak_mb
        phase.unanswered = result["unanswered"]
        h.say(f"{name}: attack {attack_seconds:.1f} s; bystander {len(during)} round trips, worst "
              f"{phase.worst_ms:,.0f} ms, p99 {phase.p99_ms:,.0f} ms (before the attack: worst "
              f"{phase.baseline_ms:,.0f} ms), {result['errors']} error replies, {result['unanswered']} unanswered; "
              f"broker RSS {rss_before:,} MB before, peak {phase.rss_mb:,} MB" + (f"; {note}" if note else ""))
        self.row.notes.append(f"{name}: bystander worst {phase.worst_ms:,.0f} ms, p99 {phase.p99_ms:,.0f} ms "
                              f"({len(during)} round trips, {result['unanswered']} unanswered; before the attack "
                              f"{phase.baseline_ms:,.0f} ms); broker {rss_before:,} MB before, peak "
                              f"{phase.rss_mb:,} MB" + (f"; {note}" if note else ""))
        if memory.killed:
            phase.tags.append(f"killed at {HARD_MB / 1024:.0f} GB")
        elif not broker.alive():
            phase.tags.append("crashed")
        elif not recovered:
            phase.tags.append(f"stalled > {recover:.0f} s")
        if memory.over.is_set() and not memory.killed:
            phase.tags.append(f"stopped at {SOFT_MB / 1024:.1f} GB")
        self.row.check(not memory.killed, f"the broker passed {HARD_MB} MB and the suite killed it", phase)
        self.row.check(not memory.over.is_set() or memory.killed,
                       f"the broker passed {SOFT_MB} MB: the attack was stopped there", phase)
        self.row.check(memory.killed or broker.alive(), f"the broker died: {death(broker)}", phase)
        self.row.check(memory.killed or not broker.alive() or recovered,
                       f"the broker did not answer for {recover:.0f} s after the attack", phase)
        self.row.check(phase.worst_ms < TARGET_MS, f"a bystander round trip took {phase.worst_ms:,.0f} ms "
                                                   f"(target {TARGET_MS:.0f} ms)", phase)
        target_mb = TARGET_MB
        if held_by_libzmq_mb:
            target_mb = max(TARGET_MB, rss_before + int(held_by_libzmq_mb * 1.1))
            phase.tags.append(f"target {target_mb} MB: libzmq holds {held_by_libzmq_mb} MB")
        self.row.check(phase.rss_mb < target_mb, f"the broker's memory peaked at {phase.rss_mb:,} MB "
                                                 f"(target {target_mb} MB)", phase)
        return phase

    def account(self, broker: h.Broker, others: Optional[set[str]] = None) -> None:
        """Every acknowledged job (the bystander's and `others`) is still in the store, after a restart
        if the broker died."""
        if broker.alive() and not answers(broker, 30):
            broker.stop()  # stuck: SIGTERM, then SIGKILL after 15 s
        if not broker.alive():
            broker.start()
        client = broker.client(timeout=30)
        try:
            present = {job["id"] for job in client.list_all()}
        finally:
            client.close()
        acked = self.acked | (others or set())
        lost = [j for j in acked if j not in present]
        self.row.jobs += len(acked)
        self.row.lost += len(lost)
        self.row.check(not lost, f"{len(lost)} acknowledged jobs are not in the store, e.g. {lost[:3]}")
        self.acked = set()


class Dealer:
    """A raw DEALER for attacks: lock-step calls, or requests it sends and never reads."""

    def __init__(self, commands: str, *, reads: bool = True, context: Optional[zmq.Context[Any]] = None,
                 broker: Optional[h.Broker] = None) -> None:
        self.broker = broker  # when given, a wait for a reply ends as soon as its process has exited
        self.sock = (context or zmq.Context.instance()).socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if not reads:
            # What it does not read stays in the broker: one message and a few kB on this side at most.
            self.sock.setsockopt(zmq.RCVHWM, 1)
            self.sock.setsockopt(zmq.RCVBUF, 4096)
        self.sock.connect(commands)
        self.next_id = 0

    def send(self, method: str, params: dict[str, Any], block: bool = True) -> int:
        self.next_id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params}).encode()
        self.sock.send_multipart([b"", body], flags=0 if block else zmq.NOBLOCK)
        return self.next_id

    def receive(self, request_id: Optional[int], timeout: float) -> Optional[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self.broker is not None and not self.broker.alive()):
                return None
            if not self.sock.poll(int(min(remaining, 0.1) * 1000), zmq.POLLIN):
                continue
            reply = json.loads(self.sock.recv_multipart()[-1])
            if request_id is None or reply.get("id") == request_id:
                return reply

    def call(self, method: str, params: dict[str, Any],
             timeout: float = 60.0) -> tuple[Optional[dict[str, Any]], float]:
        """One request; (reply or None without one in time, milliseconds)."""
        started = time.monotonic()
        reply = self.receive(self.send(method, params), timeout)
        return reply, (time.monotonic() - started) * 1000

    def close(self) -> None:
        self.sock.close(0)


def kind(reply: Optional[dict[str, Any]]) -> str:
    if reply is None:
        return "no reply"
    if "error" in reply:
        return f"error {reply['error'].get('code')}"
    return "result"


def tally(kinds: list[str]) -> str:
    counts: dict[str, int] = {}
    for k in kinds:
        counts[k] = counts.get(k, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in counts.items())


class RawSub:
    """A SUB peer written by hand over TCP (ZMTP 3.0, NULL mechanism), so that huge subscriptions and
    unread events cost this process nothing: libzmq's own SUB keeps every prefix in a trie, on both sides."""

    def __init__(self, endpoint: str) -> None:
        host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(30)
        self.sock.connect((host, int(port)))
        greeting = b"\xff" + b"\x00" * 8 + b"\x7f" + bytes([3, 0]) + b"NULL".ljust(20, b"\x00") + b"\x00" + b"\x00" * 31
        self.sock.sendall(greeting)
        self._read(64)
        name, value = b"Socket-Type", b"SUB"
        body = b"\x05READY" + bytes([len(name)]) + name + len(value).to_bytes(4, "big") + value
        self.sock.sendall(bytes([0x04, len(body)]) + body)
        flags = self._read(1)[0]
        size = int.from_bytes(self._read(8 if flags & 0x02 else 1), "big")
        self._read(size)  # the broker's READY

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            data += chunk
        return data

    def subscribe(self, prefix: bytes) -> None:
        size = len(prefix) + 1
        header = bytes([0x00, size]) if size < 256 else b"\x02" + size.to_bytes(8, "big")
        self.sock.sendall(header + b"\x01")
        self.sock.sendall(prefix)

    def close(self) -> None:
        self.sock.close()


# ---------------------------------------------------------------------------------------------
# h1. A stalling glob


def stalling_glob(short: bool) -> h.Row:
    row = h.Row("h1 stalling glob")
    # Each attack sends requests for `seconds` at most, one at a time, each waiting 60 s at most for its reply.
    jobs, rounds, seconds = (1_000, 2, 10.0) if short else (1_500, 5, 20.0)
    work = h.workdir("hostile-glob")
    broker = h.Broker(os.path.join(work, "data"))
    run = Hostile(row, work)
    try:
        broker.start()
        # The log: job:created and job:ready of each job (2,000 events short, 3,000 full).
        setup = h.Producer(broker.commands, tag="gl", job=JOB)
        setup.run(jobs)
        h.say(f"{jobs * 2:,} events in the log")

        def listing(topics: list[str]) -> Attack:
            def attack(memory: Memory) -> str:
                dealer = Dealer(broker.commands, broker=broker)
                deadline = time.monotonic() + seconds
                kinds, slowest = [], 0.0
                try:
                    for _ in range(rounds):
                        if memory.over.is_set() or time.monotonic() > deadline:
                            break
                        reply, ms = dealer.call("events.list", {"since": 0, "limit": 10_000, "topics": topics})
                        kinds.append(kind(reply))
                        slowest = max(slowest, ms)
                        if reply is None:
                            break
                finally:
                    dealer.close()
                return f"{len(kinds)} events.list ({tally(kinds)}), slowest {slowest:,.0f} ms"
            return attack

        run.measure("events.list topics ['*' x 3000]", broker, listing(["*" * 3000]))
        if not short:
            run.measure("events.list topics 3,000 x ['*']", broker, listing(["*"] * 3000))
            run.measure("events.list topics 32 x '*' x 255 + 'x'", broker, listing(["*" * 255 + "x"] * 32))
            run.measure("events.list topics 8 x '*a*a…*b' (301 B)", broker,
                        listing(["*a" * 150 + f"*b{k}" for k in range(8)]))

        # Waiting claims with long star patterns, and ready jobs whose names keep the patterns' matcher busy
        # to the end (a first segment of 100 a's; the patterns want a b after them): every create that makes
        # a job ready tries every waiting claim against every ready name.
        claims, patterns, names, creates = (10, 4, 10, 20) if short else (40, 8, 20, 60)

        def claiming(memory: Memory) -> str:
            dealer = Dealer(broker.commands, broker=broker)
            deadline = time.monotonic() + seconds
            kinds: list[str] = []
            slowest = 0.0
            try:
                wanted = ["*a" * 100 + f"*b{k}" for k in range(patterns)]
                for i in range(names):
                    reply, _ = dealer.call("jobs.create", {"type": "a" * 100, "operation": f"n{i}",
                                                           "source": "us_src_x"})
                    kinds.append("create " + kind(reply))
                for _ in range(claims):
                    dealer.send("jobs.claim", {"listenerId": "hostile", "jobs": wanted, "wait": int(seconds)})
                for i in range(creates):
                    if memory.over.is_set() or time.monotonic() > deadline:
                        break
                    reply, ms = dealer.call("jobs.create", {"type": "a" * 100, "operation": f"n{i % names}",
                                                            "source": "us_src_x"})
                    kinds.append("create " + kind(reply))
                    slowest = max(slowest, ms)
                    if reply is None:
                        break
            finally:
                dealer.close()  # its claims are left behind, still waiting in the broker
            return (f"{claims} waiting claims of {patterns} patterns (203 B) over {names} ready names; "
                    f"{tally(kinds)}; slowest create {slowest:,.0f} ms")

        run.measure(f"jobs.claim: {claims} waiting claims x {patterns} patterns '*a*a…*b' while creates go on",
                    broker, claiming)
        run.account(broker, set(setup.acked.values()))
    finally:
        broker.stop()
    return row



# ---------------------------------------------------------------------------------------------
# h2. Many subscriptions


def many_subscriptions(short: bool) -> h.Row:
    row = h.Row("h2 many subscriptions")
    count, hold = (2_000, 3.0) if short else (10_000, 5.0)
    sizes_mb = [4 + 16 * i / 19 for i in range(20)]  # 20 prefixes from 4 to 20 MB
    if short:
        sizes_mb = sizes_mb[:3]
    work = h.workdir("hostile-subscriptions")
    run = Hostile(row, work)

    def distinct(memory: Memory) -> str:
        sub = RawSub(broker.events)
        sent = 0
        closed = ""
        try:
            for i in range(count):
                if memory.over.is_set():
                    break
                sub.subscribe(f"job:ready/hostile:op{i:05d}/".encode())
                sent += 1
            time.sleep(hold)  # the bystander's creates publish events, each checked against the prefixes
        except OSError as error:
            closed = f" (the broker closed the connection: {error})"
        finally:
            sub.close()  # and every prefix is unsubscribed
        return f"{sent:,} prefixes subscribed on one connection, held {hold:.0f} s, then closed{closed}"

    def huge(memory: Memory) -> str:
        # A connection the broker closes is opened again for the next prefix, as a determined client would.
        sub: Optional[RawSub] = None
        sent: list[float] = []
        closed = 0
        try:
            for i, mb in enumerate(sizes_mb):
                if memory.over.is_set() or not broker.alive():
                    break
                try:
                    sub = sub or RawSub(broker.events)
                    sub.subscribe(bytes([ord("A") + i]) * int(mb * 1_000_000))
                    sent.append(mb)
                except OSError:
                    closed += 1
                    if sub is not None:
                        sub.close()
                    sub = None
                # One at a time: the next goes once the broker answers again, so that the memory sampler sees
                # each one land and the attack stops before the broker takes the machine's memory.
                time.sleep(0.5)
                if not answers(broker, 30):
                    break
            time.sleep(2.0)
        finally:
            if sub is not None:
                sub.close()
        return (f"{len(sent)} of {len(sizes_mb)} prefixes sent whole ({sum(sent):,.0f} MB); the broker closed the "
                f"connection {closed} times")

    for name, attack in [(f"one SUB, {count:,} distinct prefixes", distinct),
                         (f"one SUB, {len(sizes_mb)} prefixes of 4-{sizes_mb[-1]:.0f} MB", huge)]:
        broker = h.Broker(os.path.join(work, f"data{run.runs}"))
        try:
            broker.start()
            run.measure(name, broker, attack)
            run.account(broker)
        finally:
            broker.stop()
    return row


# ---------------------------------------------------------------------------------------------
# h3. A client that does not read


def non_reading(short: bool) -> h.Row:
    row = h.Row("h3 non-reading client")
    jobs, requests, per_second, seconds = (300, 60, 20, 5.0) if short else (1_000, 400, 20, 20.0)
    subscribers, creates = (100, 3_000) if short else (1_000, 30_000)
    work = h.workdir("hostile-non-reading")
    run = Hostile(row, work)

    def unread_replies(memory: Memory) -> str:
        dealer = Dealer(broker.commands, reads=False, broker=broker)
        sent = blocked = 0
        started = time.monotonic()
        try:
            while sent < requests and time.monotonic() - started < seconds and not memory.over.is_set():
                try:
                    dealer.send("events.list", {"since": 0, "limit": 10_000}, block=False)
                    sent += 1
                except zmq.Again:
                    blocked += 1  # the broker stopped taking this client's requests
                time.sleep(1 / per_second)
        finally:
            dealer.close()
        return (f"{sent} events.list sent in {time.monotonic() - started:.1f} s and never read "
                f"({blocked} sends refused: the broker stopped reading), then it went away")

    broker = h.Broker(os.path.join(work, "data-dealer"))
    try:
        broker.start()
        # Jobs with big inputs: each events.list of the whole log is a reply of some MB.
        setup = h.Producer(broker.commands, tag="nr", job=JOB)
        setup.run(jobs, lambda i: {"pad": "x" * 1500}, extra={"trigger": "immediate"})
        probe = broker.client(timeout=60)
        size = len(json.dumps(probe.call("events.list", {"since": 0, "limit": 10_000})))
        probe.close()
        h.say(f"an events.list of the whole log is {size / 1e6:.1f} MB")
        run.measure(f"a DEALER sends events.list ({size / 1e6:.1f} MB replies) and never reads", broker,
                    unread_replies)
        run.account(broker, set(setup.acked.values()))
    finally:
        broker.stop()

    def unread_events(memory: Memory) -> str:
        subs: list[RawSub] = []
        producer = h.Producer(broker.commands, tag="ne", job=JOB)
        try:
            for _ in range(subscribers):
                subs.append(RawSub(broker.events))
                subs[-1].subscribe(b"")
            time.sleep(2.0)  # the subscriptions are in place
            producer.start(creates, lambda i: {"pad": "x" * 500})
            started = time.monotonic()
            while producer.thread is not None and producer.thread.is_alive():
                if memory.over.is_set() or time.monotonic() - started > seconds + 10:
                    producer.stop.set()
                time.sleep(0.1)
            published = len(producer.acked)
        finally:
            producer.stop.set()
            for sub in subs:
                sub.close()
        unread.update(producer.acked.values())
        return (f"{len(subs):,} SUBs (prefix '') that never read; {published:,} jobs created meanwhile "
                f"({published * 2:,} events)")

    unread: set[str] = set()
    broker = h.Broker(os.path.join(work, "data-subs"))
    try:
        broker.start()
        run.measure(f"{subscribers:,} SUBs that never read while events are published", broker, unread_events)
        run.account(broker, unread)
    finally:
        broker.stop()
    return row


# ---------------------------------------------------------------------------------------------
# h4. A huge multi-frame message


def multi_frame(short: bool) -> h.Row:
    row = h.Row("h4 multi-frame message")
    frames, size, rounds = (400, 1_900_000, 2) if short else (400, 1_900_000, 5)
    work = h.workdir("hostile-frames")
    run = Hostile(row, work)
    broker = h.Broker(os.path.join(work, "data"))

    def attack(memory: Memory) -> str:
        dealer = Dealer(broker.commands, broker=broker)
        chunk = b"x" * size
        kinds = []
        try:
            for _ in range(rounds):
                if memory.over.is_set() or not broker.alive():
                    break
                dealer.sock.send_multipart([b""] + [chunk] * frames, copy=False)
                reply = dealer.receive(None, 20)
                kinds.append(kind(reply))
                if reply is None:
                    break
        finally:
            dealer.close()
        return f"{len(kinds)} messages of {frames} frames x {size / 1e6:.1f} MB ({tally(kinds)})"

    try:
        broker.start()
        run.measure(f"{frames} frames of {size / 1e6:.1f} MB in one DEALER message, {rounds} times", broker, attack,
                    held_by_libzmq_mb=frames * size // (1 << 20))
        run.account(broker)
    finally:
        broker.stop()
    return row


# ---------------------------------------------------------------------------------------------
# h5. A 100,000-link chain


def chain(short: bool) -> h.Row:
    row = h.Row("h5 100,000-link chain")
    links = int(os.environ.get("JOBWIRE_FAULT_CHAIN_LINKS") or (5_000 if short else 100_000))
    if links != 100_000:
        row.scenario = f"h5 {links:,}-link chain"
    work = h.workdir("hostile-chain")
    run = Hostile(row, work)
    built = os.path.join(work, "built")
    # The chain is built once, lock-step (each create names the job before it, which only its reply tells),
    # on a broker without fsync to save time; each variant runs on a copy of the store.
    broker = h.Broker(built, "--no-fsync")
    head = ""
    try:
        broker.start()
        dealer = Dealer(broker.commands, broker=broker)
        started = time.monotonic()
        previous: Optional[str] = None
        for i in range(links):
            params: dict[str, Any] = {"type": "chain", "operation": "link", "source": "us_src_chain",
                                      "idempotencyKey": f"chain-{i}"}
            if previous is None:
                params.update(leaseSeconds=1, maxAttempts=1)  # the head: for the lease-expiry variant
            else:
                params["predecessorIds"] = [previous]
            reply = None
            for _ in range(3):
                reply, _ = dealer.call("jobs.create", params, timeout=30)
                if reply is not None:
                    break
            if reply is None or "result" not in reply:
                raise RuntimeError(f"link {i} of the chain was not created: {reply}")
            previous = reply["result"]["id"]
            if i == 0:
                head = previous
            if i % 20_000 == 0 and i:
                h.say(f"{i:,} links")
        dealer.close()
        h.say(f"built a chain of {links:,} links in {time.monotonic() - started:.0f} s")
    finally:
        broker.stop()

    def ended(client: h.Client) -> int:
        return sum(h.count_status(client, s, "chain") for s in ("failed", "canceled"))

    def wait_for_end(broker: h.Broker, memory: Memory, limit: float) -> str:
        dealer = Dealer(broker.commands, broker=broker)  # gives up at once if the broker dies
        started = time.monotonic()
        done = 0
        try:
            while time.monotonic() - started < limit and broker.alive() and not memory.over.is_set():
                counts = [dealer.call("jobs.list", {"status": s, "type": "chain", "pageSize": 1}, timeout=10)[0]
                          for s in ("failed", "canceled")]
                if all(c is not None and "result" in c for c in counts):
                    done = sum(c["result"]["pagination"]["totalCount"] for c in counts)  # type: ignore[index]
                if done == links:
                    break
                time.sleep(0.5)
        finally:
            dealer.close()
        state = "alive" if broker.alive() else death(broker)
        return f"{done:,} of {links:,} links ended after {time.monotonic() - started:.1f} s; the broker: {state}"

    def cancel_head(broker: h.Broker) -> Attack:
        def attack(memory: Memory) -> str:
            dealer = Dealer(broker.commands, broker=broker)
            reply, ms = dealer.call("jobs.cancel", {"jobId": head}, timeout=120)
            dealer.close()
            return f"jobs.cancel of the head: {kind(reply)} in {ms:,.0f} ms; " + wait_for_end(broker, memory, 120)
        return attack

    def expire_head(broker: h.Broker) -> Attack:
        def attack(memory: Memory) -> str:
            dealer = Dealer(broker.commands, broker=broker)
            reply, _ = dealer.call("jobs.ack", {"jobId": head, "listenerId": "hostile"}, timeout=60)
            dealer.close()
            # Its lease (1 s) runs out unrenewed; with maxAttempts 1 the head fails, and its dependents with it.
            return (f"jobs.ack of the head (1 s lease, never renewed): {kind(reply)}; "
                    + wait_for_end(broker, memory, 120))
        return attack

    for variant, make in [("canceled", cancel_head), ("failed by lease expiry", expire_head)]:
        data = os.path.join(work, variant.split()[0])
        shutil.copytree(built, data)
        broker = h.Broker(data)
        try:
            broker.start()
            phase = run.measure(f"{links:,}-link chain, head {variant}", broker, make(broker), recover=60)
            # The broker restarted on that store must stay up, with every link ended.
            broker.stop()
            line = broker.start(expect_listening=False)
            restarted = bool(line and "listening" in line)
            memory = Memory(broker.proc.pid) if broker.proc else None
            client = broker.client(timeout=10)
            # Until every link has ended, or nothing moved for 15 s (or the broker is down).
            settled = False
            last, moved, deadline = -1, time.monotonic(), time.monotonic() + 180
            while restarted and not settled and broker.alive() and time.monotonic() < deadline:
                try:
                    now_ended = ended(client)
                except (h.JobwireError, h.JobwireTimeout):
                    now_ended = last
                settled = now_ended == links
                if now_ended != last:
                    last, moved = now_ended, time.monotonic()
                elif time.monotonic() - moved > 15:
                    break
                time.sleep(1.0)
            time.sleep(2.0)
            alive = broker.alive()
            if not alive:
                phase.tags.append("down after a restart")
            if memory:
                memory.close()
            counts = {}
            if alive:
                counts = {s: h.count_status(client, s, "chain") for s in ("scheduled", "ready", "executing",
                                                                           "failed", "canceled")}
                row.jobs += links
                total = client.list(type="chain", pageSize=1)["pagination"]["totalCount"]
                row.lost += links - total
                row.check(total == links, f"{links - total} links are not in the store", phase)
            client.close()
            row.notes.append(f"restarted on that store: {'up' if alive else 'down, ' + death(broker)}; "
                             f"links {counts}; peak RSS after the restart {memory.peak_mb if memory else 0:,} MB")
            h.say(row.notes[-1])
            row.check(restarted and alive, f"the broker restarted on that store did not stay up: {death(broker)}",
                      phase)
            row.check(settled, f"not every link ended after the restart: {counts}", phase)
            expected = {"failed": links - 1, "canceled": 1} if variant == "canceled" else {"failed": links}
            row.check(all(counts.get(k) == v for k, v in expected.items()), f"links {counts}, expected {expected}",
                      phase)
        finally:
            broker.stop()
    return row


# ---------------------------------------------------------------------------------------------
# h6. A deleted write-ahead log


def deleted_wal(short: bool) -> h.Row:
    row = h.Row("h6 deleted WAL")
    jobs = 100
    work = h.workdir("hostile-wal")
    data = os.path.join(work, "data")
    broker = h.Broker(data)
    phase = h.Phase("jobs created, broker SIGKILLed before a checkpoint, -wal deleted, restart")
    row.phases.append(phase)
    try:
        broker.start()
        producer = h.Producer(broker.commands, tag="wal", job=JOB)
        producer.run(jobs, lambda i: {"n": i})
        broker.kill9()
        wal = os.path.join(data, "jobwire.sqlite-wal")
        mark_path = os.path.join(data, "jobwire.seq")
        wal_size = os.path.getsize(wal) if os.path.exists(wal) else 0
        with open(mark_path, "rb") as f:
            mark = f.read()
        # What the database file holds without its log (read from a copy, which SQLite may change).
        bare = os.path.join(work, "bare.sqlite")
        shutil.copyfile(os.path.join(data, "jobwire.sqlite"), bare)
        try:
            db = h.sqlite3.connect(bare)
            in_file = db.execute("SELECT count(*) FROM jobs").fetchone()[0]
            db.close()
        except h.sqlite3.Error:
            in_file = 0
        row.jobs = len(producer.acked)
        row.faults = 1
        h.say(f"{len(producer.acked)} creates acknowledged; -wal {wal_size:,} bytes; the database file alone holds "
              f"{in_file} jobs; jobwire.seq {mark.decode(errors='replace').strip()!r}")
        row.check(wal_size > 0 and in_file < len(producer.acked),
                  f"the jobs were checkpointed before the kill (-wal {wal_size} bytes, {in_file} jobs in the file): "
                  f"the scenario did not test a lost log", phase)
        os.remove(wal)
        line = broker.start(expect_listening=False)
        if line and "listening" in line:
            client = broker.client()
            info = client.broker_info()
            count = client.list(pageSize=1)["pagination"]["totalCount"]
            row.lost = len(producer.acked) - count
            phase.tags.append("started on an empty store")
            row.check(False, f"the broker started on the store without its -wal: seq {info['seq']}, {count} jobs "
                             f"(of {len(producer.acked)} acknowledged), epoch {info['epoch']}", phase)
            broker.stop()
        else:
            code = broker.proc.wait(30) if broker.proc else None
            said = broker.log_tail(3)
            phase.tags.append("refused to start")
            row.notes.append(f"refused to start (exit {code}): {said.splitlines()[-1] if said else ''}")
            h.say(row.notes[-1])
            row.check(code not in (0, None) and any(w in said.lower() for w in ("store", "lost", "log", "wal")),
                      f"the broker exited ({code}) without a clear message: {said!r}", phase)
        with open(mark_path, "rb") as f:
            after = f.read()
        row.check(after == mark, f"jobwire.seq changed from {mark!r} to {after!r}", phase)
    finally:
        broker.stop()
    return row


SCENARIOS: dict[str, Callable[[bool], h.Row]] = {
    "h1": stalling_glob,
    "h2": many_subscriptions,
    "h3": non_reading,
    "h4": multi_frame,
    "h5": chain,
    "h6": deleted_wal,
}
# Not in the short run (CI): their attacks need minutes of setup, or GBs on a broker that does not bound them.
FULL_ONLY = {"h2", "h3", "h5"}

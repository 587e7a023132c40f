"""Hostile-client measurements of one broker binary: a bystander's worst round trip and the broker's
peak RSS while one client misbehaves. Not a test: it prints numbers.

    $py Benchmarks/hostile/measure.py BINARY prefixes|multiframe|nonreader|subs
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

import zmq


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, binary, *args):
        self.events = f"tcp://127.0.0.1:{free_port()}"
        self.commands = f"tcp://127.0.0.1:{free_port()}"
        self.log = tempfile.NamedTemporaryFile(prefix="hostile-broker-", suffix=".log", delete=False)
        # A store on disk (without fsync), so that RSS shows what the sockets hold, not an in-memory log.
        self.data = tempfile.mkdtemp(prefix="hostile-store-")
        self.proc = subprocess.Popen(
            [binary, "broker", "--data", self.data, "--no-fsync", "--events", self.events, "--commands",
             self.commands, *args],
            stdout=subprocess.PIPE, stderr=self.log)
        line = self.proc.stdout.readline().decode()
        assert "listening" in line, line

    def rss_mb(self, key="VmRSS"):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Bystander(threading.Thread):
    """Calls `method` in a loop on its own DEALER; records the worst round trip."""

    def __init__(self, ctx, endpoint, method="broker.info", params=None):
        super().__init__(daemon=True)
        self.ctx, self.endpoint, self.method, self.params = ctx, endpoint, method, params or {}
        self.worst = 0.0
        self.calls = 0
        self.timeouts = 0
        self.running = True

    def run(self):
        s = self.ctx.socket(zmq.DEALER)
        s.connect(self.endpoint)
        n = 0
        while self.running:
            n += 1
            body = json.dumps({"jsonrpc": "2.0", "id": n, "method": self.method, "params": self.params})
            t0 = time.monotonic()
            s.send_multipart([b"", body.encode()])
            if s.poll(120_000) == 0:
                self.timeouts += 1
                break
            s.recv_multipart()
            self.worst = max(self.worst, time.monotonic() - t0)
            self.calls += 1
            time.sleep(0.01)
        s.close(0)


def call(ctx, endpoint, method, params):
    s = ctx.socket(zmq.DEALER)
    s.connect(endpoint)
    s.send_multipart([b"", json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()])
    assert s.poll(60_000), method
    reply = json.loads(s.recv_multipart()[-1])
    s.close(0)
    return reply


def peak_sampler(broker, stop):
    peak = [0.0]

    def run():
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], broker.rss_mb())
            except Exception:
                return
            time.sleep(0.05)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return peak, t


def prefixes(binary, count=10_000):
    count = int(count)
    b = Broker(binary)
    ctx = zmq.Context()
    by = Bystander(ctx, b.commands, "jobs.create", {"type": "w", "operation": "x", "source": "s"})
    by.start()
    time.sleep(1)
    sub = ctx.socket(zmq.SUB)
    # SUB drops subscriptions past its send high-water mark: queue them all.
    sub.setsockopt(zmq.SNDHWM, 0)
    sub.connect(b.events)
    time.sleep(0.5)
    t0 = time.monotonic()
    for i in range(count):
        sub.setsockopt(zmq.SUBSCRIBE, f"job:ready/prefix-{i:06d}/".encode())
    # Wait until the broker has taken them: a SUB to the last prefix sees a job named after it.
    sub.setsockopt(zmq.SUBSCRIBE, b"job:ready/w:x/")
    call(ctx, b.commands, "jobs.create", {"type": "w", "operation": "x", "source": "s"})
    while True:
        if sub.poll(200_000) == 0:
            break
        topic = sub.recv_multipart()[0]
        if topic.startswith(b"job:ready/w:x/"):
            break
    taken = time.monotonic() - t0
    time.sleep(2)
    by.running = False
    by.join()
    print(f"prefixes={count}: subscriptions taken after {taken:.1f} s; bystander jobs.create worst round trip "
          f"{by.worst * 1000:.0f} ms over {by.calls} calls, timeouts {by.timeouts}; rss {b.rss_mb():.0f} MB")
    b.stop()


def multiframe(binary, frames=400, size=1_900_000):
    b = Broker(binary)
    ctx = zmq.Context()
    by = Bystander(ctx, b.commands)
    by.start()
    base = b.rss_mb()
    stop = threading.Event()
    peak, t = peak_sampler(b, stop)
    s = ctx.socket(zmq.DEALER)
    s.connect(b.commands)
    chunk = b"x" * size
    s.send_multipart([b""] + [chunk] * frames)
    reply = s.recv_multipart() if s.poll(120_000) else None
    time.sleep(1)
    stop.set()
    t.join()
    by.running = False
    by.join()
    print(f"multiframe {frames} x {size} B: reply {reply[-1][:120] if reply else None}; rss before {base:.0f} MB, "
          f"peak {peak[0]:.0f} MB (VmHWM {b.rss_mb('VmHWM'):.0f} MB); bystander worst {by.worst * 1000:.0f} ms")
    b.stop()


def nonreader(binary, seconds=50, jobs=2000, *args):
    seconds, jobs = int(seconds), int(jobs)
    b = Broker(binary, *args)
    ctx = zmq.Context()
    # Events to list: 2,000 jobs with 1.8 KB inputs make each events.list reply ~3.7 MB.
    s = ctx.socket(zmq.DEALER)
    s.connect(b.commands)
    pad = "p" * 1800
    for i in range(jobs):
        s.send_multipart([b"", json.dumps({"jsonrpc": "2.0", "id": i, "method": "jobs.create", "params": {
            "type": "w", "operation": "x", "source": "s", "input": {"pad": pad}}}).encode()])
    for i in range(jobs):
        s.recv_multipart()
    reply = call(ctx, b.commands, "events.list", {"limit": 10000})
    size = len(json.dumps(reply))
    by = Bystander(ctx, b.commands)
    by.start()
    base = b.rss_mb()
    stop = threading.Event()
    peak, t = peak_sampler(b, stop)
    bad = ctx.socket(zmq.DEALER)
    bad.setsockopt(zmq.RCVHWM, 1)
    bad.setsockopt(zmq.RCVBUF, 4096)
    bad.connect(b.commands)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "events.list", "params": {"limit": 10000}}).encode()
    end = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < end:
        try:
            bad.send_multipart([b"", body], zmq.DONTWAIT)
            sent += 1
        except zmq.Again:
            pass
        time.sleep(0.005)
    bad.close(0)
    time.sleep(2)
    stop.set()
    t.join()
    by.running = False
    by.join()
    print(f"nonreader {seconds} s, {sent} events.list of {size / 1e6:.1f} MB: rss before {base:.0f} MB, peak "
          f"{peak[0]:.0f} MB, after {b.rss_mb():.0f} MB; bystander worst {by.worst * 1000:.0f} ms, "
          f"timeouts {by.timeouts}")
    b.stop()


def subs(binary, count=1000, jobs=20_000, *args):
    count, jobs = int(count), int(jobs)
    b = Broker(binary, *args)
    ctx = zmq.Context()
    ctx.set(zmq.MAX_SOCKETS, count + 100)
    subs = []
    for _ in range(count):
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.RCVHWM, 1)
        sub.setsockopt(zmq.RCVBUF, 4096)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.connect(b.events)
        subs.append(sub)
    time.sleep(3)
    by = Bystander(ctx, b.commands)
    by.start()
    base = b.rss_mb()
    stop = threading.Event()
    peak, t = peak_sampler(b, stop)
    s = ctx.socket(zmq.DEALER)
    s.connect(b.commands)
    pad = "p" * 1000
    t0 = time.monotonic()
    n = 0
    while n < jobs:
        for _ in range(100):
            n += 1
            s.send_multipart([b"", json.dumps({"jsonrpc": "2.0", "id": n, "method": "jobs.create", "params": {
                "type": "w", "operation": "x", "source": "s", "input": {"pad": pad}}}).encode()])
        for _ in range(100):
            s.recv_multipart()
    stop.set()
    t.join()
    by.running = False
    by.join()
    seconds = time.monotonic() - t0
    print(f"subs {count} non-reading, {n} jobs created in {seconds:.0f} s ({n * 3} events of ~1.3 KB): rss before "
          f"{base:.0f} MB, peak {peak[0]:.0f} MB; bystander worst {by.worst * 1000:.0f} ms")
    for sub in subs:
        sub.close(0)
    b.stop()


def bigprefix(binary, size=4_000_000, count=1):
    """Subscribers with huge prefixes: the broker's RSS after libzmq took (or refused) them."""
    size, count = int(size), int(count)
    b = Broker(binary)
    ctx = zmq.Context()
    base = b.rss_mb()
    stop = threading.Event()
    peak, t = peak_sampler(b, stop)
    subs = []
    for i in range(count):
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, bytes([65 + i % 26]) * size)
        sub.connect(b.events)
        subs.append(sub)
    time.sleep(8)
    stop.set()
    t.join()
    print(f"bigprefix {count} x {size} B: rss before {base:.0f} MB, peak {peak[0]:.0f} MB, now {b.rss_mb():.0f} MB")
    b.stop()


def manyprefixes(binary, count=4096, size=256):
    """One SUB with many distinct random prefixes: what libzmq's own subscription trie costs."""
    import random

    count, size = int(count), int(size)
    b = Broker(binary)
    ctx = zmq.Context()
    base = b.rss_mb()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SNDHWM, 0)
    sub.connect(b.events)
    time.sleep(0.5)
    rng = random.Random(1)
    for _ in range(count):
        sub.setsockopt(zmq.SUBSCRIBE, bytes(rng.randrange(97, 123) for _ in range(size)))
    time.sleep(8)
    print(f"manyprefixes {count} x {size} B: rss before {base:.0f} MB, after {b.rss_mb():.0f} MB "
          f"(VmHWM {b.rss_mb('VmHWM'):.0f} MB)")
    b.stop()


def bigrequests(binary, seconds=20):
    """A client that sends 1 MB requests as fast as it can and never reads: what libzmq queues."""
    seconds = int(seconds)
    b = Broker(binary)
    ctx = zmq.Context()
    by = Bystander(ctx, b.commands)
    by.start()
    base = b.rss_mb()
    stop = threading.Event()
    peak, t = peak_sampler(b, stop)
    bad = ctx.socket(zmq.DEALER)
    bad.setsockopt(zmq.SNDHWM, 0)
    bad.connect(b.commands)
    pad = "p" * 1_000_000
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "jobs.create", "params": {
        "type": "w", "operation": "x", "source": "s", "input": {"pad": pad}}}).encode()
    end = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < end and sent < 2000:
        bad.send_multipart([b"", body])
        sent += 1
        if sent % 50 == 0:
            time.sleep(0.01)
    time.sleep(2)
    stop.set()
    t.join()
    by.running = False
    by.join()
    print(f"bigrequests {seconds} s, {sent} requests of 1 MB: rss before {base:.0f} MB, peak {peak[0]:.0f} MB; "
          f"bystander worst {by.worst * 1000:.0f} ms")
    bad.close(0)
    b.stop()


if __name__ == "__main__":
    binary, scenario, *rest = sys.argv[1:]
    {"prefixes": prefixes, "multiframe": multiframe, "nonreader": nonreader, "subs": subs,
     "bigprefix": bigprefix, "manyprefixes": manyprefixes, "bigrequests": bigrequests}[scenario](binary, *rest)

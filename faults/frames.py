"""Random frames at a running broker (scenario 9): frame counts, sizes, bad UTF-8 and JSON, huge
numbers, deep nesting, random methods and params. Every request must get exactly one reply (an error
for a bad one), the broker must stay up and answer, and its memory must stay bounded."""

from __future__ import annotations

import json
import os
import random
import time
from typing import Any

import zmq

METHODS = ["jobs.create", "jobs.get", "jobs.list", "jobs.update", "jobs.execute", "jobs.ack", "jobs.claim",
           "jobs.complete", "jobs.fail", "jobs.release", "jobs.cancel", "jobs.retry", "jobs.ackOutcome", "jobs.split",
           "jobs.delete", "actions.mount", "actions.list", "actions.unmount", "actions.trigger", "events.list",
           "broker.info", "nope", ""]
KEYS = ["jobId", "listenerId", "type", "operation", "source", "progress", "info", "outcome", "parts", "since",
        "limit", "topics", "jobs", "wait", "status", "pageSize", "pageNumber", "input", "predecessorIds", "runAt",
        "leaseSeconds", "maxAttempts", "idempotencyKey", "action", "domain", "resourceId", "actionId", "metadata"]


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(12 if depth < 4 else 8)
    if kind == 0:
        return rng.choice([0, -1, 1, 2**53, 2**63 - 1, -(2**63), 2**64, 10**400, 1e308, -0.0, 0.5])
    if kind == 1:
        return rng.choice(["", "us_jb_x", "a" * rng.randrange(1, 5000), "\u0000", "é", "💥", "job:*", "**", "../"])
    if kind == 2:
        return rng.choice([True, False, None])
    if kind == 3:
        return rng.choice(["2026-11-29T02:00:00.123Z", "2026-13-99T99:99:99Z", "yesterday", "+30"])
    if kind in (4, 5, 6, 7):
        return rng.choice(["workbook", "export", "a:b", "complete", "ready", "x" * 300])
    if kind in (8, 9):
        return [value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {rng.choice(KEYS + ["type", "next", "message", "url", "field"]): value(rng, depth + 1) for _ in range(rng.randrange(5))}


def request_body(rng: random.Random, known: list[str]) -> bytes:
    r = rng.random()
    if r < 0.08:  # deep nesting
        depth = rng.choice([100, 1000, 10_000, 100_000])
        opener, closer = rng.choice([("[", "]"), ('{"a":', "}")])
        return (opener * depth + "1" + closer * depth).encode()
    if r < 0.14:  # bad UTF-8 inside a string, or raw garbage
        return rng.choice([b'{"jsonrpc":"2.0","id":1,"method":"jobs.get","params":{"jobId":"\xff\xfe"}}',
                           b'{"jsonrpc":"2.0","id":1,"method":"\xc3\x28"}', os.urandom(rng.randrange(1, 300)),
                           b"\xed\xa0\x80", b'"\\ud800"'])
    if r < 0.20:  # broken JSON
        text = json.dumps({"jsonrpc": "2.0", "id": 1, "method": rng.choice(METHODS)})
        cut = rng.randrange(len(text))
        return rng.choice([text[:cut], text[:cut] + "}" * 3, text.replace(":", "", 1), "", " ", "nul", "1e99999",
                           "[" + text + ","]).encode()
    if r < 0.25:  # huge numbers and odd ids
        ident = rng.choice([10**30, -1, 1.5, "x", [1], {"a": 1}, True, None])
        return json.dumps({"jsonrpc": "2.0", "id": ident, "method": "jobs.list",
                           "params": {"pageSize": rng.choice([10**20, -5, 0, 1e300]),
                                      "pageNumber": rng.choice([10**18, 0, -1])}}).encode()
    params: Any = {rng.choice(KEYS): value(rng) for _ in range(rng.randrange(6))}
    if known and rng.random() < 0.5:
        params["jobId"] = rng.choice(known)
    if rng.random() < 0.05:
        params = value(rng)
    method = rng.choice(METHODS)
    if method == "jobs.claim" and isinstance(params, dict):
        params["wait"] = rng.choice([0, 0, 1, -1, 61])
    body: dict[str, Any] = {"jsonrpc": rng.choice(["2.0", "2.0", "2.0", "1.0", None]), "method": method, "params": params}
    if rng.random() < 0.9:
        body["id"] = rng.randrange(1 << 31)
    return json.dumps(body).encode()


def run(commands: str, pid: int, count: int, seed: int, max_message: int = 1 << 20) -> dict[str, Any]:
    rng = random.Random(seed)
    ctx = zmq.Context.instance()
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(commands)
    known: list[str] = []
    stats = {"sent": 0, "replies": 0, "errors": 0, "missing": 0, "oversize": 0, "multi": 0, "nodelim": 0}
    rss_start = rss_kb(pid)
    rss_peak = rss_start
    for i in range(count):
        r = rng.random()
        body = request_body(rng, known)
        if r < 0.04:  # bigger than --max-message-size (but under libzmq's guard): an error reply
            body = b'{"jsonrpc":"2.0","id":1,"method":"jobs.create","params":{"x":"' + b"a" * (max_message + 10) + b'"}}'
            frames = [b"", body]
            stats["oversize"] += 1
        elif r < 0.08:
            frames = [b""] + [body] * rng.randrange(2, 5)
            stats["multi"] += 1
        elif r < 0.11:
            frames = [body or b"x"]  # no delimiter
            stats["nodelim"] += 1
        elif r < 0.13:
            frames = [b"", b""]  # empty body
        else:
            frames = [b"", body]
        dealer.send_multipart(frames)
        stats["sent"] += 1
        if not dealer.poll(15_000 if b"claim" in body else 5_000, zmq.POLLIN):
            stats["missing"] += 1
            break  # the broker hung or dropped us: stop and report
        reply_frames = dealer.recv_multipart()
        reply = json.loads(reply_frames[-1])
        stats["replies"] += 1
        if "error" in reply:
            stats["errors"] += 1
        elif isinstance(reply.get("result"), dict) and str(reply["result"].get("id", "")).startswith("us_jb_"):
            known.append(reply["result"]["id"])
            known[:] = known[-50:]
        if i % 200 == 0:
            rss_peak = max(rss_peak, rss_kb(pid))
    dealer.close(0)
    stats["rss_start_mb"] = rss_start // 1024
    stats["rss_peak_mb"] = max(rss_peak, rss_kb(pid)) // 1024
    return stats

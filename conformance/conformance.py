#!/usr/bin/env python3
"""Jobwire conformance suite: drives a running broker over plain pyzmq and checks PROTOCOL.md.

    python conformance/conformance.py [--commands tcp://127.0.0.1:7401] [--events tcp://127.0.0.1:7400]
                                      [--only PATTERN] [--skip-group NAME] [--list]

One line per rule, `PASS name` or `FAIL name: why`, then `N passed, N failed[, N skipped]`.
Exit 0 only if nothing failed; 2 if no broker answers within 3 s.

Every rule makes its own jobs named `conf:<rule>-<random>`, so rules do not see each other's state
and the suite can run against a broker that other clients use. Rules wait on events with poll
timeouts; only the lease rules wait out a lease (1 s leases, a few seconds each).
Groups: sockets, events, jobs, leases, claim, extensions (section 4's split, actions,
predecessorIds and runAt, which a broker may implement later: skip with --skip-group extensions).
"""

from __future__ import annotations

import argparse
import fnmatch
import itertools
import json
import os
import re
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional

import zmq

Json = dict[str, Any]
ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
STATUSES = ("created", "planning", "scheduled", "ready", "executing", "complete", "failed", "canceled")
EVENT_TIMEOUT = 3.0  # seconds for an event that must follow a command
LEASE_TIMEOUT = 5.0  # seconds for a 1 s lease to expire and be acted on
SOURCE = "us_wb_conformance"


class RuleFailed(Exception):
    pass


def check(condition: Any, why: str) -> None:
    if not condition:
        raise RuleFailed(why)


def parse_iso(value: Any) -> float:
    check(isinstance(value, str) and ISO_MS.match(value), f"not ISO 8601 UTC with milliseconds: {value!r}")
    whole, millis = value[:-1].split(".")
    return time.mktime(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) - time.timezone + int(millis) / 1000


# --------------------------------------------------------------------------------------------
# Commands


class Rpc:
    """A DEALER (or REQ) connection to the commands socket, with raw access for framing rules."""

    def __init__(self, context: zmq.Context[Any], endpoint: str, kind: int = zmq.DEALER) -> None:
        self.kind = kind
        self.socket = context.socket(kind)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self._ids = itertools.count(1)

    def close(self) -> None:
        self.socket.close(linger=0)

    def send_raw(self, frames: list[bytes]) -> None:
        self.socket.send_multipart(frames)

    def recv_raw(self, timeout: float) -> Optional[list[bytes]]:
        if not self.socket.poll(int(timeout * 1000), zmq.POLLIN):
            return None
        return self.socket.recv_multipart()

    def recv_body(self, timeout: float = EVENT_TIMEOUT) -> Json:
        frames = self.recv_raw(timeout)
        check(frames is not None, f"no reply within {timeout:g} s")
        assert frames is not None
        if self.kind == zmq.DEALER:
            check(len(frames) == 2 and frames[0] == b"", f"reply framing is not [empty, body]: {len(frames)} frames")
        try:
            reply = json.loads(frames[-1])
        except ValueError:
            raise RuleFailed(f"reply is not JSON: {frames[-1][:80]!r}")
        check(isinstance(reply, dict) and reply.get("jsonrpc") == "2.0", f"reply is not JSON-RPC 2.0: {reply!r}")
        check(("result" in reply) != ("error" in reply), "reply must have exactly one of result and error")
        return reply

    def send(self, method: str, params: Optional[Json] = None) -> int:
        request_id = next(self._ids)
        request: Json = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            request["params"] = params
        body = json.dumps(request).encode()
        self.send_raw([b"", body] if self.kind == zmq.DEALER else [body])
        return request_id

    def recv(self, request_id: int, timeout: float = EVENT_TIMEOUT) -> Json:
        reply = self.recv_body(timeout)
        check(reply.get("id") == request_id, f"reply id {reply.get('id')!r}, expected {request_id}")
        return reply

    def call(self, method: str, params: Optional[Json] = None, timeout: float = EVENT_TIMEOUT) -> Json:
        return self.recv(self.send(method, params), timeout)


# --------------------------------------------------------------------------------------------
# Events


@dataclass
class Received:
    at: float
    topic_frame: str
    frames: int
    envelope: Json

    @property
    def topic(self) -> str:
        return self.envelope.get("topic", "")

    @property
    def job_id(self) -> Optional[str]:
        return (self.envelope.get("context") or {}).get("jobId")

    @property
    def payload(self) -> Json:
        return self.envelope.get("payload") or {}


class Recorder:
    """Records every message of the events socket (subscribed to everything) on its own thread."""

    def __init__(self, context: zmq.Context[Any], endpoint: str) -> None:
        self._socket = context.socket(zmq.SUB)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.RCVHWM, 0)
        self._socket.connect(endpoint)
        self._socket.setsockopt(zmq.SUBSCRIBE, b"")
        self._log: list[Received] = []
        self._changed = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped:
            if not self._socket.poll(100, zmq.POLLIN):
                continue
            frames = self._socket.recv_multipart()
            try:
                envelope = json.loads(frames[1]) if len(frames) > 1 else {}
            except ValueError:
                envelope = {}
            with self._changed:
                self._log.append(Received(time.monotonic(), frames[0].decode("utf-8", "replace"), len(frames), envelope))
                self._changed.notify_all()
        self._socket.close(linger=0)

    def stop(self) -> None:
        self._stopped = True
        self._thread.join()

    def mark(self) -> int:
        with self._changed:
            return len(self._log)

    def since(self, mark: int) -> list[Received]:
        with self._changed:
            return self._log[mark:]

    def wait(self, predicate: Callable[[Received], bool], after: int, timeout: float = EVENT_TIMEOUT) -> Optional[Received]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for item in self._log[after:]:
                    if predicate(item):
                        return item
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(remaining)


# --------------------------------------------------------------------------------------------
# The context a rule runs in


@dataclass
class Suite:
    commands: str
    events: str
    context: zmq.Context[Any]
    recorder: Recorder


class Rule:
    """What one rule sees: its own names, an RPC connection, and the shared event recorder."""

    def __init__(self, suite: Suite, name: str) -> None:
        self.suite = suite
        self.name = name
        self.op = f"{name}-{uuid.uuid4().hex[:8]}"
        self.type = "conf"
        self.rpc = Rpc(suite.context, suite.commands)
        self._sockets: list[Rpc] = [self.rpc]
        self.listener = f"conf-{uuid.uuid4().hex[:6]}"

    def close(self) -> None:
        for rpc in self._sockets:
            rpc.close()

    def connection(self, kind: int = zmq.DEALER) -> Rpc:
        rpc = Rpc(self.suite.context, self.suite.commands, kind)
        self._sockets.append(rpc)
        return rpc

    @property
    def job_name(self) -> str:
        return f"{self.type}:{self.op}"

    # Commands -------------------------------------------------------------------------------

    def ok(self, method: str, params: Optional[Json] = None, rpc: Optional[Rpc] = None) -> Any:
        reply = (rpc or self.rpc).call(method, params)
        check("result" in reply, f"{method} failed: {reply.get('error')}")
        return reply["result"]

    def err(self, method: str, params: Optional[Json], code: int, type: Optional[str] = None, field: Optional[str] = None) -> Json:
        reply = self.rpc.call(method, params)
        check("error" in reply, f"{method} {json.dumps(params)[:120]} succeeded, expected error {code}")
        error = reply["error"]
        check(error.get("code") == code, f"{method}: error {error.get('code')} {error.get('message')!r}, expected {code}")
        check(isinstance(error.get("message"), str), f"{method}: error without message")
        data = error.get("data") or {}
        if type is not None:
            check(data.get("type") == type, f"{method}: data.type {data.get('type')!r}, expected {type!r}")
        if field is not None:
            check(data.get("field") == field, f"{method}: data.field {data.get('field')!r}, expected {field!r}")
        return error

    def create(self, op: Optional[str] = None, **fields: Any) -> Json:
        params = {"type": self.type, "operation": op or self.op, "source": SOURCE, **fields}
        job = self.ok("jobs.create", params)
        check(isinstance(job, dict) and str(job.get("id", "")).startswith("us_jb_"), f"jobs.create returned {job!r}")
        return job

    def get(self, job_id: str) -> Json:
        return self.ok("jobs.get", {"jobId": job_id})

    def ack(self, job_id: str, listener: Optional[str] = None, **details: Any) -> Json:
        return self.ok("jobs.ack", {"jobId": job_id, "listenerId": listener or self.listener, **details})

    def executing(self, **fields: Any) -> Json:
        job = self.create(**fields)
        return self.ack(job["id"])

    def call_as(self, method: str, job_id: str, listener: Optional[str], **params: Any) -> Json:
        """The full reply of a job verb naming ``listener`` (None: as an operator)."""
        body = {"jobId": job_id, **params}
        if listener is not None:
            body["listenerId"] = listener
        return self.rpc.call(method, body)

    def info(self) -> Json:
        return self.ok("broker.info")

    def events_list(self, **params: Any) -> Json:
        return self.ok("events.list", params)

    def job_events(self, job_id: str, since: int, topics: Optional[list[str]] = None) -> list[Json]:
        """The log's events of one job after ``since``, paging through events.list."""
        found: list[Json] = []
        while True:
            params: Json = {"since": since}
            if topics:
                params["topics"] = topics
            reply = self.events_list(**params)
            events = reply["events"]
            found += [e for e in events if (e.get("context") or {}).get("jobId") == job_id]
            # A page may stop short of lastSeq with any number of events: nextSince says where to go on.
            next_since = reply.get("nextSince", events[-1]["seq"] if events else reply["lastSeq"])
            if next_since >= reply["lastSeq"] or next_since <= since:
                return found
            since = next_since

    # Events ---------------------------------------------------------------------------------

    def mark(self) -> int:
        return self.suite.recorder.mark()

    def event(self, topic: str, job_id: str, after: int, timeout: float = EVENT_TIMEOUT,
              where: Callable[[Json], bool] = lambda payload: True) -> Received:
        item = self.suite.recorder.wait(
            lambda r: r.topic == topic and r.job_id == job_id and where(r.payload), after, timeout)
        check(item is not None, f"no {topic} event for {job_id} within {timeout:g} s")
        assert item is not None
        return item

    def heartbeat(self, after: int, timeout: float = 2.5) -> Received:
        item = self.suite.recorder.wait(lambda r: r.topic == "broker:heartbeat", after, timeout)
        check(item is not None, f"no broker:heartbeat within {timeout:g} s")
        assert item is not None
        return item


RuleFn = Callable[[Rule], None]


def rule(group: str) -> Callable[[RuleFn], RuleFn]:
    """Marks a function as a rule of ``group``; its name (less ``rule_``, dashed) is the rule's."""

    def mark(fn: RuleFn) -> RuleFn:
        fn.conformance_group = group  # type: ignore[attr-defined]
        return fn

    return mark


def rule_name(fn: RuleFn) -> str:
    return fn.__name__.removeprefix("rule_").replace("_", "-")


def discover() -> list[RuleFn]:
    return [fn for fn in globals().values() if callable(fn) and hasattr(fn, "conformance_group")]


# ============================================================================================
# Sockets and framing (sections 1, 4, 7 "Requests")


@rule("sockets")
def rule_req_socket_lock_step(r: Rule) -> None:
    req = r.connection(zmq.REQ)
    for _ in range(2):
        reply = req.call("broker.info")
        check("result" in reply, f"broker.info over REQ: {reply}")


@rule("sockets")
def rule_dealer_framing(r: Rule) -> None:
    r.rpc.send_raw([b"", json.dumps({"jsonrpc": "2.0", "id": 41, "method": "broker.info"}).encode()])
    frames = r.rpc.recv_raw(EVENT_TIMEOUT)
    check(frames is not None, "no reply")
    assert frames is not None
    check(len(frames) == 2 and frames[0] == b"", f"expected [empty, reply], got {len(frames)} frames")
    check(json.loads(frames[1]).get("id") == 41, "reply id does not match")


@rule("sockets")
def rule_dealer_pipelined_ids(r: Rule) -> None:
    ids = [r.rpc.send("broker.info") for _ in range(5)]
    got = {r.rpc.recv_body()["id"] for _ in ids}
    check(got == set(ids), f"reply ids {sorted(got)} for requests {ids}")


def _framing_error(r: Rule, frames: list[bytes], code: int, expect_null_id: bool = False) -> Json:
    r.rpc.send_raw(frames)
    got = r.rpc.recv_raw(EVENT_TIMEOUT)
    check(got is not None, "no reply: every request gets exactly one reply")
    assert got is not None
    reply = json.loads(got[-1])
    check(reply.get("error", {}).get("code") == code, f"expected error {code}, got {reply}")
    if expect_null_id:
        check("id" in reply and reply["id"] is None, f"id must be null, got {reply.get('id', '<missing>')!r}")
    check(r.rpc.recv_raw(0.3) is None, "more than one reply")
    return reply


@rule("sockets")
def rule_dealer_without_delimiter_is_invalid_request(r: Rule) -> None:
    _framing_error(r, [json.dumps({"jsonrpc": "2.0", "id": 1, "method": "broker.info"}).encode()], -32600)


@rule("sockets")
def rule_several_body_frames_is_invalid_request(r: Rule) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "broker.info"}).encode()
    _framing_error(r, [b"", body, body], -32600)


@rule("sockets")
def rule_empty_body_is_parse_error(r: Rule) -> None:
    _framing_error(r, [b"", b""], -32700, expect_null_id=True)


@rule("sockets")
def rule_non_json_is_parse_error(r: Rule) -> None:
    _framing_error(r, [b"", b'{"jsonrpc": "2.0", "id": 1, "method":'], -32700, expect_null_id=True)


@rule("sockets")
def rule_non_utf8_is_parse_error(r: Rule) -> None:
    _framing_error(r, [b"", b'{"jsonrpc":"2.0","id":1,"method":"\xff\xfe"}'], -32700, expect_null_id=True)


@rule("sockets")
def rule_req_parse_error_gets_reply(r: Rule) -> None:
    req = r.connection(zmq.REQ)
    req.send_raw([b"not json"])
    reply = req.recv_body()
    check(reply.get("error", {}).get("code") == -32700 and reply.get("id", 0) is None, f"got {reply}")


@rule("sockets")
def rule_request_without_method_is_invalid_request(r: Rule) -> None:
    _framing_error(r, [b"", json.dumps({"jsonrpc": "2.0", "id": 5}).encode()], -32600)


@rule("sockets")
def rule_notification_gets_reply_with_null_id(r: Rule) -> None:
    r.rpc.send_raw([b"", json.dumps({"jsonrpc": "2.0", "method": "broker.info"}).encode()])
    reply = r.rpc.recv_body()
    check("id" in reply and reply["id"] is None, f"id must be null, got {reply.get('id', '<missing>')!r}")
    check("result" in reply, f"broker.info as a notification failed: {reply.get('error')}")


@rule("sockets")
def rule_params_not_object(r: Rule) -> None:
    for params in ([1, 2], "x", 3):
        r.err("jobs.get", params, -32602, field="params")  # type: ignore[arg-type]


@rule("sockets")
def rule_unknown_method(r: Rule) -> None:
    r.err("jobs.frobnicate", {}, -32601)


# ============================================================================================
# Events (sections 2, 5, 7 "Events and seq")


@rule("events")
def rule_topic_frame_and_two_frames(r: Rule) -> None:
    mark = r.mark()
    job = r.create()
    for topic in ("job:created", "job:ready"):
        item = r.event(topic, job["id"], mark)
        check(item.topic_frame == f"{topic}/{r.job_name}/", f"topic frame {item.topic_frame!r}")
        check(item.frames == 2, f"{item.frames} frames, expected 2")
    beat = r.heartbeat(mark)
    check(beat.topic_frame == "broker:heartbeat//", f"heartbeat topic frame {beat.topic_frame!r}")
    check(beat.frames == 2, f"heartbeat has {beat.frames} frames")


@rule("events")
def rule_prefix_subscription_is_exact(r: Rule) -> None:
    sub = r.suite.context.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    try:
        sub.connect(r.suite.events)
        sub.setsockopt(zmq.SUBSCRIBE, f"job:ready/{r.job_name}/".encode())
        sub.setsockopt(zmq.SUBSCRIBE, b"broker:heartbeat/")
        deadline = time.monotonic() + 2.5
        while True:  # a heartbeat shows the subscriptions sent before it are in place
            check(sub.poll(int(max(0, deadline - time.monotonic()) * 1000), zmq.POLLIN), "no heartbeat on a fresh SUB")
            if sub.recv_multipart()[0] == b"broker:heartbeat//":
                break
        mark = r.mark()
        wanted = r.create()
        other = r.create(op=r.op + "x")  # its subject extends ours: must not match the prefix
        r.event("job:ready", other["id"], mark)
        received: list[tuple[bytes, Json]] = []
        while sub.poll(200, zmq.POLLIN):
            frames = sub.recv_multipart()
            if frames[0] != b"broker:heartbeat//":
                received.append((frames[0], json.loads(frames[1])))
        check(len(received) == 1, f"expected only job:ready of {wanted['id']}, got {[f for f, _ in received]}")
        check(received[0][1].get("context", {}).get("jobId") == wanted["id"], "wrong job delivered")
    finally:
        sub.close(linger=0)


def _check_envelope(r: Rule, envelope: Json, job: Json, topic: str, status: str, epoch: str) -> None:
    check(str(envelope.get("id", "")).startswith("us_evt_"), f"event id {envelope.get('id')!r}")
    check(isinstance(envelope.get("seq"), int) and envelope["seq"] >= 1, f"seq {envelope.get('seq')!r}")
    check(envelope.get("epoch") == epoch, f"epoch {envelope.get('epoch')!r}, broker.info says {epoch!r}")
    check(envelope.get("topic") == topic and envelope.get("domain") == "job", "topic/domain")
    context = envelope.get("context")
    check(isinstance(context, dict) and context.get("jobId") == job["id"], f"context.jobId in {context!r}")
    check(all(v is not None for v in context.values()), f"context has null values: {context}")
    payload = envelope.get("payload") or {}
    expected = {"job": r.job_name, "domain": r.type, "operation": r.op, "status": status, "isPart": False}
    for key, value in expected.items():
        check(payload.get(key) == value, f"{topic} payload.{key} = {payload.get(key)!r}, expected {value!r}")
    parse_iso(envelope.get("createdAt"))


@rule("events")
def rule_envelope_fields(r: Rule) -> None:
    epoch = r.info()["epoch"]
    mark = r.mark()
    job = r.create(input={"a": 1})
    _check_envelope(r, r.event("job:ready", job["id"], mark).envelope, job, "job:ready", "ready", epoch)
    r.ack(job["id"], progress=5)
    _check_envelope(r, r.event("job:updated", job["id"], mark).envelope, job, "job:updated", "executing", epoch)
    r.ok("jobs.complete", {"jobId": job["id"], "listenerId": r.listener, "outcome": {"message": "ok"}})
    done = r.event("job:completed", job["id"], mark).envelope
    _check_envelope(r, done, job, "job:completed", "complete", epoch)
    check((done["payload"].get("outcome") or {}).get("message") == "ok", "job:completed payload lacks the outcome")


@rule("events")
def rule_created_then_ready(r: Rule) -> None:
    mark = r.mark()
    job = r.create()
    created = r.event("job:created", job["id"], mark)
    ready = r.event("job:ready", job["id"], mark)
    check(created.envelope["seq"] < ready.envelope["seq"], "job:created must come before job:ready")
    check(ready.payload.get("attempt") in (None, 1), f"first job:ready attempt {ready.payload.get('attempt')}")


@rule("events")
def rule_heartbeat(r: Rule) -> None:
    info = r.info()
    mark = r.mark()
    beats = [r.heartbeat(mark)]
    for _ in range(2):
        beats.append(r.heartbeat(_index_after(r, beats[-1])))
    for beat in beats:
        envelope = beat.envelope
        check("seq" not in envelope, "a heartbeat has no top-level seq")
        check(envelope.get("topic") == "broker:heartbeat" and envelope.get("domain") == "broker", "topic/domain")
        check(str(envelope.get("id", "")), "heartbeat without id")
        parse_iso(envelope.get("createdAt"))
        payload = envelope.get("payload") or {}
        check(isinstance(payload.get("seq"), int) and payload["seq"] >= info["seq"], f"payload.seq {payload.get('seq')!r}")
        check(payload.get("epoch") == info["epoch"], "payload.epoch differs from broker.info")
        check(payload.get("startedAt") == info["startedAt"], "payload.startedAt differs from broker.info")
    gaps = [b.at - a.at for a, b in zip(beats, beats[1:])]
    check(all(0.5 <= g <= 1.6 for g in gaps), f"heartbeat intervals {['%.2f' % g for g in gaps]} s, expected ~1 s")


def _index_after(r: Rule, item: Received) -> int:
    log = r.suite.recorder.since(0)
    return next(i for i, x in enumerate(log) if x is item) + 1


@rule("events")
def rule_heartbeat_carries_latest_seq(r: Rule) -> None:
    mark = r.mark()
    job = r.create()
    ready = r.event("job:ready", job["id"], mark)
    beat = r.heartbeat(_index_after(r, ready))
    check(beat.payload.get("seq", -1) >= ready.envelope["seq"], f"heartbeat seq {beat.payload.get('seq')} < {ready.envelope['seq']}")


@rule("events")
def rule_seq_gap_free_and_increasing(r: Rule) -> None:
    mark = r.mark()
    jobs = [r.create() for _ in range(3)]
    r.ack(jobs[0]["id"])
    r.ok("jobs.complete", {"jobId": jobs[0]["id"], "listenerId": r.listener})
    last = r.event("job:completed", jobs[0]["id"], mark)
    seqs = [x.envelope["seq"] for x in r.suite.recorder.since(mark)[: _index_after(r, last) - mark] if "seq" in x.envelope]
    check(len(seqs) >= 8, f"expected at least 8 events, saw {len(seqs)}")
    check(all(b == a + 1 for a, b in zip(seqs, seqs[1:])), f"seqs not consecutive: {seqs}")
    check(r.info()["seq"] >= seqs[-1], "broker.info.seq is behind the events")


@rule("events")
def rule_events_list_matches_stream(r: Rule) -> None:
    mark = r.mark()
    job = r.create()
    r.ack(job["id"])
    last = r.event("job:updated", job["id"], mark)
    streamed = [x.envelope for x in r.suite.recorder.since(mark) if x.job_id == job["id"]]
    since = streamed[0]["seq"] - 1
    listed = r.job_events(job["id"], since)
    check([e["id"] for e in listed[: len(streamed)]] == [e["id"] for e in streamed], "events.list and the stream differ")
    for a, b in zip(listed, streamed):
        check(a == b, f"event {a.get('id')} differs between events.list and the stream")
    check(last.envelope["seq"] <= r.events_list(since=since, limit=1)["lastSeq"], "lastSeq behind")


@rule("events")
def rule_events_list_since_ascending(r: Rule) -> None:
    before = r.info()["seq"]
    job = r.create()
    reply = r.events_list(since=before)
    check(isinstance(reply.get("epoch"), str) and isinstance(reply.get("lastSeq"), int), f"reply {list(reply)}")
    seqs = [e["seq"] for e in reply["events"]]
    check(all(s > before for s in seqs), "events at or below since")
    check(seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "not ascending")
    mine = [e["topic"] for e in reply["events"] if e["context"].get("jobId") == job["id"]]
    check(mine[:2] == ["job:created", "job:ready"], f"job's events {mine}")
    check(reply["lastSeq"] >= seqs[-1], "lastSeq below the last event")


@rule("events")
def rule_events_list_topic_globs(r: Rule) -> None:
    before = r.info()["seq"]
    job = r.create()
    r.ack(job["id"])
    only_ready = r.events_list(since=before, topics=["job:ready"])["events"]
    check(only_ready and all(e["topic"] == "job:ready" for e in only_ready), "topics [job:ready] returned other topics")
    glob = r.events_list(since=before, topics=["job:*"])["events"]
    topics = {e["topic"] for e in glob if e["context"].get("jobId") == job["id"]}
    check({"job:created", "job:ready", "job:updated"} <= topics, f"job:* gave {topics}")
    several = r.events_list(since=before, topics=["job:created", "*:updated"])["events"]
    check({e["topic"] for e in several} <= {"job:created", "job:updated"}, "a topic list is an OR of globs")


@rule("events")
def rule_events_list_limit_and_last_seq(r: Rule) -> None:
    before = r.info()["seq"]
    for _ in range(3):
        r.create()
    reply = r.events_list(since=before, limit=2)
    check(len(reply["events"]) == 2, f"limit 2 gave {len(reply['events'])}")
    check(reply["lastSeq"] == r.info()["seq"] or reply["lastSeq"] >= before + 6, "lastSeq is not the broker's latest")
    filtered = r.events_list(since=before, topics=["job:created"], limit=1)
    check(filtered["lastSeq"] >= before + 6, "lastSeq depends on the filter")
    check(not any(e["topic"] == "broker:heartbeat" for e in r.events_list(since=before)["events"]), "heartbeats in the log")


def _bulk(r: Rule, method: str, params: Iterable[Json], window: int = 200) -> list[Json]:
    """Pipelined calls; returns the results in any order."""
    pending: set[int] = set()
    results: list[Json] = []
    for p in params:
        pending.add(r.rpc.send(method, p))
        while len(pending) >= window:
            reply = r.rpc.recv_body(10)
            check("result" in reply, f"{method} failed: {reply.get('error')}")
            pending.discard(reply["id"])
            results.append(reply["result"])
    while pending:
        reply = r.rpc.recv_body(10)
        check("result" in reply, f"{method} failed: {reply.get('error')}")
        pending.discard(reply["id"])
        results.append(reply["result"])
    return results


def _events_limit(r: Rule, jobs: int, limit: Optional[int], expected: int) -> None:
    before = r.info()["seq"]
    created = _bulk(r, "jobs.create", ({"type": r.type, "operation": r.op, "source": SOURCE, "trigger": "manual"} for _ in range(jobs)))
    try:
        params: Json = {"since": before}
        if limit is not None:
            params["limit"] = limit
        reply = r.events_list(**params)
        got = len(reply["events"])
        # A page may also end early at the broker's byte budget; it then says where to go on (nextSince).
        cut_short = got < expected and reply.get("nextSince", reply["lastSeq"]) < reply["lastSeq"]
        check(got == expected or cut_short,
              f"events.list{' limit ' + str(limit) if limit else ''} returned {got}, expected {expected}")
    finally:
        _bulk(r, "jobs.delete", ({"jobId": j["id"]} for j in created))


@rule("events")
def rule_events_list_default_limit_1000(r: Rule) -> None:
    _events_limit(r, 1005, None, 1000)


@rule("events")
def rule_events_list_limit_capped_at_10000(r: Rule) -> None:
    _events_limit(r, 10005, 20000, 10000)


# ============================================================================================
# Jobs: every method's results and errors (sections 3, 4, 7)


@rule("jobs")
def rule_create_result(r: Rule) -> None:
    job = r.create(input={"x": 1}, metadata={"m": True}, status="complete")  # status is ignored
    check(job["status"] == "ready", f"immediate job created as {job['status']}")
    check(job["type"] == r.type and job["operation"] == r.op and job["source"] == SOURCE, "fields not echoed")
    check(job.get("attempt") == 1, f"attempt {job.get('attempt')}")
    check(job.get("input") == {"x": 1} and job.get("metadata") == {"m": True}, "input/metadata not kept")
    check(job.get("trigger", "immediate") == "immediate" and job.get("mode", "background") == "background", "defaults")
    check(job.get("lease") is None, "a ready job has no lease")
    parse_iso(job.get("createdAt"))
    parse_iso(job.get("updatedAt"))
    check(r.get(job["id"])["status"] == "ready", "jobs.get disagrees")


@rule("jobs")
def rule_create_required_fields(r: Rule) -> None:
    full = {"type": r.type, "operation": r.op, "source": SOURCE}
    before = r.info()["seq"]
    for missing in ("type", "operation", "source"):
        params = {k: v for k, v in full.items() if k != missing}
        r.err("jobs.create", params, -32602, field=missing)
    check(r.ok("jobs.list", {"type": r.type, "operation": r.op})["pagination"]["totalCount"] == 0, "a failed create made a job")
    check(not [e for e in r.events_list(since=before)["events"] if (e.get("payload") or {}).get("operation") == r.op], "events published")


@rule("jobs")
def rule_create_manual_waits(r: Rule) -> None:
    before = r.info()["seq"]
    job = r.create(trigger="manual")
    check(job["status"] == "created", f"manual job is {job['status']}")
    topics = [e["topic"] for e in r.job_events(job["id"], before)]
    check(topics == ["job:created"], f"manual job published {topics}")


@rule("jobs")
def rule_create_lease_fields(r: Rule) -> None:
    job = r.create(leaseSeconds=7, maxAttempts=5)
    check(job.get("leaseSeconds") == 7 and job.get("maxAttempts") == 5, f"leaseSeconds/maxAttempts {job.get('leaseSeconds')}/{job.get('maxAttempts')}")


@rule("jobs")
def rule_idempotency_key(r: Rule) -> None:
    key = f"conf-{uuid.uuid4().hex}"
    first = r.create(idempotencyKey=key, input={"n": 1})
    before = r.info()["seq"]
    again = r.create(idempotencyKey=key, input={"n": 1})
    check(again["id"] == first["id"], "same key gave another job")
    check(not r.job_events(first["id"], before), "a repeat create published events")
    r.err("jobs.create", {"type": r.type, "operation": r.op, "source": SOURCE, "idempotencyKey": key, "input": {"n": 2}}, -32003, type="conflict")
    check(r.ok("jobs.list", {"type": r.type, "operation": r.op})["pagination"]["totalCount"] == 1, "more than one job for the key")


@rule("jobs")
def rule_get_unknown_is_not_found(r: Rule) -> None:
    r.err("jobs.get", {"jobId": "us_jb_doesnotexist" + uuid.uuid4().hex[:6]}, -32001, type="not_found")


@rule("jobs")
def rule_missing_job_id_is_invalid_params(r: Rule) -> None:
    r.err("jobs.get", {}, -32602, field="jobId")


@rule("jobs")
def rule_list_filters(r: Rule) -> None:
    a = r.create(source="us_wb_a")
    b = r.create(source="us_wb_b")
    c = r.create(op=r.op + "-other", source="us_wb_a")
    r.ack(b["id"])

    def ids(**filters: Any) -> set[str]:
        return {j["id"] for j in r.ok("jobs.list", {"pageSize": 100, **filters})["data"]}

    check(ids(type=r.type, operation=r.op) == {a["id"], b["id"]}, "type+operation filter")
    check(ids(type=r.type, operation=r.op, status="ready") == {a["id"]}, "status filter")
    check(ids(type=r.type, operation=r.op, status="executing") == {b["id"]}, "status executing filter")
    check(ids(source="us_wb_a", operation=c["operation"]) == {c["id"]}, "source filter")
    check(ids(type=r.type, operation=r.op, excludeChildJobs=True) == {a["id"], b["id"]}, "excludeChildJobs hides a top-level job")


@rule("jobs")
def rule_list_pagination(r: Rule) -> None:
    made = [r.create()["id"] for _ in range(5)]
    pages = [r.ok("jobs.list", {"type": r.type, "operation": r.op, "pageSize": 2, "pageNumber": n}) for n in (1, 2, 3)]
    for n, page in enumerate(pages, 1):
        p = page["pagination"]
        check((p["currentPage"], p["pageCount"], p["totalCount"]) == (n, 3, 5), f"page {n}: {p}")
    check([len(p["data"]) for p in pages] == [2, 2, 1], f"page sizes {[len(p['data']) for p in pages]}")
    check([j["id"] for p in pages for j in p["data"]] == made, "pages are not in createdAt order")


@rule("jobs")
def rule_list_default_page_size_20(r: Rule) -> None:
    _bulk(r, "jobs.create", ({"type": r.type, "operation": r.op, "source": SOURCE} for _ in range(21)))
    reply = r.ok("jobs.list", {"type": r.type, "operation": r.op})
    check(len(reply["data"]) == 20 and reply["pagination"]["pageCount"] == 2, f"{len(reply['data'])} jobs, {reply['pagination']}")


@rule("jobs")
def rule_list_empty_page_count_zero(r: Rule) -> None:
    reply = r.ok("jobs.list", {"type": r.type, "operation": r.op})
    check(reply["data"] == [], "data not empty")
    check(reply["pagination"]["pageCount"] == 0 and reply["pagination"]["totalCount"] == 0, f"{reply['pagination']}")


@rule("jobs")
def rule_list_sort_direction(r: Rule) -> None:
    made = [r.create()["id"] for _ in range(3)]
    asc = [j["id"] for j in r.ok("jobs.list", {"type": r.type, "operation": r.op})["data"]]
    desc = [j["id"] for j in r.ok("jobs.list", {"type": r.type, "operation": r.op, "sortDirection": "desc"})["data"]]
    check(asc == made, "default order is not ascending createdAt, id")
    check(desc == made[::-1], "desc is not the reverse")


@rule("jobs")
def rule_list_unknown_status_is_invalid_params(r: Rule) -> None:
    r.err("jobs.list", {"status": "sleeping"}, -32602, field="status")


@rule("jobs")
def rule_cancelled_spelling_accepted(r: Rule) -> None:
    job = r.create()
    r.ok("jobs.cancel", {"jobId": job["id"]})
    got = r.ok("jobs.list", {"type": r.type, "operation": r.op, "status": "cancelled"})["data"]
    check([j["id"] for j in got] == [job["id"]], "status filter cancelled does not find the canceled job")
    check(got[0]["status"] == "canceled", "the wire spelling is canceled")


@rule("jobs")
def rule_update_progress_only_while_executing(r: Rule) -> None:
    job = r.create()
    r.err("jobs.update", {"jobId": job["id"], "progress": 10}, -32002, type="invalid_transition")
    check(r.get(job["id"]).get("progress") in (0, None), "a failed update changed progress")
    r.ack(job["id"])
    mark = r.mark()
    updated = r.ok("jobs.update", {"jobId": job["id"], "listenerId": r.listener, "progress": 12.5, "info": "an eighth",
                                   "estimatedCompletionAt": "2030-01-01T00:00:00.000Z"})
    check(updated["progress"] == 12.5 and updated["info"] == "an eighth", "progress/info not applied")
    # The ack's own job:updated may reach the subscriber after its reply: wait for the one with the update.
    event = r.event("job:updated", job["id"], mark, where=lambda p: p.get("info") == "an eighth")
    check(event.payload.get("progress") == 12.5, f"job:updated progress {event.payload.get('progress')}")


@rule("jobs")
def rule_update_progress_range(r: Rule) -> None:
    job = r.executing()
    for bad in (101, -1, "50"):
        r.err("jobs.update", {"jobId": job["id"], "listenerId": r.listener, "progress": bad}, -32602, field="progress")


@rule("jobs")
def rule_update_status_other_than_planning(r: Rule) -> None:
    job = r.create(trigger="manual")
    r.err("jobs.update", {"jobId": job["id"], "status": "complete"}, -32602, field="status")
    mark = r.mark()
    planned = r.ok("jobs.update", {"jobId": job["id"], "status": "planning"})
    check(planned["status"] == "planning", "status planning not applied")
    r.event("job:updated", job["id"], mark, where=lambda p: p.get("status") == "planning")
    r.err("jobs.update", {"jobId": r.create()["id"], "status": "planning"}, -32002, type="invalid_transition")


@rule("jobs")
def rule_update_info_while_waiting(r: Rule) -> None:
    job = r.create()
    mark = r.mark()
    updated = r.ok("jobs.update", {"jobId": job["id"], "info": "queued", "metadata": {"k": 1}})
    check(updated["info"] == "queued" and updated["metadata"] == {"k": 1} and updated["status"] == "ready", "info/metadata on ready")
    r.event("job:updated", job["id"], mark)


@rule("jobs")
def rule_execute_manual(r: Rule) -> None:
    job = r.create(trigger="manual")
    mark = r.mark()
    executed = r.ok("jobs.execute", {"jobId": job["id"]})
    check(executed["status"] == "ready", f"executed job is {executed['status']}")
    r.event("job:ready", job["id"], mark)
    r.err("jobs.execute", {"jobId": job["id"]}, -32002, type="invalid_transition")
    r.err("jobs.execute", {"jobId": "us_jb_nope" + uuid.uuid4().hex[:6]}, -32001, type="not_found")


@rule("jobs")
def rule_complete_with_outcome(r: Rule) -> None:
    job = r.executing()
    mark = r.mark()
    outcome = {"message": "done", "heading": "Success", "acknowledge": True, "buttonText": "Get it",
               "next": {"type": "download", "url": "https://example.invalid/x.csv", "label": "x", "fileName": "x.csv"}}
    done = r.ok("jobs.complete", {"jobId": job["id"], "listenerId": r.listener, "outcome": outcome, "info": "bye"})
    check(done["status"] == "complete" and done.get("lease") is None, "complete: status/lease")
    check(done.get("outcome") == outcome, "outcome not stored as given")
    parse_iso(done.get("finishedAt"))
    event = r.event("job:completed", job["id"], mark)
    check(event.payload.get("outcome") == outcome, "job:completed payload outcome")


@rule("jobs")
def rule_fail_with_outcome(r: Rule) -> None:
    job = r.executing()
    mark = r.mark()
    failed = r.ok("jobs.fail", {"jobId": job["id"], "listenerId": r.listener, "outcome": {"message": "broken", "next": {"type": "retry", "label": "Again"}}})
    check(failed["status"] == "failed" and failed.get("lease") is None, "fail: status/lease")
    r.event("job:failed", job["id"], mark, where=lambda p: (p.get("outcome") or {}).get("message") == "broken")


@rule("jobs")
def rule_outcome_next_type_validated(r: Rule) -> None:
    job = r.executing()
    r.err("jobs.complete", {"jobId": job["id"], "listenerId": r.listener, "outcome": {"next": {"type": "teleport"}}}, -32602, field="outcome.next.type")
    check(r.get(job["id"])["status"] == "executing", "a failed complete changed the job")


@rule("jobs")
def rule_complete_requires_executing(r: Rule) -> None:
    job = r.create()
    error = r.err("jobs.complete", {"jobId": job["id"]}, -32002, type="invalid_transition")
    check(r.get(job["id"])["status"] == "ready", "a failed complete changed the job")
    check(isinstance(error.get("message"), str) and error["message"], "no message")


@rule("jobs")
def rule_cancel(r: Rule) -> None:
    before = r.info()["seq"]
    ready = r.create()
    mark = r.mark()
    canceled = r.ok("jobs.cancel", {"jobId": ready["id"], "info": "no longer needed"})
    check(canceled["status"] == "canceled", "cancel status")
    r.event("job:updated", ready["id"], mark, where=lambda p: p.get("status") == "canceled")
    running = r.executing()
    stopped = r.ok("jobs.cancel", {"jobId": running["id"]})
    check(stopped["status"] == "canceled" and stopped.get("lease") is None, "cancel of executing: lease not cleared")
    topics = {e["topic"] for e in r.job_events(ready["id"], before)}
    check("job:failed" not in topics and "job:completed" not in topics, "a cancel published job:failed/completed")
    r.err("jobs.cancel", {"jobId": ready["id"]}, -32002, type="invalid_transition")
    done = r.executing()
    r.ok("jobs.complete", {"jobId": done["id"], "listenerId": r.listener})
    r.err("jobs.cancel", {"jobId": done["id"]}, -32002, type="invalid_transition")


@rule("jobs")
def rule_retry(r: Rule) -> None:
    job = r.executing()
    r.ok("jobs.fail", {"jobId": job["id"], "listenerId": r.listener, "outcome": {"message": "x"}})
    mark = r.mark()
    again = r.ok("jobs.retry", {"jobId": job["id"]})
    check(again["id"] == job["id"] and again["status"] == "ready", "retry: same id, ready")
    check(again["attempt"] == job["attempt"] + 1, f"retry attempt {again['attempt']}")
    check(not again.get("outcome"), "retry keeps the outcome")
    r.event("job:ready", job["id"], mark)
    r.err("jobs.retry", {"jobId": job["id"]}, -32002, type="invalid_transition")
    canceled = r.create()
    r.ok("jobs.cancel", {"jobId": canceled["id"]})
    check(r.ok("jobs.retry", {"jobId": canceled["id"]})["status"] == "ready", "retry of canceled")
    done = r.executing()
    r.ok("jobs.complete", {"jobId": done["id"], "listenerId": r.listener})
    r.err("jobs.retry", {"jobId": done["id"]}, -32002, type="invalid_transition")


@rule("jobs")
def rule_ack_outcome_once(r: Rule) -> None:
    job = r.executing()
    r.err("jobs.ackOutcome", {"jobId": job["id"]}, -32002, type="invalid_transition")
    r.ok("jobs.complete", {"jobId": job["id"], "listenerId": r.listener, "outcome": {"message": "m", "acknowledge": True}})
    before = r.info()["seq"]
    first = r.ok("jobs.ackOutcome", {"jobId": job["id"]})
    check(first["status"] == "complete", "ackOutcome changed the status")
    parse_iso(first.get("outcomeAcknowledgedAt"))
    second = r.ok("jobs.ackOutcome", {"jobId": job["id"]})
    check(second == first, "a second ackOutcome changed the job")
    topics = [e["topic"] for e in r.job_events(job["id"], before)]
    check(topics == ["job:outcome-acknowledged"], f"events after ackOutcome twice: {topics}")


@rule("jobs")
def rule_delete(r: Rule) -> None:
    job = r.create()
    mark = r.mark()
    check(r.ok("jobs.delete", {"jobId": job["id"]}) == {"success": True}, "delete result")
    r.event("job:deleted", job["id"], mark, where=lambda p: p.get("status") == "ready")
    r.err("jobs.get", {"jobId": job["id"]}, -32001, type="not_found")
    r.err("jobs.delete", {"jobId": job["id"]}, -32001, type="not_found")
    running = r.executing()
    r.err("jobs.delete", {"jobId": running["id"]}, -32002, type="invalid_transition")
    check(r.get(running["id"])["status"] == "executing", "a failed delete changed the job")


@rule("jobs")
def rule_broker_info(r: Rule) -> None:
    info = r.info()
    for key in ("version", "epoch", "seq", "startedAt", "jobs"):
        check(key in info, f"broker.info lacks {key}")
    parse_iso(info["startedAt"])
    check(isinstance(info["seq"], int) and info["seq"] >= 0, "seq")
    check(set(STATUSES) <= set(info["jobs"]), f"jobs lists {sorted(info['jobs'])}")
    check(all(isinstance(info["jobs"][s], int) and info["jobs"][s] >= 0 for s in STATUSES), "counts")
    check(r.events_list(since=0, limit=1)["lastSeq"] >= info["seq"], "events.list lastSeq behind broker.info seq")


# ============================================================================================
# Leases (section 6, section 7 "Leases")


@rule("leases")
def rule_ack_takes_lease(r: Rule) -> None:
    job = r.create()
    mark = r.mark()
    start = time.time()
    acked = r.ack(job["id"], progress=0, info="Accepted")
    check(acked["status"] == "executing", "ack status")
    lease = acked.get("lease") or {}
    check(lease.get("owner") == r.listener, f"lease owner {lease.get('owner')!r}")
    expires = parse_iso(lease.get("expiresAt"))
    check(abs(expires - (start + 30)) < 5, f"expiresAt {lease.get('expiresAt')} is not now + 30 s")
    parse_iso(acked.get("startedAt"))
    r.event("job:updated", job["id"], mark, where=lambda p: p.get("status") == "executing")


@rule("leases")
def rule_ack_without_listener_is_anonymous(r: Rule) -> None:
    job = r.create()
    acked = r.ok("jobs.ack", {"jobId": job["id"]})
    check((acked.get("lease") or {}).get("owner") == "anonymous", f"lease {acked.get('lease')}")


@rule("leases")
def rule_first_ack_wins(r: Rule) -> None:
    job = r.executing()
    before = r.get(job["id"])
    r.err("jobs.ack", {"jobId": job["id"], "listenerId": "someone-else"}, -32003, type="conflict")
    r.err("jobs.complete", {"jobId": job["id"], "listenerId": "someone-else"}, -32003, type="conflict")
    r.err("jobs.update", {"jobId": job["id"], "listenerId": "someone-else", "progress": 5}, -32003, type="conflict")
    check(r.get(job["id"]) == before, "a conflicting call changed the job")


@rule("leases")
def rule_owner_ack_again_renews(r: Rule) -> None:
    job = r.executing(leaseSeconds=30)
    again = r.ack(job["id"], progress=40)
    check(again["progress"] == 40 and again["status"] == "executing", "ack of executing by its owner")
    check(parse_iso(again["lease"]["expiresAt"]) >= parse_iso(job["lease"]["expiresAt"]), "renewal moved expiresAt back")


@rule("leases")
def rule_operator_may_finish(r: Rule) -> None:
    job = r.executing()
    done = r.ok("jobs.fail", {"jobId": job["id"], "outcome": {"message": "stuck"}})
    check(done["status"] == "failed", "an operator call (no listenerId) must be allowed")


@rule("leases")
def rule_renewal_keeps_lease(r: Rule) -> None:
    job = r.executing(leaseSeconds=2)
    mark = r.mark()
    deadline = time.monotonic() + 3.5
    while time.monotonic() < deadline:
        # Renew well inside the lease; an event that is not there cannot be awaited, so poll the store.
        item = r.suite.recorder.wait(lambda x: x.topic == "job:ready" and x.job_id == job["id"], mark, 0.6)
        check(item is None, "the job was requeued although its owner renewed the lease")
        r.ok("jobs.update", {"jobId": job["id"], "listenerId": r.listener, "progress": 50})
    check(r.get(job["id"])["status"] == "executing", "lease lost despite renewals")


@rule("leases")
def rule_lease_expiry_requeues(r: Rule) -> None:
    job = r.executing(leaseSeconds=1, maxAttempts=3)
    mark = r.mark()
    event = r.event("job:ready", job["id"], mark, timeout=LEASE_TIMEOUT)
    check(event.payload.get("attempt") == 2, f"requeued attempt {event.payload.get('attempt')}")
    now = r.get(job["id"])
    check(now["status"] == "ready" and now["attempt"] == 2 and now.get("lease") is None, f"after expiry {now['status']} {now.get('lease')}")


@rule("leases")
def rule_lease_expiry_at_max_attempts_fails(r: Rule) -> None:
    job = r.executing(leaseSeconds=1, maxAttempts=1)
    before = r.info()["seq"]
    mark = r.mark()
    event = r.event("job:failed", job["id"], mark, timeout=LEASE_TIMEOUT)
    check((event.payload.get("outcome") or {}).get("message") == "lease expired", f"outcome {event.payload.get('outcome')}")
    now = r.get(job["id"])
    check(now["status"] == "failed" and now.get("lease") is None, "status/lease after expiry")
    check((now.get("outcome") or {}).get("message") == "lease expired", "job outcome")
    endings = [e["topic"] for e in r.job_events(job["id"], before) if e["topic"] in ("job:failed", "job:completed", "job:ready")]
    check(endings == ["job:failed"], f"expected exactly one job:failed, got {endings}")


@rule("leases")
def rule_former_owner_gets_lease_expired(r: Rule) -> None:
    job = r.executing(leaseSeconds=1, maxAttempts=3)
    mark = r.mark()
    r.event("job:ready", job["id"], mark, timeout=LEASE_TIMEOUT)
    r.err("jobs.complete", {"jobId": job["id"], "listenerId": r.listener}, -32004, type="lease_expired")
    r.ack(job["id"], listener="new-owner-" + r.listener)  # its 1 s lease outlives the checks below
    snapshot = r.get(job["id"])
    r.err("jobs.update", {"jobId": job["id"], "listenerId": r.listener, "progress": 9}, -32004, type="lease_expired")
    r.err("jobs.fail", {"jobId": job["id"], "listenerId": r.listener}, -32004, type="lease_expired")
    r.err("jobs.update", {"jobId": job["id"], "listenerId": "never-held-it", "progress": 9}, -32003, type="conflict")
    check(r.get(job["id"]) == snapshot, "a rejected call changed the job")


@rule("leases")
def rule_former_owner_may_ack_again(r: Rule) -> None:
    job = r.executing(leaseSeconds=1, maxAttempts=3)
    mark = r.mark()
    r.event("job:ready", job["id"], mark, timeout=LEASE_TIMEOUT)
    again = r.ok("jobs.ack", {"jobId": job["id"], "listenerId": r.listener})
    check(again["status"] == "executing" and again["lease"]["owner"] == r.listener, "a new claim by the former owner")


@rule("leases")
def rule_ended_job_is_invalid_transition(r: Rule) -> None:
    job = r.executing()
    r.ok("jobs.complete", {"jobId": job["id"], "listenerId": r.listener})
    for listener in (r.listener, "someone-else", None):
        for method, extra in (("jobs.complete", {}), ("jobs.fail", {}), ("jobs.ack", {}), ("jobs.update", {"progress": 1}), ("jobs.release", {})):
            reply = r.call_as(method, job["id"], listener, **extra)
            code = (reply.get("error") or {}).get("code")
            check(code == -32002, f"{method} as {listener} on a complete job: {code}, expected -32002")


@rule("leases")
def rule_release_requeues_without_failing(r: Rule) -> None:
    job = r.executing(maxAttempts=1)
    mark = r.mark()
    released = r.ok("jobs.release", {"jobId": job["id"], "listenerId": r.listener, "info": "shutting down"})
    check(released["status"] == "ready" and released["attempt"] == 2, f"release gave {released['status']} attempt {released['attempt']}")
    check(released.get("lease") is None, "release keeps the lease")
    r.event("job:ready", job["id"], mark, where=lambda p: p.get("attempt") == 2)
    r.err("jobs.release", {"jobId": job["id"], "listenerId": r.listener}, -32004, type="lease_expired")


# ============================================================================================
# jobs.claim (section 6)


def _claim(r: Rule, rpc: Rpc, jobs: list[str], wait: float, listener: Optional[str] = None) -> int:
    return rpc.send("jobs.claim", {"listenerId": listener or r.listener, "jobs": jobs, "wait": wait})


@rule("claim")
def rule_claim_wait_returns_null(r: Rule) -> None:
    start = time.monotonic()
    reply = r.rpc.recv(_claim(r, r.rpc, [r.job_name], 1), timeout=4)
    elapsed = time.monotonic() - start
    check(reply.get("result") == {"job": None}, f"expected {{job: null}}, got {reply}")
    check(0.9 <= elapsed <= 3, f"answered after {elapsed:.2f} s for wait 1")


@rule("claim")
def rule_claim_hands_job_created_during_wait(r: Rule) -> None:
    claimer = r.connection()
    request = _claim(r, claimer, [r.job_name], 5)
    check(claimer.recv_raw(0.3) is None, "claim answered before any job was ready")
    mark = r.mark()
    job = r.create()
    reply = claimer.recv(request, timeout=3)
    claimed = (reply.get("result") or {}).get("job") or {}
    check(claimed.get("id") == job["id"], f"claim returned {reply}")
    check(claimed["status"] == "executing" and claimed["lease"]["owner"] == r.listener, "claimed as by jobs.ack")
    r.event("job:updated", job["id"], mark, where=lambda p: p.get("status") == "executing")


@rule("claim")
def rule_claim_oldest_first_and_globs(r: Rule) -> None:
    first = r.create()
    second = r.create()
    pattern = f"{r.type}:{r.op[:-3]}*"
    got = [r.ok("jobs.claim", {"listenerId": r.listener, "jobs": [pattern]})["job"] for _ in range(3)]
    check(got[0] and got[0]["id"] == first["id"], "the oldest ready job first")
    check(got[1] and got[1]["id"] == second["id"], "then the next")
    check(got[2] is None, "then none (wait 0)")


@rule("claim")
def rule_two_claimers_get_different_jobs(r: Rule) -> None:
    a, b = r.connection(), r.connection()
    ra = _claim(r, a, [r.job_name], 5, "claimer-a-" + r.listener)
    rb = _claim(r, b, [r.job_name], 5, "claimer-b-" + r.listener)
    check(a.recv_raw(0.3) is None and b.recv_raw(0) is None, "a claim answered before any job was ready")
    made = {r.create()["id"], r.create()["id"]}
    got = {(a.recv(ra)["result"]["job"] or {}).get("id"), (b.recv(rb)["result"]["job"] or {}).get("id")}
    check(got == made, f"claimers got {got}, jobs were {made}")


@rule("claim")
def rule_claim_wait_out_of_range(r: Rule) -> None:
    r.err("jobs.claim", {"listenerId": r.listener, "jobs": [r.job_name], "wait": 61}, -32602, field="wait")


@rule("jobs")
def rule_unknown_params_rejected(r: Rule) -> None:
    job = r.create()
    r.err("jobs.update", {"jobId": job["id"], "config": {}}, -32602, field="config")
    r.err("jobs.list", {"spcaeId": "us_sp_1"}, -32602, field="spcaeId")
    r.err("jobs.claim", {"listenerId": r.listener, "jobs": r.job_name}, -32602, field="jobs")
    check(r.get(job["id"])["status"] == "ready", "a rejected call changed the job")


# ============================================================================================
# Extensions: section 4's split, actions, predecessorIds and runAt


@rule("extensions")
def rule_split_count(r: Rule) -> None:
    parent = r.executing()
    mark = r.mark()
    parts = r.ok("jobs.split", {"jobId": parent["id"], "listenerId": r.listener, "parts": 3})["parts"]
    check(len(parts) == 3, f"{len(parts)} parts")
    for n, part in enumerate(parts):
        check(part["parentId"] == parent["id"] and part["part"] == n, "parentId/part")
        check(part["partData"] == {"part": n, "total": 3}, f"partData {part['partData']}")
        check(part["status"] == "ready", f"parallel part is {part['status']}")
        event = r.event("job:ready", part["id"], mark)
        check(event.payload.get("isPart") is True and event.payload.get("job") == r.job_name, "part event payload")
    listed = {j["id"] for j in r.ok("jobs.list", {"parentId": parent["id"]})["data"]}
    check(listed == {p["id"] for p in parts}, "jobs.list parentId")
    top = {j["id"] for j in r.ok("jobs.list", {"type": r.type, "operation": r.op, "excludeChildJobs": True})["data"]}
    check(top == {parent["id"]}, "excludeChildJobs")
    r.err("jobs.split", {"jobId": r.create()["id"], "parts": 2}, -32002, type="invalid_transition")


@rule("extensions")
def rule_split_array_and_parts_completed(r: Rule) -> None:
    parent = r.executing()
    data = [{"sheetId": "us_sh_1"}, {"sheetId": "us_sh_2"}, {"sheetId": "us_sh_3"}]
    parts = r.ok("jobs.split", {"jobId": parent["id"], "listenerId": r.listener, "parts": data})["parts"]
    check([p["partData"] for p in parts] == data, "array partData is the caller's objects")
    mark = r.mark()
    r.ack(parts[0]["id"])
    r.ok("jobs.complete", {"jobId": parts[0]["id"], "listenerId": r.listener})
    r.ack(parts[1]["id"])
    r.ok("jobs.fail", {"jobId": parts[1]["id"], "listenerId": r.listener})
    r.ok("jobs.cancel", {"jobId": parts[2]["id"]})
    event = r.event("job:parts-completed", parent["id"], mark)
    check(event.payload.get("parts") == {"total": 3, "completed": 1, "failed": 1, "canceled": 1}, f"parts {event.payload.get('parts')}")
    check(event.payload.get("status") == "executing", "parts-completed carries the parent's status")
    check(r.get(parent["id"])["status"] == "executing", "the parent is not ended automatically")


@rule("extensions")
def rule_split_sequential(r: Rule) -> None:
    parent = r.executing()
    parts = r.ok("jobs.split", {"jobId": parent["id"], "listenerId": r.listener, "parts": 2, "runInParallel": False})["parts"]
    check([p["status"] for p in parts] == ["ready", "scheduled"], f"sequential parts {[p['status'] for p in parts]}")
    mark = r.mark()
    r.ack(parts[0]["id"])
    r.ok("jobs.fail", {"jobId": parts[0]["id"], "listenerId": r.listener})
    r.event("job:ready", parts[1]["id"], mark)


@rule("extensions")
def rule_cancel_parent_cancels_parts(r: Rule) -> None:
    parent = r.executing()
    parts = r.ok("jobs.split", {"jobId": parent["id"], "listenerId": r.listener, "parts": 2})["parts"]
    r.ack(parts[0]["id"])
    r.ok("jobs.complete", {"jobId": parts[0]["id"], "listenerId": r.listener})
    r.ok("jobs.cancel", {"jobId": parent["id"]})
    check(r.get(parts[0]["id"])["status"] == "complete", "a finished part stays complete")
    check(r.get(parts[1]["id"])["status"] == "canceled", "an unfinished part is canceled")


@rule("extensions")
def rule_parent_keeps_lease_while_parts_run(r: Rule) -> None:
    parent = r.executing(leaseSeconds=1)
    parts = r.ok("jobs.split", {"jobId": parent["id"], "listenerId": r.listener, "parts": 1})["parts"]
    r.ack(parts[0]["id"])
    mark = r.mark()
    item = r.suite.recorder.wait(lambda x: x.job_id == parent["id"] and x.topic in ("job:ready", "job:failed"), mark, 2.5)
    check(item is None, "the parent lost its lease while a part ran")
    check(r.get(parent["id"])["status"] == "executing", "parent status")


@rule("extensions")
def rule_predecessors(r: Rule) -> None:
    first = r.create()
    mark = r.mark()
    second = r.create(predecessorIds=[first["id"]])
    check(second["status"] == "scheduled", f"a job waiting for a predecessor is {second['status']}")
    r.event("job:scheduled", second["id"], mark)
    r.ack(first["id"])
    r.ok("jobs.complete", {"jobId": first["id"], "listenerId": r.listener})
    r.event("job:ready", second["id"], mark)


@rule("extensions")
def rule_predecessor_failure_fails_job(r: Rule) -> None:
    first = r.create()
    second = r.create(predecessorIds=[first["id"]])
    mark = r.mark()
    r.ok("jobs.cancel", {"jobId": first["id"]})
    event = r.event("job:failed", second["id"], mark)
    check((event.payload.get("outcome") or {}).get("message") == f"predecessor {first['id']} canceled", f"outcome {event.payload.get('outcome')}")


@rule("extensions")
def rule_predecessor_unknown(r: Rule) -> None:
    r.err("jobs.create", {"type": r.type, "operation": r.op, "source": SOURCE, "predecessorIds": ["us_jb_nope" + uuid.uuid4().hex[:6]]},
          -32001, type="not_found", field="predecessorIds")


@rule("extensions")
def rule_run_at(r: Rule) -> None:
    run_at = time.time() + 1.5
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(run_at)) + f".{int(run_at * 1000) % 1000:03d}Z"
    mark = r.mark()
    job = r.create(runAt=stamp)
    check(job["status"] == "scheduled", f"a job with a future runAt is {job['status']}")
    r.event("job:scheduled", job["id"], mark)
    r.event("job:ready", job["id"], mark, timeout=4)
    check(time.time() >= run_at - 0.05, "ready before runAt")
    manual = r.create(trigger="manual", runAt=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + 60)))
    check(manual["status"] == "created", "runAt applies from jobs.execute on")
    check(r.ok("jobs.execute", {"jobId": manual["id"]})["status"] == "scheduled", "executed manual job with runAt")


@rule("extensions")
def rule_actions(r: Rule) -> None:
    resource = f"us_wb_{uuid.uuid4().hex[:8]}"
    action = {"operation": r.op, "label": "Export", "mode": "foreground", "description": "Export?", "primary": True,
              "inputForm": {"type": "simple", "fields": [{"key": "format", "label": "Format", "type": "string", "constraints": [{"type": "required"}]}]}}
    mounted = r.ok("actions.mount", {"domain": "workbook", "resourceId": resource, "action": action})
    check(str(mounted.get("id", "")).startswith("us_ac_"), f"action id {mounted.get('id')!r}")
    listed = r.ok("actions.list", {"domain": "workbook", "resourceId": resource})
    check([a["id"] for a in listed] == [mounted["id"]], "actions.list")
    r.err("actions.trigger", {"actionId": mounted["id"], "input": {}}, -32602, field="input.format")
    mark = r.mark()
    job = r.ok("actions.trigger", {"actionId": mounted["id"], "input": {"format": "csv"}, "actorId": "us_usr_conf"})
    check(job["type"] == "workbook" and job["operation"] == r.op and job["status"] == "ready", "triggered job")
    check(job["mode"] == "foreground" and job["input"] == {"format": "csv"}, "mode/input from the action")
    event = r.event("job:ready", job["id"], mark)
    check(event.envelope["context"].get("actorId") == "us_usr_conf", "context.actorId")
    by_name = r.ok("actions.trigger", {"domain": "workbook", "resourceId": resource, "operation": r.op, "input": {"format": "x"}})
    check(by_name["operation"] == r.op, "trigger by domain+resourceId+operation")
    check(r.ok("actions.unmount", {"actionId": mounted["id"]}) == {"success": True}, "unmount")
    check(r.ok("actions.list", {"domain": "workbook", "resourceId": resource}) == [], "unmounted action still listed")
    r.err("actions.mount", {"domain": "workbook", "resourceId": resource, "action": {"label": "x"}}, -32602, field="action.operation")


# ============================================================================================
# Runner


def reachable(context: zmq.Context[Any], endpoint: str, timeout: float = 3.0) -> bool:
    rpc = Rpc(context, endpoint)
    try:
        rpc.send("broker.info")
        return rpc.recv_raw(timeout) is not None
    finally:
        rpc.close()


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", default=os.environ.get("JOBWIRE_COMMANDS", "tcp://127.0.0.1:7401"))
    parser.add_argument("--events", default=os.environ.get("JOBWIRE_EVENTS", "tcp://127.0.0.1:7400"))
    parser.add_argument("--only", action="append", default=[], metavar="PATTERN", help="run only rules whose name matches (glob or substring) or whose group is PATTERN; repeatable")
    parser.add_argument("--skip-group", action="append", default=[], metavar="NAME", help="skip a group (e.g. extensions)")
    parser.add_argument("--list", action="store_true", help="list the rules and their groups, run nothing")
    args = parser.parse_args(argv)

    rules = discover()
    if args.list:
        for fn in rules:
            print(f"{fn.conformance_group:<11} {rule_name(fn)}")  # type: ignore[attr-defined]
        return 0

    def selected(fn: RuleFn) -> bool:
        name, group = rule_name(fn), fn.conformance_group  # type: ignore[attr-defined]
        return not args.only or any(fnmatch.fnmatch(name, p) or p in name or p == group for p in args.only)

    context = zmq.Context()
    try:
        if not reachable(context, args.commands):
            print(f"broker not reachable at {args.commands}; start it with: jobwire broker", file=sys.stderr)
            return 2
        suite = Suite(args.commands, args.events, context, Recorder(context, args.events))
        passed = failed = skipped = 0
        try:
            # The recorder must be subscribed before rules start: wait for its first heartbeat.
            if suite.recorder.wait(lambda x: x.topic == "broker:heartbeat", 0, 3) is None:
                print(f"no heartbeat from the events socket at {args.events} within 3 s", file=sys.stderr)
                return 2
            for fn in rules:
                name = rule_name(fn)
                if not selected(fn):
                    continue
                if fn.conformance_group in args.skip_group:  # type: ignore[attr-defined]
                    skipped += 1
                    continue
                r = Rule(suite, name)
                try:
                    fn(r)
                    passed += 1
                    print(f"PASS {name}", flush=True)
                except RuleFailed as failure:
                    failed += 1
                    print(f"FAIL {name}: {failure}", flush=True)
                except Exception as error:  # a broker reply of the wrong shape fails the rule, not the suite
                    failed += 1
                    where = traceback.extract_tb(error.__traceback__)[-1]
                    print(f"FAIL {name}: {type(error).__name__}: {error} (line {where.lineno})", flush=True)
                finally:
                    r.close()
        finally:
            suite.recorder.stop()
        print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
        return 1 if failed else 0
    finally:
        context.term()


if __name__ == "__main__":
    sys.exit(main())

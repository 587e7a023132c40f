"""A small Jobwire client for Python, built on pyzmq and the standard library only.

The wire contract is docs/protocol.md (PROTOCOL.md version 1). Two pieces:

- ``Client``: JSON-RPC 2.0 commands over a DEALER socket, lock-step (one request in flight per
  client, matched by id, late replies from timed-out calls are dropped), with typed errors.
- ``Listener``: subscribes to events by topic prefix, replays what it missed with ``events.list``,
  dedupes by ``seq``, dispatches to ``@listener.on(...)`` handlers in order, and runs competing
  workers (``@listener.job_handler(...)``) on ``jobs.claim``. A job taken by ``ack`` or ``claim``
  has its lease renewed by a heartbeat thread every ``leaseSeconds / 3`` until it ends.

    listener = Listener("exports")

    @listener.on("job:ready", job="workbook:export")
    def export(event: Event) -> None:
        event.ack(progress=0, info="Starting")
        event.complete(outcome={"message": "Exported"})

    listener.run()
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional

import zmq

DEFAULT_COMMANDS = "tcp://127.0.0.1:7401"
DEFAULT_EVENTS = "tcp://127.0.0.1:7400"
DEFAULT_LEASE_SECONDS = 30.0
HEARTBEAT_TOPIC = "broker:heartbeat"
TERMINAL_STATUSES = frozenset({"complete", "failed", "canceled"})

Json = dict[str, Any]
log = logging.getLogger("jobwire")


def default_commands() -> str:
    return os.environ.get("JOBWIRE_COMMANDS", DEFAULT_COMMANDS)


def default_events() -> str:
    return os.environ.get("JOBWIRE_EVENTS", DEFAULT_EVENTS)


def utc_iso(timestamp: float) -> str:
    """ISO 8601 UTC with milliseconds, the protocol's timestamp format."""
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp))
    return f"{whole}.{int(timestamp * 1000) % 1000:03d}Z"


# --------------------------------------------------------------------------------------------
# Errors


class JobwireError(Exception):
    """A JSON-RPC error reply. ``type`` is ``data.type`` (``not_found``, ``conflict``, ...)."""

    NOT_FOUND = -32001
    INVALID_TRANSITION = -32002
    CONFLICT = -32003
    LEASE_EXPIRED = -32004
    GONE = -32005
    UNAUTHORIZED = -32006
    OVERLOADED = -32007

    def __init__(self, code: int, message: str, data: Optional[Json] = None) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message
        self.data: Json = data or {}
        self.type: Optional[str] = self.data.get("type")

    @classmethod
    def from_reply(cls, error: Json) -> "JobwireError":
        return cls(int(error.get("code", -32603)), str(error.get("message", "")), error.get("data"))


class JobwireTimeout(TimeoutError):
    """The broker did not answer within the client's timeout."""


# --------------------------------------------------------------------------------------------
# Topics and globs


def glob_match(pattern: str, value: str, separator: str = ":") -> bool:
    """Flatfile's glob rules: ``*`` within one segment, ``**`` across segments, ``?`` one char."""
    return _glob_regex(pattern, separator).fullmatch(value) is not None


def _glob_regex(pattern: str, separator: str) -> re.Pattern[str]:
    sep = re.escape(separator)
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith(separator + "**", i) and (i + 3 == len(pattern) or pattern[i + 3] == separator):
            out.append(f"(?:{sep}.*)?")  # "a:**" also matches "a"
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append(f"[^{sep}]*")
            i += 1
        elif pattern[i] == "?":
            out.append(f"[^{sep}]")
            i += 1
        elif pattern[i] == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def _literal_prefix(pattern: str) -> tuple[str, bool]:
    """The part of a glob before its first wildcard, and whether the whole pattern is literal."""
    match = re.search(r"[*?\\]", pattern)
    return (pattern, True) if match is None else (pattern[: match.start()], False)


def subscription_prefix(topic: str, job: Optional[str] = None) -> str:
    """The ZeroMQ prefix that receives every event ``topic`` (a glob) and ``job`` (a glob) can match.

    ``("job:ready", "workbook:export")`` gives ``job:ready/workbook:export/``; ``("job:*",)``
    gives ``job:``; patterns that are not prefixes subscribe wider and are filtered in the client.
    """
    topic_prefix, topic_literal = _literal_prefix(topic)
    if not topic_literal:
        return topic_prefix
    if job is None:
        return topic + "/"
    job_prefix, job_literal = _literal_prefix(job)
    return f"{topic}/{job_prefix}" + ("/" if job_literal else "")


def split_topic_frame(frame: bytes) -> tuple[str, str]:
    """``b"job:ready/workbook:export/"`` -> ``("job:ready", "workbook:export")``."""
    topic, _, rest = frame.decode("utf-8").partition("/")
    return topic, rest[:-1] if rest.endswith("/") else rest


# --------------------------------------------------------------------------------------------
# Client


class Client:
    """JSON-RPC commands over DEALER, one request in flight at a time (thread-safe).

    Args:
        commands: the broker's commands endpoint.
        listener_id: sent as ``listenerId`` by the job verbs unless a call names another.
        timeout: seconds to wait for a reply (``jobs.claim`` adds its ``wait``).
    """

    def __init__(
        self,
        commands: Optional[str] = None,
        *,
        listener_id: Optional[str] = None,
        timeout: float = 10.0,
        context: Optional[zmq.Context[Any]] = None,
    ) -> None:
        self.endpoint = commands or default_commands()
        self.listener_id = listener_id
        self.timeout = timeout
        self._context = context or zmq.Context.instance()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.connect(self.endpoint)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._socket.close(linger=0)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def call(self, method: str, params: Optional[Mapping[str, Any]] = None, *, timeout: Optional[float] = None) -> Any:
        """Sends one request and returns its ``result``; raises ``JobwireError`` or ``JobwireTimeout``."""
        request_id = next(self._ids)
        request: Json = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            request["params"] = {k: v for k, v in params.items() if v is not None}
        limit = self.timeout if timeout is None else timeout
        with self._lock:
            self._socket.send_multipart([b"", json.dumps(request).encode("utf-8")])
            deadline = time.monotonic() + limit
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._socket.poll(int(remaining * 1000), zmq.POLLIN):
                    raise JobwireTimeout(f"{method}: no reply from {self.endpoint} within {limit:g} s")
                reply = json.loads(self._socket.recv_multipart()[-1])
                if reply.get("id") != request_id:
                    continue  # a late reply to a call that timed out
                if "error" in reply:
                    raise JobwireError.from_reply(reply["error"])
                return reply.get("result")

    def _job_call(self, method: str, job_id: str, listener_id: Optional[str] = None, **params: Any) -> Json:
        return self.call(method, {"jobId": job_id, "listenerId": listener_id or self.listener_id, **params})

    # Jobs -----------------------------------------------------------------------------------

    def create(self, type: str, operation: str, source: str, **fields: Any) -> Json:
        return self.call("jobs.create", {"type": type, "operation": operation, "source": source, **fields})

    def get(self, job_id: str) -> Json:
        return self.call("jobs.get", {"jobId": job_id})

    def list(self, **filters: Any) -> Json:
        return self.call("jobs.list", filters)

    def list_all(self, **filters: Any) -> Iterator[Json]:
        """Every job matching ``filters``, page after page."""
        for page in itertools.count(1):
            reply = self.list(**filters, pageNumber=page, pageSize=100)
            yield from reply["data"]
            if page >= reply["pagination"]["pageCount"]:
                return

    def update(self, job_id: str, *, listener_id: Optional[str] = None, **fields: Any) -> Json:
        return self._job_call("jobs.update", job_id, listener_id, **fields)

    def execute(self, job_id: str) -> Json:
        return self.call("jobs.execute", {"jobId": job_id})

    def ack(self, job_id: str, *, listener_id: Optional[str] = None, **details: Any) -> Json:
        return self._job_call("jobs.ack", job_id, listener_id, **details)

    def claim(self, jobs: Iterable[str], *, wait: float = 0, listener_id: Optional[str] = None, info: Optional[str] = None) -> Optional[Json]:
        """The job the broker handed this claimer (now ``executing``), or None after ``wait`` s."""
        params = {"listenerId": listener_id or self.listener_id, "jobs": list(jobs), "wait": wait, "info": info}
        return self.call("jobs.claim", params, timeout=self.timeout + wait)["job"]

    def complete(self, job_id: str, outcome: Optional[Json] = None, *, info: Optional[str] = None, listener_id: Optional[str] = None) -> Json:
        return self._job_call("jobs.complete", job_id, listener_id, outcome=outcome, info=info)

    def fail(self, job_id: str, outcome: Optional[Json] = None, *, info: Optional[str] = None, listener_id: Optional[str] = None) -> Json:
        return self._job_call("jobs.fail", job_id, listener_id, outcome=outcome, info=info)

    def release(self, job_id: str, *, info: Optional[str] = None, listener_id: Optional[str] = None) -> Json:
        return self._job_call("jobs.release", job_id, listener_id, info=info)

    def cancel(self, job_id: str, *, info: Optional[str] = None) -> Json:
        return self.call("jobs.cancel", {"jobId": job_id, "info": info})

    def retry(self, job_id: str) -> Json:
        return self.call("jobs.retry", {"jobId": job_id})

    def ack_outcome(self, job_id: str) -> Json:
        return self.call("jobs.ackOutcome", {"jobId": job_id})

    def delete(self, job_id: str) -> Json:
        return self.call("jobs.delete", {"jobId": job_id})

    # Events and broker ----------------------------------------------------------------------

    def events_list(self, since: int, topics: Optional[list[str]] = None, limit: Optional[int] = None) -> Json:
        return self.call("events.list", {"since": since, "topics": topics, "limit": limit})

    def broker_info(self) -> Json:
        return self.call("broker.info")


# --------------------------------------------------------------------------------------------
# Leases


class LeaseKeeper:
    """Renews the leases of running jobs with ``jobs.ack`` every ``leaseSeconds / 3``."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._due: dict[str, tuple[float, float]] = {}  # jobId -> (next renewal, period)
        self._changed = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="jobwire-leases", daemon=True)
        self._thread.start()

    def hold(self, job: Json) -> None:
        period = float(job.get("leaseSeconds") or DEFAULT_LEASE_SECONDS) / 3
        with self._changed:
            self._due[job["id"]] = (time.monotonic() + period, period)
            self._changed.notify()

    def drop(self, job_id: str) -> None:
        with self._changed:
            self._due.pop(job_id, None)

    def stop(self) -> None:
        with self._changed:
            self._stopped = True
            self._changed.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._stopped:
                    now = time.monotonic()
                    due = [job_id for job_id, (at, _) in self._due.items() if at <= now]
                    if due:
                        break
                    next_at = min((at for at, _ in self._due.values()), default=now + 3600)
                    self._changed.wait(next_at - now)
                if self._stopped:
                    return
                for job_id in due:
                    _, period = self._due[job_id]
                    self._due[job_id] = (now + period, period)
            for job_id in due:
                try:
                    self._client.ack(job_id)
                except (JobwireError, JobwireTimeout) as error:
                    log.warning("lease renewal of %s failed: %s", job_id, error)
                    if isinstance(error, JobwireError):
                        self.drop(job_id)  # ended, expired or taken: nothing left to renew


# --------------------------------------------------------------------------------------------
# Events and the listener


@dataclass
class Event:
    """One event as a handler sees it, with the job verbs bound to its job."""

    topic: str
    envelope: Json
    client: Client
    leases: LeaseKeeper
    replayed: bool = False

    @property
    def seq(self) -> Optional[int]:
        return self.envelope.get("seq")

    @property
    def payload(self) -> Json:
        return self.envelope.get("payload") or {}

    @property
    def context(self) -> Json:
        return self.envelope.get("context") or {}

    @property
    def job_id(self) -> str:
        return self.context["jobId"]

    def get_job(self) -> Json:
        return self.client.get(self.job_id)

    def ack(self, *, progress: Optional[float] = None, info: Optional[str] = None, estimated_completion_at: Optional[str] = None) -> Json:
        """Takes the job (first ack wins) and keeps its lease renewed until it ends."""
        job = self.client.ack(self.job_id, progress=progress, info=info, estimatedCompletionAt=estimated_completion_at)
        self.leases.hold(job)
        return job

    def update(self, *, progress: Optional[float] = None, info: Optional[str] = None, estimated_completion_at: Optional[str] = None, metadata: Optional[Json] = None) -> Json:
        return self.client.update(self.job_id, progress=progress, info=info, estimatedCompletionAt=estimated_completion_at, metadata=metadata)

    def complete(self, outcome: Optional[Json] = None, *, info: Optional[str] = None) -> Json:
        try:
            return self.client.complete(self.job_id, outcome, info=info)
        finally:
            self.leases.drop(self.job_id)

    def fail(self, outcome: Optional[Json] = None, *, info: Optional[str] = None) -> Json:
        try:
            return self.client.fail(self.job_id, outcome, info=info)
        finally:
            self.leases.drop(self.job_id)

    def release(self, *, info: Optional[str] = None) -> Json:
        try:
            return self.client.release(self.job_id, info=info)
        finally:
            self.leases.drop(self.job_id)


Handler = Callable[[Event], None]
Tick = Callable[..., Json]
JobHandler = Callable[[Event, Tick], Optional[Json]]


@dataclass
class _Route:
    topic: str
    filters: dict[str, Any]
    handler: Handler

    @property
    def prefix(self) -> str:
        job = self.filters.get("job")
        return subscription_prefix(self.topic, job if isinstance(job, str) else None)

    def matches(self, topic: str, envelope: Json) -> bool:
        return glob_match(self.topic, topic) and all(_filter_matches(envelope, k, v) for k, v in self.filters.items())


def _filter_matches(envelope: Json, key: str, expected: Any) -> bool:
    """Flatfile-style filter: a plain key matches the same key in payload, context or the envelope."""
    if "." in key:
        value: Any = envelope
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        candidates = [value]
    else:
        candidates = [scope.get(key) for scope in (envelope.get("payload") or {}, envelope.get("context") or {}, envelope)]
    options = expected if isinstance(expected, list) else [expected]
    for value in candidates:
        for option in options:
            if isinstance(option, str) and value is not None and glob_match(option, str(value)):
                return True
            if not isinstance(option, str) and value == option:
                return True
    return False


@dataclass
class _Cursor:
    epoch: Optional[str] = None
    # Every event up to this seq has been seen, by replay; None before the first catch-up. A live event
    # does not move it: events dropped before it (a full high-water mark) would be skipped for good.
    seq: Optional[int] = None
    # Seqs above `seq` already dispatched live.
    seen: set = field(default_factory=set)
    last_event_at: float = field(default_factory=time.monotonic)
    last_replay_at: float = 0.0


class Listener:
    """Event handlers and competing job workers against one broker.

    Args:
        name: the ``listenerId`` this process acks and claims with.
        quiet_seconds: replay when heartbeats moved on but no matching event came for this long.
    """

    def __init__(
        self,
        name: str,
        *,
        commands: Optional[str] = None,
        events: Optional[str] = None,
        quiet_seconds: float = 5.0,
        context: Optional[zmq.Context[Any]] = None,
    ) -> None:
        self.name = name
        self.commands = commands or default_commands()
        self.events = events or default_events()
        self.quiet_seconds = quiet_seconds
        self._context = context or zmq.Context.instance()
        self._routes: list[_Route] = []
        self._workers: list[tuple[list[str], JobHandler]] = []
        self._stop = threading.Event()
        self._cursor = _Cursor()
        self._dispatched_ready: set[tuple[str, int]] = set()  # (jobId, attempt) already handed to handlers

    # Registration ----------------------------------------------------------------------------

    def on(self, topic: str, **filters: Any) -> Callable[[Handler], Handler]:
        """``@listener.on("job:ready", job="workbook:export")``; every matching event, in order."""

        def register(handler: Handler) -> Handler:
            self._routes.append(_Route(topic, filters, handler))
            return handler

        return register

    def job_handler(self, *jobs: str) -> Callable[[JobHandler], JobHandler]:
        """``@listener.job_handler("sheet:validate")``: claims jobs one at a time with ``jobs.claim``.

        The handler gets the event and ``tick(progress, info=None, estimated_completion_at=None)``;
        its return value is the completion details ``{outcome, info}``; raising fails the job.
        """

        def register(handler: JobHandler) -> JobHandler:
            self._workers.append((list(jobs), handler))
            return handler

        return register

    def stop(self) -> None:
        self._stop.set()

    # Running ---------------------------------------------------------------------------------

    def run(self) -> None:
        """Runs until ``stop()`` (or KeyboardInterrupt)."""
        client = Client(self.commands, listener_id=self.name, context=self._context)
        leases = LeaseKeeper(client)
        workers = [
            threading.Thread(target=self._work, args=(jobs, handler, leases), name=f"jobwire-claim-{i}", daemon=True)
            for i, (jobs, handler) in enumerate(self._workers)
        ]
        for worker in workers:
            worker.start()
        try:
            if self._routes:
                self._listen(client, leases)
            else:
                self._stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            self._stop.set()
            for worker in workers:
                worker.join()
            leases.stop()
            client.close()

    def _listen(self, client: Client, leases: LeaseKeeper) -> None:
        sub = self._context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.connect(self.events)
        for prefix in sorted({route.prefix for route in self._routes}):
            sub.setsockopt(zmq.SUBSCRIBE, prefix.encode("utf-8"))
        # Subscribed last: the first heartbeat proves the broker has every subscription above.
        sub.setsockopt(zmq.SUBSCRIBE, f"{HEARTBEAT_TOPIC}/".encode("utf-8"))
        try:
            live = False
            while not self._stop.is_set():
                if not sub.poll(500, zmq.POLLIN):
                    continue
                topic_frame, body = sub.recv_multipart()[:2]
                topic, _ = split_topic_frame(topic_frame)
                envelope = json.loads(body)
                if topic == HEARTBEAT_TOPIC:
                    live = self._on_heartbeat(envelope, live, client, leases)
                elif live:
                    self._on_live_event(topic, envelope, client, leases)
        finally:
            sub.close(linger=0)

    def _on_heartbeat(self, heartbeat: Json, live: bool, client: Client, leases: LeaseKeeper) -> bool:
        payload = heartbeat.get("payload") or {}
        cursor = self._cursor
        if not live or payload.get("epoch") != cursor.epoch:
            try:
                self._catch_up(client, leases)
            except (JobwireError, JobwireTimeout) as error:
                log.warning("catching up failed, retrying on the next heartbeat: %s", error)
                return False
            if not live:
                log.info("listener %s live at seq %s (epoch %s)", self.name, self._cursor.seq, self._cursor.epoch)
            return True
        now = time.monotonic()
        # Behind the broker: replay when the stream has been quiet, and at least every 10 s under steady
        # load (a stream that never pauses could otherwise hide a gap forever).
        quiet = now - max(cursor.last_event_at, cursor.last_replay_at) >= self.quiet_seconds
        stale = now - cursor.last_replay_at >= 10.0
        if (quiet or stale) and cursor.seq is not None and payload.get("seq", 0) > cursor.seq:
            self._replay(client, leases)
        return True

    def _catch_up(self, client: Client, leases: LeaseKeeper) -> None:
        """On connect and on a new epoch: replay from the cursor, or start at the broker's seq."""
        info = client.broker_info()
        if self._cursor.epoch is not None and info["epoch"] != self._cursor.epoch:
            log.info("new broker epoch %s: starting over", info["epoch"])
            self._cursor = _Cursor(epoch=info["epoch"], seq=0)
            self._dispatched_ready.clear()
        if self._cursor.seq is None:
            self._cursor = _Cursor(epoch=info["epoch"], seq=int(info["seq"]))
            self._dispatch_waiting_jobs(client, leases)
        else:
            self._replay(client, leases)

    def _replay(self, client: Client, leases: LeaseKeeper) -> None:
        cursor = self._cursor
        topics = sorted({route.topic for route in self._routes})
        while True:
            reply = client.events_list(since=cursor.seq or 0, topics=topics)
            if reply.get("epoch") not in (None, cursor.epoch):
                cursor.epoch, cursor.seq = reply["epoch"], 0
                self._dispatched_ready.clear()
                continue
            for envelope in reply["events"]:
                self._on_live_event(envelope["topic"], envelope, client, leases, replayed=True)
            # The page examined every event up to nextSince; it may stop short of lastSeq (limit, byte
            # budget, bounded scan) with any number of events, none included: go on from nextSince.
            since = cursor.seq or 0
            next_since = int(reply.get("nextSince", reply["events"][-1]["seq"] if reply["events"] else reply["lastSeq"]))
            cursor.seq = max(since, next_since)
            cursor.seen = {seq for seq in cursor.seen if seq > cursor.seq}
            if next_since >= int(reply["lastSeq"]) or next_since <= since:
                break
        cursor.last_replay_at = time.monotonic()

    def _dispatch_waiting_jobs(self, client: Client, leases: LeaseKeeper) -> None:
        """A listener with no cursor finds the jobs already ready for it (section 5)."""
        if not any(glob_match(route.topic, "job:ready") for route in self._routes):
            return
        for job in client.list_all(status="ready"):
            envelope = {
                "topic": "job:ready",
                "domain": "job",
                "context": {"jobId": job["id"]},
                "payload": {
                    "job": f"{job['type']}:{job['operation']}",
                    "domain": job["type"],
                    "operation": job["operation"],
                    "status": job["status"],
                    "isPart": job.get("parentId") is not None,
                    "info": job.get("info"),
                    "input": job.get("input"),
                    "attempt": job.get("attempt"),
                },
            }
            self._dispatch("job:ready", envelope, client, leases, replayed=True)

    def _on_live_event(self, topic: str, envelope: Json, client: Client, leases: LeaseKeeper, replayed: bool = False) -> None:
        cursor = self._cursor
        seq = envelope.get("seq")
        if envelope.get("epoch") not in (None, cursor.epoch):
            self._catch_up(client, leases)
            return
        if seq is not None and ((cursor.seq is not None and seq <= cursor.seq) or seq in cursor.seen):
            return  # already handled (live and replay overlap)
        if seq is not None and not replayed:
            cursor.seen.add(seq)
        cursor.last_event_at = time.monotonic()
        self._dispatch(topic, envelope, client, leases, replayed)

    def _dispatch(self, topic: str, envelope: Json, client: Client, leases: LeaseKeeper, replayed: bool) -> None:
        if topic == "job:ready":
            key = (envelope["context"]["jobId"], int(envelope["payload"].get("attempt") or 0))
            if key in self._dispatched_ready:
                return  # the same ready job found both by jobs.list and by its event
            self._dispatched_ready.add(key)
        event = Event(topic, envelope, client, leases, replayed)
        for route in self._routes:
            if route.matches(topic, envelope):
                try:
                    route.handler(event)
                except JobwireError as error:
                    log.info("%s on %s: %s", route.handler.__name__, topic, error)
                except Exception:
                    log.exception("handler %s failed on %s", route.handler.__name__, topic)

    def _work(self, jobs: list[str], handler: JobHandler, leases: LeaseKeeper) -> None:
        """One competing worker: claim, renew, run, complete or fail; the broker queues fairly."""
        with Client(self.commands, listener_id=self.name, context=self._context) as claimer:
            while not self._stop.is_set():
                try:
                    job = claimer.claim(jobs, wait=5)
                except (JobwireError, JobwireTimeout) as error:
                    log.warning("jobs.claim failed: %s", error)
                    self._stop.wait(1)
                    continue
                if job is None:
                    continue
                leases.hold(job)
                envelope = {"topic": "job:ready", "domain": "job", "context": {"jobId": job["id"]},
                            "payload": {"job": f"{job['type']}:{job['operation']}", "domain": job["type"],
                                        "operation": job["operation"], "status": job["status"],
                                        "input": job.get("input"), "attempt": job.get("attempt")}}
                event = Event("job:ready", envelope, claimer, leases)

                def tick(progress: float, info: Optional[str] = None, estimated_completion_at: Optional[str] = None) -> Json:
                    return event.update(progress=progress, info=info, estimated_completion_at=estimated_completion_at)

                try:
                    details = handler(event, tick) or {"outcome": {"message": "Job complete"}}
                    event.complete(details.get("outcome"), info=details.get("info"))
                except JobwireError as error:
                    log.warning("job %s: %s", job["id"], error)
                    leases.drop(job["id"])
                except Exception as error:  # the handler's failure is the job's
                    log.exception("job %s failed", job["id"])
                    try:
                        event.fail({"acknowledge": True, "message": str(error)}, info=str(error))
                    except JobwireError as fail_error:
                        log.warning("could not fail %s: %s", job["id"], fail_error)

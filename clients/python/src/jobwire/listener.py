"""``Listener``: event handlers and competing job workers against one broker, as the Swift SDK's.

    listener = Listener(name="exports")

    @listener.on("job:ready", job="workbook:export")
    def export(event: ListenerEvent) -> None:
        event.ack(progress=0, info="Starting")
        event.complete(Outcome(message="Exported"))

    @listener.job_handler("sheet:validate")
    def validate(event: ListenerEvent) -> Outcome:
        event.tick(50, "Half way")
        return Outcome(message="Valid")

    listener.run()      # until listener.stop(): then a graceful shutdown

Handlers are plain functions run on threads, at most ``concurrency`` at once: the handlers of one event
run in order, events and jobs run side by side. An ``async def`` handler runs in an event loop of its own
on its thread (the event's verbs are blocking calls there too). The listener never misses an event and never runs one
twice: it subscribes first (heartbeats last), then replays ``events.list`` from its cursor, drops events
at or below what it handled, replays again when heartbeats show it fell behind, and starts over on a new
epoch. Job handlers take jobs with ``jobs.claim`` (each job goes to exactly one listener instance).

Given lists of brokers (an active one and its standbys), it follows the active one: when heartbeats come
from a new broker process, the requests waiting for the former are sent again, claims are made anew and
the events missed meanwhile are replayed from the cursor (the new active broker continues the seq).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, TypeVar, Union

import zmq

from .client import JobsClient, Timestamp, default_commands, default_events, new_instance_id
from .connection import parse_endpoints
from .errors import ConnectionClosed, JobwireError, ProtocolError, RetryableError, TransportError
from .glob import HEARTBEAT_TOPIC, glob_match, minimal_prefixes, split_topic_frame, subscription_prefix
from .leases import LeaseKeeper
from .types import Event, Job, Json, Outcome, OutcomeLike, outcome_json

log = logging.getLogger("jobwire")

# How long the job:ready event of a job found ready in the store is expected (and then dropped).
FOUND_READY_SECONDS = 60.0


@dataclass
class JobCompletion:
    """What a job handler may return to complete its job: the outcome (``Job complete`` when None), info."""

    outcome: OutcomeLike = None
    info: Optional[str] = None


class ListenerEvent:
    """An event as a handler sees it, with the verbs of its job.

    ``job`` is set for a job handler (the claimed job). The verbs name the attempt taken by ``ack`` or
    ``claim``, so a call from an attempt that is over changes nothing. ``cancelled`` is set when the job's
    lease is lost (canceled, expired) or the listener's shutdown deadline passed: a long handler may
    check it and stop early.
    """

    def __init__(self, event: Event, *, replayed: bool, client: JobsClient, runtime: Optional["_Runtime"] = None,
                 job: Optional[Job] = None) -> None:
        self.event = event
        self.replayed = replayed
        self.client = client
        self.job = job
        self.cancelled = threading.Event()
        self._runtime = runtime
        self._attempt: Optional[int] = job.attempt if job is not None else None
        self._ended = False

    # The event ------------------------------------------------------------------------------------

    @property
    def topic(self) -> str:
        return self.event.topic

    @property
    def envelope(self) -> Json:
        """The envelope as received (JSON)."""
        return self.event.raw

    @property
    def seq(self) -> Optional[int]:
        return self.event.seq

    @property
    def payload(self) -> Json:
        return self.event.payload

    @property
    def context(self) -> dict[str, Any]:
        return self.event.context

    @property
    def job_id(self) -> str:
        job_id = self.event.job_id
        if job_id is None:
            raise ProtocolError(ProtocolError.INVALID_PARAMS, f"the {self.topic} event has no job", {"field": "jobId"})
        return job_id

    @property
    def job_name(self) -> Optional[str]:
        return self.event.job_name

    @property
    def input(self) -> Any:
        return self.job.input if self.job is not None else self.payload.get("input")

    @property
    def attempt(self) -> Optional[int]:
        """The attempt the verbs work on: the one taken, else the one a ``job:ready`` event announced."""
        if self._attempt is not None:
            return self._attempt
        return self.event.attempt if self.topic == "job:ready" else None

    # The job's verbs -------------------------------------------------------------------------------

    def get_job(self) -> Job:
        return self.client.get(self.job_id)

    def ack(self, progress: Optional[float] = None, info: Optional[str] = None,
            estimated_completion_at: Timestamp = None) -> Job:
        """Takes the job (``jobs.ack``: the first ack wins; ``conflict`` if another instance has it); its
        lease is renewed from then on until the job is completed, failed or released through this event."""
        job = self.client.ack(self.job_id, progress=progress, info=info,
                              estimated_completion_at=estimated_completion_at, attempt=self._attempt)
        self._attempt = job.attempt
        self.job = job
        if self._runtime is not None:
            self._runtime.hold(job, self)
        return job

    def update(self, progress: Optional[float] = None, info: Optional[str] = None,
               estimated_completion_at: Timestamp = None, metadata: Any = None) -> Job:
        """``jobs.update`` of the job's progress, info, estimate or metadata; renews the lease too."""
        return self.client.update(self.job_id, progress=progress, info=info,
                                  estimated_completion_at=estimated_completion_at, metadata=metadata,
                                  attempt=self._attempt)

    def tick(self, progress: float, info: Optional[str] = None, estimated_completion_at: Timestamp = None) -> Job:
        """Flatfile's ``tick(progress, info)``: ``update`` of progress (0-100) and info."""
        return self.update(progress, info, estimated_completion_at)

    def complete(self, outcome: OutcomeLike = None, info: Optional[str] = None) -> Job:
        return self._end(lambda: self.client.complete(self.job_id, outcome, info=info, attempt=self._attempt))

    def fail(self, outcome: OutcomeLike = None, info: Optional[str] = None, retry: bool = False) -> Job:
        """``jobs.fail``; with ``retry`` the job runs again after its backoff, until its ``maxAttempts``."""
        return self._end(lambda: self.client.fail(self.job_id, outcome, info=info, attempt=self._attempt,
                                                  retry=retry))

    def release(self, info: Optional[str] = None) -> Job:
        """Hands the job back (``ready`` again, attempt + 1) for another instance to run."""
        return self._end(lambda: self.client.release(self.job_id, info=info, attempt=self._attempt))

    def split(self, parts: Union[int, Sequence[Mapping[str, Any]]], run_in_parallel: bool = True) -> list[Job]:
        """``jobs.split`` of this (executing) job into parts."""
        return self.client.split(self.job_id, parts, run_in_parallel=run_in_parallel, attempt=self._attempt)

    def _end(self, verb: Callable[[], Job]) -> Job:
        if self._runtime is not None:
            self._runtime.leases.drop(self.job_id)
        self._ended = True
        return verb()


Handler = Callable[[ListenerEvent], Any]
JobHandler = Callable[..., Any]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class _Route:
    topic: str
    filters: dict[str, Any]
    handler: Handler

    @property
    def prefix(self) -> str:
        job = self.filters.get("job")
        return subscription_prefix(self.topic, job if isinstance(job, str) else None)

    def matches(self, event: Event) -> bool:
        return glob_match(self.topic, event.topic) and all(
            _filter_matches(event.raw, k, v) for k, v in self.filters.items())


def _filter_matches(envelope: Json, key: str, expected: Any) -> bool:
    """Flatfile's filter: a plain key matches the same key in payload, context or the envelope; a dotted
    key is a path in the envelope; a string is a glob; a list matches any of its items."""
    if "." in key:
        value: Any = envelope
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        candidates = [value]
    else:
        candidates = [scope.get(key) for scope in (envelope.get("payload") or {}, envelope.get("context") or {},
                                                   envelope)]
    options = expected if isinstance(expected, list) else [expected]
    for value in candidates:
        for option in options:
            if isinstance(option, str) and value is not None and glob_match(option, str(value)):
                return True
            if not isinstance(option, str) and value == option:
                return True
    return False


@dataclass
class _Worker:
    jobs: list[str]
    handler: JobHandler
    concurrency: Optional[int]
    takes_tick: bool


@dataclass
class _Cursor:
    epoch: Optional[str] = None
    # Every event up to this seq was seen by replay; None before the first catch-up. A live event does not
    # move it (events dropped before it, past a high-water mark, would be skipped for good).
    seq: Optional[int] = None
    # Seqs above ``seq`` already dispatched live.
    seen: set[int] = field(default_factory=set)
    last_event_at: float = field(default_factory=time.monotonic)
    last_replay_at: float = 0.0


class Listener:
    """Event handlers (``on``) and job handlers (``job_handler``) against one broker.

    Args:
        name: the ``listenerId``: a name for people; copies of a listener share it.
        commands, events: the broker's endpoints (``JOBWIRE_COMMANDS`` / ``JOBWIRE_EVENTS`` by default), each
            maybe a comma-separated list of the brokers that may serve (``ValueError`` names a bad one).
        concurrency: how many handlers run at once (events and jobs together).
        grace_seconds: on shutdown, how long running handlers may finish before their jobs are released.
        claim_wait: how long one ``jobs.claim`` waits in the broker (at most 60 s).
        quiet_seconds: replay when heartbeats moved past the cursor and no event came for this long.
        heartbeat_timeout: the broker is taken for lost after this long without a heartbeat.
        instance_id: this process's ``instanceId`` (one is made up: ``<host>-<pid>-<random>``).
    """

    def __init__(self, name: str, *, commands: Optional[str] = None, events: Optional[str] = None,
                 concurrency: int = 8, grace_seconds: float = 10.0, claim_wait: float = 20.0,
                 quiet_seconds: float = 2.0, heartbeat_timeout: float = 3.0, request_timeout: float = 10.0,
                 instance_id: Optional[str] = None, context: Optional[zmq.Context[Any]] = None) -> None:
        self.name = name
        self.commands = commands or default_commands()
        self.events = events or default_events()
        parse_endpoints(self.commands)  # a bad endpoint is named now rather than when the listener runs
        parse_endpoints(self.events)
        self.concurrency = max(1, concurrency)
        self.grace_seconds = grace_seconds
        self.claim_wait = claim_wait
        self.quiet_seconds = quiet_seconds
        self.heartbeat_timeout = heartbeat_timeout
        self.request_timeout = request_timeout
        self.instance_id = instance_id or new_instance_id()
        self._context = context or zmq.Context.instance()
        self._routes: list[_Route] = []
        self._workers: list[_Worker] = []
        self._stop = threading.Event()
        self._cursor = _Cursor()
        # (jobId, attempt) of the jobs found ready in the store, and when: their job:ready event may come next.
        self._found_ready: OrderedDict[tuple[str, int], float] = OrderedDict()
        self._runtime: Optional[_Runtime] = None

    # Registration ----------------------------------------------------------------------------------

    def on(self, topic: str, **filters: Any) -> Callable[[F], F]:
        """``@listener.on("job:ready", job="workbook:export")``: every matching event (topic and filters are
        Flatfile globs), once."""

        def register(handler: F) -> F:
            self._routes.append(_Route(topic, filters, handler))
            return handler

        return register

    def job_handler(self, *jobs: str, concurrency: Optional[int] = None) -> Callable[[F], F]:
        """``@listener.job_handler("sheet:validate")``: runs each job of these names (globs) in exactly one
        listener instance, taken with ``jobs.claim``.

        The handler gets the event (``handler(event)``, or ``handler(event, tick)``). What it returns
        completes the job: None (``Job complete``), an ``Outcome``, a message, a ``JobCompletion`` or
        ``{"outcome": ..., "info": ...}``. Raising fails the job with ``{acknowledge: true, message}``,
        unless the broker was lost or the listener is shutting down: then the job is released.
        """

        def register(handler: F) -> F:
            self._workers.append(_Worker(list(jobs), handler, concurrency, _takes_two(handler)))
            return handler

        return register

    # Running ---------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Starts a graceful shutdown: no new events or jobs, running handlers finish within the grace period."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        """Runs until ``stop()`` (or KeyboardInterrupt), then shuts down gracefully and returns.

        Raises ``ValueError`` naming a malformed endpoint of ``commands`` or ``events``.
        """
        parse_endpoints(self.events)
        client = JobsClient(self.commands, listener_id=self.name, instance_id=self.instance_id,
                            timeout=self.request_timeout, context=self._context)
        leases = LeaseKeeper(client)
        runtime = self._runtime = _Runtime(self, client, leases)
        threads = [threading.Thread(target=self._listen, args=(client, leases), name="jobwire-events", daemon=True)]
        threads += [threading.Thread(target=runtime.claim_loop, args=(worker,), name=f"jobwire-claim-{i}", daemon=True)
                    for i, worker in enumerate(self._workers)]
        for thread in threads:
            thread.start()
        log.info("listener %s running (instance %s, commands %s, events %s)", self.name, self.instance_id,
                 self.commands, self.events)
        try:
            while not self._stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            self._stop.set()
        log.info("listener %s stopping: no new events or jobs", self.name)
        runtime.interrupt_claims()
        for thread in threads:
            thread.join()
        if not runtime.wait_idle(self.grace_seconds):
            log.info("shutdown deadline reached: releasing the jobs of %d running handlers", runtime.running())
            runtime.cancel_all()
        released = leases.release_all("listener shutting down")
        leases.stop()
        client.close()
        log.info("listener %s stopped%s", self.name, f" (released {len(released)} jobs)" if released else "")

    # Events: subscribe, then replay ----------------------------------------------------------------

    def _subscriptions(self) -> list[str]:
        return minimal_prefixes([route.prefix for route in self._routes]) + [f"{HEARTBEAT_TOPIC}/"]

    def _listen(self, client: JobsClient, leases: LeaseKeeper) -> None:
        sub = self._context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        for endpoint in parse_endpoints(self.events):  # only the active broker binds; it may change
            sub.connect(endpoint)
        # Heartbeats last: the first heartbeat proves the broker applied every subscription before it.
        for prefix in self._subscriptions():
            sub.setsockopt(zmq.SUBSCRIBE, prefix.encode("utf-8"))
        live = False
        caught_up = False  # a catch-up reached a broker once: a later one follows a restart or a takeover
        started_at: Optional[str] = None
        last_heartbeat = time.monotonic()
        warned = False
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if not sub.poll(250, zmq.POLLIN):
                    silent = now - last_heartbeat
                    if live and silent > self.heartbeat_timeout:
                        live = False
                        log.warning("no heartbeat from %s for %.0f s: the broker is lost; catching up when it is back",
                                    self.events, silent)
                    elif not warned and silent > max(5.0, self.heartbeat_timeout):
                        warned = True
                        log.warning("no heartbeat from %s for %.0f s: is the broker running there?",
                                    self.events, silent)
                    continue
                topic_frame, body = sub.recv_multipart()[:2]
                topic, _ = split_topic_frame(topic_frame)
                envelope = json.loads(body)
                if topic == HEARTBEAT_TOPIC:
                    last_heartbeat, warned = now, False
                    payload = envelope.get("payload") or {}
                    restarted = started_at is not None and payload.get("startedAt") != started_at
                    if restarted:
                        # A restarted broker, or another one that took over, never answers the claims sent
                        # to the one before.
                        live = False
                        if self._runtime is not None:
                            self._runtime.interrupt_claims()
                    if caught_up and (restarted or not live):
                        # The replies to requests in flight are lost with the former process: send them again.
                        resent = client.connection.resend_pending()
                        if resent:
                            log.info("broker heartbeats resumed: sent %d waiting requests again", resent)
                    started_at = payload.get("startedAt")
                    if self._routes:
                        live = self._on_heartbeat(envelope, live, client, leases)
                    else:
                        live = True
                    caught_up = caught_up or live
                elif live:
                    self._on_live_event(topic, envelope, client, leases)
                    # A dispatch waits for a free slot: the wait is not the broker's silence.
                    last_heartbeat += time.monotonic() - now
        finally:
            sub.close(linger=0)

    def _on_heartbeat(self, heartbeat: Json, live: bool, client: JobsClient, leases: LeaseKeeper) -> bool:
        payload = heartbeat.get("payload") or {}
        cursor = self._cursor
        if not live or payload.get("epoch") != cursor.epoch:
            try:
                self._catch_up(client, leases)
            except JobwireError as error:
                log.warning("catching up failed, retrying on the next heartbeat: %s", error)
                return False
            if not live:
                log.info("listener %s live at seq %s (epoch %s)", self.name, self._cursor.seq, self._cursor.epoch)
            return True
        now = time.monotonic()
        # Behind the broker: replay when the stream has been quiet, and at least every 10 s under steady
        # load (a stream that never pauses could otherwise hide a gap for ever).
        quiet = now - max(cursor.last_event_at, cursor.last_replay_at) >= self.quiet_seconds
        stale = now - cursor.last_replay_at >= 10.0
        if (quiet or stale) and cursor.seq is not None and int(payload.get("seq") or 0) > cursor.seq:
            try:
                self._replay(client, leases)
            except JobwireError as error:
                log.warning("replay failed, retrying on a later heartbeat: %s", error)
        return True

    def _catch_up(self, client: JobsClient, leases: LeaseKeeper) -> None:
        """On connect, reconnect and a new epoch: replay from the cursor, or start at the broker's seq."""
        info = client.broker.info()
        if self._cursor.epoch is not None and info.epoch != self._cursor.epoch:
            log.info("new broker epoch %s: starting over", info.epoch)
            self._start_over(info.epoch, 0)
        if self._cursor.seq is None:
            self._cursor = _Cursor(epoch=info.epoch, seq=info.seq)
            self._dispatch_waiting_jobs(client, leases)
            return
        try:
            self._replay(client, leases)
        except ProtocolError as error:
            if error.code != ProtocolError.GONE:
                raise
            log.info("the log no longer has events after seq %s: starting over", self._cursor.seq)
            self._start_over(info.epoch, None)
            self._catch_up(client, leases)

    def _start_over(self, epoch: Optional[str], seq: Optional[int]) -> None:
        self._cursor = _Cursor(epoch=epoch, seq=seq)
        self._found_ready.clear()

    def _replay(self, client: JobsClient, leases: LeaseKeeper) -> None:
        """``events.list`` from the cursor, page after page: a page may stop short (``nextSince`` says
        where to go on), and one that returned ``limit`` events may have more after it."""
        cursor = self._cursor
        topics = sorted({route.topic for route in self._routes})
        limit = 1000
        since = cursor.seq or 0
        while True:
            page = client.events.list(since=since, topics=topics, limit=limit)
            if page.epoch and page.epoch != cursor.epoch:
                log.info("new broker epoch %s in events.list: starting over", page.epoch)
                self._start_over(page.epoch, 0)
                cursor, since = self._cursor, 0
                continue
            for event in page.events:
                self._on_live_event(event.topic, event.raw, client, leases, replayed=True)
                if self._cursor is not cursor:
                    return  # started over meanwhile
            if page.events:
                cursor.seq = max(cursor.seq or 0, page.events[-1].seq or 0)
            if page.next_since is not None and page.next_since > since:
                since = page.next_since
                cursor.seq = max(cursor.seq or 0, since)
                continue
            if page.events and len(page.events) >= limit:
                since = page.events[-1].seq or since
                continue
            cursor.seq = max(cursor.seq or 0, page.last_seq)
            break
        cursor.seen = {seq for seq in cursor.seen if seq > (cursor.seq or 0)}
        cursor.last_replay_at = time.monotonic()

    def _dispatch_waiting_jobs(self, client: JobsClient, leases: LeaseKeeper) -> None:
        """A listener without a cursor finds the jobs already ready for it in the store."""
        if not any(glob_match(route.topic, "job:ready") for route in self._routes):
            return
        for job in client.list_all(status="ready"):
            self._dispatch(Event.ready(job), replayed=True)

    def _on_live_event(self, topic: str, envelope: Json, client: JobsClient, leases: LeaseKeeper,
                       replayed: bool = False) -> None:
        cursor = self._cursor
        event = Event.from_json(envelope, topic)
        if event.epoch is not None and event.epoch != cursor.epoch:
            if not replayed:
                self._catch_up(client, leases)
            return
        seq = event.seq
        if seq is not None and ((cursor.seq is not None and seq <= cursor.seq) or seq in cursor.seen):
            return  # handled already: live and replayed events overlap
        if seq is not None and not replayed:
            cursor.seen.add(seq)
        cursor.last_event_at = time.monotonic()
        self._dispatch(event, replayed)

    def _dispatch(self, event: Event, replayed: bool) -> None:
        routes = [route for route in self._routes if route.matches(event)]
        if not routes or self._runtime is None:
            return
        if event.topic == "job:ready" and event.job_id is not None:
            # A job found ready in the store may also come by its job:ready event: run it once. Only that
            # one event is dropped: a later job:ready of the same attempt (a claim taken back from a client
            # that went away) is new work.
            key, now = (event.job_id, event.attempt or 0), time.monotonic()
            while self._found_ready and next(iter(self._found_ready.values())) < now - FOUND_READY_SECONDS:
                self._found_ready.popitem(last=False)
            if event.seq is None:
                if key in self._found_ready:
                    return
                self._found_ready[key] = now
            elif self._found_ready.pop(key, None) is not None:
                return
        self._runtime.run_event(event, routes, replayed)


def _takes_two(handler: Callable[..., Any]) -> bool:
    """Whether a job handler takes ``(event, tick)`` rather than ``(event)``."""
    try:
        parameters = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return True
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in parameters)


def _finish(result: Any) -> Any:
    """An ``async def`` handler's result: its coroutine run to the end on the handler's own thread."""
    return asyncio.run(result) if inspect.iscoroutine(result) else result


def _completion(result: Any) -> JobCompletion:
    if result is None:
        return JobCompletion()
    if isinstance(result, JobCompletion):
        return result
    if isinstance(result, (Outcome, str)):
        return JobCompletion(result)
    if isinstance(result, Mapping):
        if "outcome" in result or "info" in result:
            return JobCompletion(result.get("outcome"), result.get("info"))
        return JobCompletion(result)
    raise TypeError(f"a job handler returned {type(result).__name__}: return an Outcome, a dict or None")


class _Runtime:
    """The running parts of a listener: handler threads and their slots, held jobs, claims in flight."""

    def __init__(self, listener: Listener, client: JobsClient, leases: LeaseKeeper) -> None:
        self.listener = listener
        self.client = client
        self.leases = leases
        self.slots = threading.Semaphore(listener.concurrency)
        self._lock = threading.Condition()
        self._running: dict[int, ListenerEvent] = {}
        self._ids = 0
        self._released_at_deadline = False

    # Handler threads ------------------------------------------------------------------------------

    def _acquire(self, slots: threading.Semaphore) -> bool:
        """Takes a slot; False (and no slot) once the listener is stopping."""
        while not self.listener.stopping:
            if slots.acquire(timeout=0.2):
                if self.listener.stopping:  # a slot freed by a handler that finished during the shutdown
                    slots.release()
                    return False
                return True
        return False

    def _spawn(self, event: ListenerEvent, body: Callable[[], None], release: Callable[[], None]) -> None:
        with self._lock:
            self._ids += 1
            key = self._ids
            self._running[key] = event

        def run() -> None:
            try:
                body()
            finally:
                release()
                with self._lock:
                    self._running.pop(key, None)
                    self._lock.notify_all()

        threading.Thread(target=run, name=f"jobwire-handler-{key}", daemon=True).start()

    def running(self) -> int:
        with self._lock:
            return len(self._running)

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(remaining)
        return True

    def cancel_all(self) -> None:
        with self._lock:
            self._released_at_deadline = True
            events = list(self._running.values())
        for event in events:
            event.cancelled.set()

    def hold(self, job: Job, event: ListenerEvent) -> None:
        self.leases.hold(job, on_lost=lambda error: event.cancelled.set())

    # Events ---------------------------------------------------------------------------------------

    def run_event(self, event: Event, routes: list[_Route], replayed: bool) -> None:
        if not self._acquire(self.slots):
            return  # shutting down: a ready job stays ready for another instance
        listener_event = ListenerEvent(event, replayed=replayed, client=self.client, runtime=self)

        def body() -> None:
            for route in routes:
                try:
                    _finish(route.handler(listener_event))
                except ProtocolError as error:
                    log.info("%s on %s: %s", route.handler.__name__, event.topic, error)
                    self._end_taken(listener_event, error)
                except Exception as error:
                    log.exception("handler %s failed on %s", route.handler.__name__, event.topic)
                    self._end_taken(listener_event, error)

        self._spawn(listener_event, body, self.slots.release)

    def _end_taken(self, event: ListenerEvent, error: BaseException) -> None:
        """A handler that took its job with ``ack`` and raised: the job fails (or is released, when the
        broker was lost or the listener is shutting down) rather than keep its lease for ever."""
        if event.job is None or event._ended or event.cancelled.is_set():
            return
        self._finish_failed(event, error)

    def _finish_failed(self, event: ListenerEvent, error: BaseException) -> None:
        job_id = event.job_id
        self.leases.drop(job_id)
        try:
            # -32603: the broker could not store a call of the handler (its store was away for a moment): not
            # the job's failure, so it is handed back like a job whose broker was lost.
            store_failure = isinstance(error, ProtocolError) and error.code == -32603
            if isinstance(error, TransportError) or store_failure or self.listener.stopping:
                stopping = self.listener.stopping
                reason = ("listener shutting down" if stopping
                          else f"the broker could not store a call: {error}" if store_failure
                          else f"the listener lost the broker: {error}")
                event.release(reason)
                log.info("released %s: %s", job_id, reason)
            else:
                message = str(error) or type(error).__name__
                # A retryable failure asks for another attempt, after the job's backoff.
                retry = isinstance(error, RetryableError)
                event.fail({"acknowledge": True, "message": message}, message, retry=retry)
                log.info("job %s failed%s: %s", job_id, " (to be retried)" if retry else "", message)
        except JobwireError as end_error:
            log.warning("could not end %s: %s", job_id, end_error)

    # Job handlers -------------------------------------------------------------------------------

    def interrupt_claims(self) -> None:
        """Abandons the claims in flight; a job the broker hands them later is released at once."""
        for request_id, method in self.client.connection.pending_methods():
            if method == "jobs.claim":
                self.client.connection.abandon(request_id)

    def claim_loop(self, worker: _Worker) -> None:
        own = threading.Semaphore(worker.concurrency) if worker.concurrency else None
        listener = self.listener
        while not listener.stopping:
            if own is not None and not self._acquire(own):
                break
            if not self._acquire(self.slots):
                if own is not None:
                    own.release()
                break

            def release_slots() -> None:
                self.slots.release()
                if own is not None:
                    own.release()

            try:
                job = self.client.claim(worker.jobs, wait=listener.claim_wait)
            except JobwireError as error:
                release_slots()
                if listener.stopping:
                    break
                if not isinstance(error, ConnectionClosed):
                    log.warning("jobs.claim failed: %s", error)
                    listener._stop.wait(1)
                continue
            if job is None:
                release_slots()
                continue
            if listener.stopping:
                try:
                    self.client.release(job.id, info="listener shutting down", attempt=job.attempt)
                except JobwireError as error:
                    log.info("could not release %s: %s", job.id, error)
                release_slots()
                break
            event = ListenerEvent(Event.ready(job), replayed=False, client=self.client, runtime=self, job=job)
            self._spawn(event, functools.partial(self._run_job, worker, event), release_slots)

    def _run_job(self, worker: _Worker, event: ListenerEvent) -> None:
        job = event.job
        assert job is not None
        self.hold(job, event)
        log.debug("running %s (%s, attempt %s)", job.id, job.name, job.attempt)
        try:
            result = _finish(worker.handler(event, event.tick) if worker.takes_tick else worker.handler(event))
            completion = _completion(result)
        except Exception as error:
            if event._ended:
                log.info("job %s: its handler raised after ending it: %s", job.id, error)
            elif event.cancelled.is_set():
                log.info("job %s stopped: its lease is gone (%s)", job.id, error)
                self.leases.drop(job.id)
            else:
                if not isinstance(error, (TransportError, ProtocolError)):
                    log.exception("job %s: its handler raised", job.id)
                self._finish_failed(event, error)
            return
        self.leases.drop(job.id)
        if event._ended:
            return
        if event.cancelled.is_set():
            with self._lock:
                released = self._released_at_deadline
            log.info("job %s finished after %s: not completed", job.id,
                     "the shutdown deadline (released)" if released else "its lease was lost")
            return
        try:
            event.complete(outcome_json(completion.outcome) or {"message": "Job complete"}, completion.info)
            log.info("completed %s (%s, attempt %s)", job.id, job.name, job.attempt)
        except JobwireError as error:
            log.warning("could not complete %s: %s", job.id, error)

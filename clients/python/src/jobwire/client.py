"""``JobsClient``: the broker's JSON-RPC commands, typed, over one pipelined connection."""

from __future__ import annotations

import logging
import os
import random
import re
import socket
import string
import uuid
from datetime import datetime
# List: inside JobsClient, `list` is its method.
from typing import Any, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

import zmq

from .connection import Connection
from .errors import JobwireTimeout, ProtocolError
from .types import (Action, BrokerInfo, EventPage, Job, JobPage, Json, OutcomeLike, camel, format_time,
                    outcome_json, to_wire)

log = logging.getLogger("jobwire")

DEFAULT_COMMANDS = "tcp://127.0.0.1:7401"
DEFAULT_EVENTS = "tcp://127.0.0.1:7400"

Timestamp = Union[datetime, str, float, None]


def default_commands() -> str:
    """``JOBWIRE_COMMANDS``, else ``tcp://127.0.0.1:7401``."""
    return os.environ.get("JOBWIRE_COMMANDS") or DEFAULT_COMMANDS


def default_events() -> str:
    """``JOBWIRE_EVENTS``, else ``tcp://127.0.0.1:7400``."""
    return os.environ.get("JOBWIRE_EVENTS") or DEFAULT_EVENTS


_INSTANCE_CHARS = re.compile(r"[^A-Za-z0-9._:-]+")


_process_instance: tuple[int, str] = (0, "")


def process_instance_id() -> str:
    """This process's ``instanceId`` (a new one after a fork): the default of every ``JobsClient``."""
    global _process_instance
    if _process_instance[0] != os.getpid():
        _process_instance = (os.getpid(), new_instance_id())
    return _process_instance[1]


def new_instance_id() -> str:
    """``<hostname>-<pid>-<6 random [a-z0-9]>``, at most 64 characters of ``[A-Za-z0-9._:-]``."""
    suffix = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(6))
    tail = f"-{os.getpid()}-{suffix}"
    host = _INSTANCE_CHARS.sub("-", socket.gethostname()).strip("-") or "host"
    return host[: 64 - len(tail)] + tail


def _params(**params: Any) -> Json:
    """Keyword arguments as JSON-RPC params: camelCase names, None left out, dataclasses as JSON."""
    return {camel(k): to_wire(v) for k, v in params.items() if v is not None}


class _Events:
    def __init__(self, client: "JobsClient") -> None:
        self._client = client

    def list(self, since: int = 0, topics: Optional[Sequence[str]] = None, limit: Optional[int] = None) -> EventPage:
        """``events.list``: one page of the log after ``since``, oldest first."""
        params = _params(since=since, topics=list(topics) if topics is not None else None, limit=limit)
        return EventPage.from_json(self._client.call("events.list", params))


class _Broker:
    def __init__(self, client: "JobsClient") -> None:
        self._client = client

    def info(self) -> BrokerInfo:
        """``broker.info``: version, epoch, latest seq, job counts."""
        return BrokerInfo.from_json(self._client.call("broker.info"))


class _Actions:
    def __init__(self, client: "JobsClient") -> None:
        self._client = client

    def mount(self, domain: str, resource_id: str, action: Mapping[str, Any]) -> Action:
        params = {"domain": domain, "resourceId": resource_id, "action": to_wire(dict(action))}
        return Action.from_json(self._client.call("actions.mount", params))

    def list(self, domain: str, resource_id: str) -> list[Action]:
        actions = self._client.call("actions.list", {"domain": domain, "resourceId": resource_id})
        return [Action.from_json(a) for a in actions]

    def unmount(self, action_id: str) -> None:
        self._client.call("actions.unmount", {"actionId": action_id})

    def trigger(self, action_id: Optional[str] = None, *, domain: Optional[str] = None,
                resource_id: Optional[str] = None, operation: Optional[str] = None, input: Any = None,
                actor_id: Optional[str] = None) -> Job:
        params = _params(action_id=action_id, domain=domain, resource_id=resource_id, operation=operation,
                         input=input, actor_id=actor_id)
        return Job.from_json(self._client.call("actions.trigger", params))


class JobsClient:
    """The broker's commands, thread-safe, pipelined over one DEALER.

    Args:
        commands: the commands endpoint (``JOBWIRE_COMMANDS``, else ``tcp://127.0.0.1:7401``), or a
            comma-separated list of the brokers that may serve, an active one and its standbys
            (``tcp://a:7401,tcp://b:7401``): requests go to the one that is bound.
        listener_id: the name sent as ``listenerId`` by the lease verbs (ack, claim, update, complete,
            fail, release, split); None acts as an operator.
        instance_id: sent as ``instanceId`` with ``listenerId``: one per process, so that two copies
            of a listener with the same name never pass for each other. This process's by default.
        timeout: seconds to wait for a reply (``jobs.claim`` adds its ``wait``).

    Error replies raise ``ProtocolError`` (``code``, ``type``, ``field``); no reply in time raises
    ``JobwireTimeout``.
    """

    def __init__(self, commands: Optional[str] = None, *, listener_id: Optional[str] = None,
                 instance_id: Optional[str] = None, timeout: float = 10.0,
                 context: Optional[zmq.Context[Any]] = None) -> None:
        self.endpoint = commands or default_commands()
        self.listener_id = listener_id
        self.instance_id = instance_id or process_instance_id()
        self.timeout = timeout
        self.connection = Connection(self.endpoint, timeout=timeout, context=context)
        self.events = _Events(self)
        self.broker = _Broker(self)
        self.actions = _Actions(self)

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> "JobsClient":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def call(self, method: str, params: Optional[Mapping[str, Any]] = None, *, timeout: Optional[float] = None) -> Any:
        """Any command; returns the JSON ``result`` as received."""
        clean = None if params is None else {k: v for k, v in params.items() if v is not None}
        return self.connection.call(method, clean, timeout=timeout)

    def _owner(self, listener_id: Optional[str]) -> Json:
        name = listener_id or self.listener_id
        return {"listenerId": name, "instanceId": self.instance_id} if name else {}

    def _lease_call(self, method: str, job_id: str, listener_id: Optional[str], **params: Any) -> Job:
        return Job.from_json(self.call(method, {"jobId": job_id, **self._owner(listener_id), **_params(**params)}))

    # Jobs -----------------------------------------------------------------------------------------

    def create(self, type: str, operation: str, source: str, *, idempotency_key: Optional[str] = None,
               retries: int = 2, **fields: Any) -> Job:
        """``jobs.create``, always with an ``idempotencyKey`` (a new one when not given), so that a create
        whose reply was lost is sent again (up to ``retries`` times) without making a second job.

        ``fields`` are the other create fields in snake_case or camelCase (``lease_seconds``, ``input``,
        ``mode``, ``space_id``, ``run_at`` ...).
        """
        params = {"type": type, "operation": operation, "source": source,
                  **_params(**fields),
                  "idempotencyKey": idempotency_key or f"py-{uuid.uuid4().hex}"}
        for attempt in range(retries + 1):
            try:
                return Job.from_json(self.call("jobs.create", params))
            except JobwireTimeout:
                if attempt == retries:
                    raise
                log.info("jobs.create timed out; sending it again with the same idempotencyKey")
        raise AssertionError("unreachable")

    def get(self, job_id: str) -> Job:
        return Job.from_json(self.call("jobs.get", {"jobId": job_id}))

    def list(self, **filters: Any) -> JobPage:
        """``jobs.list`` with filters (``status``, ``type``, ``source``, ``parent_id``, ``page_size``, ...)."""
        return JobPage.from_json(self.call("jobs.list", _params(**filters)))

    def list_all(self, **filters: Any) -> Iterator[Job]:
        """Every job matching ``filters``, page after page."""
        page_number = 1
        while True:
            page = self.list(**filters, page_number=page_number, page_size=100)
            yield from page.data
            if page_number >= page.pagination.page_count:
                return
            page_number += 1

    def update(self, job_id: str, *, progress: Optional[float] = None, info: Optional[str] = None,
               estimated_completion_at: Timestamp = None, metadata: Any = None, status: Optional[str] = None,
               attempt: Optional[int] = None, listener_id: Optional[str] = None) -> Job:
        """``jobs.update``; from the owner it also renews the lease."""
        return self._lease_call("jobs.update", job_id, listener_id, progress=progress, info=info,
                                estimated_completion_at=format_time(estimated_completion_at), metadata=metadata,
                                status=status, attempt=attempt)

    def execute(self, job_id: str) -> Job:
        return Job.from_json(self.call("jobs.execute", {"jobId": job_id}))

    def ack(self, job_id: str, *, progress: Optional[float] = None, info: Optional[str] = None,
            estimated_completion_at: Timestamp = None, attempt: Optional[int] = None,
            listener_id: Optional[str] = None) -> Job:
        """``jobs.ack``: takes a ready job (the first ack wins), or renews the lease of one this instance runs."""
        return self._lease_call("jobs.ack", job_id, listener_id, progress=progress, info=info,
                                estimated_completion_at=format_time(estimated_completion_at), attempt=attempt)

    def claim(self, jobs: Iterable[str], *, wait: float = 0, info: Optional[str] = None,
              listener_id: Optional[str] = None, timeout: Optional[float] = None) -> Optional[Job]:
        """``jobs.claim``: the job the broker handed this claimer (now ``executing``), or None after ``wait`` s.

        If the call times out here and the broker hands it a job afterwards, that job is released at once.
        """
        params = {**self._owner(listener_id), "jobs": list(jobs), "wait": wait, **_params(info=info)}
        limit = (self.timeout if timeout is None else timeout) + wait
        result = self.connection.call("jobs.claim", params, timeout=limit, on_abandoned=self._release_abandoned)
        job = result.get("job") if isinstance(result, Mapping) else None
        return Job.from_json(job) if isinstance(job, Mapping) else None

    def _release_abandoned(self, result: Any) -> None:
        # Runs on the I/O thread: queue the release, never wait for it there.
        job = result.get("job") if isinstance(result, Mapping) else None
        if isinstance(job, Mapping):
            lease = job.get("lease") or {}
            owner = {"listenerId": lease.get("owner"), "instanceId": self.instance_id} if lease.get("owner") else {}
            params = {"jobId": job["id"], "attempt": job.get("attempt"), "info": "claim abandoned", **owner}
            self.connection.submit("jobs.release", {k: v for k, v in params.items() if v is not None})
            log.info("released %s, claimed after its claim was abandoned", job["id"])

    def complete(self, job_id: str, outcome: OutcomeLike = None, *, info: Optional[str] = None,
                 attempt: Optional[int] = None, listener_id: Optional[str] = None) -> Job:
        """``jobs.complete``; sent again after a timeout, and a repeat that finds the job already
        complete (on ``attempt``) returns it: the first one landed."""
        params = {"jobId": job_id, **self._owner(listener_id),
                  **_params(outcome=outcome_json(outcome), info=info, attempt=attempt)}
        return self._ending_call("jobs.complete", params, "complete", attempt)

    def fail(self, job_id: str, outcome: OutcomeLike = None, *, info: Optional[str] = None,
             attempt: Optional[int] = None, listener_id: Optional[str] = None, retry: bool = False) -> Job:
        """``jobs.fail``, sent again as ``complete`` is. With ``retry``, an attempt below ``maxAttempts``
        does not end the job: it is ``scheduled`` for its backoff (``ready`` at once without one), attempt + 1."""
        params = {"jobId": job_id, **self._owner(listener_id),
                  **_params(outcome=outcome_json(outcome), info=info, attempt=attempt)}
        if retry:
            return Job.from_json(self.call("jobs.fail", {**params, "retry": True}))
        return self._ending_call("jobs.fail", params, "failed", attempt)

    def _ending_call(self, method: str, params: Json, status: str, attempt: Optional[int], retries: int = 2) -> Job:
        """A verb that ends a job, sent again (up to ``retries`` times) after a timeout. A repeat (or a
        request resent after the broker changed) finds the job ended by the first and gets
        ``invalid_transition``: the job, read back, is then the answer when it ended as asked."""
        for tries in range(retries + 1):
            try:
                return Job.from_json(self.call(method, params))
            except JobwireTimeout:
                if tries == retries:
                    raise
                log.info("%s timed out; sending it again", method)
            except ProtocolError as error:
                if error.code != ProtocolError.INVALID_TRANSITION or not (error.repeated or tries > 0):
                    raise
                job = self.get(str(params["jobId"]))
                if job.status != status or (attempt is not None and job.attempt != attempt):
                    raise
                log.debug("%s of %s was sent twice; the first one landed", method, job.id)
                return job
        raise AssertionError("unreachable")

    def release(self, job_id: str, *, info: Optional[str] = None, attempt: Optional[int] = None,
                listener_id: Optional[str] = None, delay_seconds: Optional[int] = None) -> Job:
        """``jobs.release``: hands an executing job back (``ready``, attempt + 1), or with ``delay_seconds``
        ``scheduled`` until then."""
        return self._lease_call("jobs.release", job_id, listener_id, info=info, attempt=attempt,
                                delay_seconds=delay_seconds)

    def split(self, job_id: str, parts: Union[int, Sequence[Mapping[str, Any]]], *, run_in_parallel: bool = True,
              attempt: Optional[int] = None, listener_id: Optional[str] = None) -> List[Job]:
        """``jobs.split``: ``parts`` is a count or one ``partData`` object per part."""
        params = {"jobId": job_id, **self._owner(listener_id),
                  **_params(parts=parts if isinstance(parts, int) else [dict(p) for p in parts],
                            run_in_parallel=run_in_parallel, attempt=attempt)}
        return [Job.from_json(j) for j in self.call("jobs.split", params)["parts"]]

    def cancel(self, job_id: str, *, info: Optional[str] = None) -> Job:
        return self._ending_call("jobs.cancel", _params(job_id=job_id, info=info), "canceled", None, retries=0)

    def retry(self, job_id: str) -> Job:
        return Job.from_json(self.call("jobs.retry", {"jobId": job_id}))

    def ack_outcome(self, job_id: str) -> Job:
        return Job.from_json(self.call("jobs.ackOutcome", {"jobId": job_id}))

    ackOutcome = ack_outcome

    def delete(self, job_id: str) -> None:
        self.call("jobs.delete", {"jobId": job_id})

    # The names of the earlier single-file client ---------------------------------------------------

    def events_list(self, since: int, topics: Optional[List[str]] = None, limit: Optional[int] = None) -> Json:
        """``events.list`` as received (JSON)."""
        return dict(self.call("events.list", _params(since=since, topics=topics, limit=limit)))

    def broker_info(self) -> Json:
        """``broker.info`` as received (JSON)."""
        return dict(self.call("broker.info"))


# The earlier single-file client's name.
Client = JobsClient

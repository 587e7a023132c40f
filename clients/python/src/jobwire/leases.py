"""Lease renewal for the jobs a process runs."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from .client import JobsClient
from .errors import JobwireError, ProtocolError
from .types import parse_time

log = logging.getLogger("jobwire")

DEFAULT_LEASE_SECONDS = 30.0

LostLease = Callable[[ProtocolError], None]


@dataclass
class _Held:
    attempt: Optional[int]
    period: float
    due: float
    listener_id: Optional[str]
    on_lost: Optional[LostLease]
    #: When the attempt times out, on ``time.monotonic()``: the broker ends it then, renewed or not.
    times_out: Optional[float] = None


class LeaseKeeper:
    """Renews, with ``jobs.ack`` naming the attempt, the lease of every held job every ``leaseSeconds / 3``.

    A renewal that the broker refuses (the job ended, was canceled, or its lease moved on) drops the job
    and calls its ``on_lost``. Renewals of many jobs go out together over the client's connection.
    """

    def __init__(self, client: JobsClient) -> None:
        self._client = client
        self._held: dict[str, _Held] = {}
        self._changed = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="jobwire-leases", daemon=True)
        self._thread.start()

    def hold(self, job: Any, on_lost: Optional[LostLease] = None, listener_id: Optional[str] = None) -> None:
        """Starts renewing ``job`` (a ``Job``, or the job's JSON)."""
        period = float(job.get("leaseSeconds") or DEFAULT_LEASE_SECONDS) / 3
        attempt = job.get("attempt")
        now = time.monotonic()
        times_out_at = parse_time((job.get("lease") or {}).get("timesOutAt"))
        # The broker's time of the timeout, on this process's monotonic clock.
        times_out = None if times_out_at is None else now + (times_out_at - datetime.now(timezone.utc)).total_seconds()
        with self._changed:
            self._held[job["id"]] = _Held(attempt, period, now + period, listener_id, on_lost, times_out)
            self._changed.notify()

    def drop(self, job_id: str) -> None:
        """Stops renewing ``job_id``."""
        with self._changed:
            self._held.pop(job_id, None)

    def held(self) -> list[str]:
        with self._changed:
            return list(self._held)

    def release_all(self, info: str = "listener shutting down") -> list[str]:
        """Releases every job still held (``jobs.release`` naming its attempt); returns their ids."""
        with self._changed:
            held = dict(self._held)
            self._held.clear()
        for job_id, h in held.items():
            try:
                self._client.release(job_id, info=info, attempt=h.attempt, listener_id=h.listener_id)
                log.info("released %s: %s", job_id, info)
            except JobwireError as error:
                log.info("could not release %s: %s", job_id, error)
        return list(held)

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
                    timed_out = [(job_id, h) for job_id, h in self._held.items()
                                 if h.times_out is not None and h.times_out <= now]
                    due = [(job_id, h) for job_id, h in self._held.items() if h.due <= now]
                    if due or timed_out:
                        break
                    next_due = min([h.due for h in self._held.values()]
                                   + [h.times_out for h in self._held.values() if h.times_out is not None],
                                   default=now + 3600)
                    self._changed.wait(next_due - now)
                if self._stopped:
                    return
                for job_id, _ in timed_out:
                    self._held.pop(job_id, None)
                due = [(job_id, h) for job_id, h in due if job_id in self._held]
                for _, h in due:
                    h.due = now + h.period
            for job_id, h in timed_out:
                # The broker ends the attempt at its timeout: its handler is told, as for a lost lease.
                log.info("the attempt of %s timed out", job_id)
                if h.on_lost is not None:
                    h.on_lost(ProtocolError(ProtocolError.LEASE_EXPIRED, f"the attempt of {job_id} timed out",
                                            {"type": "lease_expired"}))
            if due:
                self._renew(due)

    def _renew(self, due: list[tuple[str, _Held]]) -> None:
        connection = self._client.connection
        sent = []
        for job_id, h in due:
            params = {"jobId": job_id, **self._client._owner(h.listener_id)}
            if h.attempt is not None:
                params["attempt"] = h.attempt
            sent.append((job_id, h) + connection.submit("jobs.ack", params))
        deadline = time.monotonic() + self._client.timeout
        for job_id, h, request_id, future in sent:
            try:
                future.result(max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                connection.abandon(request_id)
                log.debug("could not renew the lease of %s yet: no reply", job_id)
            except ProtocolError as error:
                with self._changed:
                    lost = self._held.get(job_id) is h and self._held.pop(job_id)
                log.info("lost the lease of %s: %s", job_id, error)
                if lost and h.on_lost is not None:
                    h.on_lost(error)
            except JobwireError as error:
                log.debug("could not renew the lease of %s yet: %s", job_id, error)

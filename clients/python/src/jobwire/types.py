"""Typed views of the protocol's objects: jobs, leases, outcomes, events, parts, pages.

Each is a dataclass built with ``from_json`` from the broker's JSON. ``raw`` keeps the JSON as received,
so a field this version does not model is still readable: ``job.raw["someField"]``; ``job["id"]`` and
``job.get("input")`` read the same JSON by its wire name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Union

Json = dict[str, Any]

TERMINAL_STATUSES = frozenset({"complete", "failed", "canceled"})


def parse_time(value: Any) -> Optional[datetime]:
    """An ISO 8601 UTC timestamp (``2026-11-29T02:00:00.123Z``) as an aware datetime, None if absent."""
    if not isinstance(value, str) or not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    return datetime.fromisoformat(text)


def format_time(value: Union[datetime, str, float, None]) -> Optional[str]:
    """A datetime (or a Unix time, or a string kept as is) in the protocol's format, ms precision, UTC."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, tz=timezone.utc)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


_CAMEL = re.compile(r"_([a-z0-9])")


def camel(name: str) -> str:
    """``estimated_completion_at`` -> ``estimatedCompletionAt``; camelCase names stay as they are."""
    return _CAMEL.sub(lambda m: m.group(1).upper(), name)


def to_wire(value: Any) -> Any:
    """Dataclasses of this module, datetimes and containers of them, as JSON values."""
    if hasattr(value, "to_json"):
        return value.to_json()
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, Mapping):
        return {str(k): to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_wire(v) for v in value]
    return value


class _Wire:
    """Read access to the JSON as received, by wire name."""

    raw: Json

    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)


@dataclass
class OutcomeNext:
    """Where the outcome's button leads: ``type`` is ``id``, ``url``, ``download``, ``files``,
    ``snapshot``, ``view``, ``retry``, ``wait`` or ``clearFilters``; the other keys go in ``fields``."""

    type: str
    label: Optional[str] = None
    url: Optional[str] = None
    file_name: Optional[str] = None
    fields: Json = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "OutcomeNext":
        known = {"type", "label", "url", "fileName"}
        return cls(str(data.get("type", "")), data.get("label"), data.get("url"), data.get("fileName"),
                   {k: v for k, v in data.items() if k not in known})

    def to_json(self) -> Json:
        out: Json = {"type": self.type, **self.fields}
        for key, value in (("label", self.label), ("url", self.url), ("fileName", self.file_name)):
            if value is not None:
                out[key] = value
        return out


@dataclass
class Outcome:
    """What a finished job tells its user (Flatfile's outcome)."""

    message: Optional[str] = None
    heading: Optional[str] = None
    acknowledge: Optional[bool] = None
    button_text: Optional[str] = None
    hide_default_button: Optional[bool] = None
    next: Optional[OutcomeNext] = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Outcome":
        nxt = data.get("next")
        return cls(data.get("message"), data.get("heading"), data.get("acknowledge"), data.get("buttonText"),
                   data.get("hideDefaultButton"), OutcomeNext.from_json(nxt) if isinstance(nxt, Mapping) else None)

    def to_json(self) -> Json:
        pairs = (("message", self.message), ("heading", self.heading), ("acknowledge", self.acknowledge),
                 ("buttonText", self.button_text), ("hideDefaultButton", self.hide_default_button),
                 ("next", self.next.to_json() if self.next else None))
        return {k: v for k, v in pairs if v is not None}


OutcomeLike = Union[Outcome, Mapping[str, Any], str, None]


def outcome_json(outcome: OutcomeLike) -> Optional[Json]:
    """An outcome given as an ``Outcome``, a JSON object or a plain message."""
    if outcome is None:
        return None
    if isinstance(outcome, str):
        return {"message": outcome}
    if isinstance(outcome, Outcome):
        return outcome.to_json()
    return dict(to_wire(dict(outcome)))


@dataclass
class Lease:
    """Who runs an executing job: ``owner`` (the ``listenerId``), ``instance_id`` (the process), until when."""

    owner: str
    expires_at: Optional[datetime]
    instance_id: Optional[str] = None
    #: When the attempt times out (the job's ``timeoutSeconds`` after it was taken), renewed or not.
    times_out_at: Optional[datetime] = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Lease":
        return cls(str(data.get("owner", "")), parse_time(data.get("expiresAt")), data.get("instanceId"),
                   parse_time(data.get("timesOutAt")))


@dataclass
class PartData:
    """What a part of a split job carries: ``{part, total}`` for a count, or the caller's object."""

    part: Optional[int] = None
    total: Optional[int] = None
    data: Json = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "PartData":
        part, total = data.get("part"), data.get("total")
        return cls(part if isinstance(part, int) else None, total if isinstance(total, int) else None, dict(data))


@dataclass
class PartsSummary:
    """``payload.parts`` of ``job:parts-completed``: how the parts of a split job ended."""

    total: int
    completed: int
    failed: int
    canceled: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "PartsSummary":
        return cls(*(int(data.get(k) or 0) for k in ("total", "completed", "failed", "canceled")))


CONTEXT_IDS = ("environmentId", "spaceId", "workbookId", "sheetId", "fileId", "documentId", "actorId")


@dataclass
class Job(_Wire):
    """A job as the broker returns it (``jobs.get``, ``jobs.ack``, ...)."""

    id: str
    type: str
    operation: str
    source: str
    status: str
    attempt: int
    max_attempts: int
    lease_seconds: int
    progress: float = 0
    priority: int = 0
    backoff: Optional[Json] = None
    timeout_seconds: Optional[int] = None
    info: Optional[str] = None
    mode: Optional[str] = None
    trigger: Optional[str] = None
    destination: Optional[str] = None
    input: Any = None
    config: Any = None
    subject: Any = None
    metadata: Any = None
    outcome: Optional[Outcome] = None
    lease: Optional[Lease] = None
    parent_id: Optional[str] = None
    part: Optional[int] = None
    part_data: Optional[PartData] = None
    part_execution: Optional[str] = None
    is_part: bool = False
    predecessor_ids: list[str] = field(default_factory=list)
    run_at: Optional[datetime] = None
    estimated_completion_at: Optional[datetime] = None
    created_at: Optional[datetime] = None
    updated_at: Optional[datetime] = None
    started_at: Optional[datetime] = None
    finished_at: Optional[datetime] = None
    outcome_acknowledged_at: Optional[datetime] = None
    context: dict[str, str] = field(default_factory=dict)
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @property
    def name(self) -> str:
        """``type:operation``, the name listeners match (``workbook:export``)."""
        return f"{self.type}:{self.operation}"

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Job":
        outcome, lease, part_data = data.get("outcome"), data.get("lease"), data.get("partData")
        return cls(
            id=str(data["id"]), type=str(data.get("type", "")), operation=str(data.get("operation", "")),
            source=str(data.get("source", "")), status=str(data.get("status", "")),
            attempt=int(data.get("attempt") or 1), max_attempts=int(data.get("maxAttempts") or 3),
            lease_seconds=int(data.get("leaseSeconds") or 30), progress=float(data.get("progress") or 0),
            priority=int(data.get("priority") or 0), backoff=data.get("backoff"),
            timeout_seconds=data.get("timeoutSeconds"),
            info=data.get("info"), mode=data.get("mode"), trigger=data.get("trigger"),
            destination=data.get("destination"), input=data.get("input"), config=data.get("config"),
            subject=data.get("subject"), metadata=data.get("metadata"),
            outcome=Outcome.from_json(outcome) if isinstance(outcome, Mapping) else None,
            lease=Lease.from_json(lease) if isinstance(lease, Mapping) else None,
            parent_id=data.get("parentId"), part=data.get("part"),
            part_data=PartData.from_json(part_data) if isinstance(part_data, Mapping) else None,
            part_execution=data.get("partExecution"), is_part=bool(data.get("isPart", False)),
            predecessor_ids=list(data.get("predecessorIds") or []), run_at=parse_time(data.get("runAt")),
            estimated_completion_at=parse_time(data.get("estimatedCompletionAt")),
            created_at=parse_time(data.get("createdAt")), updated_at=parse_time(data.get("updatedAt")),
            started_at=parse_time(data.get("startedAt")), finished_at=parse_time(data.get("finishedAt")),
            outcome_acknowledged_at=parse_time(data.get("outcomeAcknowledgedAt")),
            context={k: str(data[k]) for k in CONTEXT_IDS if isinstance(data.get(k), str)},
            raw=dict(data),
        )


@dataclass
class Event(_Wire):
    """An event envelope: a live one from the SUB socket, or one of ``events.list``."""

    topic: str
    domain: str
    context: dict[str, Any]
    payload: Json
    id: Optional[str] = None
    seq: Optional[int] = None
    epoch: Optional[str] = None
    created_at: Optional[datetime] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @property
    def job_id(self) -> Optional[str]:
        value = self.context.get("jobId")
        return value if isinstance(value, str) else None

    @property
    def job_name(self) -> Optional[str]:
        """The job's ``type:operation`` for a job event."""
        value = self.payload.get("job")
        return value if isinstance(value, str) else None

    @property
    def status(self) -> Optional[str]:
        return self.payload.get("status")

    @property
    def attempt(self) -> Optional[int]:
        value = self.payload.get("attempt")
        return value if isinstance(value, int) else None

    @property
    def parts(self) -> Optional[PartsSummary]:
        """For ``job:parts-completed``: how the parts ended."""
        value = self.payload.get("parts")
        return PartsSummary.from_json(value) if isinstance(value, Mapping) else None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], topic: Optional[str] = None) -> "Event":
        seq = data.get("seq")
        return cls(
            topic=str(data.get("topic") or topic or ""), domain=str(data.get("domain", "")),
            context=dict(data.get("context") or {}), payload=dict(data.get("payload") or {}),
            id=data.get("id"), seq=seq if isinstance(seq, int) else None, epoch=data.get("epoch"),
            created_at=parse_time(data.get("createdAt")), raw=dict(data),
        )

    @classmethod
    def ready(cls, job: Job) -> "Event":
        """The ``job:ready`` event of a job found ready in the store (no seq)."""
        payload: Json = {
            "job": job.name, "domain": job.type, "operation": job.operation, "status": job.status,
            "isPart": job.is_part, "info": job.info, "input": job.input if job.input is not None else {},
            "progress": job.progress, "attempt": job.attempt, "mode": job.mode,
        }
        if job.parent_id is not None:
            payload.update(parentId=job.parent_id, part=job.part, partData=job.raw.get("partData"))
        envelope = {"topic": "job:ready", "domain": "job", "context": {"jobId": job.id, **job.context},
                    "payload": payload}
        return cls.from_json(envelope)


@dataclass
class Pagination:
    current_page: int
    page_count: int
    total_count: int


@dataclass
class JobPage(_Wire):
    """One page of ``jobs.list``."""

    data: list[Job]
    pagination: Pagination
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "JobPage":
        jobs = [Job.from_json(j) for j in data.get("data") or []]
        p = data.get("pagination") or {}
        return cls(jobs, Pagination(int(p.get("currentPage") or 1), int(p.get("pageCount") or 0),
                                    int(p.get("totalCount") or len(jobs))), dict(data))


@dataclass
class EventPage(_Wire):
    """One page of ``events.list``: ``next_since``, when set, is where the next page starts."""

    events: list[Event]
    last_seq: int
    epoch: str
    next_since: Optional[int] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "EventPage":
        nxt = data.get("nextSince")
        return cls([Event.from_json(e) for e in data.get("events") or []], int(data.get("lastSeq") or 0),
                   str(data.get("epoch") or ""), nxt if isinstance(nxt, int) else None, dict(data))


@dataclass
class BrokerInfo(_Wire):
    """``broker.info``: the store's epoch and latest seq, job counts by status."""

    version: str
    epoch: str
    seq: int
    started_at: Optional[datetime]
    jobs: dict[str, int]
    waiting_claims: int = 0
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "BrokerInfo":
        return cls(str(data.get("version", "")), str(data.get("epoch", "")), int(data.get("seq") or 0),
                   parse_time(data.get("startedAt")), {str(k): int(v) for k, v in (data.get("jobs") or {}).items()},
                   int(data.get("waitingClaims") or 0), dict(data))


@dataclass
class Action(_Wire):
    """A mounted action (``actions.mount``): triggering it creates the job ``domain:operation``."""

    id: str
    domain: str
    resource_id: str
    operation: str
    label: Optional[str] = None
    mode: Optional[str] = None
    raw: Json = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Action":
        return cls(str(data.get("id", "")), str(data.get("domain", "")), str(data.get("resourceId", "")),
                   str(data.get("operation", "")), data.get("label"), data.get("mode"), dict(data))

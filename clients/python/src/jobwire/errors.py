"""The errors a Jobwire client raises."""

from __future__ import annotations

from typing import Any, Mapping, Optional


class JobwireError(Exception):
    """Base of every error this package raises."""


class ProtocolError(JobwireError):
    """A JSON-RPC error reply from the broker.

    ``code`` is the JSON-RPC code (``-32602``, ``-32003``, ...), ``type`` is ``data.type``
    (``not_found``, ``conflict``, ``lease_expired``, ...) and ``field`` is ``data.field``, the dotted
    path of the parameter at fault (``outcome.next.type``), when the broker names one. ``repeated`` is set
    when the request was sent more than once (again after a broker change, or retried): the first may
    have landed.
    """

    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INVALID_PARAMS = -32602
    INTERNAL_ERROR = -32603
    NOT_FOUND = -32001
    INVALID_TRANSITION = -32002
    CONFLICT = -32003
    LEASE_EXPIRED = -32004
    GONE = -32005
    UNAUTHORIZED = -32006
    OVERLOADED = -32007

    def __init__(self, code: int, message: str, data: Optional[Mapping[str, Any]] = None, method: str = "") -> None:
        super().__init__(f"{method + ': ' if method else ''}{code} {message}")
        self.code = code
        self.message = message
        self.method = method
        self.data: dict[str, Any] = dict(data or {})
        type_ = self.data.get("type")
        field = self.data.get("field")
        self.type: Optional[str] = type_ if isinstance(type_, str) else None
        self.field: Optional[str] = field if isinstance(field, str) else None
        self.repeated = False

    @classmethod
    def from_reply(cls, error: Mapping[str, Any], method: str = "") -> "ProtocolError":
        data = error.get("data")
        return cls(int(error.get("code", cls.INTERNAL_ERROR)), str(error.get("message", "")),
                   data if isinstance(data, Mapping) else None, method)


class RetryableError(Exception):
    """Raised (or subclassed) by a job handler: the attempt fails with ``retry: true``, so the broker runs
    the job again after its ``backoff``, until its ``maxAttempts``. ``raise RetryableError("503")``."""


class JobwireTimeout(JobwireError, TimeoutError):
    """The broker did not answer within the call's timeout (it may be down or restarting)."""


class ConnectionClosed(JobwireError):
    """The client was closed while the call waited for its reply."""


# Transport errors: the broker could not be reached; the call may or may not have been applied.
TransportError = (JobwireTimeout, ConnectionClosed)

"""One pipelined JSON-RPC connection to the broker's commands socket.

A ZeroMQ socket must be used by one thread only, so one I/O thread owns the DEALER: callers from any
thread queue a request and wait on its future; the I/O thread sends queued requests, reads replies
and resolves the futures by ``id``. Many threads share the connection with many requests in flight
(a long ``jobs.claim`` does not hold up a ``jobs.get``), where a REQ socket would serialize them.

The endpoint may be a comma-separated list of brokers (an active one and its standbys): the DEALER
connects to each and sends only over connections that are complete (``zmq.IMMEDIATE``), so a request
goes to the broker that is bound; while none is, requests wait in the outbox.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
from collections import deque
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import zmq

from .errors import ConnectionClosed, JobwireTimeout, ProtocolError

log = logging.getLogger("jobwire")

# Called with the result of a call whose caller stopped waiting (timed out or abandoned it).
Abandoned = Callable[[Any], None]


@dataclass
class _Pending:
    method: str
    future: "Future[Any]"
    on_abandoned: Optional[Abandoned] = None
    body: bytes = b""
    # Sent again (``resend_pending``): an error reply may answer the repeat of a request that landed.
    resent: bool = False


_TRANSPORTS = ("tcp://", "ipc://", "inproc://")


def parse_endpoints(value: str) -> list[str]:
    """Splits an endpoint value, one endpoint or a comma-separated list (``tcp://a:7401,tcp://b:7401``),
    and checks each element: ``tcp://HOST:PORT``, ``ipc://PATH`` or ``inproc://NAME``.

    Raises ``ValueError`` naming the first element that is empty, malformed or listed twice.
    """
    endpoints: list[str] = []
    for part in value.split(","):
        endpoint = part.strip(" ")
        if not endpoint:
            fix = "drop the extra comma" if "," in value else "give tcp://HOST:PORT, ipc://PATH or inproc://NAME"
            raise ValueError(f'an empty endpoint in "{value}" is not allowed: {fix}')
        problem = _endpoint_problem(endpoint)
        if problem is None and endpoint in endpoints:
            problem = "is listed twice"
        if problem is not None:
            raise ValueError(f'"{endpoint}" in "{value}" {problem}')
        endpoints.append(endpoint)
    return endpoints


def _endpoint_problem(endpoint: str) -> Optional[str]:
    hint = "is not an endpoint: write tcp://HOST:PORT, ipc://PATH or inproc://NAME"
    if not endpoint.startswith(_TRANSPORTS):
        return hint
    if not endpoint.startswith("tcp://"):
        return None if endpoint.split("://", 1)[1] else hint
    host, colon, port = endpoint[len("tcp://"):].rpartition(":")
    if not colon or not host:
        return "has no port: write tcp://HOST:PORT, e.g. tcp://127.0.0.1:7401"
    if " " in host or "/" in host:
        return hint
    if not (port.isdigit() and 0 < int(port) < 65536):
        return "has no port a client can connect to: write tcp://HOST:PORT with a port from 1 to 65535"
    return None


class Connection:
    """A DEALER to ``endpoint`` with its own I/O thread; thread-safe.

    Args:
        endpoint: the broker's commands endpoint, or a comma-separated list of them (``ValueError`` names a
            malformed one).
        timeout: the default seconds to wait for a reply.
        context: the ZeroMQ context (the process-wide one by default).
    """

    def __init__(self, endpoint: str, *, timeout: float = 10.0, context: Optional[zmq.Context[Any]] = None) -> None:
        self.endpoint = endpoint
        self.endpoints = parse_endpoints(endpoint)
        self.timeout = timeout
        self._context = context or zmq.Context.instance()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        # Without it libzmq deals requests round-robin into a queue per endpoint from the start, also into
        # that of a standby that binds nothing, where they would wait for ever.
        self._socket.setsockopt(zmq.IMMEDIATE, 1)
        for one in self.endpoints:
            self._socket.connect(one)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._outbox: deque[bytes] = deque()
        self._pending: dict[int, _Pending] = {}
        self._abandoned: dict[int, _Pending] = {}
        self._closed = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._thread = threading.Thread(target=self._run, name="jobwire-io", daemon=True)
        self._thread.start()

    # Calls --------------------------------------------------------------------------------------

    def submit(self, method: str, params: Optional[Mapping[str, Any]] = None,
               on_abandoned: Optional[Abandoned] = None) -> tuple[int, "Future[Any]"]:
        """Queues one request; its future resolves to ``result`` or raises ``ProtocolError``."""
        request_id = next(self._ids)
        request: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            request["params"] = dict(params)
        body = json.dumps(request, separators=(",", ":")).encode("utf-8")
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise ConnectionClosed(f"{method}: the client is closed")
            self._pending[request_id] = _Pending(method, future, on_abandoned, body)
            self._outbox.append(body)
            os.write(self._wake_w, b"x")  # under the lock: the I/O thread closes the pipe only after _closed
        return request_id, future

    def call(self, method: str, params: Optional[Mapping[str, Any]] = None, *, timeout: Optional[float] = None,
             on_abandoned: Optional[Abandoned] = None) -> Any:
        """Sends one request and waits for its ``result``.

        Raises ``ProtocolError`` for an error reply, ``JobwireTimeout`` after ``timeout`` seconds (the
        request may still be applied: ``on_abandoned`` then gets a late result), ``ConnectionClosed``.
        """
        limit = self.timeout if timeout is None else timeout
        request_id, future = self.submit(method, params, on_abandoned)
        try:
            return future.result(limit)
        except FutureTimeout:
            self.abandon(request_id)
            if future.done() and not future.cancelled():
                return future.result()  # answered just now
            raise JobwireTimeout(f"{method}: no reply from {self.endpoint} within {limit:g} s") from None
        except CancelledError:
            raise ConnectionClosed(f"{method}: the call was abandoned") from None

    def abandon(self, request_id: int) -> None:
        """Stops waiting for a request: its future is cancelled and a late reply goes to ``on_abandoned``."""
        with self._lock:
            pending = self._pending.pop(request_id, None)
            if pending is None:
                return
            if pending.on_abandoned is not None:
                self._abandoned[request_id] = pending
                if len(self._abandoned) > 10000:
                    self._abandoned.pop(next(iter(self._abandoned)))
        pending.future.cancel()

    def pending_methods(self) -> list[tuple[int, str]]:
        with self._lock:
            return [(request_id, p.method) for request_id, p in self._pending.items()]

    def resend_pending(self, skip: tuple[str, ...] = ("jobs.claim",)) -> int:
        """Sends every request still waiting for its reply again, with the same id: for after the broker
        restarted or another broker of the list took over, when the replies are lost with the old process.

        Each verb is safe to repeat: a create carries its idempotency key, an ack or update from the owner
        applies again, and a complete, fail or cancel the old process had already written gets
        ``invalid_transition`` (``ProtocolError.repeated`` is then set). Claims are skipped: the listener
        abandons them and claims again. Returns how many were sent.
        """
        with self._lock:
            if self._closed:
                return 0
            again = [p for _, p in sorted(self._pending.items()) if p.method not in skip]
            for p in again:
                p.resent = True
                self._outbox.append(p.body)
            if again:
                os.write(self._wake_w, b"x")
        return len(again)

    def close(self) -> None:
        """Fails the calls still waiting and closes the socket (a claim the broker answers later is taken back)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            os.write(self._wake_w, b"x")
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # The I/O thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        unsent: deque[bytes] = deque()  # no connection to a broker is complete yet (IMMEDIATE)
        try:
            while True:
                poller.modify(self._socket, zmq.POLLIN | (zmq.POLLOUT if unsent else 0))
                events = dict(poller.poll())
                if self._wake_r in events:
                    try:
                        while os.read(self._wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                with self._lock:
                    closed = self._closed
                    outbox = list(self._outbox)
                    self._outbox.clear()
                if closed:
                    break
                unsent.extend(outbox)
                while unsent:
                    try:
                        self._socket.send_multipart([b"", unsent[0]], zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    unsent.popleft()
                while self._socket.poll(0, zmq.POLLIN):
                    self._on_reply(self._socket.recv_multipart())
        except Exception:  # pragma: no cover - a bug here must not hang every caller silently
            log.exception("jobwire connection to %s failed", self.endpoint)
        finally:
            with self._lock:
                self._closed = True
                pending = list(self._pending.values())
                self._pending.clear()
            for p in pending:
                if not p.future.done():
                    p.future.set_exception(ConnectionClosed(f"{p.method}: the client was closed"))
            self._socket.close(linger=0)
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _on_reply(self, frames: list[bytes]) -> None:
        try:
            reply = json.loads(frames[-1])
        except ValueError:
            log.warning("a reply that is not JSON from %s", self.endpoint)
            return
        request_id = reply.get("id")
        with self._lock:
            pending = self._pending.pop(request_id, None)
            abandoned = None if pending is not None else self._abandoned.pop(request_id, None)
        if pending is not None:
            if "error" in reply:
                error = ProtocolError.from_reply(reply["error"] or {}, pending.method)
                error.repeated = pending.resent
                pending.future.set_exception(error)
            else:
                pending.future.set_result(reply.get("result"))
        elif abandoned is not None and abandoned.on_abandoned is not None and "result" in reply:
            try:
                abandoned.on_abandoned(reply["result"])
            except Exception:
                log.exception("handling the late reply of %s", abandoned.method)

"""One pipelined JSON-RPC connection to the broker's commands socket.

A ZeroMQ socket must be used by one thread only, so one I/O thread owns the DEALER: callers from any
thread queue a request and wait on its future; the I/O thread sends queued requests, reads replies
and resolves the futures by ``id``. Many threads share the connection with many requests in flight
(a long ``jobs.claim`` does not hold up a ``jobs.get``), where a REQ socket would serialize them.
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


class Connection:
    """A DEALER to ``endpoint`` with its own I/O thread; thread-safe.

    Args:
        endpoint: the broker's commands endpoint.
        timeout: the default seconds to wait for a reply.
        context: the ZeroMQ context (the process-wide one by default).
    """

    def __init__(self, endpoint: str, *, timeout: float = 10.0, context: Optional[zmq.Context[Any]] = None) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._context = context or zmq.Context.instance()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.connect(endpoint)
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
            self._pending[request_id] = _Pending(method, future, on_abandoned)
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
        try:
            while True:
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
                for body in outbox:
                    self._socket.send_multipart([b"", body])
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
                pending.future.set_exception(ProtocolError.from_reply(reply["error"] or {}, pending.method))
            else:
                pending.future.set_result(reply.get("result"))
        elif abandoned is not None and abandoned.on_abandoned is not None and "result" in reply:
            try:
                abandoned.on_abandoned(reply["result"])
            except Exception:
                log.exception("handling the late reply of %s", abandoned.method)

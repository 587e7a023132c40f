"""A TCP proxy of the suite's own between one listener and the broker (scenario 8), that can pass,
delay, blackhole (keep connections, move no bytes) and reset (RST every connection).

Given several target ports, each new connection goes to the first that accepts one, the way a TCP load
balancer fronts an active broker and its standbys (which bind nothing until they take over); the same
proxy stands between a broker and PostgreSQL for the partition scenario (p3)."""

from __future__ import annotations

import socket
import struct
import threading
import time


class Proxy:
    def __init__(self, target_port: int, *more_ports: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.targets = [("127.0.0.1", port) for port in (target_port, *more_ports)]
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        self.mode = "pass"
        self.delay = 0.0
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        self.resets = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    def set(self, mode: str, delay: float = 0.0) -> None:
        self.mode, self.delay = mode, delay
        if mode == "reset":
            with self.lock:
                for conn in self.conns:
                    try:
                        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        conn.close()
                    except OSError:
                        pass
                    self.resets += 1
                self.conns.clear()
            self.mode = "pass"

    def _accept(self) -> None:
        while True:
            client, _ = self.server.accept()
            if self.mode == "blackhole":
                with self.lock:
                    self.conns.append(client)  # accepted, never answered
                continue
            upstream = None
            for target in self.targets:
                try:
                    upstream = socket.create_connection(target, timeout=2)
                    upstream.settimeout(None)
                    break
                except OSError:
                    continue
            if upstream is None:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                while self.mode == "blackhole":
                    time.sleep(0.05)  # hold the bytes: nothing moves until the heal
                if self.delay:
                    time.sleep(self.delay)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.close()
                except OSError:
                    pass

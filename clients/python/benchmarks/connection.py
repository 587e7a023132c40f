#!/usr/bin/env python3
"""Calls per second when threads share one connection: the package's pipelined DEALER (one I/O
thread, many requests in flight) against one lock-step REQ socket behind a lock.

    python clients/python/benchmarks/connection.py --commands tcp://127.0.0.1:7401 [--threads 8] [--calls 2000]

Each thread calls `jobs.get` on one job; a broker must be running (`jobwire broker --in-memory`).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import Any, Callable

import zmq

from jobwire import JobsClient


class LockStep:
    """One REQ socket: one request in flight, so threads take turns."""

    def __init__(self, endpoint: str) -> None:
        self.socket = zmq.Context.instance().socket(zmq.REQ)
        self.socket.connect(endpoint)
        self.lock = threading.Lock()
        self.ids = 0

    def call(self, method: str, params: dict[str, Any]) -> Any:
        with self.lock:
            self.ids += 1
            self.socket.send(json.dumps({"jsonrpc": "2.0", "id": self.ids, "method": method,
                                         "params": params}).encode())
            return json.loads(self.socket.recv())["result"]

    def get(self, job_id: str) -> Any:
        return self.call("jobs.get", {"jobId": job_id})


def during_claim(claim: Callable[[], Any], get: Callable[[str], Any], job_id: str, threads: int) -> int:
    """How many calls the other threads complete while one `jobs.claim {wait: 2}` waits in the broker."""
    claimer = threading.Thread(target=claim)
    claimer.start()
    time.sleep(0.2)  # let the claim go out first
    done = [0]

    def work() -> None:
        while claimer.is_alive():
            get(job_id)
            done[0] += 1

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return done[0]


def run(threads: int, calls: int, get: Callable[[str], Any], job_id: str) -> float:
    def work() -> None:
        for _ in range(calls // threads):
            get(job_id)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return (calls // threads * threads) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", default="tcp://127.0.0.1:7401")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--calls", type=int, default=4000)
    args = parser.parse_args()
    with JobsClient(args.commands) as client:
        job_id = client.create("bench", "get", "x").id
        run(1, 200, client.get, job_id)  # warm up
        lock_step = LockStep(args.commands)
        for threads in (1, args.threads):
            dealer = run(threads, args.calls, client.get, job_id)
            req = run(threads, args.calls, lock_step.get, job_id)
            print(f"{threads} thread(s): pipelined DEALER {dealer:,.0f} calls/s, lock-step REQ {req:,.0f} calls/s")
        dealer_n = during_claim(lambda: client.claim(["bench:none"], wait=2), client.get, job_id, args.threads)
        req_n = during_claim(lambda: lock_step.call("jobs.claim", {"jobs": ["bench:none"], "wait": 2}),
                             lock_step.get, job_id, args.threads)
        print(f"while one jobs.claim waits 2 s: pipelined DEALER {dealer_n:,} other calls, lock-step REQ {req_n:,}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The same job lifecycle driven from Python against Jobwire (pyzmq) and beanstalkd (greenstalk).

One synchronous client per system, one job at a time, the lifecycle each system offers:
  jobwire:    jobs.create, jobs.claim, jobs.update {progress}, jobs.complete
  beanstalkd: put, reserve, touch, delete
Prints one JSON object: jobs per second and the server's CPU microseconds per lifecycle (from /proc).
"""
from __future__ import annotations

import argparse
import json
import os
import time


def cpu_micros(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks * 1e6


def jobwire(commands: str, jobs: int, pid: int) -> dict:
    import zmq

    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.connect(commands)
    next_id = 0

    def call(method: str, params: dict) -> dict:
        nonlocal next_id
        next_id += 1
        sock.send(json.dumps({"jsonrpc": "2.0", "id": next_id, "method": method, "params": params}).encode())
        reply = json.loads(sock.recv())
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    before = cpu_micros(pid)
    start = time.perf_counter()
    for _ in range(jobs):
        call("jobs.create", {"type": "py", "operation": "run", "source": "s"})
        job = call("jobs.claim", {"listenerId": "py", "jobs": ["py:run"]})["job"]
        call("jobs.update", {"jobId": job["id"], "listenerId": "py", "progress": 50})
        call("jobs.complete", {"jobId": job["id"], "listenerId": "py", "outcome": {"message": "ok"}})
    elapsed = time.perf_counter() - start
    return {"jobsPerSecond": jobs / elapsed, "serverMicrosPerJob": (cpu_micros(pid) - before) / jobs}


def beanstalkd(port: int, jobs: int, pid: int) -> dict:
    import greenstalk

    client = greenstalk.Client(("127.0.0.1", port))
    before = cpu_micros(pid)
    start = time.perf_counter()
    for _ in range(jobs):
        client.put("run")
        job = client.reserve()
        client.touch(job)
        client.delete(job)
    elapsed = time.perf_counter() - start
    return {"jobsPerSecond": jobs / elapsed, "serverMicrosPerJob": (cpu_micros(pid) - before) / jobs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("system", choices=["jobwire", "beanstalkd"])
    parser.add_argument("--commands", help="the broker's commands endpoint (jobwire)")
    parser.add_argument("--port", type=int, help="beanstalkd's port")
    parser.add_argument("--pid", type=int, required=True, help="the server's pid, for its CPU time")
    parser.add_argument("--jobs", type=int, default=5000)
    args = parser.parse_args()
    if args.system == "jobwire":
        result = jobwire(args.commands, args.jobs, args.pid)
    else:
        result = beanstalkd(args.port, args.jobs, args.pid)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

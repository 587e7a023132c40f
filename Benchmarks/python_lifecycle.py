#!/usr/bin/env python3
"""The same job lifecycle driven from Python against Jobwire (pyzmq) and beanstalkd (greenstalk).

One client per system, one job at a time, the lifecycle each system offers:
  jobwire:            jobs.create, jobs.claim, jobs.update {progress}, jobs.complete, each a REQ round trip
  jobwire-pipelined:  the same four requests over one DEALER, one round trip per job: each round trip
                      sends the previous job's update and complete and this job's create and claim
  beanstalkd:         put, reserve, touch, delete
  beanstalkd-workers: --workers processes, one job at a time each (reserve, touch, delete), while this
                      process puts the jobs: the beanstalkd side of `jobwire-bench --only python-client`
  zmq-round-trip:     no broker: REQ round trips against a ROUTER that echoes (the floor of a sync client)
Prints one JSON object: jobs per second and the server's CPU microseconds per lifecycle (from /proc),
or, for zmq-round-trip, the round trip's p50 in microseconds.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

# A reply that does not come in this long means the broker is gone: fail instead of hanging the bench.
TIMEOUT_MS = 10_000


def cpu_micros(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks * 1e6


def need(module: str, package: str):
    """Imports a client library, or exits with what to install."""
    try:
        return __import__(module)
    except ImportError:
        pip = os.path.join(os.path.dirname(sys.executable), "pip")
        sys.exit(f"python_lifecycle.py: {package} is not installed for {sys.executable} ({pip} install {package})")


def encode(request_id: int, method: str, params: dict) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}).encode()


CREATE = {"type": "py", "operation": "run", "source": "s"}
CLAIM = {"listenerId": "py", "jobs": ["py:run"]}


def update(job_id: str) -> dict:
    return {"jobId": job_id, "listenerId": "py", "progress": 50}


def complete(job_id: str) -> dict:
    return {"jobId": job_id, "listenerId": "py", "outcome": {"message": "ok"}}


def claimed(result: dict) -> str:
    """The id of the job a claim returned; the job it should find was created just before it."""
    if result.get("job") is None:
        raise RuntimeError("jobs.claim returned no job right after its jobs.create")
    return result["job"]["id"]


def jobwire(commands: str, jobs: int, pid: int) -> dict:
    zmq = need("zmq", "pyzmq")
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
    sock.connect(commands)
    next_id = 0

    def call(method: str, params: dict) -> dict:
        nonlocal next_id
        next_id += 1
        sock.send(encode(next_id, method, params))
        reply = json.loads(sock.recv())
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    before = cpu_micros(pid)
    start = time.perf_counter()
    for _ in range(jobs):
        call("jobs.create", CREATE)
        job_id = claimed(call("jobs.claim", CLAIM))
        call("jobs.update", update(job_id))
        call("jobs.complete", complete(job_id))
    elapsed = time.perf_counter() - start
    return {"jobsPerSecond": jobs / elapsed, "serverMicrosPerJob": (cpu_micros(pid) - before) / jobs}


def jobwire_pipelined(commands: str, jobs: int, pid: int) -> dict:
    """One round trip per job over a DEALER: [update(previous), complete(previous), create, claim].

    The broker handles one connection's requests in order, so the claim finds the job created just
    before it. The first round trip is only [create, claim], the last only [update, complete].
    """
    zmq = need("zmq", "pyzmq")
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
    sock.connect(commands)
    next_id = 0

    def send(pending: dict[int, str], method: str, params: dict) -> None:
        nonlocal next_id
        next_id += 1
        # DEALER: an empty delimiter frame, then the request (REQ adds the delimiter by itself).
        sock.send_multipart([b"", encode(next_id, method, params)])
        pending[next_id] = method

    def receive(pending: dict[int, str]) -> dict[str, dict]:
        results = {}
        while pending:
            frames = sock.recv_multipart()
            if len(frames) != 2 or frames[0] != b"":
                raise RuntimeError(f"reply not framed [b'', reply]: {frames!r}")
            reply = json.loads(frames[1])
            method = pending.pop(reply.get("id"), None)
            if method is None:
                raise RuntimeError(f"reply to no pending request: {reply}")
            if "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            results[method] = reply["result"]
        return results

    previous = None
    before = cpu_micros(pid)
    start = time.perf_counter()
    for index in range(jobs + 1):
        pending: dict[int, str] = {}
        if previous is not None:
            send(pending, "jobs.update", update(previous))
            send(pending, "jobs.complete", complete(previous))
        if index < jobs:
            send(pending, "jobs.create", CREATE)
            send(pending, "jobs.claim", CLAIM)
        results = receive(pending)
        previous = claimed(results["jobs.claim"]) if index < jobs else None
    elapsed = time.perf_counter() - start
    return {"jobsPerSecond": jobs / elapsed, "serverMicrosPerJob": (cpu_micros(pid) - before) / jobs}


def beanstalkd(port: int, jobs: int, pid: int) -> dict:
    greenstalk = need("greenstalk", "greenstalk")
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


def _beanstalkd_worker(port: int, jobs: int, counter, done, ready) -> None:
    greenstalk = need("greenstalk", "greenstalk")
    client = greenstalk.Client(("127.0.0.1", port))
    ready.release()
    while True:
        job = client.reserve()
        client.touch(job)
        client.delete(job)
        with counter.get_lock():
            counter.value += 1
            if counter.value == jobs:
                done.set()


def beanstalkd_workers(port: int, jobs: int, pid: int, workers: int) -> dict:
    """`workers` greenstalk worker processes, one job at a time each, while this process puts `jobs` jobs.

    The clock starts at the first put, once every worker is connected, and stops when the last job is
    deleted. Also returns the workers' CPU per job.
    """
    greenstalk = need("greenstalk", "greenstalk")
    import multiprocessing

    mp = multiprocessing.get_context("fork")
    counter = mp.Value("q", 0)
    done = mp.Event()
    ready = mp.Semaphore(0)
    processes = [mp.Process(target=_beanstalkd_worker, args=(port, jobs, counter, done, ready), daemon=True)
                 for _ in range(workers)]
    for process in processes:
        process.start()
    for _ in processes:
        if not ready.acquire(timeout=TIMEOUT_MS / 1000):
            raise RuntimeError("a beanstalkd worker did not connect")
    client = greenstalk.Client(("127.0.0.1", port))
    before = cpu_micros(pid)
    workers_before = sum(cpu_micros(process.pid) for process in processes)
    start = time.perf_counter()
    for _ in range(jobs):
        client.put("run")
    if not done.wait(timeout=120):
        raise RuntimeError(f"beanstalkd workers ran {counter.value} of {jobs} jobs in 120 s")
    elapsed = time.perf_counter() - start
    server = cpu_micros(pid) - before
    workers_cpu = sum(cpu_micros(process.pid) for process in processes) - workers_before
    for process in processes:
        process.terminate()
        process.join()
    return {"jobsPerSecond": jobs / elapsed, "serverMicrosPerJob": server / jobs,
            "clientMicrosPerJob": workers_cpu / jobs}


def zmq_round_trip(endpoint: str, count: int) -> dict:
    """p50 of `count` REQ round trips, each carrying a request-sized body, against a ROUTER echo."""
    zmq = need("zmq", "pyzmq")
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.RCVTIMEO, TIMEOUT_MS)
    sock.connect(endpoint)
    body = encode(1, "jobs.create", CREATE)
    samples = []
    for _ in range(count):
        start = time.perf_counter_ns()
        sock.send(body)
        sock.recv()
        samples.append((time.perf_counter_ns() - start) / 1000)
    samples.sort()
    return {"p50Micros": samples[len(samples) // 2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("system", choices=["jobwire", "jobwire-pipelined", "beanstalkd", "beanstalkd-workers",
                                                 "zmq-round-trip"])
    parser.add_argument("--commands", help="the broker's commands endpoint (jobwire), or the echo's (zmq-round-trip)")
    parser.add_argument("--port", type=int, help="beanstalkd's port")
    parser.add_argument("--pid", type=int, help="the server's pid, for its CPU time (not for zmq-round-trip)")
    parser.add_argument("--jobs", type=int, default=5000, help="lifecycles (round trips for zmq-round-trip)")
    parser.add_argument("--workers", type=int, default=4, help="worker processes (beanstalkd-workers)")
    args = parser.parse_args()
    if args.system != "zmq-round-trip" and args.pid is None:
        parser.error(f"{args.system} needs --pid")
    if args.system == "jobwire":
        result = jobwire(args.commands, args.jobs, args.pid)
    elif args.system == "jobwire-pipelined":
        result = jobwire_pipelined(args.commands, args.jobs, args.pid)
    elif args.system == "beanstalkd":
        result = beanstalkd(args.port, args.jobs, args.pid)
    elif args.system == "beanstalkd-workers":
        result = beanstalkd_workers(args.port, args.jobs, args.pid, args.workers)
    else:
        result = zmq_round_trip(args.commands, args.jobs)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

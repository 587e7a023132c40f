#!/usr/bin/env python3
"""A competing fault-suite worker: claims jobs with `jobs.claim`, works, completes, and logs each step.

Built on the jobwire package, clients/python (Client, LeaseKeeper). One line per step goes to --log, written
with os.write so that a SIGKILL loses nothing the process had done:

    start <jobId> <attempt>      claimed, about to work
    done <jobId> <attempt>       jobs.complete succeeded
    late <jobId> <attempt> <type>  jobs.complete was refused (lease_expired, conflict, ...)

A job's input drives the work: `workMs` (how long), `poison` (the worker SIGKILLs itself),
`slowMs` (on attempt 1: work this long without renewing the lease, then complete: the late call),
`failAttempts` (attempts up to this one end in `jobs.fail {retry: true}`: a flaky downstream),
`hangMs` with `hangAttempts` (attempts up to that one renew the lease and work this long: past the
job's `timeoutSeconds`, so that the broker times them out and the complete comes late).

    failed <jobId> <attempt>     jobs.fail {retry: true} succeeded
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

from jobwire import Client, JobwireTimeout, LeaseKeeper  # the package clients/python
from jobwire import ProtocolError as JobwireError


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--jobs", default="fault:*")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--log", required=True)
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args()

    fd = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    lock = threading.Lock()

    def log(*words: object) -> None:
        line = (" ".join(str(w) for w in words) + "\n").encode()
        with lock:
            os.write(fd, line)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def work(index: int) -> None:
        # One listenerId per thread (name/index): the broker tells lease owners apart by listenerId only,
        # so two threads sharing one would each pass for the owner of the other's attempt.
        listener_id = f"{args.name}/{index}"
        client = Client(args.commands, listener_id=listener_id, timeout=args.timeout)
        leases = LeaseKeeper(Client(args.commands, listener_id=listener_id, timeout=args.timeout))
        while not stop.is_set():
            try:
                job = client.claim([args.jobs], wait=1)
            except (JobwireError, JobwireTimeout):
                time.sleep(0.2)
                continue
            if job is None:
                continue
            job_id, attempt = job["id"], job.get("attempt")
            data = job.get("input") or {}
            log("start", job_id, attempt)
            if data.get("poison"):
                os.kill(os.getpid(), signal.SIGKILL)
            if attempt <= int(data.get("failAttempts") or 0):
                try:
                    client.fail(job_id, {"message": f"flaky downstream (attempt {attempt})"}, retry=True)
                    log("failed", job_id, attempt)
                except (JobwireError, JobwireTimeout) as error:
                    log("late", job_id, attempt, getattr(error, "type", None) or type(error).__name__)
                continue
            if data.get("slowMs") and attempt == 1:
                time.sleep(data["slowMs"] / 1000)  # no renewal: the lease runs out under us
            elif data.get("hangMs") and attempt <= int(data.get("hangAttempts") or 0):
                leases.hold(job)  # renewed all along: only the job's timeoutSeconds ends this attempt
                time.sleep(data["hangMs"] / 1000)
            else:
                leases.hold(job)
                if data.get("workMs"):
                    time.sleep(data["workMs"] / 1000)
            for _ in range(20):
                try:
                    client.complete(job_id, {"message": f"done by {args.name}"})
                    log("done", job_id, attempt)
                    break
                except JobwireError as error:
                    log("late", job_id, attempt, error.type or error.code)
                    break
                except JobwireTimeout:
                    log("timeout", job_id, attempt)  # the broker is away: try again, it may come back
                    time.sleep(0.5)
            leases.drop(job_id)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(args.threads)]
    for thread in threads:
        thread.start()
    log("ready", os.getpid())
    stop.wait()
    os._exit(0)


if __name__ == "__main__":
    main()

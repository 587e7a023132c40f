#!/usr/bin/env python3
"""Creates N jobs, prints their progress events, and exits when every one has ended.

    python producer.py [--count 3] [--job workbook:export] [--timeout 120]
                       [--commands tcp://127.0.0.1:7401] [--events tcp://127.0.0.1:7400]

Exit status: 0 if every job completed, 1 if any failed or was canceled, 2 on timeout.
It subscribes before creating (so no event of its jobs can be missed), and checks with jobs.get
when the stream goes quiet, in case an event was dropped. Needs the `jobwire` package
(`pip install ./clients/python`; scripts/python-env.sh does it).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from typing import Any, Optional

import zmq

from jobwire import (HEARTBEAT_TOPIC, TERMINAL_STATUSES, JobsClient, Json, default_commands, default_events,
                     split_topic_frame, subscription_prefix)


def wait_for_heartbeat(sub: zmq.Socket[Any], timeout: float) -> None:
    """The first heartbeat shows the broker has applied the subscriptions sent before it."""
    deadline = time.monotonic() + timeout
    while (remaining := deadline - time.monotonic()) > 0 and sub.poll(int(remaining * 1000), zmq.POLLIN):
        if split_topic_frame(sub.recv_multipart()[0])[0] == HEARTBEAT_TOPIC:
            return
    raise TimeoutError("no broker heartbeat: is the broker running?")


def describe(topic: str, payload: Json) -> str:
    parts = [f"{topic:<16}", f"status={payload.get('status')}"]
    if payload.get("progress") is not None:
        parts.append(f"progress={payload['progress']:g}")
    for key in ("info", "estimatedCompletionAt"):
        if payload.get(key):
            parts.append(f"{key}={payload[key]!r}")
    if payload.get("outcome"):
        parts.append(f"outcome={json.dumps(payload['outcome'])}")
    return " ".join(parts)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", default=default_commands(), help="commands endpoint (env JOBWIRE_COMMANDS)")
    parser.add_argument("--events", default=default_events(), help="events endpoint (env JOBWIRE_EVENTS)")
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--job", default="workbook:export", help="job name type:operation")
    parser.add_argument("--source", default="us_wb_1")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for every job to end")
    args = parser.parse_args(argv)
    job_type, _, operation = args.job.partition(":")
    if not operation:
        parser.error("--job must be type:operation")

    context = zmq.Context.instance()
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(args.events)
    for topic in ("job:ready", "job:updated", "job:completed", "job:failed"):
        sub.setsockopt(zmq.SUBSCRIBE, subscription_prefix(topic, args.job).encode())
    sub.setsockopt(zmq.SUBSCRIBE, f"{HEARTBEAT_TOPIC}/".encode())

    with JobsClient(args.commands, context=context) as client:
        try:
            wait_for_heartbeat(sub, timeout=5)
        except TimeoutError as error:
            print(f"{error} ({args.events})", file=sys.stderr)
            return 2
        batch = uuid.uuid4().hex[:8]
        status: dict[str, str] = {}
        for n in range(args.count):
            job = client.create(job_type, operation, args.source, mode="foreground",
                                idempotency_key=f"producer-{batch}-{n}", input={"batch": batch, "n": n})
            status[job.id] = job.status
            print(f"{job.id} created ({job.status})", flush=True)

        deadline = time.monotonic() + args.timeout
        last_news = time.monotonic()
        while pending := [j for j, s in status.items() if s not in TERMINAL_STATUSES]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                print("timed out waiting for: " + ", ".join(pending), file=sys.stderr)
                return 2
            if time.monotonic() - last_news > 5:
                # Quiet for a while: an ending event may have been dropped, so ask the store.
                for job_id in pending:
                    status[job_id] = client.get(job_id).status
                last_news = time.monotonic()
                continue
            if not sub.poll(int(min(remaining, 1.0) * 1000), zmq.POLLIN):
                continue
            frames = sub.recv_multipart()
            topic, _ = split_topic_frame(frames[0])
            envelope = json.loads(frames[1])
            job_id = (envelope.get("context") or {}).get("jobId")
            if topic == HEARTBEAT_TOPIC or job_id not in status:
                continue
            payload = envelope["payload"]
            status[job_id] = payload["status"]
            last_news = time.monotonic()
            print(f"{job_id} {describe(topic, payload)}", flush=True)
        sub.close()
    failed = sorted(j for j, s in status.items() if s != "complete")
    print(f"{len(status) - len(failed)} complete, {len(failed)} not complete", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

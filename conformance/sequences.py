#!/usr/bin/env python3
"""Checks, from the broker's event log, that a run's jobs all went through the same life.

    python sequences.py --commands tcp://127.0.0.1:7401 --label "swift producer -> python listener" ID...

Reads the whole log with `events.list` (paging on past `limit`), keeps the events of the given job
ids, and checks that every job's topics are

    job:created, job:ready, job:updated (the ack), job:updated (progress)..., job:completed

with at least one progress update, the same sequence for every job, exactly one job:completed,
no job:failed, and the job `complete` in `jobs.get`. Prints one `PASS ...` or `FAIL ...` line per
check; the exit status is the number of failed checks (capped at 100). It uses pyzmq and the
standard library only, so it is also a plain example of reading the log.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import Counter, defaultdict
from typing import Any

import zmq


class Rpc:
    def __init__(self, endpoint: str, timeout: float = 10.0) -> None:
        self.socket = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self.ids = itertools.count(1)
        self.timeout_ms = int(timeout * 1000)

    def __call__(self, method: str, params: dict[str, Any]) -> Any:
        request_id = next(self.ids)
        self.socket.send_multipart([b"", json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}).encode()])
        while True:
            if not self.socket.poll(self.timeout_ms):
                raise TimeoutError(f"{method}: no reply")
            reply = json.loads(self.socket.recv_multipart()[-1])
            if reply.get("id") == request_id:
                break
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]


def all_events(rpc: Rpc) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    since = 0
    while True:
        page = rpc("events.list", {"since": since, "topics": ["job:*"]})
        events += page["events"]
        # A page may stop short of lastSeq with any number of events: nextSince says where to go on.
        next_since = page.get("nextSince", page["events"][-1]["seq"] if page["events"] else page["lastSeq"])
        if next_since >= page["lastSeq"] or next_since <= since:
            return events
        since = next_since


def compact(topics: tuple[str, ...]) -> str:
    """`job:created, job:ready, job:updated x5, job:completed`."""
    parts = []
    for topic, group in itertools.groupby(topics):
        count = len(list(group))
        parts.append(topic if count == 1 else f"{topic} x{count}")
    return ", ".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", required=True)
    parser.add_argument("--label", default="run")
    parser.add_argument("--expect", type=int, help="how many job ids there must be")
    parser.add_argument("ids", nargs="*")
    args = parser.parse_args()
    label = args.label
    failures = 0

    def check(ok: bool, what: str) -> None:
        nonlocal failures
        print(f"{'PASS' if ok else 'FAIL'} {label}: {what}", flush=True)
        failures += 0 if ok else 1

    ids = list(dict.fromkeys(args.ids))
    expected = args.expect if args.expect is not None else len(ids)
    check(len(ids) == expected and expected > 0, f"{len(ids)} jobs created (expected {expected})")
    if not ids:
        return min(failures, 100)

    rpc = Rpc(args.commands)
    wanted = set(ids)
    per_job: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in all_events(rpc):
        job_id = (event.get("context") or {}).get("jobId")
        if job_id in wanted:
            per_job[job_id].append(event)

    sequences = {job_id: tuple(e["topic"] for e in per_job[job_id]) for job_id in ids}
    malformed = []
    for job_id, topics in sequences.items():
        events = per_job[job_id]
        updates = [e for e in events if e["topic"] == "job:updated"]
        shape_ok = (
            len(topics) >= 5
            and topics[:3] == ("job:created", "job:ready", "job:updated")
            and topics[-1] == "job:completed"
            and all(t == "job:updated" for t in topics[2:-1])
            and updates[0]["payload"].get("status") == "executing"
            and all(e["payload"].get("status") == "executing" for e in updates)
        )
        if not shape_ok:
            malformed.append(f"{job_id}: {compact(topics) or 'no events'}")
    check(not malformed, "every job is created, ready, updated (ack), updated (progress) >= 1, completed"
          + ("" if not malformed else " -- " + "; ".join(malformed[:3])))

    distinct = Counter(sequences.values())
    if len(distinct) == 1:
        only = next(iter(distinct))
        check(True, f"all {len(ids)} jobs have the same sequence: {compact(only)}")
    else:
        shapes = "; ".join(f"{n} jobs: {compact(s)}" for s, n in distinct.most_common())
        check(False, f"jobs differ in their sequence of events -- {shapes}")

    completed = {job_id: topics.count("job:completed") for job_id, topics in sequences.items()}
    twice = [j for j, n in completed.items() if n != 1]
    check(not twice, "each job completed exactly once" + ("" if not twice else f" -- not so for {', '.join(twice[:5])}"))

    failed = [j for j, topics in sequences.items() if "job:failed" in topics]
    check(not failed, "no job failed" + ("" if not failed else f" -- failed: {', '.join(failed[:5])}"))

    progress_ok = all(
        [e["payload"].get("progress", 0) for e in per_job[j] if e["topic"] == "job:updated"]
        == sorted(e["payload"].get("progress", 0) for e in per_job[j] if e["topic"] == "job:updated")
        for j in ids
    )
    check(progress_ok, "progress never goes back")

    statuses = Counter(rpc("jobs.get", {"jobId": j})["status"] for j in ids)
    check(statuses == Counter({"complete": len(ids)}), f"jobs.get: {dict(statuses)}")
    return min(failures, 100)


if __name__ == "__main__":
    sys.exit(main())

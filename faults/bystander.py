#!/usr/bin/env python3
"""A bystander client for the hostile-client scenarios: a steady loop of `jobs.create` + `jobs.get`
round trips over its own DEALER, each timed, while another client attacks the broker.

It runs until SIGTERM (SIGUSR1: without waiting for the reply in flight) or --max-seconds, then
writes one JSON object to --out:

    {"samples": [[sent, ms, method, ok], ...], "acked": [jobId, ...], "errors": n, "unanswered": n}

`sent` is time.monotonic() when the request went out (CLOCK_MONOTONIC: the suite's clock too), `ms`
the round trip; a request still without a reply when it stops counts with the time it has waited so
far (`ok` false, and `unanswered` + 1). The first line on stdout, `ready`, comes after the first
round trip that got a reply.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

import zmq


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--tag", default="by")
    parser.add_argument("--pause-ms", type=float, default=10.0, help="pause between round trips")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args()

    stopping = False
    stopped_at = 0.0

    def stop(*_: object) -> None:
        nonlocal stopping, stopped_at
        stopping = True
        stopped_at = time.monotonic()

    def stop_now(*_: object) -> None:
        nonlocal stopping, stopped_at
        stopping = True
        stopped_at = -1e9

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGUSR1, stop_now)  # the broker is gone: no reply is coming
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(args.commands)
    samples: list[list[object]] = []
    acked: list[str] = []
    errors = unanswered = 0
    ready = False
    started = time.monotonic()
    next_id = 0

    def round_trip(method: str, params: dict[str, object]) -> object:
        """One request; returns its result, None for an error reply or no reply."""
        nonlocal next_id, errors, unanswered
        next_id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": next_id, "method": method, "params": params}).encode()
        sent = time.monotonic()
        sock.send_multipart([b"", body])
        # A stop lets the request in flight finish (10 s at most): only a broker that does not answer
        # leaves one unanswered.
        while not stopping or time.monotonic() - stopped_at < 10:
            if not sock.poll(50, zmq.POLLIN):
                continue
            reply = json.loads(sock.recv_multipart()[-1])
            if reply.get("id") != next_id:
                continue
            ok = "result" in reply
            samples.append([sent, (time.monotonic() - sent) * 1000, method, ok])
            if not ok:
                errors += 1
                return None
            return reply["result"]
        samples.append([sent, (time.monotonic() - sent) * 1000, method, False])
        unanswered += 1
        return None

    i = 0
    while not stopping and time.monotonic() - started < args.max_seconds:
        job = round_trip("jobs.create", {"type": "bystander", "operation": "probe", "source": "us_src_bystander",
                                         "idempotencyKey": f"{args.tag}-{i}", "input": {"i": i}})
        i += 1
        if isinstance(job, dict):
            acked.append(job["id"])
            got = round_trip("jobs.get", {"jobId": job["id"]})
            if got is not None and not ready:
                ready = True
                print("ready", flush=True)
        time.sleep(args.pause_ms / 1000)
    with open(args.out, "w") as f:
        json.dump({"samples": samples, "acked": acked, "errors": errors, "unanswered": unanswered}, f)
    sock.close(0)
    sys.exit(0)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A `workbook:export` listener: acks each ready job, reports progress, completes with a download.

    python listener.py [--commands tcp://127.0.0.1:7401] [--events tcp://127.0.0.1:7400]
                       [--name exports] [--steps 4] [--step-seconds 0.5] [--claim]

By default it handles every `job:ready` event (Flatfile's way: the first ack wins). With --claim
it competes for jobs with `jobs.claim` instead, so several copies share the work without racing.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from typing import Optional

from jobwire import Event, Json, Listener, Tick, default_commands, default_events, utc_iso


def export(event: Event, report: Tick, steps: int, step_seconds: float, stop: threading.Event) -> Json:
    """The work: a few steps, each reported with progress and a fresh completion estimate."""
    for step in range(1, steps + 1):
        if stop.wait(step_seconds):
            raise RuntimeError("listener stopping")
        remaining = (steps - step) * step_seconds
        report(100 * step / steps, f"Exported part {step} of {steps}", utc_iso(time.time() + remaining))
    name = f"export-{event.job_id}.xlsx"
    return {
        "info": "Export ready",
        "outcome": {
            "heading": "Export complete",
            "message": f"Exported {steps} parts",
            "acknowledge": True,
            "buttonText": "Download",
            "next": {"type": "download", "url": f"file:///tmp/{name}", "label": "Download export", "fileName": name},
        },
    }


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", default=default_commands(), help="commands endpoint (env JOBWIRE_COMMANDS)")
    parser.add_argument("--events", default=default_events(), help="events endpoint (env JOBWIRE_EVENTS)")
    parser.add_argument("--name", default="python-exports", help="listenerId")
    parser.add_argument("--job", default="workbook:export", help="job name (glob) to handle")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--step-seconds", type=float, default=0.5)
    parser.add_argument("--claim", action="store_true", help="compete with jobs.claim instead of acking events")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    listener = Listener(args.name, commands=args.commands, events=args.events)
    stopping = threading.Event()

    if args.claim:
        @listener.job_handler(args.job)
        def claimed(event: Event, tick: Tick) -> Json:
            logging.info("claimed %s (attempt %s)", event.job_id, event.payload.get("attempt"))
            return export(event, tick, args.steps, args.step_seconds, stopping)
    else:
        @listener.on("job:ready", job=args.job)
        def ready(event: Event) -> None:
            event.ack(progress=0, info="Accepted", estimated_completion_at=utc_iso(time.time() + args.steps * args.step_seconds))
            logging.info("acked %s (attempt %s)", event.job_id, event.payload.get("attempt"))
            try:
                details = export(event, lambda p, i, e: event.update(progress=p, info=i, estimated_completion_at=e),
                                 args.steps, args.step_seconds, stopping)
            except Exception as error:
                event.fail({"acknowledge": True, "message": str(error)}, info=str(error))
                raise
            event.complete(details["outcome"], info=details["info"])
            logging.info("completed %s", event.job_id)

    signal.signal(signal.SIGTERM, lambda *_: listener.stop())
    logging.info("listening for %s on %s / %s", args.job, args.events, args.commands)
    try:
        listener.run()
    finally:
        stopping.set()


if __name__ == "__main__":
    main()

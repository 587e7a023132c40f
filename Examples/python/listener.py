#!/usr/bin/env python3
"""A `workbook:export` listener: acks each ready job, reports progress, completes with a download.

    python listener.py [--commands tcp://127.0.0.1:7401] [--events tcp://127.0.0.1:7400]
                       [--name exports] [--steps 4] [--step-seconds 0.5] [--claim] [--concurrency 8]

By default it handles every `job:ready` event (Flatfile's way: the first ack wins). With --claim
it competes for jobs with `jobs.claim` instead, so several copies share the work without racing.
Needs the `jobwire` package: `pip install ./clients/python` (scripts/python-env.sh does it).
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
from typing import Callable, Optional

from jobwire import (JobCompletion, Listener, ListenerEvent, Outcome, OutcomeNext, default_commands, default_events,
                     format_time)

Report = Callable[[float, str, str], object]


def export(event: ListenerEvent, report: Report, steps: int, step_seconds: float) -> JobCompletion:
    """The work: a few steps, each reported with progress and a fresh completion estimate."""
    for step in range(1, steps + 1):
        if event.cancelled.wait(step_seconds):
            raise RuntimeError("the job was canceled or the listener is stopping")
        remaining = (steps - step) * step_seconds
        report(100 * step / steps, f"Exported part {step} of {steps}", format_time(time.time() + remaining) or "")
    name = f"export-{event.job_id}.xlsx"
    return JobCompletion(
        info="Export ready",
        outcome=Outcome(heading="Export complete", message=f"Exported {steps} parts", acknowledge=True,
                        button_text="Download",
                        next=OutcomeNext("download", label="Download export", url=f"file:///tmp/{name}",
                                         file_name=name)),
    )


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", default=default_commands(), help="commands endpoint (env JOBWIRE_COMMANDS)")
    parser.add_argument("--events", default=default_events(), help="events endpoint (env JOBWIRE_EVENTS)")
    parser.add_argument("--name", default="python-exports", help="listenerId")
    parser.add_argument("--job", default="workbook:export", help="job name (glob) to handle")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--step-seconds", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=8, help="jobs handled at once")
    parser.add_argument("--claim", action="store_true", help="compete with jobs.claim instead of acking events")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    listener = Listener(args.name, commands=args.commands, events=args.events, concurrency=args.concurrency)

    if args.claim:
        @listener.job_handler(args.job)
        def claimed(event: ListenerEvent) -> JobCompletion:
            logging.info("claimed %s (attempt %s)", event.job_id, event.attempt)
            return export(event, event.tick, args.steps, args.step_seconds)
    else:
        @listener.on("job:ready", job=args.job)
        def ready(event: ListenerEvent) -> None:
            eta = format_time(time.time() + args.steps * args.step_seconds)
            event.ack(progress=0, info="Accepted", estimated_completion_at=eta)
            logging.info("acked %s (attempt %s)", event.job_id, event.attempt)
            # Raising after the ack fails the job (acknowledge: true, the error's message).
            done = export(event, event.tick, args.steps, args.step_seconds)
            event.complete(done.outcome, info=done.info)
            logging.info("completed %s", event.job_id)

    signal.signal(signal.SIGTERM, lambda *_: listener.stop())
    logging.info("listening for %s on %s / %s", args.job, args.events, args.commands)
    listener.run()


if __name__ == "__main__":
    main()

"""The listener the worker tests run with `python -m jobwire worker handlers:listener`.

A job's input drives its handler: `waitFor` (a file path: wait until it exists), `fail` (raise this
message), `tick` (report progress first).
"""

from __future__ import annotations

import os
import sys
import time

from jobwire import Listener, ListenerEvent, Outcome

def say(line: str) -> None:
    sys.stdout.write(line + "\n")  # one write: lines of concurrent handlers do not interleave
    sys.stdout.flush()


# JOBWIRE_REQUEST_TIMEOUT: a takeover test waits longer than it runs, so only a resend brings a call back.
listener = Listener(name="pytest-workers", claim_wait=5,
                    request_timeout=float(os.environ.get("JOBWIRE_REQUEST_TIMEOUT") or 10))


@listener.on("job:ready", job="event:*")
def on_ready(event: ListenerEvent) -> None:
    """Jobs taken by their job:ready event (``jobs.ack``) rather than claimed."""
    event.ack(progress=0)
    say(f"event {event.job_id} {'replayed' if event.replayed else 'live'}")
    event.complete(Outcome(message=f"done by {os.getpid()}"))


@listener.job_handler("test:*")
def work(event: ListenerEvent) -> Outcome:
    data = event.input or {}
    say(f"start {event.job_id} {event.attempt}")
    if data.get("tick"):
        event.tick(50, "Half way")
    if data.get("waitFor"):
        while not os.path.exists(data["waitFor"]):  # a handler that does not look at event.cancelled
            time.sleep(0.02)
    if data.get("fail"):
        raise RuntimeError(data["fail"])
    say(f"done {event.job_id} {event.attempt}")
    return Outcome(message=f"done by {os.getpid()}")

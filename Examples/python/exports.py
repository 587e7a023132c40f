"""A listener module for the worker command:

    python -m jobwire worker exports:listener --concurrency 8     (run from Examples/python)

Each `workbook:export` job runs in exactly one worker (jobs.claim), however many copies run.
"""

from __future__ import annotations


from jobwire import Listener, ListenerEvent, Outcome

listener = Listener(name="exports")


@listener.job_handler("workbook:export")
def export(event: ListenerEvent) -> Outcome:
    for step in range(1, 5):
        if event.cancelled.wait(0.25):      # canceled, or the worker's shutdown deadline passed
            raise RuntimeError("stopped")
        event.tick(25 * step, f"Exported part {step} of 4")
    return Outcome(message=f"Exported {event.job_id}", heading="Export complete")

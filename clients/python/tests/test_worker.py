"""`python -m jobwire worker` processes against a real broker: exactly once, failures, SIGTERM."""

from __future__ import annotations

import os
import signal
from collections import Counter
from typing import Callable

from conftest import LIMIT, Broker, Worker, wait_until
from jobwire import JobsClient


def completed_counts(client: JobsClient) -> Counter[str]:
    """job:completed events per job id, from the broker's log (every page)."""
    counts: Counter[str] = Counter()
    since = 0
    while True:
        page = client.events.list(since=since, topics=["job:completed"], limit=1000)
        counts.update(e.job_id for e in page.events if e.job_id)
        if page.next_since is not None and page.next_since > since:
            since = page.next_since
        elif len(page.events) == 1000:
            since = page.events[-1].seq or since
        else:
            return counts


def test_three_workers_complete_each_job_exactly_once(broker: Broker, workers: Callable[..., Worker]) -> None:
    client = broker.client()
    started = [workers("handlers:listener", "--concurrency", "4") for _ in range(3)]
    wait_until(lambda: all("running (instance" in w.log() for w in started), "the workers to run")
    ids = [client.create("test", "export", "x", input={"tick": True, "n": n}).id for n in range(30)]
    wait_until(lambda: all(client.get(i).status == "complete" for i in ids), "all 30 jobs to complete")
    counts = completed_counts(client)
    assert {i: counts[i] for i in ids} == {i: 1 for i in ids}
    assert sum(c.log().count("done us_jb_") for c in started) == 30
    for worker in started:
        worker.proc.send_signal(signal.SIGTERM)
    for worker in started:
        assert worker.proc.wait(LIMIT) == 0
        log = worker.log()
        assert "Traceback" not in log and "ERROR" not in log and "could not" not in log, log


def test_a_handler_that_raises_fails_its_job(broker: Broker, workers: Callable[..., Worker]) -> None:
    client = broker.client()
    workers("handlers:listener")
    job = client.create("test", "export", "x", input={"fail": "the sheet is empty"})
    failed = wait_until(lambda: (j := client.get(job.id)).status == "failed" and j, "the job to fail")
    assert failed.outcome is not None
    assert (failed.outcome.message, failed.outcome.acknowledge) == ("the sheet is empty", True)


def test_sigterm_finishes_running_handlers_then_releases_the_rest(broker: Broker, tmp_path: str,
                                                                   workers: Callable[..., Worker]) -> None:
    client = broker.client()
    go = os.path.join(broker.tmp, "go")
    never = os.path.join(broker.tmp, "never")
    worker = workers("handlers:listener", "--concurrency", "2", "--grace-seconds", "3")
    wait_until(lambda: "running (instance" in worker.log(), "the worker to run")
    finishing = client.create("test", "export", "x", input={"waitFor": go})
    stuck = client.create("test", "export", "x", input={"waitFor": never})
    wait_until(lambda: all(client.get(j.id).status == "executing" for j in (finishing, stuck)),
               "both jobs to run")
    unstarted = client.create("test", "export", "x")  # both slots are busy: nobody claims it
    wait_until(lambda: worker.log().count("start ") == 2, "both handlers to start")

    worker.proc.send_signal(signal.SIGTERM)
    wait_until(lambda: "stopping: no new events or jobs" in worker.log(), "the worker to start its shutdown")
    open(go, "w").close()  # the running handler may finish now, after SIGTERM
    assert worker.proc.wait(LIMIT) == 0, worker.log()

    assert client.get(finishing.id).status == "complete"
    released = client.get(stuck.id)  # its handler outlived the grace period
    assert (released.status, released.attempt, released.lease) == ("ready", 2, None)
    waiting = client.get(unstarted.id)
    assert (waiting.status, waiting.attempt) == ("ready", 1)
    assert f"done {finishing.id}" in worker.log() and f"done {stuck.id}" not in worker.log()

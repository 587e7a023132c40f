"""The Listener's never-miss / never-double rules, in process, against a real broker."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any, Iterator

import pytest

from conftest import LIMIT, Broker, wait_until
from jobwire import JobsClient, Listener, ListenerEvent, RetryableError, glob_match, subscription_prefix


class Recording(Listener):
    """A listener whose `job:ready` handler acks and completes, recording (jobId, replayed); it can
    drop live events before they are handled, as a full high-water mark would."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handled: list[tuple[str, bool]] = []
        self.drop_live = 0
        self.lock = threading.Lock()

        @self.on("job:ready", job="workbook:export")
        def export(event: ListenerEvent) -> None:
            event.ack(progress=0)
            event.complete({"message": "done"})
            with self.lock:
                self.handled.append((event.job_id, event.replayed))

    def _on_live_event(self, topic: str, envelope: Any, client: Any, leases: Any, replayed: bool = False) -> None:
        if not replayed and self.drop_live > 0:
            self.drop_live -= 1
            return
        super()._on_live_event(topic, envelope, client, leases, replayed)

    def counts(self) -> Counter[str]:
        with self.lock:
            return Counter(job_id for job_id, _ in self.handled)


@pytest.fixture
def listener(broker: Broker) -> Iterator[Recording]:
    recording = Recording("recording", commands=broker.commands, events=broker.events, quiet_seconds=0.3,
                          heartbeat_timeout=1.5, grace_seconds=1)
    thread = threading.Thread(target=recording.run)
    thread.start()
    wait_until(lambda: recording._cursor.seq is not None, "the listener to be live")
    try:
        yield recording
    finally:
        recording.stop()
        thread.join(LIMIT)


def test_a_missed_live_event_is_replayed_once(broker: Broker, listener: Recording) -> None:
    client = broker.client()
    listener.drop_live = 1  # the job:ready of the next job never reaches the handlers live
    missed = client.create("workbook", "export", "x")
    wait_until(lambda: client.get(missed.id).status == "complete", "the missed job to be handled by replay")
    live = client.create("workbook", "export", "x")
    wait_until(lambda: client.get(live.id).status == "complete", "the next job to be handled live")
    # The next job may come live or, when events of other topics moved the seq past the cursor since the
    # replay, by a replay of its own: either way once.
    assert (missed.id, True) in listener.handled
    assert listener.counts() == {missed.id: 1, live.id: 1}


def test_jobs_ready_before_the_listener_started_are_handled_once(broker: Broker) -> None:
    client = broker.client()
    waiting = [client.create("workbook", "export", "x").id for _ in range(3)]
    recording = Recording("late", commands=broker.commands, events=broker.events, quiet_seconds=0.3)
    thread = threading.Thread(target=recording.run)
    thread.start()
    try:
        wait_until(lambda: all(client.get(i).status == "complete" for i in waiting), "the waiting jobs")
        more = client.create("workbook", "export", "x").id
        wait_until(lambda: client.get(more).status == "complete", "a live job")
    finally:
        recording.stop()
        thread.join(LIMIT)
    assert recording.counts() == {i: 1 for i in [*waiting, more]}


def test_a_new_epoch_starts_over(broker: Broker, listener: Recording) -> None:
    client = broker.client()
    before = [client.create("workbook", "export", "x").id for _ in range(3)]
    wait_until(lambda: all(client.get(i).status == "complete" for i in before), "the first store's jobs")
    old_epoch = client.broker.info().epoch
    broker.restart()  # a new in-memory store on the same ports: a new epoch, seqs from 1 again
    fresh = JobsClient(broker.commands)
    try:
        assert fresh.broker.info().epoch != old_epoch
        after = fresh.create("workbook", "export", "x").id  # its seqs are below the listener's old cursor
        wait_until(lambda: fresh.get(after).status == "complete", "the new store's job")
    finally:
        fresh.close()
    assert listener.counts()[after] == 1


def test_two_listeners_with_one_name_never_double_a_claimed_job(broker: Broker) -> None:
    client = broker.client()
    runs: Counter[str] = Counter()
    lock = threading.Lock()
    listeners = [Listener("same-name", commands=broker.commands, events=broker.events, concurrency=3,
                          claim_wait=5) for _ in range(2)]
    for each in listeners:
        @each.job_handler("sheet:*")
        def work(event: ListenerEvent, tick: Any) -> None:
            tick(50)
            with lock:
                runs[event.job_id] += 1

    threads = [threading.Thread(target=each.run) for each in listeners]
    for thread in threads:
        thread.start()
    try:
        ids = [client.create("sheet", "validate", "x").id for _ in range(20)]
        wait_until(lambda: all(client.get(i).status == "complete" for i in ids), "the jobs to complete")
    finally:
        for each in listeners:
            each.stop()
        for thread in threads:
            thread.join(LIMIT)
    assert runs == {i: 1 for i in ids}
    assert listeners[0].instance_id != listeners[1].instance_id


@pytest.mark.parametrize("pattern,value,expected", [
    ("job:*", "job:ready", True), ("job:*", "job:parts-completed", True), ("*:ready", "job:ready", True),
    ("sheet:*", "sheet:validate", True), ("sheet:*", "sheet:contacts:submit", False),
    ("sheet:**", "sheet:contacts:submit", True), ("sheet:**", "sheet", True), ("**", "a:b:c", True),
    ("document:*:submit", "document:contacts:submit", True), ("workbook:export", "workbook:exports", False),
])
def test_globs_follow_flatfile(pattern: str, value: str, expected: bool) -> None:
    assert glob_match(pattern, value) is expected


def test_subscription_prefixes_are_the_narrowest() -> None:
    assert subscription_prefix("job:ready", "workbook:export") == "job:ready/workbook:export/"
    assert subscription_prefix("job:ready", "workbook:*") == "job:ready/workbook:"
    assert subscription_prefix("job:*") == "job:"
    assert subscription_prefix("job:ready") == "job:ready/"
    assert subscription_prefix("**") == ""


def run_listener(listener: Listener) -> threading.Thread:
    thread = threading.Thread(target=listener.run)
    thread.start()
    return thread


def test_an_on_handler_that_raises_after_its_ack_fails_the_job(broker: Broker) -> None:
    client = broker.client()
    listener = Listener("raising", commands=broker.commands, events=broker.events)

    @listener.on("job:ready", job="boom:*")
    def boom(event: ListenerEvent) -> None:
        event.ack(progress=0)
        raise ValueError("the workbook is locked")

    thread = run_listener(listener)
    try:
        job = client.create("boom", "now", "x")
        failed = wait_until(lambda: (j := client.get(job.id)).status == "failed" and j, "the job to fail")
    finally:
        listener.stop()
        thread.join(LIMIT)
    assert failed.outcome is not None
    assert (failed.outcome.message, failed.outcome.acknowledge) == ("the workbook is locked", True)


def test_the_lease_is_renewed_while_a_job_handler_runs(broker: Broker) -> None:
    client = broker.client()
    listener = Listener("renewing", commands=broker.commands, events=broker.events, claim_wait=5)
    go = threading.Event()

    @listener.job_handler("long:*")
    def long(event: ListenerEvent) -> None:
        go.wait(LIMIT)

    thread = run_listener(listener)
    try:
        job = client.create("long", "job", "x", lease_seconds=2, max_attempts=1)
        first = wait_until(lambda: (j := client.get(job.id)).lease and j.lease.expires_at, "the job to be claimed")
        # Renewed again and again: the lease now ends long after the first one would have.
        wait_until(lambda: (j := client.get(job.id)).lease and (j.lease.expires_at - first).total_seconds() >= 4,
                   "the lease to be renewed past twice its length")
        go.set()
        done = wait_until(lambda: (j := client.get(job.id)).ended and j, "the job to end")
    finally:
        go.set()
        listener.stop()
        thread.join(LIMIT)
    assert (done.status, done.attempt) == ("complete", 1)


def test_async_handlers_run_to_the_end(broker: Broker) -> None:
    client = broker.client()
    listener = Listener("async", commands=broker.commands, events=broker.events, claim_wait=5)

    @listener.job_handler("async:*")
    async def work(event: ListenerEvent) -> dict[str, Any]:
        await asyncio.sleep(0)
        event.tick(50)
        return {"outcome": {"message": "async done"}, "info": "ok"}

    thread = run_listener(listener)
    try:
        job = client.create("async", "job", "x")
        done = wait_until(lambda: (j := client.get(job.id)).ended and j, "the job to end")
    finally:
        listener.stop()
        thread.join(LIMIT)
    assert done.status == "complete" and done.outcome is not None and done.outcome.message == "async done"
    assert done.info == "ok"


def test_a_retryable_error_runs_the_job_again_after_its_backoff(broker: Broker) -> None:
    client = broker.client()
    listener = Listener("flaky", commands=broker.commands, events=broker.events, claim_wait=5)

    @listener.job_handler("flaky:*")
    def flaky(event: ListenerEvent) -> dict[str, Any]:
        if event.attempt < 3:
            raise RetryableError(f"downstream 503 on attempt {event.attempt}")
        return {"outcome": {"message": "third time lucky"}}

    @listener.job_handler("broken:*")
    def broken(event: ListenerEvent) -> None:
        raise ValueError("the sheet has no rows")

    thread = run_listener(listener)
    try:
        backoff = {"type": "fixed", "delaySeconds": 1}
        job = client.create("flaky", "export", "x", lease_seconds=600, max_attempts=3, backoff=backoff)
        done = wait_until(lambda: (j := client.get(job.id)).ended and j, "the flaky job to end")
        other = client.create("broken", "export", "x", lease_seconds=600, max_attempts=3, backoff=backoff)
        failed = wait_until(lambda: (j := client.get(other.id)).ended and j, "the broken job to end")
        scheduled = client.events.list(topics=["job:scheduled"]).events
    finally:
        listener.stop()
        thread.join(LIMIT)
    assert (done.status, done.attempt) == ("complete", 3)
    assert done.backoff == {"type": "fixed", "delaySeconds": 1, "maxDelaySeconds": 3600}
    # Each retried attempt waited out its backoff in `scheduled`; the ordinary error failed its job at once.
    assert [e.context.get("jobId") for e in scheduled] == [job.id, job.id]
    assert (failed.status, failed.attempt) == ("failed", 1)


def test_an_attempt_past_its_timeout_is_cancelled(broker: Broker) -> None:
    client = broker.client()
    listener = Listener("hung", commands=broker.commands, events=broker.events, claim_wait=5)
    stopped = threading.Event()

    @listener.job_handler("hung:*")
    def hung(event: ListenerEvent) -> None:
        # Only the timeout can end it: the lease is 600 s.
        if event.cancelled.wait(LIMIT):
            stopped.set()

    thread = run_listener(listener)
    try:
        job = client.create("hung", "export", "x", lease_seconds=600, max_attempts=1, timeout_seconds=1,
                            priority=5)
        assert wait_until(stopped.is_set, "the handler to be told its attempt timed out")
        failed = wait_until(lambda: (j := client.get(job.id)).ended and j, "the job to end")
    finally:
        listener.stop()
        thread.join(LIMIT)
    assert (failed.status, failed.timeout_seconds, failed.priority) == ("failed", 1, 5)
    assert failed.outcome is not None and failed.outcome.message == "timed out after 1 s"

"""JobsClient against a real broker: typed results, the lifecycle, errors, pipelining."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
import zmq

from conftest import Broker, wait_until
from jobwire import (ConnectionClosed, Event, Job, JobsClient, JobwireError, JobwireTimeout, Outcome, OutcomeNext,
                     ProtocolError)
from jobwire.types import TERMINAL_STATUSES


def test_create_get_list_are_typed(broker: Broker) -> None:
    client = broker.client()
    job = client.create("workbook", "export", "us_wb_1", input={"n": 1}, lease_seconds=12, space_id="us_sp_1")
    assert isinstance(job, Job)
    assert (job.name, job.status, job.attempt, job.lease_seconds) == ("workbook:export", "ready", 1, 12)
    assert job.input == {"n": 1} and job.context == {"spaceId": "us_sp_1"} and job.created_at is not None
    again = client.get(job.id)
    assert again.id == job.id and again.status == "ready" and again.lease is None
    for n in range(3):
        client.create("sheet", "validate", f"src{n}")
    page = client.list(type="sheet", page_size=2)
    assert [j.type for j in page.data] == ["sheet", "sheet"]
    assert (page.pagination.total_count, page.pagination.page_count) == (3, 2)
    assert len(list(client.list_all(type="sheet"))) == 3


def test_create_always_sends_an_idempotency_key(broker: Broker) -> None:
    client = broker.client()
    first = client.create("workbook", "export", "x", idempotency_key="k-1")
    assert client.create("workbook", "export", "x", idempotency_key="k-1").id == first.id
    assert client.create("workbook", "export", "x").id != client.create("workbook", "export", "x").id


def test_the_full_lifecycle(broker: Broker) -> None:
    client = broker.client(listener_id="lifecycle")
    job = client.create("workbook", "export", "us_wb_1")
    acked = client.ack(job.id, progress=0, info="Accepted")
    assert acked.status == "executing" and acked.lease is not None and acked.lease.owner == "lifecycle"
    assert acked.lease.expires_at is not None
    updated = client.update(job.id, progress=40, info="Working", estimated_completion_at=1_900_000_000.5,
                            attempt=acked.attempt)
    assert updated.progress == 40 and updated.info == "Working"
    assert updated.estimated_completion_at is not None and updated.estimated_completion_at.year == 2030
    outcome = Outcome(message="Exported", heading="Done", acknowledge=True,
                      next=OutcomeNext("download", label="Get it", url="file:///tmp/x.xlsx", file_name="x.xlsx"))
    done = client.complete(job.id, outcome, info="Ready", attempt=acked.attempt)
    assert done.status == "complete" and done.progress == 100 and done.finished_at is not None
    assert done.outcome == outcome
    assert client.ack_outcome(job.id).outcome_acknowledged_at is not None

    # fail, retry, release, cancel, delete
    other = client.create("workbook", "export", "us_wb_1")
    client.ack(other.id)
    failed = client.fail(other.id, "Broken", info="no")
    assert failed.status == "failed" and failed.outcome is not None and failed.outcome.message == "Broken"
    retried = client.retry(other.id)
    assert (retried.status, retried.attempt, retried.outcome) == ("ready", 2, None)
    taken = client.ack(other.id)
    released = client.release(other.id, info="later", attempt=taken.attempt)
    assert (released.status, released.attempt) == ("ready", 3)
    assert client.cancel(other.id, info="no longer needed").status == "canceled"
    client.delete(other.id)
    with pytest.raises(ProtocolError) as gone:
        client.get(other.id)
    assert gone.value.code == ProtocolError.NOT_FOUND and gone.value.type == "not_found"

    # split into parts
    parent = client.create("workbook", "export", "big")
    claimed = client.claim(["workbook:export"], wait=0)
    assert claimed is not None and claimed.id == parent.id and claimed.status == "executing"
    parts = client.split(parent.id, 3, attempt=claimed.attempt)
    assert [p.part for p in parts] == [0, 1, 2] and all(p.is_part and p.parent_id == parent.id for p in parts)
    assert parts[0].part_data is not None and (parts[0].part_data.part, parts[0].part_data.total) == (0, 3)

    # the log, typed
    page = client.events.list(since=0, topics=["job:completed"])
    assert [e.job_id for e in page.events] == [job.id]
    assert isinstance(page.events[0], Event) and page.events[0].seq is not None and page.last_seq >= page.events[0].seq
    info = client.broker.info()
    assert info.epoch == page.epoch and info.seq == page.last_seq and set(info.jobs) >= set(TERMINAL_STATUSES)


def test_errors_are_protocol_errors_with_code_type_and_field(broker: Broker) -> None:
    client = broker.client(listener_id="a")
    with pytest.raises(ProtocolError) as invalid:
        client.create("workbook", "export", "x", mode="sideways")
    assert invalid.value.code == ProtocolError.INVALID_PARAMS and invalid.value.field == "mode"
    with pytest.raises(ProtocolError) as missing:
        client.get("us_jb_nope")
    assert (missing.value.code, missing.value.type) == (-32001, "not_found")
    job = client.create("workbook", "export", "x")
    client.ack(job.id)
    with pytest.raises(ProtocolError) as conflict:
        client.ack(job.id, listener_id="b")
    assert (conflict.value.code, conflict.value.type) == (-32003, "conflict")
    client.complete(job.id)
    with pytest.raises(ProtocolError) as ended:
        client.complete(job.id)
    assert (ended.value.code, ended.value.type) == (-32002, "invalid_transition")
    assert "jobs.complete" in str(ended.value)
    with pytest.raises(ProtocolError) as unknown:
        client.call("jobs.nope", {})
    assert unknown.value.code == ProtocolError.METHOD_NOT_FOUND


def test_many_threads_share_one_connection(broker: Broker) -> None:
    """A claim waiting in the broker does not hold up other calls on the same client (DEALER, pipelined)."""
    client = broker.client(listener_id="shared")
    result: dict[str, Any] = {}
    claimer = threading.Thread(target=lambda: result.update(job=client.claim(["late:job"], wait=30)))
    claimer.start()
    wait_until(lambda: client.broker.info().waiting_claims == 1, "the claim to wait in the broker")
    # 8 threads x 20 calls while the claim waits
    errors: list[BaseException] = []

    def calls() -> None:
        try:
            for _ in range(20):
                client.get(client.create("other", "job", "x").id)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=calls) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and claimer.is_alive()
    created = client.create("late", "job", "x")
    claimer.join(60)
    assert result["job"] is not None and result["job"].id == created.id


def test_no_reply_in_time_is_a_timeout(tmp_path: Any) -> None:
    router = zmq.Context.instance().socket(zmq.ROUTER)  # accepts requests, never answers
    port = router.bind_to_random_port("tcp://127.0.0.1")
    try:
        with JobsClient(f"tcp://127.0.0.1:{port}", timeout=0.2) as client:
            with pytest.raises(JobwireTimeout):
                client.get("us_jb_1")
    finally:
        router.close(linger=0)


def test_a_job_handed_to_an_abandoned_claim_is_released(broker: Broker) -> None:
    """What a stopping listener does with its claims in flight: a job the broker hands them later goes back."""
    client = broker.client(listener_id="impatient")
    outcome: dict[str, Any] = {}

    def claim() -> None:
        try:
            client.claim(["slow:job"], wait=30)
        except JobwireError as error:
            outcome["error"] = error

    claimer = threading.Thread(target=claim)
    claimer.start()
    wait_until(lambda: client.broker.info().waiting_claims == 1, "the claim to wait in the broker")
    for request_id, method in client.connection.pending_methods():
        if method == "jobs.claim":
            client.connection.abandon(request_id)
    claimer.join(60)
    assert isinstance(outcome.get("error"), ConnectionClosed)
    job = client.create("slow", "job", "x")
    released = wait_until(lambda: (j := client.get(job.id)).status == "ready" and j.attempt == 2 and j,
                          "the abandoned claim's job to be released")
    assert released.lease is None


def test_lease_calls_send_listener_and_instance_ids(tmp_path: Any) -> None:
    """Every lease verb names listenerId and instanceId; create always names an idempotencyKey."""
    context = zmq.Context.instance()
    router = context.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    seen: list[dict[str, Any]] = []
    stop = threading.Event()
    job = {"id": "us_jb_1", "type": "t", "operation": "o", "source": "s", "status": "executing", "attempt": 1}

    def serve() -> None:
        import json
        while not stop.is_set():
            if not router.poll(50):
                continue
            identity, empty, body = router.recv_multipart()
            request = json.loads(body)
            seen.append(request)
            method = request["method"]
            result: Any = {"jobs.claim": {"job": job}, "jobs.split": {"parts": [job]}}.get(method, job)
            router.send_multipart([identity, empty, json.dumps({"jsonrpc": "2.0", "id": request["id"],
                                                                "result": result}).encode()])

    server = threading.Thread(target=serve)
    server.start()
    try:
        client = JobsClient(f"tcp://127.0.0.1:{port}", listener_id="exports")
        assert re.fullmatch(r"[A-Za-z0-9._:-]{1,64}", client.instance_id)
        assert re.search(r"-\d+-[a-z0-9]{6}$", client.instance_id)
        client.create("t", "o", "s")
        client.ack("us_jb_1")
        client.claim(["t:o"])
        client.update("us_jb_1", progress=1)
        client.split("us_jb_1", 2)
        client.complete("us_jb_1")
        client.fail("us_jb_1")
        client.release("us_jb_1")
        client.close()
    finally:
        stop.set()
        server.join()
        router.close(linger=0)
    create, *lease_calls = seen
    assert create["params"]["idempotencyKey"]
    assert [r["method"] for r in lease_calls] == ["jobs.ack", "jobs.claim", "jobs.update", "jobs.split",
                                                  "jobs.complete", "jobs.fail", "jobs.release"]
    for request in lease_calls:
        assert request["params"]["listenerId"] == "exports"
        assert request["params"]["instanceId"] == client.instance_id

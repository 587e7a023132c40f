"""Clients given a list of brokers (issue 19) follow the one that takes over.

A takeover is simulated without PostgreSQL: the active broker is killed and another starts on the same
data folder at the other endpoint of the list, so the epoch is the same and the seq continues.
"""

from __future__ import annotations

import os
import signal
import socket
from typing import Any

import pytest

from conftest import Broker, Worker, wait_until
from jobwire import JobsClient, parse_endpoints
from test_worker import completed_counts


def free_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def test_a_worker_given_two_brokers_follows_the_one_that_takes_over(tmp_path: Any) -> None:
    data = os.path.join(str(tmp_path), "store")
    os.makedirs(data)
    first = Broker(str(tmp_path), data=data)
    standby_events, standby_commands = free_endpoint(), free_endpoint()
    commands, events = f"{first.commands},{standby_commands}", f"{first.events},{standby_events}"
    second = None
    worker = None
    client = JobsClient(commands)
    try:
        go = os.path.join(str(tmp_path), "go")
        # Calls wait far longer than the test may run: only a resend brings back one the first broker took
        # with it, never a timeout and a retry.
        worker = Worker(first, "handlers:listener", "--commands", commands, "--events", events,
                        env={"JOBWIRE_REQUEST_TIMEOUT": "600"})
        wait_until(lambda: "live at seq" in worker.log(), "the worker to be live")
        # Nothing listens at the second endpoints yet: the first broker serves.
        before = [client.create("test", "export", "x").id, client.create("event", "export", "x").id]
        wait_until(lambda: all(client.get(i).status == "complete" for i in before), "the first jobs to complete")

        # A job whose handler finishes while the broker is frozen: its complete waits on the frozen broker.
        in_flight = client.create("test", "export", "x", input={"waitFor": go}).id
        wait_until(lambda: f"start {in_flight}" in worker.log(), "the job to start")
        assert first.proc is not None
        first.proc.send_signal(signal.SIGSTOP)
        open(go, "w").close()
        wait_until(lambda: f"done {in_flight}" in worker.log(), "the handler to finish")
        wait_until(lambda: "no heartbeat from" in worker.log(), "the worker to miss the heartbeats")
        # Frozen, the worker cannot connect to the second broker before the next jobs' events.
        worker.proc.send_signal(signal.SIGSTOP)
        first.kill()
        second = Broker(str(tmp_path), data=data, events=standby_events, commands=standby_commands)
        missed = [client.create("test", "export", "x").id, client.create("event", "export", "x").id]
        worker.proc.send_signal(signal.SIGCONT)

        ids = before + [in_flight] + missed
        wait_until(lambda: all(client.get(i).status == "complete" for i in ids), "every job to complete")
        counts = completed_counts(client)
        assert {i: counts[i] for i in ids} == {i: 1 for i in ids}
        log = worker.log()
        # Its complete, lost with the first broker, was sent again: the job did not wait out its lease to run
        # a second attempt.
        assert client.get(in_flight).attempt == 1 and log.count(f"start {in_flight}") == 1, log
        assert f"event {missed[1]} replayed" in log, log  # its job:ready came by the replay
        assert "waiting requests again" in log, log
        assert "Traceback" not in log and "could not" not in log, log
    finally:
        if worker is not None:
            worker.proc.send_signal(signal.SIGCONT)
            worker.stop()
        client.close()
        first.kill()
        if second is not None:
            second.stop()


def test_endpoint_lists_are_split_and_checked() -> None:
    assert parse_endpoints("tcp://a:7401, tcp://b:7401 ,ipc:///tmp/c") == ["tcp://a:7401", "tcp://b:7401",
                                                                           "ipc:///tmp/c"]
    for value, named in [("tcp://a:7401,tcp//b:7401", '"tcp//b:7401"'), ("tcp://a:7401,", "an empty endpoint"),
                         ("tcp://a:7401,tcp://b", "has no port"), ("tcp://a:7401,tcp://a:7401", "listed twice"),
                         ("tcp://a:*", "port from 1 to 65535"), ("udp://a:1", "is not an endpoint")]:
        with pytest.raises(ValueError, match=named):
            parse_endpoints(value)
    with pytest.raises(ValueError, match='"tcp//b:1"'):
        JobsClient("tcp://a:7401,tcp//b:1")

#!/usr/bin/env python3
"""Jobwire's fault suite: real broker and listener processes on loopback, faults injected, jobs
counted by id from the broker's own event log. Prints a table of figures; exits 1 if any check fails.

    faults/suite.py [--short] [--only 1,4,h1,hostile,...] [--seed N]

Scenarios (issue #8): 1 listener killed, 2 slow listener, 3 poison job, 4 broker killed,
5 damaged store, 6 disk full, 7 slow subscriber, 8 partition, 9 fuzzing (the request decoder under
libFuzzer is Fuzz/run.sh; here: random frames at a running broker); 11 retries and timeouts across
broker kills (issue 17).
Hostile clients (issue #13, faults/hostile.py; group `hostile`): h1 stalling glob, h2 many
subscriptions, h3 non-reading client, h4 huge multi-frame message, h5 100,000-link chain, h6 deleted
WAL; each measured by a bystander client's round trips and the broker's peak memory. `--short` runs
h1, h4 and h6 of them.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import sys
import threading
import time
import traceback
from typing import Callable, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as h  # noqa: E402
import hostile  # noqa: E402

JOB = "workbook:export"  # the name the Swift example listener (Examples/job-handler) takes


Row = h.Row


def count_jobs(row: Row, client: h.Client, acked_ids: set[str], in_flight: set[str], *,
               expect_status: str = "complete", job_type: str = "workbook",
               explain: Optional[Callable[[str], bool]] = None, others: set[str] = set()) -> dict[str, h.JobLedger]:
    """The common accounting: lost, duplicated, re-run (and whether explained), stuck."""
    jobs, _ = h.ledger(client)
    final = h.statuses(client, job_type)
    row.jobs = len(acked_ids)
    row.lost = sum(1 for job_id in acked_ids if job_id not in final)
    row.stuck = sum(1 for job_id in acked_ids if final.get(job_id) not in h.TERMINAL and job_id in final)
    wrong = [job_id for job_id in acked_ids if final.get(job_id) in h.TERMINAL and final.get(job_id) != expect_status]
    row.duplicated = sum(1 for job_id in acked_ids if jobs.get(job_id, h.JobLedger()).completed + jobs.get(job_id, h.JobLedger()).failed > 1)
    reruns = [job_id for job_id in acked_ids if len(jobs.get(job_id, h.JobLedger()).executing_attempts) > 1]
    row.reruns = len(reruns)
    explain = explain or (lambda job_id: job_id in in_flight)
    row.explained = sum(1 for job_id in reruns if explain(job_id))
    extra = set(final) - acked_ids - others
    abandoned = sum(len(jobs.get(j, h.JobLedger()).abandoned) for j in acked_ids)
    if abandoned:
        row.notes.append(f"{abandoned} claims abandoned by the SDK (handed over after it stopped waiting, released "
                         f"at once, never run; not counted as runs)")
    row.check(row.lost == 0, f"{row.lost} acknowledged jobs are not in the store")
    row.check(row.duplicated == 0, f"{row.duplicated} jobs ended more than once (job:completed/job:failed)")
    row.check(row.stuck == 0, f"{row.stuck} jobs never ended: {sorted(j for j in acked_ids if final.get(j) not in h.TERMINAL)[:5]}")
    row.check(not wrong, f"{len(wrong)} jobs ended other than {expect_status}: "
                         f"{[(j, final.get(j), jobs.get(j, h.JobLedger()).outcome) for j in wrong[:5]]}")
    row.check(row.explained == row.reruns,
              f"{row.reruns - row.explained} jobs ran twice but were not in flight at a kill: "
              f"{[j for j in reruns if not explain(j)][:5]}")
    row.check(not extra, f"{len(extra)} jobs in the store that no acknowledged create made (double creates?)")
    return jobs


def process_of(owner: str) -> str:
    """A worker thread's listenerId is `process/thread`; a Swift listener's is its process name. A former
    owner in the store is `listenerId` + U+001F + `instanceId` when the holder sent an instanceId."""
    return owner.split("\x1f")[0].split("/")[0]


def owned_executing(client: h.Client, process: str) -> set[str]:
    return {job["id"] for job in client.list_all(status="executing")
            if process_of((job.get("lease") or {}).get("owner") or "") == process}


def former_processes(broker: h.Broker) -> dict[str, set[str]]:
    """Each job's former lease owners by process name, from the store."""
    return {job_id: {process_of(o) for o in (former or "").split("\n") if o}
            for job_id, former in broker.store_rows("SELECT id, formerOwners FROM jobs")}


# ---------------------------------------------------------------------------------------------
# 1. Listener killed


def listener_killed(short: bool) -> Row:
    row = Row("1 listener killed")
    n, kills, lease = (1000, 6, 2) if short else (5000, 24, 3)
    work = h.workdir("listener-killed")
    broker = h.Broker(os.path.join(work, "data"), "--lease-seconds", str(lease), "--max-attempts", "10")
    procs = h.Procs(work)
    try:
        broker.start()
        client = broker.client()
        names = [procs.python_worker(f"py{i}", broker, threads=3, jobs=JOB) for i in range(3)]
        names += [procs.swift_handler(f"sw{i}", broker, work_ms=30) for i in range(2)]
        producer = h.Producer(broker.commands, tag="lk", job=JOB)
        producer.start(n, lambda i: {"workMs": 30}, rate=n / (kills * 1.0 + 2))
        time.sleep(1.5)
        generation = 0
        in_flight: set[str] = set()
        attempt2: set[str] = set()
        for k in range(kills):
            victim = random.choice(names)
            procs.kill9(victim)
            killed = owned_executing(client, victim)
            in_flight |= killed
            h.say(f"kill -9 {victim}: {len(killed)} jobs in flight")
            names.remove(victim)
            generation += 1
            kind = victim[:2]
            new = f"{kind}{generation + 10}"
            names.append(procs.python_worker(new, broker, threads=3, jobs=JOB) if kind == "py"
                         else procs.swift_handler(new, broker, work_ms=30))
            time.sleep(1.0)
        row.kills = procs.kills
        producer.join()
        h.wait_until(lambda: h.open_count(client, "workbook") == 0, timeout=60 + lease * 3)
        # A job re-runs when a killed listener held it: in flight at the kill, or handed to the dead
        # listener's claim that was still waiting in the broker (its lease then expires too).
        owners = former_processes(broker)
        killed_names = set(procs.killed)
        jobs = count_jobs(row, client, set(producer.acked.values()), in_flight,
                          explain=lambda job_id: bool(owners.get(job_id, set()) & killed_names))
        late_claims = {j for j in producer.acked.values() if owners.get(j, set()) & killed_names} - in_flight
        for job_id, entry in jobs.items():
            if len(entry.executing_attempts) > 1:
                attempt2.add(job_id)
                row.check(2 in entry.ready_attempts and entry.completed == 1,
                          f"{job_id} was killed but did not come back with attempt 2 and complete")
        row.faults = len(in_flight)
        row.notes.append(f"{len(in_flight)} jobs in flight at the kills, {len(late_claims)} more handed to a killed "
                         f"listener's waiting claim after it died; {len(attempt2)} re-ran with attempt >= 2")
        dead = [p for p in procs.exited()]
        row.check(not [p for p in dead if p in names], f"listeners died on their own: {[p for p in dead if p in names]}")
    finally:
        procs.close()
        broker.stop()
    return row


# ---------------------------------------------------------------------------------------------
# 4. Broker killed


def broker_killed(short: bool) -> Row:
    row = Row("4 broker killed")
    n, kills, rate = (1200, 2, 150) if short else (6000, 6, 200)
    lease = 3
    work = h.workdir("broker-killed")
    broker = h.Broker(os.path.join(work, "data"), "--lease-seconds", str(lease))
    procs = h.Procs(work)
    try:
        broker.start()
        names = [procs.python_worker(f"py{i}", broker, threads=3, jobs=JOB) for i in range(2)]
        names += [procs.swift_handler(f"sw{i}", broker, work_ms=40) for i in range(2)]
        producer = h.Producer(broker.commands, tag="bk", job=JOB, timeout=2.0)
        producer.start(n, lambda i: {"workMs": 40}, rate=rate)
        duration = n / rate
        in_flight: set[str] = set()
        for k in range(kills):
            time.sleep(duration / (kills + 1) * random.uniform(0.6, 1.2))
            broker.kill9()
            executing = {row_[0] for row_ in broker.store_rows("SELECT id FROM jobs WHERE status = 'executing'")}
            in_flight |= executing
            h.say(f"kill -9 broker: {len(executing)} jobs in flight, {len(producer.acked)} creates acknowledged so far")
            time.sleep(random.uniform(0.2, 1.5))
            broker.start()
        row.kills = broker.kills
        producer.join()
        client = broker.client()
        drained = h.wait_until(lambda: h.open_count(client, "workbook") == 0, timeout=90)
        row.check(drained, "the listeners did not drain the queue after the restarts")
        count_jobs(row, client, set(producer.acked.values()), in_flight)
        row.check(len(producer.acked) == n, f"only {len(producer.acked)} of {n} creates were acknowledged")
        row.faults = len(in_flight)
        row.notes.append(f"{len(in_flight)} jobs in flight at the kills; {producer.resends} creates re-sent "
                         f"(same idempotency key), {producer.errors} error replies")
        row.check(not procs.exited(), f"listeners exited: {procs.exited()}")
    finally:
        procs.close()
        broker.stop()
    return row


# ---------------------------------------------------------------------------------------------
# 11. Retries and timeouts across broker kills


def retries_across_kills(short: bool) -> Row:
    """Issue 17: a flaky downstream (`jobs.fail {retry: true}` on attempt 1), a doomed one (every attempt
    fails) and a hanging handler (attempt 1 renews its lease past `timeoutSeconds`), all with a fixed
    backoff, while the broker is SIGKILLed and restarted. Checks: flaky and hanging jobs complete once,
    doomed ones fail once at `maxAttempts`, hanging attempts end `timed out`, and no retry ran before the
    `runAt` its `job:scheduled` announced, whether the broker was killed in between or not."""
    row = Row("11 retries across kills")
    n, kills, rate = (240, 2, 40) if short else (1200, 5, 60)
    lease, delay = 3, 1
    work = h.workdir("retries")
    broker = h.Broker(os.path.join(work, "data"), "--lease-seconds", str(lease))
    procs = h.Procs(work)
    backoff = {"backoff": {"type": "fixed", "delaySeconds": delay}}
    kinds = {
        "flaky": ({**backoff, "maxAttempts": 4}, {"failAttempts": 1, "workMs": 20}),
        "doomed": ({**backoff, "maxAttempts": 2}, {"failAttempts": 99}),
        "hang": ({**backoff, "maxAttempts": 4, "timeoutSeconds": 1}, {"hangAttempts": 1, "hangMs": 2500, "workMs": 20}),
    }
    try:
        broker.start()
        client = broker.client()
        for i in range(3):
            procs.python_worker(f"py{i}", broker, threads=4, jobs="*:export")
        producers = {kind: h.Producer(broker.commands, tag=kind, job=f"{kind}:export", timeout=2.0) for kind in kinds}
        for kind, producer in producers.items():
            extra, data = kinds[kind]
            producer.start(n // 3, lambda i, data=data: data, rate=rate / 3, extra=extra)
        duration = n / rate
        in_flight: set[str] = set()
        for k in range(kills):
            time.sleep(duration / (kills + 1) * random.uniform(0.6, 1.2))
            broker.kill9()
            in_flight |= {r[0] for r in broker.store_rows("SELECT id FROM jobs WHERE status = 'executing'")}
            waiting = broker.store_rows("SELECT id FROM jobs WHERE status = 'scheduled'")
            h.say(f"kill -9 broker: {len(in_flight)} executing so far at kills, {len(waiting)} waiting out a backoff")
            time.sleep(random.uniform(0.2, 1.0))
            broker.start()
        row.kills = broker.kills
        for producer in producers.values():
            producer.join()
        drained = h.wait_until(lambda: sum(h.open_count(client, kind) for kind in kinds) == 0, timeout=120)
        row.check(drained, "retries did not drain after the restarts")
        acked = {kind: set(p.acked.values()) for kind, p in producers.items()}
        for kind, producer in producers.items():
            row.check(len(producer.acked) == n // 3, f"only {len(producer.acked)} of {n // 3} {kind} creates acknowledged")
        # Retries re-run by design: count_jobs checks lost, stuck, double ends and the final status.
        for kind, expect in (("flaky", "complete"), ("hang", "complete"), ("doomed", "failed")):
            sub = Row(kind)
            count_jobs(sub, client, acked[kind], in_flight, expect_status=expect, job_type=kind, explain=lambda j: True)
            row.failures += [f"{kind}: {f}" for f in sub.failures]
            row.lost += sub.lost
            row.duplicated += sub.duplicated
            row.stuck += sub.stuck
            row.reruns += sub.reruns
            row.explained += sub.explained
        row.jobs = sum(len(ids) for ids in acked.values())
        # Per job, from the log: each job:scheduled's runAt, and when each attempt began executing.
        run_at: dict[tuple[str, int], float] = {}
        began: dict[tuple[str, int], float] = {}
        timed_out: set[str] = set()
        outcomes: dict[str, tuple[int, str]] = {}
        for event in h.events(client):
            job_id = (event.get("context") or {}).get("jobId")
            payload = event.get("payload") or {}
            attempt = int(payload.get("attempt") or 0)
            if event["topic"] == "job:scheduled" and payload.get("runAt"):
                run_at[(job_id, attempt)] = h.parse_ts(payload["runAt"])
                if "timed out" in (payload.get("info") or ""):
                    timed_out.add(job_id)
            elif event["topic"] == "job:updated" and payload.get("status") == "executing":
                began.setdefault((job_id, attempt), h.parse_ts(event["createdAt"]))
            elif event["topic"] == "job:failed":
                outcomes[job_id] = (attempt, (payload.get("outcome") or {}).get("message") or "")
        early = [(j, a, round(began[(j, a)] - t, 3)) for (j, a), t in run_at.items() if (j, a) in began and began[(j, a)] < t]
        row.check(not early, f"{len(early)} retries ran before their runAt: {early[:5]}")
        spaced = sum(1 for key in run_at if key in began)
        row.check(spaced >= len(acked["flaky"]), f"only {spaced} retries waited out a backoff; expected one per flaky job at least")
        wrong_end = [(j, outcomes.get(j)) for j in acked["doomed"] if (outcomes.get(j) or (0, ""))[0] != 2]
        row.check(not wrong_end, f"{len(wrong_end)} doomed jobs did not fail at attempt 2 (maxAttempts): {wrong_end[:5]}")
        hung = acked["hang"] - in_flight
        not_timed = sorted(hung - timed_out)
        row.check(not not_timed, f"{len(not_timed)} hanging jobs were not timed out on attempt 1: {not_timed[:5]}")
        row.faults = len(run_at)
        row.notes.append(f"{len(run_at)} retries waited out a {delay} s backoff ({sum(1 for j in acked['hang'] if j in timed_out)} "
                         f"after a timeout), none ran early; {len(in_flight)} jobs executing at the kills")
        row.check(not procs.exited(), f"listeners exited: {procs.exited()}")
    finally:
        procs.close()
        broker.stop()
    return row


# ---------------------------------------------------------------------------------------------
# 2. Slow listener


def slow_listener(short: bool) -> Row:
    row = Row("2 slow listener")
    n, every, lease = (300, 25, 2) if short else (2000, 20, 2)
    work = h.workdir("slow-listener")
    broker = h.Broker(os.path.join(work, "data"), "--lease-seconds", str(lease))
    procs = h.Procs(work)
    try:
        broker.start()
        client = broker.client()
        workers = [procs.python_worker(f"py{i}", broker, threads=4, jobs=JOB) for i in range(3)]
        swift = procs.swift_handler("sw0", broker, work_ms=1500)
        # Attempt 1 of a slow job works 1.5 leases without renewing, then completes: too late. Attempt 2
        # (another worker) renews and works 1.5 leases more, so the late call lands while it runs.
        slow_ms = int(lease * 1500)
        producer = h.Producer(broker.commands, tag="sl", job=JOB)
        slow_keys = {f"sl-{i}" for i in range(n) if i % every == 0}
        producer.start(n, lambda i: {"slowMs": slow_ms, "workMs": slow_ms} if i % every == 0 else {"workMs": 20},
                       rate=n / 6)
        # The Swift listener (lease renewed by the SDK) is frozen for 2.5 leases while it holds jobs.
        time.sleep(2.0)
        held = owned_executing(client, "sw0")
        procs.signal(swift, signal.SIGSTOP)
        time.sleep(lease * 2.5)
        procs.signal(swift, signal.SIGCONT)
        h.say(f"SIGSTOP sw0 for {lease * 2.5:.0f} s while it held {len(held)} jobs")
        producer.join()
        h.wait_until(lambda: h.open_count(client, "workbook") == 0, timeout=60)
        slow_ids = {producer.acked[k] for k in slow_keys if k in producer.acked}
        jobs = count_jobs(row, client, set(producer.acked.values()), slow_ids | held)
        late: dict[str, list[str]] = {}
        for name in workers:
            for words in procs.lines(name):
                if words[0] == "late":
                    late.setdefault(words[1], []).append(f"{words[2]}:{words[3]}")
        # Only the Python workers know slowMs; a slow job the Swift listener took at attempt 1 runs normally.
        started_slow = {w[1] for name in workers for w in procs.lines(name) if w[0] == "start" and w[2] == "1"}
        slow_taken_by_python = {j for j in slow_ids if j in started_slow}

        def refused_rightly(j: str) -> bool:
            # Attempt 1's late complete is refused once with lease_expired. A later attempt's call may be too, if
            # that attempt's lease ran out as well (a worker stalled on a loaded machine): then the job went on
            # to the next attempt. Any other refusal, or a refused attempt that was not over, is wrong.
            calls = late.get(j) or []
            attempts = jobs.get(j, h.JobLedger()).executing_attempts
            over = all(kind == "lease_expired" and max(attempts, default=0) > int(k)
                       for k, kind in (c.split(":", 1) for c in calls))
            return calls.count("1:lease_expired") == 1 and over

        wrong = {j: late.get(j) for j in slow_taken_by_python if not refused_rightly(j)}
        row.faults = len(slow_ids) + len(held)
        row.check(not wrong, f"{len(wrong)} slow jobs' late calls were not refused as their attempts ended: "
                             f"{list(wrong.items())[:3]}")
        unexpected = {j: v for j, v in late.items() if j not in slow_ids}
        row.check(not unexpected, f"late calls on jobs that were not slow: {list(unexpected.items())[:3]}")
        for j in slow_taken_by_python:
            entry = jobs.get(j, h.JobLedger())
            # Attempt 1 ran slow; a later attempt (2, or 3 after an abandoned claim) completed it.
            row.check(entry.completed == 1 and entry.executing_attempts[:1] == [1] and len(entry.executing_attempts) >= 2,
                      f"slow job {j}: attempts {entry.executing_attempts}, {entry.completed} job:completed")
        row.notes.append(f"{len(slow_ids)} slow jobs ({len(slow_taken_by_python)} taken by Python workers, which honour "
                         f"slowMs), {sum(1 for v in late.values() if v == ['1:lease_expired'])} late "
                         f"completes refused with lease_expired; sw0 held {len(held)} jobs when frozen")
        row.check(not procs.exited(), f"listeners exited: {procs.exited()}")
    finally:
        procs.close()
        broker.stop()
    return row


# ---------------------------------------------------------------------------------------------
# 3. Poison job


def poison_job(short: bool) -> Row:
    row = Row("3 poison job")
    n, poisons, lease, attempts = (400, 2, 2, 3) if short else (3000, 6, 2, 3)
    work = h.workdir("poison")
    broker = h.Broker(os.path.join(work, "data"), "--lease-seconds", str(lease), "--max-attempts", str(attempts))
    procs = h.Procs(work)
    stop = threading.Event()
    try:
        broker.start()
        client = broker.client()
        # One claim thread per process: a poison job takes down its process and nothing else with it.
        for i in range(4):
            procs.python_worker(f"py{i}", broker, threads=1, jobs=JOB)
        generation = iter(range(100, 10_000))
        procs.supervise(stop, lambda name: procs.python_worker(f"py{next(generation)}", broker, threads=1, jobs=JOB))
        producer = h.Producer(broker.commands, tag="pj", job=JOB)
        poison_every = n // poisons
        poison_keys = {f"pj-{i}" for i in range(n) if i % poison_every == poison_every // 2}
        producer.run(n, lambda i: {"poison": True} if f"pj-{i}" in poison_keys else {"workMs": 30}, rate=n / 10)
        produced_until = time.time()
        h.wait_until(lambda: h.open_count(client, "workbook") == 0, timeout=60 + poisons * attempts * lease)
        stop.set()
        poison_ids = {producer.acked[k] for k in poison_keys}
        owners = former_processes(broker)
        dead = set(procs.died)
        normal = set(producer.acked.values()) - poison_ids
        count_jobs(row, client, normal, set(), explain=lambda j: bool(owners.get(j, set()) & dead), others=poison_ids)
        jobs, _ = h.ledger(client)
        for j in poison_ids:
            entry = jobs.get(j, h.JobLedger())
            row.check(entry.failed == 1 and entry.completed == 0 and entry.outcome == "lease expired"
                      and entry.executing_attempts == list(range(1, attempts + 1)),
                      f"poison job {j}: attempts {entry.executing_attempts}, failed {entry.failed}, outcome {entry.outcome!r}")
        row.jobs = len(producer.acked)
        row.kills = len(procs.died)
        row.faults = len(poison_ids)
        row.check(len(procs.died) == poisons * attempts,
                  f"{len(procs.died)} listeners died, expected {poisons} poison jobs x {attempts} attempts")
        # The others keep flowing: the longest pause between two completions stays under a lease and a bit.
        done = sorted(t for t in (h.parse_ts(e["createdAt"]) for e in h.events(client, ["job:completed"]))
                      if t <= produced_until)
        gap = max((b - a for a, b in zip(done, done[1:])), default=0.0)
        row.notes.append(f"{len(poison_ids)} poison jobs failed with 'lease expired' after {attempts} attempts each, "
                         f"killing {len(procs.died)} listeners; longest pause between completions {gap:.2f} s")
        row.check(gap < lease + 1.5, f"completions stalled for {gap:.1f} s while poison jobs ran")
    finally:
        stop.set()
        procs.close()
        broker.stop()
    return row


# ---------------------------------------------------------------------------------------------
# 7. Slow subscriber


def slow_subscriber(short: bool) -> Row:
    row = Row("7 slow subscriber")
    stalled_jobs, tail = (12_000, 400) if short else (60_000, 2_000)
    work = h.workdir("slow-subscriber")
    # The short variant publishes fewer events than the default high-water mark: give it a small one so
    # that events really are dropped and replayed.
    hwm = 500 if short else 100_000
    broker = h.Broker(os.path.join(work, "data"), "--events-high-water-mark", str(hwm))
    procs = h.Procs(work)
    try:
        broker.start()
        client = broker.client()
        log = os.path.join(work, "sub.log")
        name = procs.start("sub", [h.PYTHON, os.path.join(h.ROOT, "faults", "subscriber.py"), "--commands",
                                   broker.commands, "--events", broker.events, "--name", "sub", "--log", log], {})
        row.check(h.wait_until(lambda: bool(procs.lines("sub")), timeout=20), "the subscriber never caught up")
        procs.signal(name, signal.SIGSTOP)
        seq_before = client.broker_info()["seq"]
        producer = h.Producer(broker.commands, tag="ss", job=JOB, window=256)
        producer.run(stalled_jobs)
        published = client.broker_info()["seq"] - seq_before
        h.say(f"published {published:,} events while the subscriber was stopped")
        procs.signal(name, signal.SIGCONT)
        # Load goes on while it catches up: live events arrive after the gap.
        tail_producer = h.Producer(broker.commands, tag="st", job=JOB)
        tail_producer.run(tail, rate=200)
        acked = set(producer.acked.values()) | set(tail_producer.acked.values())
        drained = h.wait_while_progress(lambda: h.open_count(client, "workbook"), stall=30, timeout=600)
        lines = procs.lines("sub")
        handled = [w[1] for w in lines if w[0] == "handled"]
        replayed_events = sum(int(w[1]) for w in lines if w[0] == "replay")
        replayed_ready = sum(1 for w in lines if w[0] == "handled" and w[2] == "1")
        missed = acked - set(handled)
        row.jobs = len(acked)
        row.faults = published
        row.check(drained, f"{h.open_count(client, 'workbook')} jobs still open: job:ready events missed")
        row.check(not missed, f"{len(missed)} job:ready never handled by the subscriber, e.g. {sorted(missed)[:3]}")
        row.check(len(handled) == len(set(handled)), f"{len(handled) - len(set(handled))} jobs handled twice")
        count_jobs(row, client, acked, set())
        row.notes.append(f"{published:,} events published while stopped (XPUB high-water mark {hwm:,}); the "
                         f"subscriber replayed {replayed_events:,} events it had lost, {replayed_ready:,} of them job:ready")
        if not missed:
            # A replay's own "replay N" line comes after it has handled what it found, which may be after the
            # jobs drained: jobs handled from a replay prove it as well.
            row.check(replayed_events > 0 or replayed_ready > 0,
                      "no events were dropped: the scenario did not exercise the replay")
    finally:
        procs.close()
        broker.stop()
    return row


# ---------------------------------------------------------------------------------------------
# 9. Fuzzing


def fuzzing(short: bool) -> Row:
    import subprocess

    import frames

    row = Row("9 fuzzing")
    count, seconds = (3_000, 15) if short else (50_000, 90)
    work = h.workdir("fuzz")
    broker = h.Broker(os.path.join(work, "data"), "--lease-seconds", "1")
    try:
        broker.start()
        assert broker.proc is not None
        seed = random.randrange(1 << 30)
        stats = frames.run(broker.commands, broker.proc.pid, count, seed)
        h.say(f"random frames (seed {seed}): {stats}")
        row.inputs += stats["sent"]
        row.check(stats["missing"] == 0, f"a request got no reply within 5 s (seed {seed}, after {stats['sent']} requests)")
        row.check(stats["replies"] == stats["sent"], f"{stats['sent']} requests, {stats['replies']} replies")
        row.check(broker.alive(), f"the broker died: {broker.log_tail()}")
        if broker.alive():
            row.check(broker.client().broker_info()["version"] is not None, "the broker stopped answering")
        row.check(stats["rss_peak_mb"] < stats["rss_start_mb"] + 512,
                  f"broker memory grew from {stats['rss_start_mb']} MB to {stats['rss_peak_mb']} MB")
        row.notes.append(f"random frames: {stats['sent']:,} requests, {stats['errors']:,} error replies, broker RSS "
                         f"{stats['rss_start_mb']} -> {stats['rss_peak_mb']} MB")
    finally:
        broker.stop()
    if os.environ.get("JOBWIRE_FAULT_NO_LIBFUZZER"):
        row.notes.append("libFuzzer harnesses skipped (JOBWIRE_FAULT_NO_LIBFUZZER)")
        return row
    if h.STORE != "sqlite":
        row.notes.append("libFuzzer harnesses (the request decoder, no store) run with the sqlite store only")
        return row
    result = subprocess.run([os.path.join(h.ROOT, "Fuzz", "run.sh"), str(seconds)], capture_output=True, text=True,
                            cwd=h.ROOT)
    lines = [line for line in result.stdout.splitlines() if line.startswith("fuzz ")]
    for line in lines:
        h.say(line)
        row.notes.append(line)
        try:
            row.inputs += int(line.split(":")[1].split()[0])
        except (IndexError, ValueError):
            pass
    row.check(result.returncode == 0 and len(lines) == 2,
              f"Fuzz/run.sh failed ({result.returncode}): {(result.stdout + result.stderr)[-800:]}")
    return row


# ---------------------------------------------------------------------------------------------
# 5. Damaged store


def damaged_store(short: bool) -> Row:
    import subprocess

    row = Row("5 damaged store")
    flips = 6 if short else 30
    work = h.workdir("damaged")
    pristine = os.path.join(work, "pristine")
    broker = h.Broker(pristine)
    broker.start()
    client = broker.client()
    producer = h.Producer(broker.commands, tag="ds", job=JOB)
    producer.run(300, lambda i: {"n": i, "text": "x" * 200}, extra={"trigger": "manual"})
    snapshot = {job["id"]: job for job in client.list_all(type="workbook")}
    broker.stop()
    row.jobs = len(snapshot)
    # Everything into the main file, so that a flipped byte there hits jobs and indexes.
    db = h.sqlite3.connect(os.path.join(pristine, "jobwire.sqlite"))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()

    def damaged_run(kind: str, damage: Callable[[str], None]) -> None:
        data = os.path.join(work, f"{kind}-{row.faults}")
        shutil.copytree(source, data)
        damage(data)
        row.faults += 1
        b = h.Broker(data)
        line = b.start(expect_listening=False)
        if not line or "listening" not in line:
            code = b.proc.wait(20) if b.proc else None
            message = b.log_tail(3)
            clear = code not in (0, None) and any(w in message.lower() for w in ("store", "database", "sqlite", "corrupt", "malformed"))
            refusals.append((kind, message.splitlines()[-1] if message else ""))
            row.check(clear, f"{kind}: the broker exited ({code}) without a clear message: {message!r}")
            return
        try:
            c = b.client(timeout=10)
            seen: dict[str, dict] = {}
            errors = 0
            for job_id in snapshot:
                try:
                    seen[job_id] = c.get(job_id)
                except h.JobwireError as error:
                    if error.type != "not_found":
                        errors += 1  # an error reply is not wrong data
                        continue
            wrong = [j for j, job in seen.items() if job != snapshot[j]]
            missing = [j for j in snapshot if j not in seen] if errors == 0 else []
            said = b.log_tail(40).lower()
            told = any(w in said for w in ("dropped", "corrupt", "malformed", "recovered", "damaged"))
            served.append((kind, len(wrong), len(missing), errors, told))
            row.lost += len(missing)
            row.check(not wrong, f"{kind}: served {len(wrong)} jobs that differ from what was stored, e.g. {wrong[:2]}")
            row.check(not missing or told, f"{kind}: {len(missing)} jobs silently gone, and the broker did not say so")
        finally:
            b.stop()

    refusals: list[tuple[str, str]] = []
    served: list[tuple[str, int, int, int, bool]] = []
    rng = random.Random()
    source = pristine
    size = os.path.getsize(os.path.join(pristine, "jobwire.sqlite"))
    for _ in range(flips):
        offset = rng.randrange(4096, size)  # past the header page: a flipped byte in a table or index page

        def flip(data: str, offset: int = offset) -> None:
            with open(os.path.join(data, "jobwire.sqlite"), "r+b") as f:
                f.seek(offset)
                byte = f.read(1)
                f.seek(offset)
                f.write(bytes([byte[0] ^ (1 << rng.randrange(8))]))
        damaged_run("flipped byte in the database", flip)

    # A WAL with committed transactions in it: jobs created, then the broker SIGKILLed (no checkpoint).
    walled = os.path.join(work, "walled")
    shutil.copytree(pristine, walled)
    b = h.Broker(walled)
    b.start()
    p = h.Producer(b.commands, tag="dw", job=JOB)
    p.run(100, lambda i: {"n": i}, extra={"trigger": "manual"})
    snapshot.update({job["id"]: job for job in b.client().list_all(type="workbook")})
    b.kill9()
    source = walled
    wal = os.path.join(walled, "jobwire.sqlite-wal")
    wal_size = os.path.getsize(wal) if os.path.exists(wal) else 0
    if wal_size > 4096:
        for cut in (wal_size // 3, wal_size - 1000):
            damaged_run("torn WAL tail", lambda data, cut=cut: os.truncate(os.path.join(data, "jobwire.sqlite-wal"), cut))
        for _ in range(max(2, flips // 3)):
            offset = rng.randrange(32, wal_size)

            def flip_wal(data: str, offset: int = offset) -> None:
                with open(os.path.join(data, "jobwire.sqlite-wal"), "r+b") as f:
                    f.seek(offset)
                    byte = f.read(1)
                    f.seek(offset)
                    f.write(bytes([byte[0] ^ 0x10]))
            damaged_run("flipped byte in the WAL", flip_wal)
    else:
        row.notes.append(f"no WAL left after the kill ({wal_size} bytes): WAL cases skipped")
    row.notes.append(f"refused to start {len(refusals)} times, e.g. {refusals[:1]}")
    row.notes.append("served: " + "; ".join(f"{k}: {w} wrong, {m} missing, {e} errors, said so: {t}" for k, w, m, e, t in served[:8]))
    return row


# ---------------------------------------------------------------------------------------------
# 6. Disk full


def disk_full(short: bool) -> Row:
    import subprocess

    row = Row("6 disk full")
    work = h.workdir("disk-full")
    mnt = os.path.join(work, "tmpfs")
    os.makedirs(mnt)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt], capture_output=True, text=True)
    if mounted.returncode != 0:
        row.skipped = f"cannot mount a tmpfs here ({mounted.stderr.strip()}): disk full not tested"
        return row
    broker = h.Broker(os.path.join(mnt, "data"))
    try:
        broker.start()
        client = broker.client(timeout=10)
        acked: list[str] = []
        errors = 0
        i = 0
        while errors < 30 and i < 20_000:
            try:
                acked.append(client.create("workbook", "export", f"s{i}", trigger="manual",
                                           idempotencyKey=f"df-{i}", input={"pad": "x" * 2000})["id"])
            except h.JobwireError as error:
                errors += 1
                row.check(error.code == -32603, f"disk full gave {error.code} {error.message}")
            i += 1
        row.faults = errors
        h.say(f"{len(acked)} creates acknowledged, then {errors} refused with a full disk")
        row.check(errors > 0, "the disk never filled")
        row.check(broker.alive(), f"the broker died on a full disk: {broker.log_tail()}")
        total = client.list(type="workbook", pageSize=1)["pagination"]["totalCount"]
        row.check(total == len(acked), f"{total} jobs in the store, {len(acked)} creates acknowledged")
        subprocess.run(["mount", "-o", "remount,size=64m", mnt], check=True)
        after = 0
        for j in range(50):
            try:
                acked.append(client.create("workbook", "export", f"r{j}", idempotencyKey=f"dfr-{j}")["id"])
                after += 1
            except h.JobwireError:
                pass
        row.check(after == 50, f"only {after} of 50 creates succeeded after space came back")
        broker.stop()
        broker.start()
        client = broker.client(timeout=10)
        present = h.statuses(client, "workbook")
        row.jobs = len(acked)
        row.lost = sum(1 for j in acked if j not in present)
        row.check(row.lost == 0, f"{row.lost} acknowledged jobs missing after a restart")
        row.check(len(present) == len(acked), f"{len(present)} jobs stored, {len(acked)} acknowledged")
        row.notes.append(f"{len(acked) - after} creates before the disk filled, {errors} refused with -32603, "
                         f"{after} after space returned; all present after a restart")
    finally:
        broker.stop()
        subprocess.run(["umount", mnt], capture_output=True)
    return row


# ---------------------------------------------------------------------------------------------
# 8. Partition


def partition(short: bool) -> Row:
    import proxy as px

    row = Row("8 partition")
    n, lease = (600, 2) if short else (3000, 3)
    work = h.workdir("partition")
    broker = h.Broker(os.path.join(work, "data"), "--lease-seconds", str(lease))
    procs = h.Procs(work)
    try:
        broker.start()
        client = broker.client()
        link = px.Proxy(int(broker.commands.rsplit(":", 1)[1]))
        cut = h.Broker.__new__(h.Broker)  # only its endpoint: the cut-off worker talks through the proxy
        cut.commands = link.endpoint
        procs.python_worker("cut", cut, threads=3, jobs=JOB)
        for i in range(2):
            procs.python_worker(f"py{i}", broker, threads=2, jobs=JOB)
        procs.swift_handler("sw0", broker, work_ms=100)
        producer = h.Producer(broker.commands, tag="pt", job=JOB)
        producer.start(n, lambda i: {"workMs": 100}, rate=n / (16 if short else 40))
        phases = ([("delay", 0.2, 2), ("blackhole", 0, lease * 2.5), ("pass", 0, 2), ("reset", 0, 2)] if short else
                  [("delay", 0.3, 4), ("blackhole", 0, lease * 3), ("pass", 0, 4), ("reset", 0, 3),
                   ("blackhole", 0, lease * 2), ("pass", 0, 3), ("reset", 0, 2)])
        time.sleep(1.5)
        held: set[str] = set()
        for mode, delay, seconds in phases:
            if mode == "blackhole":
                held |= owned_executing(client, "cut")
            link.set(mode, delay)
            row.faults += 1
            h.say(f"proxy: {mode}{f' {delay:.1f} s' if delay else ''} for {seconds:.0f} s")
            time.sleep(seconds)
            link.set("pass")
        done_before = sum(1 for w in procs.lines("cut") if w[0] == "done")
        producer.join()
        h.wait_until(lambda: h.open_count(client, "workbook") == 0, timeout=60)
        # After the heal the cut-off worker must work again. The others could take every job left, so they
        # are paused while a few more jobs come: only the cut-off worker can run them.
        others = ["py0", "py1", "sw0"]
        for name in others:
            procs.signal(name, signal.SIGSTOP)
        after_heal = h.Producer(broker.commands, tag="ph", job=JOB)
        after_heal.run(20, lambda i: {"workMs": 10})
        healed = h.wait_until(lambda: h.open_count(client, "workbook") == 0, timeout=30 + lease * 3)
        for name in others:
            procs.signal(name, signal.SIGCONT)
        h.wait_until(lambda: h.open_count(client, "workbook") == 0, timeout=60)
        owners = former_processes(broker)
        # A job of the last few may first go to a paused listener's waiting claim and come back after its
        # lease: a re-run explained by the pause.
        paused_ids = set(after_heal.acked.values())
        count_jobs(row, client, set(producer.acked.values()) | paused_ids, held,
                   explain=lambda j: "cut" in owners.get(j, set()) or j in paused_ids)
        lines = procs.lines("cut")
        done_after = sum(1 for w in lines if w[0] == "done") - done_before
        late = sum(1 for w in lines if w[0] == "late")
        row.check(healed and done_after > 0, "the cut-off listener completed nothing after the heal")
        row.notes.append(f"cut-off listener held {len(held)} jobs when blackholed; {late} late calls refused; "
                         f"{done_after} jobs completed by it after the last heal; {link.resets} connections reset")
        row.check(not procs.exited(), f"listeners exited: {procs.exited()}")
    finally:
        procs.close()
        broker.stop()
    return row


def slow_swift_subscriber(short: bool) -> Row:
    """7s: scenario 7 with the Swift SDK: `Examples/workbook-export` (`on("job:ready")`, explicit ack) is
    stopped while events pile up past the high-water mark; it must replay what it lost and run every job."""
    row = Row("7s slow Swift subscriber")
    stalled_jobs = 12_000 if short else 60_000
    hwm = 500 if short else 100_000
    work = h.workdir("slow-swift-subscriber")
    broker = h.Broker(os.path.join(work, "data"), "--events-high-water-mark", str(hwm))
    procs = h.Procs(work)
    try:
        broker.start()
        client = broker.client()
        name = procs.start("export", [os.path.join(h.BUILD, "workbook-export"), "--commands", broker.commands,
                                      "--events", broker.events, "--name", "export"],
                           {"JOBWIRE_WORK_MS": "1", "JOBWIRE_LOG_LEVEL": "info"})
        out = os.path.join(work, "export.out")
        log = lambda: open(out).read() if os.path.exists(out) else ""  # noqa: E731
        row.check(h.wait_until(lambda: "listener live" in log(), timeout=30), "the Swift listener never caught up")
        procs.signal(name, signal.SIGSTOP)
        seq_before = client.broker_info()["seq"]
        producer = h.Producer(broker.commands, tag="sw", job=JOB, window=256)
        producer.run(stalled_jobs)
        published = client.broker_info()["seq"] - seq_before
        procs.signal(name, signal.SIGCONT)
        acked = set(producer.acked.values())
        drained = h.wait_while_progress(lambda: h.open_count(client, "workbook"), stall=30, timeout=900)
        row.faults = published
        row.check(drained, f"{h.open_count(client, 'workbook')} jobs still open: job:ready events missed")
        count_jobs(row, client, acked, set())
        replayed = [line for line in log().splitlines() if "replayed events missed live" in line]
        missed = sum(int(part.split("=")[1]) for line in replayed for part in line.split() if part.startswith("events.missed="))
        row.notes.append(f"{published:,} events published while it was stopped (high-water mark {hwm:,}); "
                         f"it replayed {missed:,} events it had missed live")
        row.check(missed > 0, "no events were dropped: the scenario did not exercise the replay")
    finally:
        procs.close()
        broker.stop()
    return row


# ---------------------------------------------------------------------------------------------
# p1-p3. Standby brokers on the postgres store (issue 19): the active broker SIGKILLed, PostgreSQL
# restarted, the active broker cut off from PostgreSQL. Two brokers share one store (one schema). The
# listeners are given both brokers' endpoints and follow the active one; the suite's producer (a raw
# DEALER) and its probes reach them through a front proxy that connects each new connection to the first
# broker that accepts it (a standby binds nothing), as a TCP load balancer would.


FAILOVER_TIMEOUT = 5  # the broker's default --failover-timeout


class Pair:
    """Brokers on one postgres store, each watched: when it printed its startup line, when it exited."""

    def __init__(self, work: str, store: str, direct: str, *args: str, stores: Optional[list[str]] = None) -> None:
        stores = stores or [store, store]
        self.brokers = [h.Broker(os.path.join(work, name), *args, store=url) for name, url in zip("ab", stores)]
        for broker in self.brokers:
            broker.direct = direct
        self.exits: dict[int, tuple[float, Optional[int]]] = {}  # id(proc) -> (when, exit code)
        ports = lambda kind: [int(getattr(b, kind).rsplit(":", 1)[1]) for b in self.brokers]  # noqa: E731
        import proxy as px

        self.front_commands = px.Proxy(*ports("commands"))
        self.front_events = px.Proxy(*ports("events"))
        self.front = h.Broker.__new__(h.Broker)  # only its endpoints: listeners and producer go through the front
        self.front.commands = self.front_commands.endpoint
        self.front.events = self.front_events.endpoint

    def watch(self, broker: h.Broker) -> None:
        proc = broker.proc
        assert proc is not None

        def wait() -> None:
            code = proc.wait()
            self.exits[id(proc)] = (time.monotonic(), code)

        threading.Thread(target=wait, daemon=True).start()

    def start(self, index: int, standby: bool) -> h.Broker:
        broker = self.brokers[index]
        if standby:
            broker.start_standby()
        else:
            broker.start()
        self.watch(broker)
        return broker

    def active(self) -> Optional[h.Broker]:
        live = [b for b in self.brokers if b.alive() and b.listening.is_set()]
        return live[0] if len(live) == 1 else None

    def exit_of(self, broker: h.Broker) -> Optional[tuple[float, Optional[int]]]:
        return self.exits.get(id(broker.proc)) if broker.proc else None

    def stop(self) -> None:
        for broker in self.brokers:
            broker.stop()


def first_reply(broker: h.Broker, limit: float) -> Optional[float]:
    """Asks broker.info of `broker` until it answers; returns when (monotonic), None after `limit` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        client = h.Client(broker.commands, timeout=0.25)
        try:
            client.broker_info()
            return time.monotonic()
        except (h.JobwireError, h.JobwireTimeout):
            pass
        finally:
            client.close()
    return None


def serves(pair: Optional[Pair]) -> bool:
    """An active broker answers a request that reads the store."""
    active = pair.active() if pair else None
    if active is None:
        return False
    client = active.client(timeout=1)
    try:
        return client.list(pageSize=1) is not None
    finally:
        client.close()


def check_log(row: Row, client: h.Client) -> None:
    """The log of a store that changed hands: seq gap-free and increasing (no commit of a fenced broker)."""
    seqs = [int(e["seq"]) for e in h.events(client)]
    gaps = [(a, b) for a, b in zip(seqs, seqs[1:]) if b != a + 1]
    row.check(not gaps, f"the event log is not gap-free across the takeovers: {gaps[:5]}")


def standby_load(row: Row, work: str, pair: Pair, n: int, rate: float, tag: str) -> tuple[h.Procs, h.Producer]:
    """Two Python workers and two Swift listeners given both brokers' endpoints (comma-separated lists: the
    clients follow the active one), and the suite's producer through the front proxy."""
    procs = h.Procs(work)
    both = h.Broker.__new__(h.Broker)
    both.commands = ",".join(b.commands for b in pair.brokers)
    both.events = ",".join(b.events for b in pair.brokers)
    for i in range(2):
        procs.python_worker(f"py{i}", both, threads=3, jobs=JOB)
    for i in range(2):
        procs.swift_handler(f"sw{i}", both, work_ms=40)
    producer = h.Producer(pair.front.commands, tag=tag, job=JOB, timeout=2.0)
    producer.start(n, lambda i: {"workMs": 40}, rate=rate)
    return procs, producer


def seq_now(pair: Pair, limit: float = 30.0) -> int:
    """The log's last seq as the active broker reports it (after a takeover: every commit the old active
    made). Asks again, of whichever broker is active then, while one that was about to stop gives no reply."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        active = pair.active()
        if active is None:
            time.sleep(0.05)
            continue
        client = active.client(timeout=1)
        try:
            return int(client.broker_info()["seq"])
        except (h.JobwireError, h.JobwireTimeout):
            pass
        finally:
            client.close()
    raise RuntimeError(f"no active broker answered broker.info within {limit:.0f} s")


def settle(row: Row, pair: Pair, procs: h.Procs, producer: h.Producer, in_flight: set[str], n: int,
           fault_seqs: list[int]) -> None:
    """The common end of p1-p3: one active broker, the queue drained, every job counted. A job that ran
    again is explained by a fault when it was in flight at one (`in_flight`), or when a fault falls between
    two of its attempts: the attempt before began at or below the log's seq when serving resumed after the
    fault (`fault_seqs`: every commit of the old active is at or below it), the next one above."""
    producer.join()
    serving = [b for b in pair.brokers if b.alive() and b.listening.is_set()]
    row.check(len(serving) < 2, "two brokers on one store serve at once")
    active = pair.active()
    row.check(active is not None, "no single active broker at the end: "
              + ", ".join(f"{b.data}: alive {b.alive()}, listening {b.listening.is_set()}" for b in pair.brokers))
    if active is None:
        return
    client = active.client(timeout=10)
    drained = h.wait_until(lambda: h.open_count(client, "workbook") == 0, timeout=90)
    row.check(drained, "the listeners did not drain the queue after the takeovers")
    jobs, _ = h.ledger(client)

    def across_fault(job_id: str) -> bool:
        entry = jobs.get(job_id, h.JobLedger())
        seqs = [entry.first_exec_seq[a] for a in entry.executing_attempts if a in entry.first_exec_seq]
        return len(seqs) > 1 and all(any(a <= f < b for f in fault_seqs) for a, b in zip(seqs, seqs[1:]))

    count_jobs(row, client, set(producer.acked.values()), in_flight,
               explain=lambda job_id: job_id in in_flight or across_fault(job_id))
    check_log(row, client)
    row.check(len(producer.acked) == n, f"only {len(producer.acked)} of {n} creates were acknowledged")
    row.check(not procs.exited(), f"listeners exited: {procs.exited()}")
    row.notes.append(f"{len(in_flight)} jobs in flight at the faults; {producer.resends} creates re-sent "
                     f"(same idempotency key), {producer.errors} error replies")


def executing_ids(broker: h.Broker) -> set[str]:
    return {r[0] for r in broker.store_rows("SELECT id FROM jobs WHERE status = 'executing'")}


def active_killed(short: bool) -> Row:
    """p1: SIGKILL of the active broker under load with a standby running: it takes over (timed)."""
    row = Row("p1 active broker killed, standby takes over")
    n, kills, rate = (1200, 2, 150) if short else (6000, 6, 200)
    work = h.workdir("active-killed")
    schema = h.fresh_schema()
    store = h.with_schema(h.POSTGRES_URL, schema)
    pair = Pair(work, store, store, "--lease-seconds", "3")
    procs: Optional[h.Procs] = None
    takeovers: list[str] = []
    try:
        active = pair.start(0, standby=False)
        standby = pair.start(1, standby=True)
        row.check(not standby.listening.is_set(), "the second broker on the store did not stand by: it started serving")
        procs, producer = standby_load(row, work, pair, n, rate, "pk")
        duration = n / rate
        in_flight: set[str] = set()
        fault_seqs: list[int] = []
        for k in range(kills):
            time.sleep(duration / (kills + 1) * random.uniform(0.6, 1.2))
            killed_at = time.monotonic()
            active.kill9()
            in_flight |= executing_ids(active)
            replied = first_reply(standby, FAILOVER_TIMEOUT * 4)
            took = standby.listening.wait(5) and standby.listening_at is not None
            line_s = standby.listening_at - killed_at if took and standby.listening_at else None
            reply_s = replied - killed_at if replied else None
            takeovers.append(f"{line_s:.2f} s to the startup line, {reply_s:.2f} s to the first reply"
                             if line_s is not None and reply_s is not None
                             else f"startup line {line_s}, first reply {reply_s}")
            h.say(f"kill -9 the active broker: {len(in_flight)} jobs in flight so far; takeover {takeovers[-1]}")
            row.check(replied is not None and took, f"kill {k + 1}: the standby did not take over")
            row.check(reply_s is None or reply_s <= FAILOVER_TIMEOUT,
                      f"kill {k + 1}: the standby took {reply_s:.1f} s to answer "
                      f"(failover timeout {FAILOVER_TIMEOUT} s)")
            if replied is None:
                break
            fault_seqs.append(seq_now(pair))
            # The killed one comes back as the standby, as a supervisor would restart it.
            index = pair.brokers.index(active)
            pair.start(index, standby=True)
            row.check(not active.listening.is_set(), f"kill {k + 1}: the restarted broker did not stand by")
            active, standby = standby, active
        row.kills = sum(b.kills for b in pair.brokers)
        row.faults = len(in_flight)
        settle(row, pair, procs, producer, in_flight, n, fault_seqs)
        row.notes.append("takeovers: " + "; ".join(takeovers))
    finally:
        if procs:
            procs.close()
        pair.stop()
    return row


def postgres_restarted(short: bool) -> Row:
    """p2: `pg_ctl restart -m fast` of the PostgreSQL server under load: the active broker carries on, or
    gives up its role (exit 3) and the standby takes over; nothing lost or done twice either way."""
    row = Row("p2 PostgreSQL restarted")
    n, restarts, rate = (1200, 1, 150) if short else (6000, 3, 200)
    work = h.workdir("postgres-restarted")
    cluster = h.Postgres(h.workdir("postgres-restarted-cluster"))  # under /tmp: the postgres user enters it
    pair: Optional[Pair] = None
    procs: Optional[h.Procs] = None
    try:
        store = h.with_schema(cluster.start(), h.fresh_schema())
        pair = Pair(work, store, store, "--lease-seconds", "3")
        pair.start(0, standby=False)
        pair.start(1, standby=True)
        procs, producer = standby_load(row, work, pair, n, rate, "pr")
        duration = n / rate
        in_flight: set[str] = set()
        fault_seqs: list[int] = []
        outcomes: list[str] = []

        def conclude(k: int, before: h.Broker, up: float, back: float) -> None:
            """What became of restart k, seconds later: the old active learns at its next renewal or commit
            that a standby took over, so it is judged at the next restart or when the load has ended."""
            assert pair is not None
            old_exit = pair.exit_of(before)
            if old_exit is None:
                outcomes.append(f"restart {k + 1}: the active broker carried on ({up:.1f} s restart, serving after "
                                f"{back:.1f} s)")
            else:
                after = next((b for b in pair.brokers if b is not before), None)
                outcomes.append(f"restart {k + 1}: the standby took over ({up:.1f} s restart, serving after "
                                f"{back:.1f} s; the old active exited {old_exit[1]})")
                row.check(old_exit[1] == 3, f"restart {k + 1}: the old active exited with code {old_exit[1]}, not 3")
                # The restart ends the old active's session too, so the standby may take over as soon as it
                # reconnects; the old one learns it at its next renewal or commit (fenced by term meanwhile: the
                # gap-free log checks that) and exits then. Not the partition's rule (p3): measured here.
                if after is not None and after.listening_at is not None:
                    overlap = old_exit[0] - after.listening_at
                    outcomes[-1] += (f", {abs(overlap):.2f} s {'after' if overlap > 0 else 'before'} the new one "
                                     f"started")
                    row.check(overlap < FAILOVER_TIMEOUT,
                              f"restart {k + 1}: the old active went on {overlap:.1f} s after the new one started")
            h.say(outcomes[-1])
            # Whichever broker exited stands by again (a supervisor's restart).
            for index, broker in enumerate(pair.brokers):
                if not broker.alive():
                    if broker is not before:
                        code = broker.proc.returncode if broker.proc else None
                        outcomes.append(f"restart {k + 1}: the standby exited ({code})")
                    pair.start(index, standby=True)

        pending: Optional[tuple[int, h.Broker, float, float]] = None
        for k in range(restarts):
            time.sleep(duration / (restarts + 1) * random.uniform(0.6, 1.2))
            if pending:
                conclude(*pending)
            before = pair.active()
            assert before is not None
            in_flight |= executing_ids(before)
            at = time.monotonic()
            cluster.restart()
            up = time.monotonic() - at
            row.faults += 1
            # Serving again: an active broker (the same or the other) answers a request that needs the store.
            served = h.wait_until(lambda: serves(pair), timeout=FAILOVER_TIMEOUT * 4, every=0.1)
            back = time.monotonic() - at
            row.check(served, f"restart {k + 1}: no broker served again after PostgreSQL came back")
            h.say(f"pg_ctl restart -m fast: {up:.1f} s; a broker served again after {back:.1f} s")
            fault_seqs.append(seq_now(pair))
            pending = (k, before, up, back)
        producer.join()
        if pending:
            conclude(*pending)
        row.kills = len(pair.exits)
        settle(row, pair, procs, producer, in_flight, n, fault_seqs)
        row.notes.append("; ".join(outcomes))
    finally:
        if procs:
            procs.close()
        if pair:
            pair.stop()
        cluster.stop()
    return row


def postgres_partition(short: bool) -> Row:
    """p3: the active broker reaches PostgreSQL through faults/proxy.py, blackholed under load; the standby
    is connected directly. The old active must exit (code 3, `lost the active role`) before the new one
    serves."""
    import proxy as px

    row = Row("p3 partition from PostgreSQL")
    n, rate = (1200, 150) if short else (6000, 200)
    work = h.workdir("postgres-partition")
    schema = h.fresh_schema()
    direct = h.with_schema(h.POSTGRES_URL, schema)
    link = px.Proxy(h.postgres_port(h.POSTGRES_URL))
    cut = h.with_schema(h.via_port(h.POSTGRES_URL, link.port), schema)
    pair = Pair(work, direct, direct, "--lease-seconds", "3", stores=[cut, direct])
    procs: Optional[h.Procs] = None
    try:
        old = pair.start(0, standby=False)
        new = pair.start(1, standby=True)
        procs, producer = standby_load(row, work, pair, n, rate, "pp")
        time.sleep(n / rate / 3)
        in_flight = executing_ids(old)
        at = time.monotonic()
        link.set("blackhole")
        row.faults = 1
        h.say(f"blackholed the active broker's link to PostgreSQL ({len(in_flight)} jobs in flight)")
        h.wait_until(lambda: not old.alive() and new.listening.is_set(), timeout=FAILOVER_TIMEOUT * 6, every=0.05)
        exit_ = pair.exit_of(old)
        row.check(exit_ is not None, f"the cut-off active broker did not exit within {FAILOVER_TIMEOUT * 6} s")
        row.check(new.listening.is_set(), f"the standby did not take over within {FAILOVER_TIMEOUT * 6} s")
        if exit_ is not None:
            row.check(exit_[1] == 3, f"the cut-off active broker exited with code {exit_[1]}, not 3")
            row.check("lost the active role" in old.log_tail(40),
                      f"the cut-off broker's log does not say it lost the active role: {old.log_tail(3)!r}")
        if exit_ is not None and new.listening_at is not None:
            row.check(exit_[0] < new.listening_at,
                      f"the new active served {exit_[0] - new.listening_at:.2f} s before the old one exited")
            row.notes.append(f"the old active exited (code {exit_[1]}) {exit_[0] - at:.2f} s after the cut, the new "
                             f"one started {new.listening_at - at:.2f} s after it "
                             f"({new.listening_at - exit_[0]:.2f} s after the exit)")
            h.say(row.notes[-1])
        fault_seqs: list[int] = []
        if new.listening.is_set():
            in_flight |= executing_ids(new)  # what the old active had handed out before the cut
            fault_seqs.append(seq_now(pair))
        link.set("pass")
        settle(row, pair, procs, producer, in_flight, n, fault_seqs)
        row.kills = 1 if exit_ is not None else 0
    finally:
        if procs:
            procs.close()
        pair.stop()
        link.set("reset")
    return row


SCENARIOS: dict[str, Callable[[bool], Row]] = {
    "1": listener_killed,
    "4": broker_killed,
    "11": retries_across_kills,
    "2": slow_listener,
    "3": poison_job,
    "7": slow_subscriber,
    "7s": slow_swift_subscriber,
    "8": partition,
    "9": fuzzing,
    "5": damaged_store,
    "6": disk_full,
    **hostile.SCENARIOS,
    "p1": active_killed,
    "p2": postgres_restarted,
    "p3": postgres_partition,
}
# Scenarios about one store's own files, run on that store only, and why.
SQLITE_ONLY = {
    "5": "damages the SQLite database and WAL files",
    "6": "fills the disk under the SQLite data folder",
    "h5": "copies a built SQLite data folder",
    "h6": "deletes the SQLite write-ahead log",
}
POSTGRES_ONLY = {key: "standby brokers share a PostgreSQL store" for key in ("p1", "p2", "p3")}
# Named groups for --only; `--short` runs these only where it is cheap (CI).
GROUPS = {"hostile": list(hostile.SCENARIOS), "standby": list(POSTGRES_ONLY)}
SHORT = [key for key in SCENARIOS if key not in hostile.FULL_ONLY]


def table(rows: list[Row]) -> str:
    head = ["scenario", "jobs", "kills", "faults", "inputs", "lost", "dup. ends", "re-runs (explained)", "stuck", "s", "result"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for r in rows:
        cells = [r.scenario, f"{r.jobs:,}", f"{r.kills:,}", f"{r.faults:,}", f"{r.inputs:,}", str(r.lost),
                 str(r.duplicated), f"{r.reruns} ({r.explained})", str(r.stuck), f"{r.seconds:.0f}", r.result]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def hostile_table(rows: list[Row]) -> str:
    """The hostile-client scenarios: one line per attack, the bystander's latencies and the broker's memory."""
    head = ["scenario", "attack", "bystander worst / p99 ms", "broker peak RSS MB", "result"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for r in rows:
        if not r.phases:
            lines.append(f"| {r.scenario} | | - | - | {r.result} |")
            continue
        for p in r.phases:
            latency = "-" if p.worst_ms is None else f"{p.worst_ms:,.0f} / {p.p99_ms:,.0f}"
            if p.unanswered:
                latency += " (no reply)"
            memory = "-" if p.rss_mb is None else f"{p.rss_mb:,}"
            lines.append(f"| {r.scenario} | {p.name} | {latency} | {memory} | {p.result} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="the short variant of each scenario (CI)")
    parser.add_argument("--only", default="",
                        help="comma-separated scenario keys (1, 7s, h1, ...) or groups (hostile)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite",
                        help="the brokers' store: a SQLite data folder each, or a fresh schema each in the PostgreSQL "
                             "database of JOBWIRE_TEST_POSTGRES (without it, a throwaway cluster of scripts/postgres.sh)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())
    random.seed(seed)
    if not os.path.exists(h.JOBWIRE):
        print(f"faults: {h.JOBWIRE} is missing: build with `swift build --scratch-path .build-fault`", file=sys.stderr)
        return 2
    chosen: list[str] = []
    for key in (s.strip() for s in args.only.split(",") if s.strip()):
        if key in GROUPS:
            chosen += [k for k in GROUPS[key] if not args.short or k in SHORT]
        elif key in SCENARIOS:
            chosen.append(key)
        else:
            parser.error(f"no scenario or group {key!r}: one of {', '.join([*SCENARIOS, *GROUPS])}")
    chosen = chosen or (SHORT if args.short else list(SCENARIOS))
    h.STORE = args.store
    cluster: Optional[h.Postgres] = None
    if args.store == "postgres" and not h.POSTGRES_URL:
        cluster = h.Postgres(h.workdir("postgres-cluster"))
        h.POSTGRES_URL = cluster.start()
    try:
        return run(args, seed, chosen)
    finally:
        if cluster:
            cluster.stop()


def run(args: argparse.Namespace, seed: int, chosen: list[str]) -> int:
    rows: list[Row] = []
    other = POSTGRES_ONLY if args.store == "sqlite" else SQLITE_ONLY
    where = f"the {args.store} store" + (f" ({h.POSTGRES_URL})" if args.store == "postgres" else "")
    print(f"jobwire fault suite ({'short' if args.short else 'full'}) on {where}, seed {seed}", flush=True)
    for key in chosen:
        scenario = SCENARIOS[key]
        if key in other:
            rows.append(Row(f"{key} {scenario.__name__}", skipped=f"{other[key]}: not run on the {args.store} store"))
            print(f"== {key}: {scenario.__name__}: skipped on {args.store} ({other[key]})", flush=True)
            continue
        print(f"== {key}: {scenario.__name__}", flush=True)
        started = time.monotonic()
        try:
            row = scenario(args.short)
        except Exception as error:  # a crash of the suite is a failure of the scenario, with its trace
            traceback.print_exc()
            row = Row(f"{key} {scenario.__name__}", failures=[f"{type(error).__name__}: {error}"])
        row.seconds = time.monotonic() - started
        for note in row.notes:
            h.say(note)
        h.say(row.result, f"in {row.seconds:.0f} s", "; ".join(row.failures) or row.skipped or "")
        rows.append(row)
    print()
    plain = [r for r in rows if not r.phases and not r.scenario.startswith("h")]
    attacked = [r for r in rows if r not in plain]
    if plain:
        print(table(plain))
    if attacked:
        print()
        print(hostile_table(attacked))
    failed = [r for r in rows if r.result == "FAIL"]
    for r in rows:
        for failure in r.failures:
            print(f"FAIL {r.scenario}: {failure}")
        if r.skipped:
            print(f"SKIP {r.scenario}: {r.skipped}")
    skipped = [r for r in rows if r.skipped and r.result != "FAIL"]
    passed = len(rows) - len(failed) - len(skipped)
    # The plain closing line: scenarios, as the other suites count their rules and tests.
    print(f"faults-{args.store}: {passed} passed, {len(failed)} failed" + (f", {len(skipped)} skipped" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

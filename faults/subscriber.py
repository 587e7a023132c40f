#!/usr/bin/env python3
"""A Flatfile-style fault-suite listener (the jobwire package's Listener): it sees every job
event of `workbook:export` (subscription prefix `job:`), acks and completes each `job:ready`, and logs

    ready <pid>                  caught up with the broker for the first time
    handled <jobId> <replayed>   acked and completed (replayed: 1 if it came from events.list)
    replay <events>              one replay found this many events it had not seen live
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from jobwire import Listener  # the package clients/python
from jobwire import ListenerEvent as Event
from jobwire import ProtocolError as JobwireError


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", required=True)
    parser.add_argument("--events", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--quiet-seconds", type=float, default=2.0)
    args = parser.parse_args()
    fd = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    lock = threading.Lock()

    def log(*words: object) -> None:
        with lock:
            os.write(fd, (" ".join(str(w) for w in words) + "\n").encode())

    class Counting(Listener):
        replayed = 0

        def _catch_up(self, client, leases):  # type: ignore[no-untyped-def]
            first = self._cursor.seq is None
            super()._catch_up(client, leases)
            if first:
                log("ready", os.getpid())

        def _replay(self, client, leases):  # type: ignore[no-untyped-def]
            before = self.replayed
            super()._replay(client, leases)
            log("replay", self.replayed - before)

        def _on_live_event(self, topic, envelope, client, leases, replayed=False):  # type: ignore[no-untyped-def]
            seq, cursor = envelope.get("seq"), self._cursor.seq
            if replayed and not (seq is not None and cursor is not None and seq <= cursor):
                self.replayed += 1
            super()._on_live_event(topic, envelope, client, leases, replayed)

    listener = Counting(args.name, commands=args.commands, events=args.events, quiet_seconds=args.quiet_seconds)

    @listener.on("job:*", job="workbook:export")
    def on_job(event: Event) -> None:
        if event.topic != "job:ready":
            return
        try:
            event.ack(progress=0)
            event.complete({"message": "done"})
            log("handled", event.job_id, int(event.replayed))
        except JobwireError as error:
            log("refused", event.job_id, error.type)

    signal.signal(signal.SIGTERM, lambda *_: listener.stop())
    listener.run()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Replays the frame-by-frame lifecycle of docs/protocol.md (section 6) against a live broker.

    python doc_frames.py --commands tcp://127.0.0.1:7401 --events tcp://127.0.0.1:7400 [--doc docs/protocol.md]

It reads the frames from the doc, sends each request (the doc's job id and cursor replaced by
the real ones), and compares every reply and event with the doc's: the topic frame must be equal,
every field name the doc shows must be in the broker's frame, and a frame the doc shows whole
(no `…`) must have exactly the doc's field names. Prints one PASS/FAIL line per frame; the exit
status is the number of failures. So the doc cannot drift from the broker unnoticed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import zmq

DOC_JOB_ID = "us_jb_8f2k"


def doc_frames(doc: str) -> list[tuple[str, str]]:
    """(topic frame, body) of every two-frame message in section 6's text block, in order."""
    section = doc[doc.index("## 6."):]
    block = section[section.index("```text") + 7:]
    block = block[: block.index("```")]
    return re.findall(r"^\[b\"([^\"]*)\",\s*b'(.*)'\]\s*$", block, re.M)


def doc_keys(body: str) -> set[str]:
    return set(re.findall(r'"([A-Za-z]\w*)":', body))


def keys(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            found.add(key)
            found |= keys(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= keys(inner)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commands", required=True)
    parser.add_argument("--events", required=True)
    parser.add_argument("--doc", default=str(Path(__file__).resolve().parent.parent / "docs" / "protocol.md"))
    args = parser.parse_args()
    frames = doc_frames(Path(args.doc).read_text())
    failures = 0

    def check(ok: bool, what: str) -> None:
        nonlocal failures
        print(f"{'PASS' if ok else 'FAIL'} doc frames: {what}", flush=True)
        failures += 0 if ok else 1

    def compare(label: str, doc_body: str, actual: Any, topic_ok: bool = True) -> None:
        wanted, got = doc_keys(doc_body), keys(actual)
        missing = sorted(wanted - got)
        extra = sorted(got - wanted) if "…" not in doc_body else []
        ok = topic_ok and not missing and not extra
        detail = "".join([f" missing {missing}" if missing else "", f" not in the doc {extra}" if extra else ""])
        check(ok, label + ("" if ok else " --" + detail + ("" if topic_ok else " (topic differs)")))

    check(len(frames) >= 10, f"{len(frames)} frames found in section 6")
    context = zmq.Context.instance()
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(args.commands)
    sub = context.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.connect(args.events)
    for topic, _ in frames:
        if topic and not topic.startswith("broker:"):
            sub.setsockopt(zmq.SUBSCRIBE, topic.encode())
    sub.setsockopt(zmq.SUBSCRIBE, b"broker:heartbeat/")

    def receive(heartbeat: bool) -> tuple[str, Any]:
        deadline = time.monotonic() + 5
        while sub.poll(max(1, int((deadline - time.monotonic()) * 1000))):
            topic, body = sub.recv_multipart()[:2]
            if topic.startswith(b"broker:heartbeat/") == heartbeat:
                return topic.decode(), json.loads(body)
        return "", None

    job_id = None
    since = None
    pending_reply = None
    for topic, body in frames:
        if topic == "" and '"method"' in body:
            request = body.replace(DOC_JOB_ID, job_id or DOC_JOB_ID)
            parsed = json.loads(request)
            if parsed["method"] == "events.list":
                parsed["params"]["since"] = since
            dealer.send_multipart([b"", json.dumps(parsed).encode()])
            pending_reply = parsed["method"]
        elif topic == "":
            if not dealer.poll(5000):
                check(False, f"{pending_reply}: no reply")
                return failures + 1
            reply = json.loads(dealer.recv_multipart()[-1])
            if pending_reply == "jobs.create" and "result" in reply:
                job_id = reply["result"]["id"]
            compare(f"{pending_reply} reply", body, reply)
        else:
            heartbeat = topic.startswith("broker:heartbeat/")
            got_topic, envelope = receive(heartbeat)
            if envelope is None:
                check(False, f"{topic} event: none came")
                continue
            if heartbeat and since is None:
                since = envelope["payload"]["seq"]  # nothing after it yet: an empty replay, as in the doc
            compare(f"{topic} event", body, envelope, topic_ok=got_topic == topic)
    return min(failures, 100)


if __name__ == "__main__":
    sys.exit(main())

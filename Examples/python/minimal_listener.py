#!/usr/bin/env python3
"""A workbook:export listener written only from docs/protocol.md: raw pyzmq, no jobwire package.

    python minimal_listener.py [--commands tcp://127.0.0.1:7401] [--events tcp://127.0.0.1:7400] [--name minimal]
"""
import argparse, itertools, json, os, time
import zmq

parser = argparse.ArgumentParser()
parser.add_argument("--commands", default=os.environ.get("JOBWIRE_COMMANDS", "tcp://127.0.0.1:7401"))
parser.add_argument("--events", default=os.environ.get("JOBWIRE_EVENTS", "tcp://127.0.0.1:7400"))
parser.add_argument("--name", default="minimal")
args = parser.parse_args()

context = zmq.Context()
commands = context.socket(zmq.DEALER)                      # §1: DEALER sends [b"", request]
commands.connect(args.commands)
ids = itertools.count(1)

def call(method, **params):
    request_id = next(ids)
    commands.send_multipart([b"", json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}).encode()])
    while True:
        reply = json.loads(commands.recv_multipart()[-1])
        if reply["id"] == request_id:                       # match replies by id
            if "error" in reply:
                raise RuntimeError(reply["error"])
            return reply["result"]

events = context.socket(zmq.SUB)                           # §4: subscribe, heartbeat last
events.connect(args.events)
events.setsockopt(zmq.SUBSCRIBE, b"job:ready/workbook:export/")
events.setsockopt(zmq.SUBSCRIBE, b"broker:heartbeat/")
while not events.recv_multipart()[0].startswith(b"broker:heartbeat/"):
    pass                                                    # the first heartbeat: subscriptions are live

def handle(job_id):                                         # §5 and §6: ack, progress, complete
    try:
        call("jobs.ack", jobId=job_id, listenerId=args.name, progress=0, info="Accepted")
    except RuntimeError as error:                           # another listener acked first
        print(f"skip {job_id}: {error}", flush=True)
        return
    time.sleep(0.1)                                         # the work; an update also renews the lease
    call("jobs.update", jobId=job_id, listenerId=args.name, progress=50, info="Half way")
    time.sleep(0.1)
    call("jobs.complete", jobId=job_id, listenerId=args.name,
         outcome={"message": "Exported", "next": {"type": "download", "url": f"file:///tmp/{job_id}.xlsx", "fileName": "export.xlsx"}})
    print(f"completed {job_id}", flush=True)

cursor = call("broker.info")["seq"]                         # no cursor yet: start at the broker's seq
for job in call("jobs.list", status="ready", type="workbook", operation="export", pageSize=100)["data"]:
    handle(job["id"])
print(f"listening as {args.name} from seq {cursor}", flush=True)
while True:
    topic, body = events.recv_multipart()
    envelope = json.loads(body)
    if topic.startswith(b"broker:heartbeat/"):
        if envelope["payload"]["seq"] > cursor:             # §4.4: the log moved on; replay what we missed
            while True:
                since = cursor
                replay = call("events.list", since=since, topics=["job:ready"])
                for event in replay["events"]:
                    cursor = event["seq"]
                    if event["payload"]["job"] == "workbook:export":
                        handle(event["context"]["jobId"])
                done = replay["nextSince"] >= replay["lastSeq"] or replay["nextSince"] <= since
                cursor = max(cursor, replay["nextSince"])   # every event up to nextSince was examined
                if done:                                    # else the page stopped short: go on from there
                    break
    elif envelope["seq"] > cursor:                          # live and replayed events overlap: dedupe by seq
        cursor = envelope["seq"]
        handle(envelope["context"]["jobId"])

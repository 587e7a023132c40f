"""Times the requests whose work depends on the size of the job graph, against a broker binary.

    python measure.py <jobwire binary> chain N     N dependent jobs, then the cancel of their head
    python measure.py <jobwire binary> claims N [R] N waiting claims (60 per connection; R ready jobs of
                                                   distinct names first), then five creates
    python measure.py <jobwire binary> preds N     a create naming N predecessors
    python measure.py <jobwire binary> split N     a split into N parts

The broker runs on a fresh store in a temporary folder, without fsync; the caps these sizes meet are in
docs/protocol.md (Limits)."""
import json, shutil, socket, subprocess, sys, tempfile, time, zmq

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

binary, what, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = tempfile.mkdtemp(prefix="jobwire-graph-")
cp, ep = free_port(), free_port()
broker = subprocess.Popen([binary, "broker", "--data", data, "--no-fsync",
                           "--commands", f"tcp://127.0.0.1:{cp}", "--events", f"tcp://127.0.0.1:{ep}"],
                          stdout=subprocess.DEVNULL, stderr=open(data + "/stderr", "w"))
ctx = zmq.Context()
ids = [0]

def dealer():
    d = ctx.socket(zmq.DEALER); d.setsockopt(zmq.LINGER, 0); d.connect(f"tcp://127.0.0.1:{cp}"); return d

def send(d, method, params):
    ids[0] += 1
    d.send_multipart([b"", json.dumps({"jsonrpc": "2.0", "id": ids[0], "method": method, "params": params}).encode()])

def recv(d, timeout=600):
    end = time.time() + timeout
    while not d.poll(1000):
        if broker.poll() is not None or time.time() > end:
            raise SystemExit(f"no reply; broker exit code {broker.poll()}")
    return json.loads(d.recv_multipart()[-1])

def call(d, method, params):
    send(d, method, params)
    while True:
        reply = recv(d)
        if reply.get("id") == ids[0]: return reply

main = dealer()
for _ in range(100):
    try:
        main.send_multipart([b"", b'{"jsonrpc":"2.0","id":0,"method":"broker.info"}'])
        if main.poll(200): main.recv_multipart(); break
    except zmq.ZMQError: pass
    time.sleep(0.1)
try:
    if what == "chain":
        head = call(main, "jobs.create", {"type": "c", "operation": "x", "source": "s", "trigger": "manual"})["result"]["id"]
        prev = head
        t = time.time()
        for i in range(n):
            prev = call(main, "jobs.create", {"type": "c", "operation": "x", "source": "s", "predecessorIds": [prev]})["result"]["id"]
        print(f"built chain of {n} in {time.time()-t:.1f}s", flush=True)
        bystander = dealer()
        call(bystander, "broker.info", {})
        t = time.time()
        send(main, "jobs.cancel", {"jobId": head})
        cancel_id = ids[0]
        answered = None
        worst = 0.0
        while True:
            if answered is None and main.poll(0):
                reply = json.loads(main.recv_multipart()[-1])
                if reply.get("id") == cancel_id: answered = time.time() - t
            b = time.time(); call(bystander, "broker.info", {}); worst = max(worst, time.time() - b)
            if answered is not None:
                last = call(main, "jobs.get", {"jobId": prev})["result"]
                if last["status"] != "scheduled": break
        ended = time.time() - t
        print(f"chain {n}: cancel answered after {answered*1000:.0f} ms, last link {last['status']} "
              f"({last.get('outcome')}) after {ended*1000:.0f} ms; bystander broker.info worst {worst*1000:.0f} ms; "
              f"broker alive={broker.poll() is None}")
    elif what == "preds":
        preds = [call(main, "jobs.create", {"type": "p", "operation": "x", "source": "s"})["result"]["id"] for _ in range(n)]
        times = []
        for _ in range(3):
            t = time.time(); r = call(main, "jobs.create", {"type": "d", "operation": "x", "source": "s", "predecessorIds": preds}); times.append(time.time() - t)
        print(f"create with {n} predecessors: " + ", ".join(f"{x*1000:.0f}" for x in times) + f" ms ({r.get('error', {}).get('message', 'ok')})")
    elif what == "split":
        call(main, "jobs.create", {"type": "sp", "operation": "x", "source": "s"})
        parent = call(main, "jobs.claim", {"listenerId": "w", "jobs": ["sp:x"]})["result"]["job"]["id"]
        t = time.time(); r = call(main, "jobs.split", {"jobId": parent, "listenerId": "w", "parts": n}); el = time.time() - t
        print(f"split into {n} parts: {el*1000:.0f} ms ({r.get('error', {}).get('message', 'ok')})")
    elif what == "claims":
        per = 60
        names = int(sys.argv[4]) if len(sys.argv) > 4 else 0
        for i in range(names):
            call(main, "jobs.create", {"type": f"ready{i}", "operation": "job", "source": "s"})
        if names: print(f"{names} ready jobs of distinct names")
        dealers = []
        t = time.time()
        waiting = 0
        while waiting < n:
            d = dealer(); dealers.append(d)
            k = min(per, n - waiting)
            for _ in range(k): send(d, "jobs.claim", {"listenerId": "w", "jobs": ["nobody:waits"], "wait": 60})
            waiting += k
        # wait until the broker counts them
        while True:
            info = call(main, "broker.info", {}).get("result")
            if not info or "waitingClaims" not in info: print("odd reply", str(info)[:300]); continue
            if info["waitingClaims"] >= n: break
            time.sleep(0.2)
        print(f"{n} claims waiting after {time.time()-t:.1f}s over {len(dealers)} connections")
        times = []
        for i in range(5):
            t = time.time(); call(main, "jobs.create", {"type": "other", "operation": "job", "source": "s"}); times.append(time.time() - t)
        print("create while %d claims wait: %s ms" % (n, ", ".join(f"{x*1000:.1f}" for x in times)))
finally:
    broker.terminate()
    try: broker.wait(30)
    except subprocess.TimeoutExpired: broker.kill()
    print("broker exit", broker.returncode)
    shutil.rmtree(data, ignore_errors=True)

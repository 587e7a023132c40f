#!/usr/bin/env python3
"""The broker's start time on a store: from exec to its `listening` line, wall and CPU (user + system).

Usage: Benchmarks/start_time.py BINARY DATA_DIR [RUNS]   (the store is used as it is; each run stops the
broker with SIGTERM). Make a store of 1,000,000 ended jobs with Benchmarks/fill_store.c.
"""
import os
import signal
import subprocess
import sys
import time


def once(binary, data):
    began = time.monotonic()
    broker = subprocess.Popen(
        [binary, "broker", "--data", data, "--events", "tcp://127.0.0.1:*", "--commands", "tcp://127.0.0.1:*"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = broker.stdout.readline()
    wall = time.monotonic() - began
    with open(f"/proc/{broker.pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    broker.send_signal(signal.SIGTERM)
    _, err = broker.communicate()
    if "listening" not in line:
        sys.exit(f"the broker did not start: {line}{err}")
    return wall, cpu


def main():
    binary, data = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    results = [once(binary, data) for _ in range(runs)]
    for wall, cpu in results:
        print(f"wall {wall:.2f} s, cpu {cpu:.2f} s")
    walls = sorted(w for w, _ in results)
    cpus = sorted(c for _, c in results)
    print(f"median: wall {walls[len(walls) // 2]:.2f} s, cpu {cpus[len(cpus) // 2]:.2f} s")


main()

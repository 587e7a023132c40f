#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, runs the Swift tests, then the
# Python client's tests and the protocol conformance suite (Python, pyzmq) against real
# `jobwire broker` processes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build --build-tests
# The README's Swift code, built as a new package depending on this checkout (about 3 minutes on 2 cores
# the first time, seconds after).
scripts/readme-check.sh
swift test --skip-build --parallel

py=$(scripts/python-env.sh | tail -n1)
"$py" -m pytest clients/python/tests -q
data=$(mktemp -d)
out=$(mktemp)
.build/debug/jobwire broker --data "$data" --events 'tcp://127.0.0.1:*' --commands 'tcp://127.0.0.1:*' >"$out" 2>"$data/broker.log" &
broker=$!
trap 'kill $broker 2>/dev/null; wait $broker 2>/dev/null; rm -rf "$data" "$out"' EXIT
for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.1; done
line=$(head -n1 "$out")
events=$(sed -E 's/.*events ([^,]+),.*/\1/' <<<"$line")
commands=$(sed -E 's/.*commands ([^,]+),.*/\1/' <<<"$line")
echo "conformance suite against $commands / $events"
"$py" conformance/conformance.py --commands "$commands" --events "$events"
scripts/cross-language.sh
JOBWIRE_FAULT_BUILD=.build/debug scripts/faults.sh --short

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

# The Swift tests in three layers, each run once, so that the output says how many tests run where and how
# long each layer took. The layers are disjoint, and the last takes every test the first two do not: the
# union is `swift test list`, which the counts below are checked against.
core='^JobwireCoreTests\.'
units='^(JobwireProtocolTests|ZeroMQTests)\.|^JobwireBrokerTests\.(ChecksumTests|StoreMigrationTests|SubscriptionTableTests)/|^JobwireTests\.(ListenerDSLTests|PartFilterTests)/|^JobwireCLITests\.(PanelLayoutTests|KeyOptionTests)/'
tests=$(swift test list --skip-build 2>/dev/null)
total=$(grep -c . <<<"$tests")
n_core=$(grep -cE "$core" <<<"$tests" || true)
n_units=$(grep -cE "$units" <<<"$tests" || true)
n_processes=$(grep -vcE "$core|$units" <<<"$tests" || true)
if [ $((n_core + n_units + n_processes)) -ne "$total" ]; then
    echo "test.sh: the layers hold $((n_core + n_units + n_processes)) tests, swift test list $total" >&2
    exit 1
fi
summary=()
layer() {
    local label=$1 count=$2
    shift 2
    echo "== Swift tests: $label: $count tests =="
    local start=$SECONDS
    swift test --skip-build --parallel "$@"
    summary+=("$(printf '%4d tests %5d s  %s' "$count" $((SECONDS - start)) "$label")")
}
layer "core rules, in-process, virtual time (JobwireCoreTests)" "$n_core" --filter "$core"
layer "protocol, ZeroMQ, store and DSL units, in-process" "$n_units" --filter "$units"
layer "broker, SDK and CLI against real jobwire and example processes" "$n_processes" --skip "$core|$units"
echo "== Swift tests: all $total passed =="
printf '%s\n' "${summary[@]}"

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

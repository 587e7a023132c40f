#!/usr/bin/env bash
# The README's test command: installs what is missing, starts a throwaway PostgreSQL server
# (scripts/postgres.sh: Debian's postgresql, a cluster in a temporary folder on a free loopback port,
# stopped and removed at the end however the run ends), builds, runs the Swift tests (they find the
# server in JOBWIRE_TEST_POSTGRES), then the Python client's tests, and the protocol conformance suite,
# the cross-language checks and the fault suite (short form) against real `jobwire broker` processes,
# once with each store: SQLite and PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
started_all=$SECONDS
scripts/setup.sh
source scripts/store.sh
pg_dir=$(mktemp -d)
trap 'scripts/postgres.sh stop "$pg_dir" || true' EXIT
JOBWIRE_TEST_POSTGRES=$(scripts/postgres.sh start "$pg_dir" | tail -n1)
export JOBWIRE_TEST_POSTGRES
echo "PostgreSQL for the tests: $JOBWIRE_TEST_POSTGRES (cluster in $pg_dir)"
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

# The protocol conformance suite, the cross-language checks and the fault suite (short form), once per
# store: SQLite (a data folder) and PostgreSQL (a fresh schema of the throwaway cluster per broker). A
# failure does not stop the other runs; the summary at the end says which failed, and the exit code too.
results=()
failures=0
# run_check STORE LABEL COMMAND...: runs it, shows its output, keeps its closing counts line.
run_check() {
    local store=$1 label=$2 start=$SECONDS status=0 log
    shift 2
    log=$(mktemp)
    echo "== $label ($store store) =="
    "$@" 2>&1 | tee "$log" || status=$?
    local counts
    counts=$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n1 | sed -E 's/^[A-Za-z-]+: //' || true)
    rm -f "$log"
    [ "$status" -eq 0 ] || failures=$((failures + 1))
    results+=("$(printf '%-9s %-16s %5d s  %s%s' "$store" "$label" $((SECONDS - start)) "${counts:-no counts}" \
        "$([ "$status" -eq 0 ] || echo "  (exit $status)")")")
}
conformance() { # conformance STORE: a broker over that store, the suite against it
    local store=$1 data out broker line events commands status=0 options
    data=$(mktemp -d)
    out=$(mktemp)
    mapfile -t options < <(store_args "$store" "$data/store")
    [ ${#options[@]} -eq 2 ] || return 2
    .build/debug/jobwire broker "${options[@]}" --events 'tcp://127.0.0.1:*' --commands 'tcp://127.0.0.1:*' \
        >"$out" 2>"$data/broker.log" &
    broker=$!
    for _ in $(seq 100); do grep -q listening "$out" && break; kill -0 $broker 2>/dev/null || break; sleep 0.1; done
    line=$(grep -m1 listening "$out" || true)
    if [[ $line != *listening* ]]; then
        echo "conformance: the broker did not start:"
        cat "$data/broker.log"
        status=2
    else
        events=$(sed -E 's/.*events ([^,]+),.*/\1/' <<<"$line")
        commands=$(sed -E 's/.*commands ([^,]+),.*/\1/' <<<"$line")
        echo "conformance suite against $commands / $events"
        "$py" conformance/conformance.py --commands "$commands" --events "$events" || status=$?
    fi
    kill $broker 2>/dev/null || true
    wait $broker 2>/dev/null || true
    rm -rf "$data" "$out"
    return $status
}
for store in sqlite postgres; do
    run_check $store conformance conformance $store
    run_check $store cross-language scripts/cross-language.sh --store $store
    JOBWIRE_FAULT_BUILD=.build/debug run_check $store faults scripts/faults.sh --short --store $store
done
echo "== conformance, cross-language and fault suite per store ($((SECONDS - started_all)) s in all so far) =="
printf '%s\n' "${results[@]}"
echo "stores: $((${#results[@]} - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]

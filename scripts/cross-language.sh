#!/usr/bin/env bash
# Cross-language runs against a real `jobwire broker` (issue #7):
#   (a) Swift producer (the jobwire CLI: jobs create + watch --until-done) -> Python listener.py
#   (a2) Swift producer -> two copies, one name, of `python -m jobwire worker exports:listener`
#   (b) Python producer.py -> Swift workbook-export listener (acks job:ready events)
#   (c) Swift producer -> Examples/python/minimal_listener.py, written only from docs/protocol.md
#   (b2) Python producer.py -> Swift job-handler listener (claims with jobs.claim)
# and first replays the frame-by-frame lifecycle of docs/protocol.md (conformance/doc_frames.py).
# After each run, conformance/sequences.py reads the broker's log (events.list) and checks that
# every job went created, ready, updated (ack), updated (progress)..., completed, the same for every
# job of the run, completed exactly once, never failed.
#
#   scripts/cross-language.sh                 # binaries from .build/debug (swift build first)
#   JOBWIRE_BIN=.build-x/debug JOBS=5 scripts/cross-language.sh
#   scripts/cross-language.sh --store postgres   # the broker on a fresh schema of $JOBWIRE_TEST_POSTGRES
#                                                # (without it, a throwaway cluster of scripts/postgres.sh)
#
# Prints PASS/FAIL per check and "N passed, N failed"; exits 1 on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
store=sqlite
while [ $# -gt 0 ]; do
    case $1 in
        --store) store=${2:?--store sqlite|postgres}; shift 2 ;;
        --store=*) store=${1#--store=}; shift ;;
        *) echo "cross-language: unknown option $1" >&2; exit 2 ;;
    esac
done
case $store in sqlite | postgres) ;; *) echo "cross-language: --store sqlite|postgres, not $store" >&2; exit 2 ;; esac
source scripts/store.sh
bin=${JOBWIRE_BIN:-.build/debug}
bin=$(cd "$bin" && pwd)
jobs=${JOBS:-20}
minimal_jobs=${MINIMAL_JOBS:-3}
run_timeout=${RUN_TIMEOUT:-120}
started=$SECONDS
keep=${KEEP_LOGS:-0}

for tool in jobwire workbook-export job-handler; do
    [ -x "$bin/$tool" ] || { echo "cross-language: $bin/$tool is missing (swift build, or set JOBWIRE_BIN)" >&2; exit 2; }
done
py=$(scripts/python-env.sh | tail -n1)

work=$(mktemp -d)
pids=()
own_cluster=""
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    [ -z "$own_cluster" ] || scripts/postgres.sh stop "$own_cluster" || true
    if [ "${keep:-0}" = 1 ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

passed=0
failed=0
result() { # result PASS|FAIL text
    echo "$1 $2"
    if [ "$1" = PASS ]; then passed=$((passed + 1)); else failed=$((failed + 1)); keep=1; fi
}
# Stops one process this script started (by pid) and forgets it.
stop() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    local rest=() pid
    for pid in "${pids[@]}"; do [ "$pid" = "$1" ] || rest+=("$pid"); done
    pids=("${rest[@]}")
}

# The broker, on random loopback ports, over the chosen store.
if [ "$store" = postgres ] && [ -z "${JOBWIRE_TEST_POSTGRES:-}" ]; then
    own_cluster=$(mktemp -d)
    JOBWIRE_TEST_POSTGRES=$(scripts/postgres.sh start "$own_cluster" | tail -n1)
fi
mapfile -t store_options < <(store_args "$store" "$work/store")
[ ${#store_options[@]} -eq 2 ] || exit 2
"$bin/jobwire" broker "${store_options[@]}" --events 'tcp://127.0.0.1:*' --commands 'tcp://127.0.0.1:*' \
    >"$work/broker.out" 2>"$work/broker.log" &
pids+=($!)
for _ in $(seq 100); do grep -qs listening "$work/broker.out" && break; sleep 0.1; done
line=$(grep -m1 listening "$work/broker.out" || true)
[[ $line == *"listening: events "* ]] || { echo "cross-language: the broker did not start:" >&2; cat "$work/broker.log" >&2; exit 2; }
JOBWIRE_EVENTS=$(sed -E 's/.*events ([^,]+),.*/\1/' <<<"$line")
JOBWIRE_COMMANDS=$(sed -E 's/.*commands ([^,]+),.*/\1/' <<<"$line")
export JOBWIRE_EVENTS JOBWIRE_COMMANDS
echo "broker ($store store): commands $JOBWIRE_COMMANDS, events $JOBWIRE_EVENTS"

# Checks the jobs in file $2 from the log; appends its PASS/FAIL lines to the tally.
verify() { # verify label ids-file expected-count
    "$py" conformance/sequences.py --commands "$JOBWIRE_COMMANDS" --label "$1" --expect "$3" $(cat "$2") \
        >"$work/verify.out" 2>&1 || true
    verify_lines "$work/verify.out" "$1"
}
# Tallies the PASS/FAIL lines of a checker's output (other lines are shown indented).
verify_lines() { # verify_lines output label
    while IFS= read -r check; do
        case $check in
            PASS\ *) result PASS "${check#PASS }" ;;
            FAIL\ *) result FAIL "${check#FAIL }" ;;
            *) echo "  $check" ;;
        esac
    done <"$1"
    grep -qE '^(PASS|FAIL) ' "$1" || result FAIL "$2: the checker printed no checks"
}

# Waits until a listener's log shows it is live (subscribed, caught up), so a run exercises the live
# path rather than only the listener's start-up scan of ready jobs.
wait_live() { # wait_live label pattern log
    for _ in $(seq 150); do grep -qs "$2" "$3" && return 0; sleep 0.1; done
    result FAIL "$1: the listener did not become live in 15 s (log: $3)"
}

# The Swift producer: `jobwire jobs create` per job, then `jobwire watch --until-done` on their ids.
swift_produce() { # swift_produce label count ids-file log
    local label=$1 count=$2 ids=$3 log=$4 n
    : >"$ids"
    for n in $(seq "$count"); do
        "$bin/jobwire" jobs create workbook:export --source us_wb_1 --mode foreground \
            --input "{\"n\":$n}" --idempotency-key "$label-$n-$$" | awk '{print $1}' >>"$ids"
    done
    if timeout "$run_timeout" "$bin/jobwire" watch --no-color --until-done $(sed 's/^/--id /' "$ids") >"$log" 2>&1; then
        result PASS "$label: jobwire watch --until-done saw all $count jobs complete"
    else
        result FAIL "$label: jobwire watch --until-done exited $? (log: $log)"
    fi
}

# The doc's frame-by-frame lifecycle (docs/protocol.md section 6), replayed against this broker.
"$py" conformance/doc_frames.py --commands "$JOBWIRE_COMMANDS" --events "$JOBWIRE_EVENTS" >"$work/doc.out" 2>&1 || true
verify_lines "$work/doc.out" "docs/protocol.md frames"

# (a) Swift producer -> Python listener.
"$py" -u Examples/python/listener.py --name python-exports --step-seconds 0.05 >"$work/a-listener.log" 2>&1 &
listener=$!
pids+=("$listener")
wait_live "a swift->python" "listener python-exports live" "$work/a-listener.log"
swift_produce "a swift->python" "$jobs" "$work/a.ids" "$work/a-watch.log"
stop "$listener"
verify "a swift->python" "$work/a.ids" "$jobs"

# (a2) Swift producer -> two copies of the Python worker command with the same name (jobs.claim).
workers=()
for copy in 1 2; do
    (cd Examples/python && exec "$py" -u -m jobwire worker exports:listener --concurrency 4) >"$work/a2-worker$copy.log" 2>&1 &
    workers+=($!)
    pids+=($!)
done
for copy in 1 2; do wait_live "a2 swift->python worker" "running (instance" "$work/a2-worker$copy.log"; done
swift_produce "a2 swift->python worker" "$jobs" "$work/a2.ids" "$work/a2-watch.log"
for pid in "${workers[@]}"; do stop "$pid"; done
# A stopped claimer's jobs.claim stays in the broker until its wait ends; one answered meanwhile is
# taken back (the job is ready again). Let them lapse so the next run starts without them.
"$py" - <<'PY'
import time
from jobwire import JobsClient
with JobsClient() as client:
    deadline = time.monotonic() + 60
    while client.broker.info().waiting_claims and time.monotonic() < deadline:
        time.sleep(0.2)
PY
if grep -qE "Traceback|ERROR|could not" "$work"/a2-worker*.log; then
    result FAIL "a2 swift->python worker: a worker logged an error (logs: $work/a2-worker*.log)"
else
    result PASS "a2 swift->python worker: no worker logged an error"
fi
verify "a2 swift->python worker" "$work/a2.ids" "$jobs"

# (b) Python producer -> Swift listener.
JOBWIRE_WORK_MS=200 "$bin/workbook-export" --name swift-exports >"$work/b-listener.log" 2>&1 &
listener=$!
pids+=("$listener")
wait_live "b python->swift" "listener live" "$work/b-listener.log"
if timeout "$run_timeout" "$py" -u Examples/python/producer.py --count "$jobs" --job workbook:export \
    --timeout "$run_timeout" >"$work/b-producer.log" 2>&1; then
    result PASS "b python->swift: producer.py saw all $jobs jobs complete"
else
    result FAIL "b python->swift: producer.py exited $? (log: $work/b-producer.log)"
fi
stop "$listener"
awk '$2 == "created" {print $1}' "$work/b-producer.log" >"$work/b.ids"
verify "b python->swift" "$work/b.ids" "$jobs"

# (c) Swift producer -> the listener written from docs/protocol.md alone.
"$py" -u Examples/python/minimal_listener.py --name minimal >"$work/c-listener.log" 2>&1 &
listener=$!
pids+=("$listener")
wait_live "c swift->minimal" "listening as minimal" "$work/c-listener.log"
swift_produce "c swift->minimal" "$minimal_jobs" "$work/c.ids" "$work/c-watch.log"
stop "$listener"
verify "c swift->minimal" "$work/c.ids" "$minimal_jobs"

# (b2) Python producer -> Swift job-handler (competing workers: jobs.claim, lease renewal, tick).
# Last on purpose: a claimer that stops leaves its pending jobs.claim at the broker, which may
# still hand it the next ready job; that job then waits out its lease (30 s) before another
# listener can take it.
JOBWIRE_WORK_MS=200 "$bin/job-handler" --name swift-handler >"$work/b2-listener.log" 2>&1 &
listener=$!
pids+=("$listener")
wait_live "b2 python->swift claim" "listener live" "$work/b2-listener.log"
if timeout "$run_timeout" "$py" -u Examples/python/producer.py --count "$jobs" --job workbook:export \
    --timeout "$run_timeout" >"$work/b2-producer.log" 2>&1; then
    result PASS "b2 python->swift claim: producer.py saw all $jobs jobs complete"
else
    result FAIL "b2 python->swift claim: producer.py exited $? (log: $work/b2-producer.log)"
fi
stop "$listener"
awk '$2 == "created" {print $1}' "$work/b2-producer.log" >"$work/b2.ids"
verify "b2 python->swift claim" "$work/b2.ids" "$jobs"

if [ "$failed" -gt 0 ]; then
    for log in "$work"/*.log; do echo "--- ${log#"$work"/} (last lines)"; tail -n 15 "$log"; done
fi
echo "cross-language ($store store): $((SECONDS - started)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# The README's main command: installs what is missing, builds, then shows the system working:
# a broker, a listener process, and a producer whose jobs go from created to completed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build
py=$(scripts/python-env.sh | tail -n1)
data=$(mktemp -d)
out="$data/broker.out"
.build/debug/jobwire broker --in-memory --events 'tcp://127.0.0.1:*' --commands 'tcp://127.0.0.1:*' >"$out" 2>"$data/broker.log" &
broker=$!
listener=""
cleanup() {
  [ -n "$listener" ] && kill "$listener" 2>/dev/null && wait "$listener" 2>/dev/null
  kill "$broker" 2>/dev/null; wait "$broker" 2>/dev/null
  rm -rf "$data"
}
trap cleanup EXIT
for _ in $(seq 100); do grep -q listening "$out" && break; sleep 0.1; done
cat "$out"
line=$(head -n1 "$out")
export JOBWIRE_EVENTS=$(sed -E 's/.*events ([^,]+),.*/\1/' <<<"$line")
export JOBWIRE_COMMANDS=$(sed -E 's/.*commands ([^,]+),.*/\1/' <<<"$line")
"$py" Examples/python/listener.py --steps 4 --step-seconds 0.4 &
listener=$!
"$py" Examples/python/producer.py --count 3 --job workbook:export

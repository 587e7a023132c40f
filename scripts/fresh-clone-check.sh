#!/usr/bin/env bash
# Runs the README's test command (.ci/run) N times in a row (default 5) on a fresh clone of this checkout's
# HEAD, while `yes > /dev/null` keeps one core busy: the check an issue passes before it is called resolved.
# Each run's exit code and duration go to stdout; the logs to $TMPDIR/jobwire-fresh-run-<i>.log.
set -u
n=${1:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=${TMPDIR:-/tmp}
clone="$tmp/jobwire-fresh-clone"
rm -rf "$clone" && git clone -q "$here" "$clone"
cd "$clone"
rev=$(git rev-parse --short HEAD)
yes > /dev/null &
busy=$!
trap 'kill $busy 2>/dev/null' EXIT
failed=0
for i in $(seq "$n"); do
  start=$(date +%s)
  bash .ci/run > "$tmp/jobwire-fresh-run-$i.log" 2>&1
  rc=$?
  [ "$rc" -eq 0 ] || failed=1
  echo "$(date -u +%FT%TZ) rev $rev run $i/$n exit $rc duration $(( $(date +%s) - start )) s (log $tmp/jobwire-fresh-run-$i.log)"
done
exit $failed

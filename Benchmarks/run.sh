#!/usr/bin/env bash
# Jobwire's benchmark command (never part of CI): builds the broker and the benchmark in release mode,
# installs beanstalkd and the Python clients for the comparison when missing, and prints one table.
# Arguments go to jobwire-bench, e.g. `Benchmarks/run.sh --jobs 20000 --only lifecycle`, or
# `Benchmarks/run.sh --only sdk --only python-client` for the rows driven by the product's own clients.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if ! command -v beanstalkd >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get install -y -qq beanstalkd sqlite3 >/dev/null
fi
command -v sqlite3 >/dev/null || { sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"; $sudo_cmd apt-get install -y -qq sqlite3 >/dev/null; }
py=$(scripts/python-env.sh | tail -n1)
"$py" -c 'import greenstalk' 2>/dev/null || "$(dirname "$py")/pip" install -q greenstalk
swift build -c release --product jobwire
(cd Benchmarks && swift build -c release)
cd Benchmarks
exec .build/release/jobwire-bench --binary ../.build/release/jobwire --python "$py" "$@"

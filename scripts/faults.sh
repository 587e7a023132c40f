#!/usr/bin/env bash
# The fault suite (issue #8): real broker and listener processes on loopback, faults injected, jobs
# counted by id. Prints a table of figures and exits 1 if any check fails.
#   scripts/faults.sh            the full suite (minutes), then the libFuzzer harnesses (Fuzz/run.sh)
#   scripts/faults.sh --short    the short variant of each scenario (CI, a few minutes on 2 cores)
#   scripts/faults.sh --only 1,4 some scenarios; other options go to faults/suite.py
#   scripts/faults.sh --only hostile   the hostile-client scenarios h1-h6 (issue #13), a few minutes
#   scripts/faults.sh --store postgres the brokers on PostgreSQL (a fresh schema each in $JOBWIRE_TEST_POSTGRES,
#                                      or a throwaway cluster of scripts/postgres.sh), with the standby
#                                      scenarios p1-p3 (issue 19); the SQLite-file scenarios are skipped
# JOBWIRE_FAULT_BUILD names a folder with the built jobwire and job-handler (default .build-fault/debug).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
if [ -z "${JOBWIRE_FAULT_BUILD:-}" ]; then
    swift build --scratch-path .build-fault --product jobwire
    swift build --scratch-path .build-fault --product job-handler
    swift build --scratch-path .build-fault --product workbook-export
fi
py=$(scripts/python-env.sh | tail -n1)
status=0
"$py" faults/suite.py "$@" || status=$?
exit $status

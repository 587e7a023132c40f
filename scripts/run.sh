#!/usr/bin/env bash
# The README's main command: installs what is missing, builds, and runs `jobwire demo`: an embedded
# broker, the workbook-export listener process, a click on "Export workbook", the job's live progress
# and its outcome, then a clean exit.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build
exec .build/debug/jobwire demo "$@"

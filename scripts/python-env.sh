#!/usr/bin/env bash
# Creates (or reuses) the Python virtualenv that the Python examples, the Python client's tests and
# the conformance suite run in: <repo>/.venv with pyzmq and pytest from PyPI and this checkout's
# clients/python installed editable (`pip install -e`, so edits need no reinstall). Idempotent and
# quiet on success; the last line on stdout is the path of the venv's python, so callers can do:
# py=$(scripts/python-env.sh | tail -n1)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
py="$venv/bin/python"

# Debian's python3 ships without ensurepip unless python3-venv is installed.
venv_works() { python3 -c 'import ensurepip, venv' >/dev/null 2>&1; }

# Ready when zmq and pytest import and `jobwire` is this checkout's clients/python.
ready() {
    [ -x "$py" ] && "$py" -c 'import sys, zmq, pytest, jobwire.listener
sys.exit(0 if jobwire.__file__.startswith(sys.argv[1]) else 1)' "$root/clients/python/src/" >/dev/null 2>&1
}

if ! ready; then
    if ! venv_works; then
        if command -v apt-get >/dev/null 2>&1; then
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq >/dev/null
            apt-get install -y -qq python3-venv >/dev/null
        fi
        venv_works || { echo "python-env: python3 -m venv is unavailable (install python3-venv)" >&2; exit 1; }
    fi
    # A half-made venv (interrupted earlier run) has no pip: start it over.
    [ -x "$venv/bin/pip" ] || rm -rf "$venv"
    [ -x "$py" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check pyzmq pytest
    "$venv/bin/pip" install -q --disable-pip-version-check -e "$root/clients/python"
    ready || { echo "python-env: the venv at $venv cannot import zmq, pytest and this checkout's jobwire" >&2; exit 1; }
fi

echo "$py"

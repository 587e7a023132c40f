#!/usr/bin/env bash
# Installs what Jobwire needs on Debian when it is missing: libzmq3-dev (ZeroMQ), libsqlite3-dev and
# libjemalloc-dev (the broker's allocator).
set -euo pipefail
missing=()
for pkg in libzmq3-dev libsqlite3-dev libjemalloc-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "swift is not on PATH: install Swift 6.2 or newer first" >&2; exit 1; }

#!/usr/bin/env bash
# Create .venv and install genimg's dependencies (idempotent: skips what is already there).
#   bash scripts/setup.sh          runtime only
#   bash scripts/setup.sh --test   plus test tools and Debian chromium for the browser test
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
req=requirements.txt
[ $want_test = 1 ] && req=requirements-test.txt
stamp=.venv/.installed-$(cat requirements.txt $req | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  # torch first and alone, so nothing else can pull a CUDA build in its place.
  .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -r "$req"
  touch "$stamp"
fi
if [ $want_test = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq chromium >/dev/null
fi

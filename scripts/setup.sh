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
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
apt_install() {  # Debian packages, only when missing
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "$@" >/dev/null
}
# OpenCV (a dependency of the Real-ESRGAN/waifu2x wheels) links libGL and glib.
libs=$(ldconfig -p 2>/dev/null || true)
if ! grep -q 'libGL.so.1' <<<"$libs" || ! grep -q 'libglib-2.0.so.0' <<<"$libs"; then
  apt_install libgl1 libglib2.0-0
fi
# Say what happens while it happens: the first run takes minutes and nobody should wonder if it hung.
started=$SECONDS
step() { echo "genimg setup [$1/4] $2 (${SECONDS}s since start)" >&2; }
files="requirements.txt $req"; [ $want_test = 1 ] && files="$files requirements-ray.txt"
stamp=.venv/.installed-$(cat $files | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "genimg setup: first run — installing into .venv (about 2.5 GB, typically 3-5 minutes;" \
       "later runs skip this and start in seconds)" >&2
  step 1 "creating .venv with $("$PY" --version 2>&1)"
  [ -x .venv/bin/python ] || "$PY" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  # torch first and alone, so nothing else can pull a CUDA build in its place.
  step 2 "installing torch 2.13.0 (CPU build)"
  .venv/bin/python -m pip install -q "torch==2.13.0"
  step 3 "installing diffusers, transformers, gradio, onnxruntime, ncnn, scikit-image and the rest ($req)"
  .venv/bin/python -m pip install -q -r "$req"
  touch "$stamp"
  step 4 "packages ready after $((SECONDS - started)) s"
fi
if [ $want_test = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  echo "genimg setup: installing Debian's chromium for the browser tests" >&2
  apt_install chromium
fi
# A colour emoji font, so that the browser tests' Chromium shows the emoji world's vocabulary as a visitor's
# browser would (without one, Chromium draws empty boxes).
if [ $want_test = 1 ] && ! fc-list 2>/dev/null | grep -qi 'color emoji'; then
  apt_install fonts-noto-color-emoji
fi
# The arena's tests run against a real PostgreSQL server that they start themselves (initdb in a temp folder).
if [ $want_test = 1 ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "genimg setup: installing Debian's postgresql for the database tests" >&2
  apt_install postgresql
fi

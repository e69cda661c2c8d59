#!/usr/bin/env bash
# Set up (first run only) and serve the dashboard on http://127.0.0.1:7860 (see README, Configuration).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "genimg: starting the dashboard (the default model loads in the background; ~10-20 s)" >&2
exec .venv/bin/python app.py

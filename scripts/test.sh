#!/usr/bin/env bash
# Set up everything (venv, packages, Debian chromium) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 GRADIO_ANALYTICS_ENABLED=False
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"

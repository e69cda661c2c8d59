#!/usr/bin/env bash
# Re-run this evaluation (genimg 0.1.0) with the python that has genimg (the project's .venv).
# Drop --no-cache to reuse cells already in the evaluation cache (GENIMG_CACHE_DIR).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
python -m genimg evaluate --models genimg-diffusion,genimg-fewstep,genimg-gan,genimg-vae --seeds 0,1 --metrics faithfulness,fd,kid,diversity,sharpness --no-cache --prompts-file "$HERE/prompts.txt" --out "$HERE/rerun"

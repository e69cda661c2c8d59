"""Refresh the README's screenshots: run the browser walkthrough, copy its screenshots to docs/screenshots/.

    .venv/bin/python scripts/screenshot.py

The walkthrough (tests/test_browser_walkthrough.py) serves ``python app.py`` with the real catalog,
clicks through every tab in Debian's chromium and saves test-artifacts/walkthrough-<tab>.png;
this copies them. Offline; never ``playwright install``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABS = ("generate", "generate-emoji", "compare", "style", "restore", "metrics", "evaluate")  # the other tabs: their own browser tests


def main() -> int:
    """Run the walkthrough; on success copy its screenshots; return its exit code."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    code = subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "tests/test_browser_walkthrough.py"], cwd=ROOT, env=env)
    if code == 0:
        target = ROOT / "docs" / "screenshots"
        target.mkdir(parents=True, exist_ok=True)
        for tab in TABS:
            shutil.copyfile(ROOT / "test-artifacts" / f"walkthrough-{tab}.png", target / f"{tab}.png")
            print(target / f"{tab}.png")
    return code


if __name__ == "__main__":
    sys.exit(main())

"""Keep library chatter (progress bars, import-time warnings) off the user's terminal.

Called once by the CLI and the app before heavy imports; tests call it too.
"""

from __future__ import annotations

import os
import warnings


def quiet_libraries() -> None:
    """Silence transformers/diffusers info logs, loading progress bars and telemetry."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", category=FutureWarning, module="diffusers")
    try:
        import diffusers.utils.logging as dlog

        dlog.disable_progress_bar()
        import transformers.utils.logging as tlog

        tlog.disable_progress_bar()
    except ImportError:
        pass

"""Is the Hugging Face hub reachable? Asked once, in a second or two, so no click ever waits on the network.

With ``HF_HUB_OFFLINE=1`` the answer is "no" without asking. Otherwise the first question opens a
TCP connection to the hub's host (``HF_ENDPOINT``, default huggingface.co:443) with a short
timeout; when it fails, this process switches huggingface_hub to offline mode, so a model whose
weights are not cached reads "weights missing — how to add" at once instead of retrying a
download for ~25 s when someone picks it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from urllib.parse import urlparse

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 1.5
_answer: bool | None = None
_lock = threading.Lock()


def _env_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _go_offline() -> None:
    """Put huggingface_hub (and what reads it: diffusers, transformers) in offline mode for this process."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        from huggingface_hub import constants

        constants.HF_HUB_OFFLINE = True
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        pass


def reachable(timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when the hub answers a TCP connection within ``timeout`` seconds (asked once per process).

    False at once under HF_HUB_OFFLINE=1. When unreachable, switches the process to offline mode.
    """
    global _answer
    if _env_offline():
        return False
    with _lock:
        if _answer is None:
            endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
            host, port = endpoint.hostname or "huggingface.co", endpoint.port or (443 if endpoint.scheme != "http" else 80)
            try:
                with socket.create_connection((host, port), timeout=timeout):
                    _answer = True
            except OSError as exc:
                log.info("the model hub (%s) is not reachable (%s): offline mode", host, exc)
                _answer = False
            if not _answer:
                _go_offline()
        return _answer


def offline() -> bool:
    """True when hub downloads are off: HF_HUB_OFFLINE=1, or the hub did not answer the probe."""
    return _env_offline() or not reachable()

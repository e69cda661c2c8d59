"""Memory admission: new work is refused, with a plain sentence, when the server is near its ceiling.

Bounded decoding (:func:`genimg.imageio.guard_decoders`) and per-request limits keep any one
request small; this is the last line for many requests at once, or a pool that grew: above
``GENIMG_MAX_RSS_MB`` of resident memory (default 80 % of RAM, which leaves the model pool its
50 % budget plus room for work) the server answers "busy" instead of being killed by the kernel.
"""

from __future__ import annotations

import psutil

from genimg.config import settings
from genimg.errors import GenimgError


def rss_bytes() -> int:
    """Resident memory of this process, in bytes."""
    return int(psutil.Process().memory_info().rss)


def rss_ceiling_bytes() -> int:
    """``GENIMG_MAX_RSS_MB`` in bytes, else 80 % of the machine's RAM."""
    configured = settings().max_rss_mb
    if configured:
        return configured * 2**20
    return int(psutil.virtual_memory().total * 0.8)


def check_headroom(what: str = "this request") -> None:
    """Raise GenimgError ("busy") when the process is above its memory ceiling; else return.

    Called before new work starts (every dashboard event, every upload check), never in the
    middle of one: a refusal loses nothing.
    """
    used, ceiling = rss_bytes(), rss_ceiling_bytes()
    if used > ceiling:
        raise GenimgError(f"the server is busy (memory {used / 2**30:.1f} GB of its {ceiling / 2**30:.1f} GB "
                          f"ceiling): {what} was not started; try again in a minute, or with a smaller image")

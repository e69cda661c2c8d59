"""A measured speed-up of Gradio's per-session setup, installed by :func:`genimg.ui.app.build_app`.

Why (hand-written: Gradio 6.31 has no option for it): every new session - each browser visit, and
*every* REST call to ``/gradio_api/call/<api>`` without a session, as curl makes - builds a
``SessionState`` whose config calls ``Block.get_config`` for each of the dashboard's ~360 blocks,
and each of those calls ``inspect.signature(cls.__init__)``. On the 2-core test machine that was
60 ms per session, 10 % of a 64 px generation (``bench`` section ``dashboard_overhead``); with the
signatures of ``__init__`` functions memoised it is 26 ms. A class's ``__init__`` does not change
while the server runs, so its signature can be kept; every other call goes to ``inspect`` as is.
"""

from __future__ import annotations

import functools
import inspect
import types
from typing import Any

_cached_signature = functools.lru_cache(maxsize=4096)(inspect.signature)


def _signature(obj: Any, *args: Any, **kwargs: Any) -> inspect.Signature:
    """``inspect.signature``, memoised for plain ``__init__`` functions (hashable, fixed for the process)."""
    if not args and not kwargs and isinstance(obj, types.FunctionType) and obj.__name__ == "__init__":
        return _cached_signature(obj)
    return inspect.signature(obj, *args, **kwargs)


class _InspectWithCachedInitSignatures(types.ModuleType):
    """The ``inspect`` module as ``gradio.blocks`` sees it: everything as is, ``signature`` memoised for ``__init__``."""

    def __init__(self) -> None:
        super().__init__("inspect")

    def __getattr__(self, name: str) -> Any:
        return getattr(inspect, name)

    signature = staticmethod(_signature)


def memoise_block_signatures() -> bool:
    """Give ``gradio.blocks`` the memoising ``inspect`` (idempotent). Returns whether it is installed
    (False when this Gradio's ``blocks`` module no longer uses ``inspect`` the way it was measured)."""
    import gradio.blocks as blocks

    current = getattr(blocks, "inspect", None)
    if isinstance(current, _InspectWithCachedInitSignatures):
        return True
    if current is not inspect:
        return False
    blocks.inspect = _InspectWithCachedInitSignatures()
    return True


def cache_info() -> Any:
    """The memo's hits and misses (functools' CacheInfo), for tests and benchmarks."""
    return _cached_signature.cache_info()

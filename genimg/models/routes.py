"""Routes: where a model's requests run when it is served somewhere else than this process.

In the single-process app (``python app.py``) no model has a route: tasks borrow models from
the local pool. Under ``python -m genimg serve --ray`` every deployed model has one: a task
that would have borrowed the model instead calls the same task function inside the model's
replica (``genimg.serve``) and gets back the result that function returned there, timings and
peak memory measured in the replica. This module knows nothing of Ray; it only says what a
route offers, so the pool and the tasks stay importable without it.
"""

from __future__ import annotations

from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Callable, Protocol, Sequence


class Route(Protocol):
    """A model served elsewhere: ``call`` runs a named task function there.

    ``call(task, kwargs, progress)`` runs ``task`` (e.g. "generate", "compare_cell") in the
    serving replica with ``kwargs`` and returns its result; ``progress(done, total)`` receives
    the replica's step progress as it happens. It raises GenimgError for user errors (in the
    replica's words) and for a replica that died and could not be retried.
    ``own_device`` is True when every replica of the model holds a whole accelerator of its
    own (so running it beside another such model does not skew either's timing).
    """

    model_id: str
    own_device: bool

    def call(self, task: str, kwargs: dict[str, Any], progress: Callable[[int, int], None] | None = None) -> Any:
        ...


def fan_out_executor(routes: Sequence[Route | None]) -> Executor | None:
    """A thread pool that runs these models' cells in parallel, or None to run them in sequence.

    Parallel only when every model is served elsewhere on an accelerator of its own: on one
    shared device (or the CPU) models run one after another, as in the single-process app, so
    that no model's timing includes another's load.
    """
    if len(routes) > 1 and all(route is not None and route.own_device for route in routes):
        return ThreadPoolExecutor(max_workers=len(routes), thread_name_prefix="genimg-fan-out")
    return None

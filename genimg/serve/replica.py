"""The Ray Serve deployment of one model: its replicas run genimg's own task functions.

A replica owns a private :class:`~genimg.models.pool.ModelPool` holding its one model (loaded
when the replica starts, so a replica is ready when its model is). Its methods are the task
functions the dashboard would have run in-process -- ``generate`` (gathered with Serve's
``@serve.batch`` into shared pipeline calls by :func:`genimg.tasks.batching.generate_batch`) and
``compare_cell`` -- so timings and peak memory are the replica's own, measured where the model
runs. Each method streams ``("progress", step, steps)`` items, then one ``("result", value)``
or ``("error", kind, message)``; the route (``genimg.serve.route``) turns them back into
progress callbacks, a return value or an exception.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any, AsyncIterator, Callable

from ray import serve

from genimg.errors import GenimgError
from genimg.models.device import configure_cpu_threads
from genimg.models.pool import ModelPool
from genimg.tasks.batching import generate_batch
from genimg.tasks.compare import compare_cell
from genimg.tasks.generate import GenerateRequest, resolve_request, run_pipeline

log = logging.getLogger("genimg.serve")


def error_item(exc: BaseException) -> tuple[str, str, str]:
    """How a replica reports a failure: ("error", class name for user errors or "internal", words)."""
    if isinstance(exc, GenimgError):
        return ("error", type(exc).__name__, str(exc))
    log.error("internal error in a replica", exc_info=exc)
    return ("error", "internal", f"{type(exc).__name__}: {exc}")


async def stream_thread(work: Callable[[Callable[..., None]], Any]) -> AsyncIterator[tuple[Any, ...]]:
    """Run ``work(emit)`` in a worker thread and yield what it emits, then its result or error.

    The model work blocks (torch), so it runs off the replica's event loop; ``emit`` crosses
    back with ``call_soon_threadsafe`` so progress reaches the caller while the work runs.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()

    def emit(*item: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    def run() -> None:
        try:
            emit("result", work(emit))
        except BaseException as exc:  # reported to the caller; the replica keeps serving
            emit(*error_item(exc))

    threading.Thread(target=run, name="genimg-replica-work", daemon=True).start()
    while True:
        item = await queue.get()
        yield item
        if item[0] in ("result", "error"):
            return


class ModelReplica:
    """One replica of a model's deployment (the class Ray Serve instantiates; see module docstring)."""

    def __init__(self, model_id: str, max_batch_size: int = 8, batch_wait_timeout_s: float = 0.0):
        configure_cpu_threads()  # GENIMG_TORCH_THREADS comes from the deployment's plan
        self.model_id = model_id
        self.max_images = max_batch_size
        self.pool = ModelPool(served_by=self.whoami)
        # Load and warm up now: a replica counts as started once its model is in and has run once, so
        # no visitor's first request (and no comparison's timing) pays the first-call costs.
        spec = self.pool.spec(model_id)
        with self.pool.acquire(model_id) as lease:
            run_pipeline(lease, {**resolve_request(GenerateRequest(prompt="warm-up", model=model_id), spec),
                                 "steps": 1, "seed": 0})
        self._generate_batch.set_max_batch_size(max_batch_size)
        self._generate_batch.set_batch_wait_timeout_s(batch_wait_timeout_s)

    def whoami(self) -> dict[str, Any]:
        """This replica: its id, deployment, application, node, process and devices (read here, now)."""
        import ray

        context = serve.get_replica_context()
        gpus = [str(g) for g in ray.get_gpu_ids()]
        return {"id": context.replica_id.unique_id, "deployment": context.deployment, "app": context.app_name,
                "node": ray.get_runtime_context().get_node_id(), "pid": os.getpid(),
                "device": "cuda:" + ",".join(gpus) if gpus else "cpu"}

    async def generate(self, request: Any) -> AsyncIterator[Any]:
        """genimg.tasks.generate.generate for one request, gathered with concurrent ones."""
        async for item in self._generate_batch(request):
            if item is not None:
                yield item

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.0)
    async def _generate_batch(self, requests: list[Any]) -> AsyncIterator[list[Any]]:
        # Serve's batch generators yield one item per request at every step; None is "nothing for you now".
        n = len(requests)

        def work(emit: Callable[..., None]) -> list[Any]:
            def progress(indices: list[int], step: int, steps: int) -> None:
                emit("progress", indices, step, steps)

            return generate_batch(requests, self.pool, self.max_images, progress)

        async for item in stream_thread(work):
            if item[0] == "progress":
                _, indices, step, steps = item
                yield [("progress", step, steps) if i in indices else None for i in range(n)]
            elif item[0] == "result":
                yield [("result", outcome) if not isinstance(outcome, BaseException) else error_item(outcome)
                       for outcome in item[1]]
            else:
                yield [item] * n

    async def compare_cell(self, request: Any, model_id: str, seed: int, warmup: bool = True) -> AsyncIterator[Any]:
        """genimg.tasks.compare.compare_cell: one model's column of a comparison, timed here."""
        def work(emit: Callable[..., None]) -> Any:
            return compare_cell(request, model_id, seed, self.pool, warmup, lambda step, steps: emit("progress", step, steps))

        async for item in stream_thread(work):
            yield item

    def check_health(self) -> None:
        """Serve's periodic health check: a replica whose model was dropped reloads it on the next request."""

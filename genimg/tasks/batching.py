"""Micro-batching: concurrent text-to-image requests that wait for a model run as one batch.

With several visitors, requests queue behind the model. One pipeline call over eight images
costs far less than eight calls over one (on this CPU the few-step model makes 8 images/s at
batch 1 and ~29 at batch 16), so requests that arrive while a call is running wait in a queue
here, and the next call serves every compatible one at once: same model, size, steps,
guidance, scheduler and "has a negative prompt"; prompts and seeds may differ. Each image is
still drawn from its own generator (``seed + i``), so it equals what its request alone gives
up to float summation order: on the embedded few-step model, at most one value in ten
thousand moves by 1/255 (tests/test_batching.py). A lone request never waits for company: if
nothing is running it runs at once.

Gradio's ``batch=True`` gathers requests in its queue instead, but it fails the whole batch
with one request's ``gr.Error`` and has no progress bars, so the gathering is written here,
under the task layer, where UI and API share it. One pipeline call runs at a time per
``Coalescer`` (the dashboard's default concurrency of one, kept for the model work).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from genimg.config import settings
from genimg.errors import GenimgError
from genimg.models.pool import ModelPool, get_pool
from genimg.tasks.generate import (GenerateRequest, GenerateResult, ProgressFn, generate, make_result,
                                   prepare, run_pipeline_batch)

# Images per coalesced call are also capped by pixels, so a batch of large images (SDXL at
# 1024², say) stays near the memory of a batch of 8 at 512². One request may still ask for more.
PIXELS_PER_IMAGE_BUDGET = 512 * 512


def batch_key(model_id: str, resolved: dict[str, Any]) -> tuple[Any, ...]:
    """What requests must share to run in one pipeline call (everything but prompts, seeds, batch)."""
    return (model_id, resolved["width"], resolved["height"], resolved["steps"], resolved["guidance"],
            resolved["scheduler"], bool(resolved["negative_prompt"]))


@dataclass
class _Job:
    model_id: str
    resolved: dict[str, Any]
    key: tuple[Any, ...]
    submitted: float = field(default_factory=time.perf_counter)
    # Messages from the thread that runs the batch: ("progress", i, n) | ("done", result) |
    # ("error", exc) | ("lead",). Progress is reported from the job's own thread because
    # Gradio's progress tracker belongs to the thread (context) of its event.
    inbox: "queue.SimpleQueue[tuple[Any, ...]]" = field(default_factory=queue.SimpleQueue)


class Coalescer:
    """Gathers compatible concurrent generate requests into shared pipeline calls.

    ``max_images`` caps the images of one call (1 turns micro-batching off). Thread-safe;
    one instance serves one app.
    """

    def __init__(self, max_images: int = 8):
        self.max_images = max(1, int(max_images))
        self._lock = threading.Lock()
        self._pending: list[_Job] = []  # FIFO of requests not yet taken into a call
        self._running = False           # a thread is running (or has been asked to run) a call
        self.calls = 0                  # pipeline calls made (for tests and the benchmark)

    @classmethod
    def from_settings(cls) -> "Coalescer":
        """A coalescer sized by GENIMG_MICROBATCH (default 8), never above the per-request batch limit."""
        env = settings()
        return cls(min(env.microbatch, env.limits.max_batch))

    def generate(self, request: GenerateRequest, pool: ModelPool | None = None,
                 progress: ProgressFn | None = None) -> GenerateResult:
        """Like genimg.tasks.generate.generate, possibly sharing the pipeline call with other requests.

        Returns this request's GenerateResult; its timings are the shared call's, with
        ``batch_requests``/``batch_images`` saying how many it served and ``wait_s`` this
        request's time in the queue. Raises GenimgError for bad requests (before queueing)
        and whatever the shared call raised.
        """
        pool = pool or get_pool()
        spec, resolved = prepare(request, pool)  # a bad request fails here, alone
        if self.max_images <= 1 or pool.route(spec.id) is not None:
            # A routed model batches in its replica (genimg.serve: Serve's @serve.batch over generate_batch).
            return generate(request, pool, progress)
        job = _Job(spec.id, resolved, batch_key(spec.id, resolved))
        with self._lock:
            self._pending.append(job)
            lead = not self._running
            self._running = True
        if not lead:
            while True:
                message = job.inbox.get()
                if message[0] == "progress":
                    if progress is not None:
                        progress(message[1], message[2])
                elif message[0] == "done":
                    return message[1]
                elif message[0] == "error":
                    raise message[1]
                else:  # "lead": the previous call finished and this request is the oldest waiting
                    break
        return self._lead(job, pool, progress)

    def _take(self, job: _Job) -> list[_Job]:
        """Remove and return ``job`` plus the waiting jobs that fit in one call with it (FIFO)."""
        cap = images_cap(self.max_images, job.resolved["width"], job.resolved["height"])
        taken, images = [job], job.resolved["batch"]
        for other in self._pending:
            if other is not job and other.key == job.key and images + other.resolved["batch"] <= cap:
                taken.append(other)
                images += other.resolved["batch"]
        self._pending = [p for p in self._pending if p not in taken]
        return taken

    def _lead(self, job: _Job, pool: ModelPool, progress: ProgressFn | None) -> GenerateResult:
        """Run one call for ``job`` and the jobs that fit with it, deliver, hand over, return ours."""
        batch: list[_Job] = [job]
        results: dict[int, GenerateResult] = {}
        error: BaseException | None = None
        try:
            with pool.acquire(job.model_id) as lease:
                with self._lock:
                    batch = self._take(job)
                start = time.perf_counter()

                def report(step: int, total: int) -> None:
                    if progress is not None:
                        progress(step, total)
                    for other in batch[1:]:
                        other.inbox.put(("progress", step, total))

                images, timings = run_pipeline_batch(lease, [b.resolved for b in batch], report)
                info = lease.model_info()
                self.calls += 1
            for b, own in zip(batch, images):
                t = type(timings)(**timings.as_dict())
                t.load_s = lease.load_seconds if b is job else 0.0
                t.wait_s = max(0.0, start - b.submitted - t.load_s)
                t.warm = not (lease.cold and b is job)
                results[id(b)] = make_result(b.resolved, own, t, info)
        except BaseException as exc:  # delivered to every request of the call, raised for ours below
            error = exc
        finally:
            for other in batch[1:]:
                other.inbox.put(("error", error) if error is not None else ("done", results[id(other)]))
            with self._lock:
                # If the call failed before taking its jobs (the model did not load), ours is
                # still queued; left there, it would be handed the lead nobody reads and every
                # later request would wait forever.
                self._pending = [p for p in self._pending if p is not job]
                if self._pending:
                    self._pending[0].inbox.put(("lead",))  # the oldest waiting request runs the next call
                else:
                    self._running = False
        if error is not None:
            raise error
        return results[id(job)]


def images_cap(max_images: int, width: int, height: int) -> int:
    """Images one shared call may hold at this size: ``max_images``, fewer for large images."""
    return max(1, min(max_images, (max_images * PIXELS_PER_IMAGE_BUDGET) // (width * height)))


BatchProgressFn = Callable[[list[int], int, int], None]


def generate_batch(requests: list[GenerateRequest], pool: ModelPool | None = None, max_images: int = 8,
                   progress: BatchProgressFn | None = None) -> list[GenerateResult | BaseException]:
    """Run requests that arrived together with as few pipeline calls as their parameters allow.

    The batching of a serving replica (genimg.serve gathers the requests with Serve's
    ``@serve.batch``; the single-process app gathers them with :class:`Coalescer`). Requests
    with the same :func:`batch_key` share calls of at most ``max_images`` images (fewer for
    large sizes); ``progress(indices, step, steps)`` reports a call's steps for the requests
    (by index) it serves. Returns, per request in order, its GenerateResult or the exception
    that stopped it (a bad request fails alone; a failed call fails the requests it served).
    """
    pool = pool or get_pool()
    outcomes: list[GenerateResult | BaseException | None] = [None] * len(requests)
    groups: dict[tuple[Any, ...], list[tuple[int, str, dict[str, Any]]]] = {}
    for index, request in enumerate(requests):
        try:
            spec, resolved = prepare(request, pool)
        except GenimgError as exc:
            outcomes[index] = exc
            continue
        groups.setdefault(batch_key(spec.id, resolved), []).append((index, spec.id, resolved))
    calls: list[list[tuple[int, str, dict[str, Any]]]] = []
    for members in groups.values():
        _, _, first = members[0]
        cap = images_cap(max_images, first["width"], first["height"])
        call: list[tuple[int, str, dict[str, Any]]] = []
        for member in members:
            if call and sum(m[2]["batch"] for m in call) + member[2]["batch"] > cap:
                calls.append(call)
                call = []
            call.append(member)
        calls.append(call)
    for call in calls:
        indices = [index for index, _, _ in call]
        try:
            with pool.acquire(call[0][1]) as lease:
                report = (lambda step, steps, _i=indices: progress(_i, step, steps)) if progress else None
                images, timings = run_pipeline_batch(lease, [resolved for _, _, resolved in call], report)
                info = lease.model_info()
            for position, ((index, _, resolved), own) in enumerate(zip(call, images)):
                t = type(timings)(**timings.as_dict())
                t.load_s = lease.load_seconds if position == 0 else 0.0
                t.warm = not (lease.cold and position == 0)
                outcomes[index] = make_result(resolved, own, t, info, lease.served_by)
        except Exception as exc:  # this call's requests share its fault; the other calls still run
            for index in indices:
                outcomes[index] = exc
    return outcomes  # type: ignore[return-value]


__all__ = ["Coalescer", "batch_key", "generate_batch", "images_cap", "PIXELS_PER_IMAGE_BUDGET"]

"""One pool of loaded model handles, shared by every tab, the CLI, the API and benchmarks.

- A model is loaded once, lazily, on first ``acquire``; later acquires reuse the handle.
- ``acquire`` holds the handle's lock for the whole request, so two requests never
  interleave inside one pipeline (schedulers and hooks are stateful).
- A memory budget with least-recently-used eviction keeps the pool inside the device.
- img2img / inpaint variants come from ``from_pipe`` and live in the base handle, so they
  cost no second copy of the weights and are guarded by the same lock.
- A handle whose model raised an unexpected error is dropped: the next request reloads it.
- A model can be *routed* (genimg.models.routes): served by another process, e.g. a Ray Serve
  replica. Tasks ask ``route(model_id)`` first and, when there is one, run there instead of
  borrowing the model here.
- Running out of memory (CUDA or CPU), while loading or running, is the one fault mapped to a
  user error here (:class:`ModelOutOfMemoryError`): the handle is dropped, its memory freed,
  and the message says what to try. Every task borrows through ``acquire``, so this is the
  only place that mapping lives.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch

from genimg.config import settings
from genimg.errors import GenimgError, ModelUnavailableError
from genimg.models import backends
from genimg.models.device import is_out_of_memory, module_nbytes
# Importing a backend module registers it (models/backends.py); these are every backend genimg has.
from genimg.models import (classical_backend, diffusers_backend, embedded_backend, ncnn_backend,  # noqa: F401
                           onnx_backend, sceneqa_backend, vlm_backend)
from genimg.models.catalog import ModelSpec, adhoc_spec, load_catalog
from genimg.models.hashing import model_hash
from genimg.models.device import Placement, default_placement
from genimg.models.routes import Route


# One model loads at a time in this process, whatever the pool: diffusers loads through accelerate's
# init_empty_weights, which patches torch.nn.Module globally while it runs, so two loads in two threads
# (two visitors picking two cold models, a parallel comparison) break each other ("Cannot copy out of
# meta tensor"). Loading is disk- and CPU-bound anyway; parallel loads would not be faster.
_LOAD_LOCK = threading.Lock()


class ModelOutOfMemoryError(ModelUnavailableError):
    """A model ran out of memory at the requested size/batch (CUDA or CPU). A ModelUnavailableError,
    so a comparison or a multi-method task reports it in that model's cell and keeps the others."""


def out_of_memory_message(model_id: str, device: Any, doing: str, exc: BaseException) -> str:
    """The one user-facing wording for an out-of-memory fault."""
    detail = " ".join(str(exc).split())[:200] or type(exc).__name__
    return (f"out of memory {doing} model {model_id!r} on {device}: try a smaller width/height, fewer images "
            f"or another model (the model was unloaded and will reload on the next request; {detail})")


def release_frames(exc: BaseException) -> None:
    """Clear the finished frames in ``exc``'s traceback so the tensors they hold are freed now,
    not when the error is finally dropped (frames still running, the caller's, are left alone).

    Written by hand because ``traceback.clear_frames`` leaves a frame's ``locals()`` snapshot
    alive on Python 3.11, and diffusers pipelines take one every step for their callbacks.
    """
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        try:
            frame.clear()
        except RuntimeError:  # still executing
            pass
        else:
            with contextlib.suppress(Exception):
                frame.f_locals.clear()
        tb = tb.tb_next


def free_memory() -> None:
    """Collect garbage and give cached CUDA blocks back (after a drop or a fault)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@dataclass
class Handle:
    """A loaded model and what the pool knows about it."""

    spec: ModelSpec
    model: Any
    placement: Placement
    nbytes: int
    load_seconds: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    last_used: float = field(default_factory=time.monotonic)
    variants: dict[str, Any] = field(default_factory=dict)    # from_pipe pipelines sharing the weights
    schedulers: dict[str, Any] = field(default_factory=dict)  # scheduler choice -> instance ("default": the model's own)
    uses: int = 0
    weights_hash: str | None = None  # A1111's "Model hash:" (genimg.models.hashing), filled on first use


@dataclass
class Lease:
    """What ``acquire`` yields: the handle, held under its lock, and how it was obtained."""

    handle: Handle
    cold: bool            # True when this acquire loaded the model
    load_seconds: float   # time spent loading in this acquire (0.0 when warm)
    acquire_seconds: float
    served_by: dict[str, Any] | None = None  # the replica that holds this pool, read at acquire (genimg.serve)

    @property
    def model(self) -> Any:
        return self.handle.model

    def model_info(self) -> dict[str, Any]:
        """What a result's record says about the model that made it: id, name, source, backend, placement
        (and, for the embedded pipelines, the runtime that ran them: "onnxruntime" or "torch")."""
        spec = self.handle.spec
        info = {"id": spec.id, "name": spec.name, "source": spec.source, "backend": spec.backend,
                "placement": self.handle.placement.describe()}
        if self.handle.weights_hash is None:  # once per loaded model; "" when there is no file to hash
            self.handle.weights_hash = model_hash(spec) or ""
        if self.handle.weights_hash:
            info["hash"] = self.handle.weights_hash
        runtime = getattr(self.model, "runtime", None)
        if isinstance(runtime, str):
            info["runtime"] = runtime
        return info

    def variant(self, kind: str) -> Any:
        """The ``kind`` variant ("img2img", "inpaint", ...) sharing this model's weights.

        Raises GenimgError when the backend cannot make that variant.
        """
        handle = self.handle
        if kind not in handle.variants:
            handle.variants[kind] = backends.get(handle.spec.backend).make_variant(handle.model, kind, handle.spec)
        return handle.variants[kind]


def default_budget_bytes(placement: Placement) -> int:
    """The pool's memory budget: ``GENIMG_POOL_BUDGET_MB``, else 85% of VRAM or 50% of RAM."""
    env = settings()
    if env.pool_budget_mb:
        return env.pool_budget_mb * 1024 * 1024
    if placement.device.type == "cuda":
        return int(torch.cuda.get_device_properties(placement.device).total_memory * 0.85)
    import psutil

    return int(psutil.virtual_memory().total * 0.5)


class ModelPool:
    """Shared, lazily loaded, LRU-evicted model handles (see module docstring)."""

    def __init__(self, catalog: dict[str, ModelSpec] | None = None, budget_bytes: int | None = None,
                 placement_for: Callable[[ModelSpec], Placement] | None = None,
                 served_by: Callable[[], dict[str, Any]] | None = None):
        self.catalog: dict[str, ModelSpec] = dict(catalog) if catalog is not None else load_catalog()
        self._placement_for = placement_for or (lambda spec: default_placement(spec.dtype))
        self.budget_bytes = budget_bytes
        self._handles: dict[str, Handle] = {}
        self._state_lock = threading.Lock()             # guards _handles and _load_locks
        self._load_locks: dict[str, threading.Lock] = {}  # one loader at a time per model
        self.evictions: list[str] = []                   # ids, oldest first (for tests and the UI)
        self._routes: dict[str, Route] = {}
        # Inside a serving replica: who this process is (its replica id, node, pid), asked at every
        # acquire so each result names the replica that made it.
        self._served_by = served_by

    # -- routes -----------------------------------------------------------------------
    def set_route(self, model_id: str, route: Route | None) -> None:
        """Serve ``model_id`` through ``route`` from now on (None: locally again)."""
        spec = self.spec(model_id)
        with self._state_lock:
            if route is None:
                self._routes.pop(spec.id, None)
            else:
                self._routes[spec.id] = route

    def route(self, model_id: str) -> Route | None:
        """The route of ``model_id`` when it is served elsewhere, else None (run it here)."""
        return self._routes.get((model_id or "").strip())

    def routes(self) -> dict[str, Route]:
        """Every routed model's route, by id."""
        return dict(self._routes)

    # -- catalog ----------------------------------------------------------------------
    def spec(self, model_id: str) -> ModelSpec:
        """The catalog entry for ``model_id``; a typed hub id/folder when the server allows it.

        Raises GenimgError for an unknown id.
        """
        model_id = (model_id or "").strip()
        if model_id in self.catalog:
            return self.catalog[model_id]
        if not model_id:
            raise GenimgError("no model chosen: pick one of " + ", ".join(self.catalog))
        if "/" in model_id and settings().allow_custom_models:
            spec = adhoc_spec(model_id)
            self.catalog[spec.id] = spec
            return spec
        raise GenimgError(f"unknown model {model_id!r}: choose one of {', '.join(self.catalog)} "
                          "(python -m genimg models lists them)")

    def choose(self, names: Any, *, task: str = "text-to-image", least: int = 1, most: int,
               what: str = "this request") -> list[str]:
        """Validate a user's model list (a list, or comma-separated text) for one request.

        Returns catalog ids in the given order. Raises GenimgError for fewer than ``least`` or
        more than ``most`` models, a repeat, an unknown id, or a model that cannot do ``task``;
        ``what`` names the request in the message ("compare", "an evaluation").
        """
        if isinstance(names, str):
            names = [names]
        ids = [m.strip() for item in (names or []) if item is not None for m in str(item).split(",") if m.strip()]
        if not ids:
            raise GenimgError(f"no model chosen: pick {'one or more' if least <= 1 else f'at least {least}'} "
                              f"{task} models (python -m genimg models lists them)")
        if len(ids) < least:
            raise GenimgError(f"{what} needs at least {least} models, got {len(ids)}")
        if len(ids) > most:
            raise GenimgError(f"{what} takes at most {most} models here, got {len(ids)}")
        if len(set(ids)) != len(ids):
            raise GenimgError(f"{what} got the same model twice: pick different models")
        chosen = []
        for model_id in ids:
            spec = self.spec(model_id)
            if task not in spec.tasks:
                raise GenimgError(f"model {spec.id!r} does not do {task} (its tasks: {', '.join(spec.tasks)})")
            chosen.append(spec.id)
        return chosen

    def placement_for(self, spec: ModelSpec) -> Placement:
        """Where and in which dtype ``spec`` would be loaded, by the pool's own policy, without loading it.

        Raises GenimgError when the policy cannot place it (e.g. an unknown GENIMG_DEVICE).
        """
        return self._placement_for(spec)

    def availability(self, model_id: str) -> tuple[bool, str]:
        """(can it be loaded here, why or why not) without loading it."""
        spec = self.spec(model_id)
        if model_id in self._handles:
            return True, "loaded"
        if spec.id in self._routes:
            return True, "served by its deployment"
        return backends.get(spec.backend).availability(spec)

    # -- handles ----------------------------------------------------------------------
    def loaded(self) -> list[Handle]:
        """Handles currently in memory, least recently used first."""
        with self._state_lock:
            return sorted(self._handles.values(), key=lambda h: h.last_used)

    def is_loaded(self, model_id: str) -> bool:
        return model_id in self._handles

    def used_bytes(self) -> int:
        return sum(h.nbytes for h in self.loaded())

    def _budget(self, placement: Placement) -> int:
        if self.budget_bytes is None:
            self.budget_bytes = default_budget_bytes(placement)
        return self.budget_bytes

    def _load(self, spec: ModelSpec) -> Handle:
        backend = backends.get(spec.backend)
        ok, reason = backend.availability(spec)
        if not ok:
            raise ModelUnavailableError(f"model {spec.id!r} cannot be loaded here: {reason}")
        placement = self._placement_for(spec)
        _LOAD_LOCK.acquire()
        started = time.perf_counter()  # after the wait: load seconds are this model's own
        try:
            model = backend.load(spec, placement)
            seconds = time.perf_counter() - started
        except GenimgError:
            raise
        except Exception as exc:  # truncated or corrupt weights, wrong config, out of memory...
            if is_out_of_memory(exc):
                message = out_of_memory_message(spec.id, placement.device, "loading", exc)
                release_frames(exc)  # the finished frames hold the half-loaded tensors
                free_memory()
                raise ModelOutOfMemoryError(message) from exc
            detail = " ".join(str(exc).split())[:300] or type(exc).__name__
            raise ModelUnavailableError(f"model {spec.id!r} could not be loaded: {type(exc).__name__}: {detail}") from exc
        finally:
            _LOAD_LOCK.release()
        return Handle(spec=spec, model=model, placement=placement, nbytes=module_nbytes(model),
                      load_seconds=seconds)

    def _get_or_load(self, model_id: str) -> tuple[Handle, bool, float]:
        spec = self.spec(model_id)
        with self._state_lock:
            handle = self._handles.get(spec.id)
            if handle is not None:
                return handle, False, 0.0
            load_lock = self._load_locks.setdefault(spec.id, threading.Lock())
        with load_lock:
            with self._state_lock:  # another request may have loaded it while we waited
                handle = self._handles.get(spec.id)
            if handle is not None:
                return handle, False, 0.0
            handle = self._load(spec)
            with self._state_lock:
                self._handles[spec.id] = handle
            self._evict_to_budget(keep=spec.id, placement=handle.placement)
            return handle, True, handle.load_seconds

    def _evict_to_budget(self, keep: str, placement: Placement) -> None:
        budget = self._budget(placement)
        for victim in self.loaded():  # least recently used first
            if self.used_bytes() <= budget:
                return
            if victim.spec.id == keep:
                continue
            # Never evict a handle in use: skip it if its lock is held.
            if victim.lock.acquire(blocking=False):
                try:
                    self._drop(victim.spec.id)
                finally:
                    victim.lock.release()

    def _drop(self, model_id: str) -> None:
        with self._state_lock:
            handle = self._handles.pop(model_id, None)
        if handle is None:
            return
        self.evictions.append(model_id)
        handle.variants.clear()
        handle.schedulers.clear()
        handle.model = None
        free_memory()

    def evict(self, model_id: str) -> None:
        """Unload ``model_id`` (waits for a request using it to finish)."""
        handle = self._handles.get(model_id)
        if handle is None:
            return
        with handle.lock:
            self._drop(model_id)

    def clear(self) -> None:
        """Unload every model."""
        for handle in self.loaded():
            self.evict(handle.spec.id)

    @contextlib.contextmanager
    def acquire(self, model_id: str) -> Iterator[Lease]:
        """Borrow ``model_id`` exclusively for one request, loading it if needed.

        Yields a Lease. Raises GenimgError for unknown models or missing weights. A
        non-user error raised inside the ``with`` block drops the handle (it may be in
        a broken state) and propagates; an out-of-memory error is re-raised as
        ModelOutOfMemoryError once the handle's memory is freed. The lock is released
        when the block exits, however it exits (a request cancelled in the UI runs to
        the end of its worker thread first: Gradio does not interrupt threads).
        """
        started = time.perf_counter()
        handle, cold, load_seconds = self._get_or_load(model_id)
        handle.lock.acquire()
        oom_message = None
        try:
            if handle.model is None:  # evicted between lookup and lock: load again
                handle.lock.release()
                try:
                    handle, cold, load_seconds = self._get_or_load(model_id)
                finally:  # on a failed reload this re-takes the old lock, which `finally` below releases
                    handle.lock.acquire()
            handle.last_used = time.monotonic()
            handle.uses += 1
            lease = Lease(handle=handle, cold=cold, load_seconds=load_seconds,
                          acquire_seconds=time.perf_counter() - started,
                          served_by=self._served_by() if self._served_by else None)
            try:
                yield lease
            except GenimgError:
                raise
            except Exception as exc:
                with self._state_lock:
                    broken = self._handles.get(handle.spec.id) is handle
                if broken:
                    self._drop(handle.spec.id)
                if not is_out_of_memory(exc):
                    raise
                oom_message = out_of_memory_message(handle.spec.id, handle.placement.device, "running", exc)
                # The finished frames in the traceback (pipeline, UNet forward) hold the activations
                # that ran out; clear them so the memory is freed now, not when the error is dropped.
                release_frames(exc)
        finally:
            handle.lock.release()
        if oom_message is not None:
            free_memory()
            raise ModelOutOfMemoryError(oom_message)


_default_pool: ModelPool | None = None
_default_pool_lock = threading.Lock()


def get_pool() -> ModelPool:
    """The process-wide pool (created on first use from the catalog file)."""
    global _default_pool
    with _default_pool_lock:
        if _default_pool is None:
            _default_pool = ModelPool()
        return _default_pool


def set_pool(pool: ModelPool | None) -> None:
    """Replace the process-wide pool (tests, or an app built over a custom catalog)."""
    global _default_pool
    with _default_pool_lock:
        _default_pool = pool

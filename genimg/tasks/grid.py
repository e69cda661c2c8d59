"""Parameter grids: one prompt swept over up to three axes (X, Y, Z), every other setting fixed.

Cells run through the one side-by-side runner (genimg.runner.run_cells): progress in cells
done / total, a failed cell is a row with its reason, cells run one at a time (fair timings).
Each cell is timed like a Compare column: a model loaded by this grid is timed apart (its load
time reported, one 1-step warm-up call before its first timed cell); every cell reports its
warm wall time, steps/s, stage times and peak memory.

What cells share, and why it is safe
------------------------------------
- **The prompt encoding**, per (model, prompt, negative prompt): the text encoders are frozen
  and deterministic and run under ``torch.inference_mode``, so the same token ids give the
  same states; a cell whose encoding an earlier cell (or the warm-up) already made reads it
  from a memo that lives for this grid only (:func:`shared_text_encoders`; the embedded models
  also keep their own per-prompt cache). Such a cell's ``text_encode_s`` is ~0 and
  ``encode_reused`` is true. The memo is keyed by the encoder's inputs, so a different prompt,
  negative prompt or model never reads another's states.
- **The loaded model**: cells are run grouped by model (genimg.grid.run_order), so each model
  loads once; the grid image keeps the grid's own order.
- **Nothing else.** A steps axis on one seed does not reuse the shorter run's latents: with a
  different step count the scheduler's timesteps differ from the first step on, so the
  4-step image is not a prefix of the 20-step one; every cell denoises from its own noise.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import Any, Iterator, Sequence

import torch

from genimg.config import settings
from genimg.errors import GenimgError
from genimg.grid import AXIS_NAMES, Axis, PlannedCell, compose_grid, plan_cells, run_order
from genimg.models.catalog import default_model
from genimg.models.pool import ModelPool, get_pool
from genimg.runner import ProgressFn, run_cells
from genimg.tasks.generate import GenerateRequest, GenerateResult, make_result, resolve_request, run_pipeline

_TEXT_ENCODERS = ("text_encoder", "text_encoder_2", "text_encoder_3")


def _memo_key(value: Any) -> Any:
    """A hashable key for an encoder call's argument (tensors by content: token ids are small)."""
    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), str(value.dtype), value.detach().cpu().numpy().tobytes())
    if isinstance(value, (list, tuple)):
        return tuple(_memo_key(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _memo_key(v)) for k, v in value.items()))
    return repr(value)


@contextlib.contextmanager
def shared_text_encoders(pipe: Any, memo: dict[Any, Any]) -> Iterator[None]:
    """Within the block, each text encoder of ``pipe`` answers a call it has seen before from ``memo``.

    Safe while the caller holds the model's lease (no other request uses the pipeline meanwhile);
    the encoders' own ``forward`` is put back on exit. Stage timing hooks still fire, so a reused
    encoding shows as a text-encode time of ~0.
    """
    patched = []
    for name in _TEXT_ENCODERS:
        module = getattr(pipe, name, None)
        if not isinstance(module, torch.nn.Module):
            continue
        own = module.__dict__.get("forward")  # an instance-level forward (offload hooks) to restore
        forward = module.forward

        def cached(*args: Any, _forward: Any = forward, _id: int = id(module), **kwargs: Any) -> Any:
            key = (_id, _memo_key(args), _memo_key(kwargs))
            if key not in memo:
                memo[key] = _forward(*args, **kwargs)
            return memo[key]

        module.forward = cached
        patched.append((module, own))
    try:
        yield
    finally:
        for module, own in patched:
            if own is None:
                del module.forward
            else:
                module.forward = own


@dataclass
class GridCell:
    """One cell of the grid: where it sits, what it set, and its image or the reason it has none."""

    planned: PlannedCell
    result: GenerateResult | None
    error: str | None = None
    warmup_s: float = 0.0
    encode_reused: bool = False

    @property
    def image(self) -> Any:
        return self.result.images[0] if self.result is not None else None

    def summary(self) -> dict[str, Any]:
        """The cell's row in the table and in ``--json``: position, parameters, timings (``*_s``), memory."""
        p = self.planned
        row: dict[str, Any] = {"index": p.index, "x": p.x, "y": p.y, "z": p.z, "label": p.label,
                               "axes": {k: (list(v) if isinstance(v, tuple) else v) for k, v in p.overrides.items()}}
        if self.result is None:
            return {**row, "error": self.error}
        t, params = self.result.timings, self.result.params
        return {**row, "model": self.result.model.get("id"), "seed": self.result.seeds[0],
                "steps": params["steps"], "guidance": params["guidance"], "scheduler": params["scheduler"],
                "sampler": params.get("sampler"), "width": params["width"], "height": params["height"],
                "prompt": params["prompt"], "negative_prompt": params["negative_prompt"],
                "load_s": round(t.load_s, 4), "warmup_s": round(self.warmup_s, 4), "wall_s": round(t.total_s, 4),
                "text_encode_s": round(t.text_encode_s, 4), "denoise_s": round(t.denoise_s, 4),
                "decode_s": round(t.decode_s, 4), "steps_per_s": round(t.steps_per_s, 3),
                "peak_memory_mb": round(t.peak_memory_bytes / 2**20, 1), "memory_kind": t.memory_kind,
                "encode_reused": self.encode_reused,
                **({"replica": self.result.replica} if self.result.replica else {})}


@dataclass
class GridResult:
    """Every cell in grid order (Z pages of Y rows of X columns), the axes, the shared seed and the
    labelled grid images (one per Z value)."""

    cells: list[GridCell]
    axes: list[Axis | None]
    seed: int
    grids: list[Any]

    def describe_axes(self) -> list[dict[str, Any]]:
        """The axes as data: name (X/Y/Z), kind and values."""
        return [{"axis": name, "kind": a.kind, "values": [list(v) if isinstance(v, tuple) else v for v in a.values]}
                for name, a in zip(AXIS_NAMES, self.axes) if a is not None]


def grid_images(cells: Sequence[GridCell], axes: Sequence[Axis | None]) -> list[Any]:
    """One labelled grid image per Z value (genimg.grid.compose_grid) from cells in grid order."""
    x_axis, y_axis, z_axis = (list(axes) + [None] * 3)[:3]
    nx = len(x_axis.values)
    ny = len(y_axis.values) if y_axis is not None else 1
    nz = len(z_axis.values) if z_axis is not None else 1
    columns = [f"{x_axis.value_label(i)}" for i in range(nx)]
    rows = [y_axis.value_label(j) for j in range(ny)] if y_axis is not None else [""]
    pages = []
    for z in range(nz):
        page = [[cells[z * nx * ny + y * nx + x].image for x in range(nx)] for y in range(ny)]
        title = z_axis.value_label(z) if z_axis is not None else ""
        pages.append(compose_grid(page, columns, rows, title=title))
    return pages


def check_models(ids: Sequence[str], pool: ModelPool) -> None:
    """GenimgError unless every id is a known text-to-image model (before any cell runs)."""
    for model_id in ids:
        spec = pool.spec(model_id)
        if "text-to-image" not in spec.tasks:
            raise GenimgError(f"model {spec.id!r} on the grid does not do text-to-image "
                              f"(its tasks: {', '.join(spec.tasks)})")


def run_grid(request: GenerateRequest, axes: Sequence[Axis | None], pool: ModelPool | None = None,
             progress: ProgressFn | None = None, warmup: bool = True) -> GridResult:
    """Generate one image per cell of the grid that ``axes`` (X, Y, Z) span over ``request``.

    ``request`` holds everything the axes do not vary (``request.model`` is used unless a model
    axis is given; ``batch`` is always 1; seed -1 picks one random seed shared by every cell).
    ``progress`` receives a genimg.runner.Progress (cells done, the running cell's steps).
    Raises GenimgError for bad axes or parameters, too many cells (hosted limits), unknown
    models, or when no cell could run; a cell that fails alone becomes a row with its reason.
    """
    pool = pool or get_pool()
    limits = settings().limits
    base_model = request.model or default_model(pool.catalog) or ""
    cells = plan_cells(request.prompt or "", axes, limits)
    models = list(dict.fromkeys(c.overrides.get("model", base_model) for c in cells))
    check_models(models, pool)
    # The whole request's mistakes (an empty prompt, a bad base setting) are its error, not every cell's;
    # the seed is drawn once so that every cell starts from the same noise.
    first = resolve_request(replace(request, **{"model": models[0], "batch": 1, **cells[0].overrides}),
                            pool.spec(models[0]))
    base = replace(request, model=base_model, batch=1, seed=first["seed"] if request.seed in (None, -1) else request.seed)
    memo: dict[Any, Any] = {}
    encoded: set[tuple[str, str, str]] = set()

    def run_cell(cell: PlannedCell, step: Any) -> GridCell:
        cell_request = replace(base, **cell.overrides)
        spec = pool.spec(cell_request.model)
        resolved = resolve_request(cell_request, spec, limits)
        route = pool.route(spec.id)
        if route is not None:
            # Served elsewhere (serve --ray): the cell runs in the model's replica through the function
            # Compare's columns use there, timed there. Only the replica's own per-prompt cache is shared.
            remote = route.call("compare_cell", {"request": cell_request, "model_id": spec.id,
                                                 "seed": resolved["seed"], "warmup": warmup}, step)
            if remote.result is None:
                raise GenimgError(remote.error or f"{spec.id} gave no image")
            return GridCell(cell, remote.result, warmup_s=remote.warmup_s,
                            encode_reused=remote.result.timings.text_encode_s == 0.0)
        key = (spec.id, resolved["prompt"], resolved["negative_prompt"])
        with pool.acquire(spec.id) as lease, shared_text_encoders(lease.model, memo):
            warmup_s = 0.0
            if lease.cold and warmup:
                _, warm = run_pipeline(lease, {**resolved, "steps": 1})
                warmup_s = warm.total_s
                encoded.add(key)
            reused = key in encoded
            images, timings = run_pipeline(lease, resolved, step)
            info = lease.model_info()
        encoded.add(key)
        timings.load_s = lease.load_seconds
        timings.warm = not lease.cold
        # The embedded pipelines' own prompt cache may have served it too (the encoder never ran).
        reused = reused or timings.text_encode_s == 0.0
        return GridCell(cell, make_result(resolved, images, timings, info), warmup_s=warmup_s, encode_reused=reused)

    order = run_order(cells, base_model)
    ran = run_cells(order, run_cell, key=lambda c: c.label, what="grid cell", progress=progress)
    by_index = {c.index: cell for c, cell in zip(order, ran)}
    results = [by_index[c.index].value if by_index[c.index].ok
               else GridCell(c, None, error=by_index[c.index].error) for c in cells]
    return GridResult(cells=results, axes=list(axes) + [None] * (3 - len(axes)), seed=base.seed,
                      grids=grid_images(results, axes))


__all__ = ["GridCell", "GridResult", "check_models", "grid_images", "run_grid", "shared_text_encoders"]

"""Evaluation of a text-to-image pipeline during training: the scene grammar's prompts, scored.

Every embedded trainer evaluates the same way: the pipeline draws ``eval_prompt_set()`` x
seeds, and :func:`genimg.scenes.evaluator.faithfulness_metrics` scores the images against
their scenes. Seeds are per image (1000 * seed + index), so a figure does not depend on
the batch size.
"""

from __future__ import annotations

import numpy as np
import torch

from genimg.metrics.diversity import pairwise_rms, pixel_near_duplicate_rate
from genimg.training.worlds import SHAPES_SAMPLE_PROMPTS


@torch.no_grad()
def evaluate_pipeline(pipe, seeds=(0, 1), steps: int = 20, guidance: float = 4.0, batch: int = 32,
                      scenes=None, world: str = "shapes") -> dict:
    """Faithfulness metrics of ``pipe`` on ``scenes`` (default: the world's evaluation set) x ``seeds``.

    ``steps`` / ``guidance`` are passed to the pipeline (``num_inference_steps``,
    ``guidance_scale``), ``batch`` images per call. Returns the ``world``'s scores
    (:mod:`genimg.training.worlds`; for shapes :func:`~genimg.scenes.evaluator.faithfulness_metrics`).
    """
    from genimg.training.worlds import get_world

    w = get_world(world)
    scenes = list(scenes or w.eval_scenes())
    jobs = [(sc, s) for s in seeds for sc in scenes]
    images = []
    for i in range(0, len(jobs), batch):
        part = jobs[i:i + batch]
        gens = [torch.Generator().manual_seed(1000 * s + k) for k, (_, s) in enumerate(part, start=i)]
        out = pipe([sc.caption for sc, _ in part], num_inference_steps=steps, guidance_scale=guidance,
                   generator=gens, output_type="np").images
        images.extend(np.clip(np.rint(np.asarray(out) * 255.0), 0, 255).astype(np.uint8))
    return w.score(images, [sc for sc, _ in jobs])


# Fixed prompts for sample grids and the mode-collapse check: one per kind of scene the grammar draws.
SAMPLE_PROMPTS = SHAPES_SAMPLE_PROMPTS


@torch.no_grad()
def seed_images(pipe, prompt: str, seeds, steps: int | None = None, guidance: float | None = None) -> np.ndarray:
    """``pipe``'s images of one prompt, one per seed, as float (n, H, W, 3) in [0, 1]."""
    seeds = list(seeds)
    kwargs = {k: v for k, v in (("num_inference_steps", steps), ("guidance_scale", guidance)) if v is not None}
    out = pipe(prompt, num_images_per_prompt=len(seeds), generator=[torch.Generator().manual_seed(s) for s in seeds],
               output_type="np", **kwargs).images
    return np.asarray(out, dtype=np.float32)


def pixel_diversity(images: np.ndarray) -> float:
    """Mean pairwise RMS pixel distance (0..1 scale) of float (n, H, W, 3) images in [0, 1]."""
    d = pairwise_rms(images)
    n = len(d)
    return float(d.sum() / (n * (n - 1)))


def diversity(pipe, prompt: str = SAMPLE_PROMPTS[0], seeds=range(8), steps: int | None = None,
              guidance: float | None = None) -> float:
    """Mean pairwise RMS pixel distance (0..1 scale) between images of one prompt over ``seeds``.

    Near 0 means mode collapse (every seed draws the same picture). ``steps`` / ``guidance``
    go to the pipeline when given.
    """
    return pixel_diversity(seed_images(pipe, prompt, seeds, steps, guidance))


def collapse_check(pipe, threshold: float, prompts=SAMPLE_PROMPTS[:2], seeds=range(8), steps: int | None = None,
                   guidance: float | None = None) -> dict:
    """Diversity across ``seeds`` for fixed ``prompts`` and an alarm below ``threshold``.

    Returns {"diversity": mean pairwise RMS pixel distance (mean over the prompts),
    "near_duplicates": mean :func:`~genimg.metrics.diversity.pixel_near_duplicate_rate`, "alerts": [...]}
    -- the loop sends alerts to the log and every tracker. Diversity alone cannot tell variety
    from noise; faithfulness and the near-duplicate rate stand beside it.
    """
    drawn = [seed_images(pipe, p, seeds, steps, guidance) for p in prompts]
    d = float(np.mean([pixel_diversity(images) for images in drawn]))
    near = float(np.mean([pixel_near_duplicate_rate(images) for images in drawn]))
    alerts = []
    if d < threshold:
        alerts.append({"title": "mode collapse",
                       "text": f"diversity across {len(list(seeds))} seeds {d:.3f} < {threshold:.3f}: the generator "
                               "draws (nearly) the same image whatever the seed"})
    return {"diversity": round(d, 4), "near_duplicates": round(near, 4), "alerts": alerts}


@torch.no_grad()
def sample_grid(pipe, prompts=SAMPLE_PROMPTS, seeds=(0, 1), steps: int | None = None, guidance: float | None = None,
                scale: int = 2):
    """A PIL grid of ``pipe``'s images: one column per prompt, one row per seed, each image ``scale``x (nearest)."""
    from PIL import Image

    kwargs = {k: v for k, v in (("num_inference_steps", steps), ("guidance_scale", guidance)) if v is not None}
    rows = []
    for seed in seeds:
        out = pipe(list(prompts), generator=[torch.Generator().manual_seed(1000 * seed + i) for i in range(len(prompts))],
                   output_type="np", **kwargs).images
        rows.append(np.concatenate(list(np.clip(np.rint(np.asarray(out) * 255), 0, 255).astype(np.uint8)), axis=1))
    grid = Image.fromarray(np.concatenate(rows, axis=0))
    return grid.resize((grid.width * scale, grid.height * scale), Image.NEAREST)


def nearest_distances(images_u8, train_u8, chunk: int = 2048) -> np.ndarray:
    """For each image, the RMS pixel distance (0..1) to its nearest image of ``train_u8``.

    Both are uint8 (N, H, W, 3) of one size. Exhaustive search (||a||^2 + ||b||^2 - 2ab over chunks of
    the training set), so a copy of a training image scores 0. Returns a float array (N,).
    """
    a = torch.from_numpy(np.asarray(images_u8, dtype=np.uint8).reshape(len(images_u8), -1)).float() / 255.0
    if a.shape[1] != np.asarray(train_u8[:1]).reshape(1, -1).shape[1]:
        raise ValueError("images and training images differ in size")
    best = torch.full((len(a),), float("inf"))
    a2 = a.pow(2).sum(1, keepdim=True)
    for i in range(0, len(train_u8), chunk):
        b = torch.from_numpy(np.array(train_u8[i:i + chunk]).reshape(-1, a.shape[1])).float() / 255.0  # a copy: mmap is read-only
        d2 = a2 + b.pow(2).sum(1)[None, :] - 2.0 * a @ b.T
        best = torch.minimum(best, d2.min(dim=1).values)
    return (best.clamp_min(0) / a.shape[1]).sqrt().numpy()


@torch.no_grad()
def memorisation_check(pipe, train_u8, scenes, render_scenes, seed: int = 0, steps: int | None = None,
                       guidance: float | None = None, batch: int = 32) -> dict:
    """Are the model's images copies of training images? Distances to the nearest training image.

    Draws one image per scene (``pipe``, seed ``1000 * seed + i``) and renders the same scenes fresh
    with ``render_scenes(scenes, size)`` (new layouts the training set has not seen exactly, the
    reference); returns ``{"generated": {"median", "min", "p10"}, "fresh_renders": {...}, "n"}``
    of nearest-training-image RMS distances. A model that memorised would sit near 0, far below the
    fresh renders.
    """
    kwargs = {k: v for k, v in (("num_inference_steps", steps), ("guidance_scale", guidance)) if v is not None}
    images = []
    for i in range(0, len(scenes), batch):
        part = scenes[i:i + batch]
        out = pipe([sc.caption for sc in part], output_type="np",
                   generator=[torch.Generator().manual_seed(1000 * seed + i + k) for k in range(len(part))],
                   **kwargs).images
        images.extend(np.clip(np.rint(np.asarray(out) * 255), 0, 255).astype(np.uint8))
    images = np.stack(images)
    size = images.shape[1]
    if train_u8.shape[1] != size:
        raise ValueError(f"the model draws {size} px, the training images are {train_u8.shape[1]} px")

    def stats(d):
        return {"median": round(float(np.median(d)), 4), "min": round(float(d.min()), 4),
                "p10": round(float(np.percentile(d, 10)), 4)}

    return {"n": len(images), "generated": stats(nearest_distances(images, train_u8)),
            "fresh_renders": stats(nearest_distances(render_scenes(scenes, size), train_u8))}

"""Evaluation of a text-to-image pipeline during training: the scene grammar's prompts, scored.

Every embedded trainer evaluates the same way: the pipeline draws ``eval_prompt_set()`` x
seeds, and :func:`genimg.scenes.evaluator.faithfulness_metrics` scores the images against
their scenes. Seeds are per image (1000 * seed + index), so a figure does not depend on
the batch size.
"""

from __future__ import annotations

import numpy as np
import torch

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
def diversity(pipe, prompt: str = SAMPLE_PROMPTS[0], seeds=range(8), steps: int | None = None,
              guidance: float | None = None) -> float:
    """Mean pairwise RMS pixel distance (0..1 scale) between images of one prompt over ``seeds``.

    Near 0 means mode collapse (every seed draws the same picture). ``steps`` / ``guidance``
    go to the pipeline when given.
    """
    seeds = list(seeds)
    kwargs = {k: v for k, v in (("num_inference_steps", steps), ("guidance_scale", guidance)) if v is not None}
    out = pipe(prompt, num_images_per_prompt=len(seeds), generator=[torch.Generator().manual_seed(s) for s in seeds],
               output_type="np", **kwargs).images
    x = torch.from_numpy(np.asarray(out, dtype=np.float32)).flatten(1)
    d = torch.cdist(x, x) / x.shape[1] ** 0.5
    n = len(x)
    return float(d.sum() / (n * (n - 1)))


def collapse_check(pipe, threshold: float, prompts=SAMPLE_PROMPTS[:2], seeds=range(8), steps: int | None = None,
                   guidance: float | None = None) -> dict:
    """Diversity across ``seeds`` for fixed ``prompts`` (mean of :func:`diversity`), and an alarm below ``threshold``.

    Returns {"diversity": d, "alerts": [...]} -- the loop sends alerts to the log and every tracker.
    """
    d = float(np.mean([diversity(pipe, p, seeds, steps, guidance) for p in prompts]))
    alerts = []
    if d < threshold:
        alerts.append({"title": "mode collapse",
                       "text": f"diversity across {len(list(seeds))} seeds {d:.3f} < {threshold:.3f}: the generator "
                               "draws (nearly) the same image whatever the seed"})
    return {"diversity": round(d, 4), "alerts": alerts}


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

"""Evaluation of a text-to-image pipeline during training: the scene grammar's prompts, scored.

Every embedded trainer evaluates the same way: the pipeline draws ``eval_prompt_set()`` x
seeds, and :func:`genimg.scenes.evaluator.faithfulness_metrics` scores the images against
their scenes. Seeds are per image (1000 * seed + index), so a figure does not depend on
the batch size.
"""

from __future__ import annotations

import numpy as np
import torch


@torch.no_grad()
def evaluate_pipeline(pipe, seeds=(0, 1), steps: int = 20, guidance: float = 4.0, batch: int = 32,
                      scenes=None) -> dict:
    """Faithfulness metrics of ``pipe`` on ``scenes`` (default: the grammar's evaluation set) x ``seeds``.

    ``steps`` / ``guidance`` are passed to the pipeline (``num_inference_steps``,
    ``guidance_scale``), ``batch`` images per call. Returns
    :func:`~genimg.scenes.evaluator.faithfulness_metrics`'s dict.
    """
    from genimg.scenes.evaluator import faithfulness_metrics
    from genimg.scenes.grammar import eval_prompt_set

    scenes = list(scenes or eval_prompt_set())
    jobs = [(sc, s) for s in seeds for sc in scenes]
    images = []
    for i in range(0, len(jobs), batch):
        part = jobs[i:i + batch]
        gens = [torch.Generator().manual_seed(1000 * s + k) for k, (_, s) in enumerate(part, start=i)]
        out = pipe([sc.caption for sc, _ in part], num_inference_steps=steps, guidance_scale=guidance,
                   generator=gens, output_type="np").images
        images.extend(np.clip(np.rint(np.asarray(out) * 255.0), 0, 255).astype(np.uint8))
    return faithfulness_metrics(images, [sc for sc, _ in jobs])

"""``python -m genimg train emoji-diffusion``: latent diffusion on the emoji world (measured, not shipped).

genimg-emoji ships another design (:mod:`genimg.training.emoji_glyphs`, ``train emoji``): this
recipe learnt layout and backgrounds in two CPU hours but not which emoji is which (docs/emoji-world.md).

The embedded latent-diffusion recipe (:mod:`genimg.training.diffusion`: patch autoencoder
f=4, UNet2DConditionModel on frozen MiniLM states, v-prediction, EMA, the shared loop with
its checkpoints, tracking and best checkpoint) on the OpenMoji scenes of
:mod:`genimg.emoji.grammar` (rendered at 128 px, box-downsampled to the model's 64 px),
evaluated with the emoji world's classical-vision evaluator on a stratified part of its
evaluation set (:func:`genimg.emoji.evaluator.training_scenes`). Only the world differs
(:mod:`genimg.training.worlds`). The exported card carries the vocabulary and the
OpenMoji licence (CC BY-SA 4.0: the weights and their samples are adaptations).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genimg.training.registry import register_trainer

DEFAULT_OUT = Path("runs/emoji")
DEFAULT_ASSETS = Path("assets/embedded/emoji-diffusion")

@register_trainer("emoji-diffusion")
def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``python -m genimg train emoji-diffusion [options]`` (the options of ``train diffusion``; defaults: --out runs/emoji,
    --assets assets/embedded/emoji-diffusion, --config emoji, --eval-seeds 0): train resumably, export with ``--export``.

    Returns the run's summary. Raises GenimgError for a user error.
    """
    from genimg.training.diffusion import run_cli

    # One seed per evaluation prompt: 169 prompts (97 emoji alone) already cost ~3 min on one CPU thread.
    summary = run_cli(argv, world="emoji", prog="python -m genimg train emoji-diffusion", out=DEFAULT_OUT, assets=DEFAULT_ASSETS,
                      config="emoji", eval_seeds="0")
    if summary.get("assets"):
        summary["measured"] = record_memorisation(Path(summary["assets"]))
    return summary


def record_memorisation(assets_dir: Path, n_scenes: int = 97, log=print) -> dict[str, Any]:
    """Measure how far the exported model's images are from their nearest training render; add it to the card.

    Uses the training data cached by the run the card names (``<run>/data``); returns the
    :func:`~genimg.training.evaluation.memorisation_check` figures (or {} when that cache is gone).
    """
    import json

    import numpy as np

    from genimg.embedded.diffusion import load_embedded_diffusion
    from genimg.emoji.evaluator import training_scenes
    from genimg.training.checkpoints import write_json
    from genimg.training.evaluation import memorisation_check
    from genimg.training.worlds import get_world

    card_path = assets_dir / "model_card.json"
    card = json.loads(card_path.read_text())
    cfg = card.get("train_config") or {}
    data = (Path(cfg.get("run_dir", DEFAULT_OUT)) / "data"
            / f"emoji_images_{cfg.get('n_data', 40000)}_{cfg.get('seed', 0)}_{cfg.get('size', 64)}.npy")
    if not data.exists():
        log(f"memorisation check skipped: no training images at {data}")
        return {}
    pipe = load_embedded_diffusion(assets_dir)
    scenes = [s for s in training_scenes() if s.kind == "single"][:n_scenes]
    figures = memorisation_check(pipe, np.load(data, mmap_mode="r"), scenes, get_world("emoji").render_scenes,
                                 steps=cfg.get("eval_steps", 20), guidance=cfg.get("guidance", 4.0))
    card["memorisation"] = {**figures, "what": "RMS pixel distance (0..1) of each image to its nearest of the "
                                               "training renders; fresh_renders: new renders of the same prompts"}
    write_json(card_path, card)
    log(f"memorisation: {json.dumps(figures)}")
    return figures

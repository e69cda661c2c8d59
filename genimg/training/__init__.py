"""Training of the models genimg ships: one shared loop, one trainer per model (a domain layer).

- :mod:`genimg.training.loop`: :func:`~genimg.training.loop.fit`, the loop every trainer runs
  in (resume, checkpoints, evaluation cadence, logging, final checkpoint, export hook), and
  the :class:`~genimg.training.loop.Trainer` contract (setup, step, evaluate, export);
- trainers, each registered by model name for ``python -m genimg train <model>``:
  :mod:`~genimg.training.diffusion` and :mod:`~genimg.training.emoji` (one recipe, two worlds:
  :mod:`~genimg.training.worlds`), :mod:`~genimg.training.emoji_glyphs` (genimg-emoji's glyph decoder), :mod:`~genimg.training.fewstep` (distillation),
  :mod:`~genimg.training.gan` and :mod:`~genimg.training.vae` (sharing
  :mod:`~genimg.training.onestep`), :mod:`~genimg.training.dae` (the restoration denoiser);
- shared helpers: :mod:`~genimg.training.data` (scene data, caption states),
  :mod:`~genimg.training.checkpoints` (the run folder's files), :mod:`~genimg.training.ema`,
  :mod:`~genimg.training.threads`, :mod:`~genimg.training.evaluation`,
  :mod:`~genimg.training.autoencoder` (the diffusion model's first stage).

Importing this package registers every trainer in :data:`TRAINERS`.
"""

from genimg.training import dae, diffusion, emoji, emoji_glyphs, fewstep, gan, vae  # noqa: F401  (each registers its trainer)
from genimg.training.registry import TRAINERS

__all__ = ["TRAINERS"]

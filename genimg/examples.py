"""The bundled example images in ``assets/examples/`` (small copies of scikit-image's data).

One place for what the Restore tab offers as examples, what the restoration benchmark and
the denoising autoencoder's evaluation score on, and what the tests read. The style
examples (``assets/examples/style/``) belong to :mod:`genimg.style.examples`.
"""

from __future__ import annotations

from pathlib import Path

from genimg.config import ASSETS_DIR

EXAMPLES_DIR = ASSETS_DIR / "examples"
# Stems of the examples that are not plain RGB: a grayscale one and one with an alpha channel.
NOT_RGB = ("camera", "coffee-alpha")


def example_paths(rgb_only: bool = False) -> list[Path]:
    """The bundled example images (``*.png`` in ``assets/examples/``), sorted by name.

    ``rgb_only`` leaves out the grayscale and RGBA ones. Returns an empty list when the
    folder is missing; raises nothing.
    """
    paths = sorted(p for p in EXAMPLES_DIR.glob("*.png"))
    if rgb_only:
        paths = [p for p in paths if p.stem not in NOT_RGB]
    return paths

"""The project's own denoising autoencoder: a small residual CNN trained here, on the CPU.

Architecture (DnCNN-style, small): 3 → 32 channels, 8 convolutions 3×3 with ReLU, the last
one predicting the noise, which is subtracted from the input (residual learning converges
in minutes where a plain encoder-decoder needs hours). ~57 k parameters, ~0.23 MB in
fp32 safetensors. Blind: trained over Gaussian noise σ ∈ [0, 55] (0-255 scale), so it
needs no σ at inference.

It is trained by :mod:`genimg.training.dae` (``python -m genimg train dae [--minutes M]
[--steps N] [--out DIR]``) on images other than the bundled examples; this module is what
restoration needs at run time: the architecture, loading the weights, tiled denoising.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from genimg.config import ASSETS_DIR
from genimg.errors import ModelUnavailableError

DAE_DIR = ASSETS_DIR / "restore" / "dae"
WEIGHTS = "dae.safetensors"
CONFIG = {"channels": 32, "layers": 8}


def build_model(channels: int = 32, layers: int = 8):
    """The DAE as a torch module (random weights)."""
    import torch
    from torch import nn

    class TinyDAE(nn.Module):
        """Residual denoiser: returns ``x - net(x)``; input/output RGB in 0..1, (N, 3, H, W)."""

        def __init__(self) -> None:
            super().__init__()
            body: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1), nn.ReLU(inplace=True)]
            for _ in range(layers - 2):
                body += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True)]
            body.append(nn.Conv2d(channels, 3, 3, padding=1))
            self.body = nn.Sequential(*body)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x - self.body(x)

    return TinyDAE()


def load_dae(folder: str | Path | None = None):
    """Load the trained DAE from ``folder`` (default ``assets/restore/dae``), eval mode, CPU fp32.

    Raises ModelUnavailableError when the weights are missing (train them with
    ``python -m genimg train dae``).
    """
    from safetensors.torch import load_file

    folder = Path(folder or DAE_DIR)
    path = folder / WEIGHTS
    if not path.is_file():
        raise ModelUnavailableError(f"the denoising autoencoder has no weights at {path}: "
                                    "train it with `python -m genimg train dae`")
    config = dict(CONFIG)
    config_path = folder / "config.json"
    if config_path.is_file():
        config.update(json.loads(config_path.read_text()))
    model = build_model(int(config["channels"]), int(config["layers"]))
    model.load_state_dict(load_file(str(path)))
    return model.eval()


def denoise(model: Any, image: np.ndarray, tile: int = 384, pad: int = 16,
            progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Denoise float (H, W, 3) ``image`` in 0..1 with the DAE, in tiles of ``tile`` px with ``pad`` px context."""
    import torch

    h, w = image.shape[:2]
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    out = np.empty_like(image, dtype=np.float32)
    tiles = [(y, x) for y in range(0, h, tile) for x in range(0, w, tile)]
    with torch.inference_mode():
        for i, (y, x) in enumerate(tiles):
            th, tw = min(tile, h - y), min(tile, w - x)
            chunk = padded[y:y + th + 2 * pad, x:x + tw + 2 * pad]
            tensor = torch.from_numpy(np.ascontiguousarray(chunk.transpose(2, 0, 1), dtype=np.float32))[None]
            result = model(tensor)[0].numpy().transpose(1, 2, 0)
            out[y:y + th, x:x + tw] = result[pad:pad + th, pad:pad + tw]
            if progress is not None:
                progress(i + 1, len(tiles))
    return np.clip(out, 0.0, 1.0)

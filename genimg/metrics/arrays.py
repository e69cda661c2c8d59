"""Input conventions shared by every metric: what an "image" is, its range, and size checks.

- numpy arrays are channel-last, like scikit-image: ``(H, W)``, ``(H, W, C)`` or a batch
  ``(N, H, W, C)``;
- torch tensors are channel-first, like torchvision/torchmetrics: ``(C, H, W)`` or ``(N, C, H, W)``
  (a 2-D tensor is one grayscale image);
- PIL images and :class:`genimg.imageio.DecodedImage` are accepted where one image is expected;
- the value range (``data_range``) defaults to 255 for uint8, 65535 for uint16 and 1.0 for
  floats; a float image outside 0..1 without an explicit ``data_range`` is refused rather than
  scored against the wrong range.

Mismatched sizes or channel counts raise :class:`GenimgError`; nothing is resized unless the
caller asks for it with ``resize_to_match=True``.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import numpy as np
import torch
from PIL import Image

from genimg.errors import GenimgError

_INT_RANGES = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def metric_threads() -> int | None:
    """Torch intra-op threads for metric computations: ``GENIMG_METRICS_THREADS`` (default 1;
    0 = leave torch's own setting). See :func:`intra_op_threads` for why 1."""
    value = os.environ.get("GENIMG_METRICS_THREADS", "").strip()
    if not value:
        return 1
    try:
        n = int(value)
    except ValueError:
        raise GenimgError(f"GENIMG_METRICS_THREADS must be an integer, got {value!r}") from None
    return None if n <= 0 else n


@contextlib.contextmanager
def intra_op_threads(threads: int | None = -1) -> Iterator[None]:
    """Run the block with ``threads`` torch intra-op threads (-1: :func:`metric_threads`;
    None: leave torch's setting).

    With PyTorch's OpenMP backend the setting belongs to the calling thread, and it is restored
    on exit. The metrics' filters, element-wise steps and EfficientNet-Lite0's depthwise convs are
    memory-bound; on the shared 2-core machines a second OpenMP thread made them 3-7x *slower*
    (each parallel region waits for a descheduled core), so the default is 1 thread.
    """
    if threads == -1:
        threads = metric_threads()
    old = torch.get_num_threads()
    if threads is None or threads == old:
        yield
        return
    torch.set_num_threads(max(1, int(threads)))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def to_numpy(image: Any, what: str = "image") -> np.ndarray:
    """One image as a channel-last numpy array (H, W) or (H, W, C), dtype kept.

    Raises GenimgError for anything that is not an image.
    """
    if hasattr(image, "rgb_array") and hasattr(image, "image"):  # DecodedImage
        return np.asarray(image.image.convert("L")) if getattr(image, "grayscale", False) else image.rgb_array()
    if isinstance(image, Image.Image):
        if image.mode not in ("L", "RGB"):
            image = image.convert("RGB")
        return np.asarray(image)
    if isinstance(image, torch.Tensor):
        t = image.detach().cpu()
        if t.ndim == 3:
            t = t.permute(1, 2, 0)
        elif t.ndim != 2:
            raise GenimgError(f"{what} tensor must be (C, H, W) or (H, W), got shape {tuple(t.shape)}")
        return t.numpy()
    if isinstance(image, np.ndarray):
        if image.ndim not in (2, 3):
            raise GenimgError(f"{what} array must be (H, W) or (H, W, C), got shape {image.shape}")
        return image
    raise GenimgError(f"{what} must be an image (numpy array, torch tensor or PIL image), got {type(image).__name__}")


def as_batch(images: Any, what: str = "images") -> np.ndarray:
    """Images as one channel-last batch (N, H, W, C), dtype kept.

    Accepts a numpy array (H, W), (H, W, C) or (N, H, W, C); a tensor (C, H, W) or (N, C, H, W);
    or a non-empty sequence of same-sized images. Raises GenimgError when empty or mixed.
    """
    if isinstance(images, torch.Tensor):
        t = images.detach().cpu()
        if t.ndim == 4:
            return t.permute(0, 2, 3, 1).numpy()
        array = to_numpy(t, what)
        return array[None, :, :, None] if array.ndim == 2 else array[None]
    if isinstance(images, np.ndarray):
        if images.ndim == 4:
            batch = images
        elif images.ndim == 3:
            batch = images[None]
        elif images.ndim == 2:
            batch = images[None, :, :, None]
        else:
            raise GenimgError(f"{what} array must be (H, W), (H, W, C) or (N, H, W, C), got shape {images.shape}")
        if batch.shape[0] == 0:
            raise GenimgError(f"{what} is empty: give at least one image")
        return batch
    if isinstance(images, (list, tuple)):
        if not images:
            raise GenimgError(f"{what} is empty: give at least one image")
        arrays = [to_numpy(im, f"{what}[{i}]") for i, im in enumerate(images)]
        arrays = [a[:, :, None] if a.ndim == 2 else a for a in arrays]
        first = arrays[0]
        for i, a in enumerate(arrays[1:], 1):
            if a.shape != first.shape:
                raise GenimgError(f"{what}[{i}] is {describe(a)} but {what}[0] is {describe(first)}: "
                                  "images in one batch must have the same size and channels")
            if a.dtype != first.dtype:
                raise GenimgError(f"{what}[{i}] is {a.dtype} but {what}[0] is {first.dtype}: use one dtype")
        return np.stack(arrays)
    array = to_numpy(images, what)
    return array[None, :, :, None] if array.ndim == 2 else array[None]


def describe(array: np.ndarray) -> str:
    """'WxH, C channel(s)' for messages."""
    h, w = array.shape[-3], array.shape[-2]
    c = array.shape[-1]
    return f"{w}x{h} with {c} channel{'s' if c != 1 else ''}"


def resolve_range(*arrays: np.ndarray, data_range: float | None = None) -> float:
    """The value range used by PSNR/SSIM: given, or from the dtype (see module docstring).

    Raises GenimgError for a non-positive range, mixed integer dtypes, NaN/inf values,
    or floats outside 0..1 when no range is given.
    """
    for a in arrays:
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise GenimgError("image has NaN or infinite values")
        if a.dtype.kind not in "uif" or a.dtype == np.bool_:
            raise GenimgError(f"image dtype {a.dtype} is not supported: use uint8, uint16 or float")
    if data_range is not None:
        data_range = float(data_range)
        if not np.isfinite(data_range) or data_range <= 0:
            raise GenimgError(f"data_range must be a positive number, got {data_range}")
        return data_range
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) > 1:
        raise GenimgError(f"images have different dtypes ({', '.join(sorted(map(str, dtypes)))}): "
                          "convert them to one, or pass data_range")
    dtype = dtypes.pop()
    if dtype in _INT_RANGES:
        return _INT_RANGES[dtype]
    if dtype.kind == "f":
        low = min(float(a.min()) for a in arrays)
        high = max(float(a.max()) for a in arrays)
        if low < 0.0 or high > 1.0:
            raise GenimgError(f"float images must be in 0..1 (got {low:.4g}..{high:.4g}): scale them or pass data_range")
        return 1.0
    raise GenimgError(f"cannot infer the value range of {dtype} images: pass data_range")


def match_pair(image: Any, reference: Any, *, resize_to_match: bool = False,
               what: str = "image", ref_what: str = "reference") -> tuple[np.ndarray, np.ndarray]:
    """Two batches (N, H, W, C) of the same shape for a full-reference metric.

    A single reference is broadcast over a batch of images. Grayscale vs RGB is a channel
    mismatch (an error), like a size mismatch; with ``resize_to_match`` the image is resized
    (bicubic) to the reference's size and a 1-channel side is repeated to 3 channels.
    Raises GenimgError on mismatch or empty input.
    """
    a = as_batch(image, what)
    b = as_batch(reference, ref_what)
    if a.shape[1:3] != b.shape[1:3] or a.shape[3] != b.shape[3]:
        if not resize_to_match:
            raise GenimgError(f"{what} is {describe(a)} but {ref_what} is {describe(b)}: full-reference metrics need "
                              "the same size and channels (pass resize_to_match=True / --resize-to-match to resize "
                              f"the {what} to the {ref_what})")
        if a.shape[3] != b.shape[3]:
            if 1 not in (a.shape[3], b.shape[3]):
                raise GenimgError(f"{what} has {a.shape[3]} channels and {ref_what} {b.shape[3]}: cannot match them")
            if a.shape[3] == 1:
                a = np.repeat(a, b.shape[3], axis=3)
            else:
                b = np.repeat(b, a.shape[3], axis=3)
        if a.shape[1:3] != b.shape[1:3]:
            a = np.stack([resize(im, (b.shape[2], b.shape[1])) for im in a])
    if b.shape[0] == 1 and a.shape[0] > 1:
        b = np.broadcast_to(b, a.shape)
    if a.shape[0] != b.shape[0]:
        raise GenimgError(f"{a.shape[0]} {what}s but {b.shape[0]} {ref_what}s: give one reference or one per image")
    return a, b


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a channel-last image to ``size`` = (width, height) with PIL bicubic, dtype kept."""
    from skimage.transform import resize as sk_resize

    if image.dtype == np.uint8:
        mode_image = Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image)
        out = np.asarray(mode_image.resize(size, Image.Resampling.BICUBIC))
        return out[:, :, None] if out.ndim == 2 else out
    # Other dtypes: scikit-image (order 3, anti-aliased), range preserved.
    out = sk_resize(image, (size[1], size[0]), order=3, anti_aliasing=True, preserve_range=True)
    return out.astype(image.dtype) if image.dtype.kind == "f" else np.clip(np.rint(out), 0, _INT_RANGES.get(image.dtype, np.inf)).astype(image.dtype)


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W) float64 luminance of an (H, W[, C]) image in its own range (BT.709 weights, as skimage rgb2gray)."""
    a = np.asarray(image)
    if a.ndim == 2:
        return a.astype(np.float64)
    if a.shape[2] == 1:
        return a[:, :, 0].astype(np.float64)
    if a.shape[2] == 4:
        a = a[:, :, :3]
    return a.astype(np.float64) @ np.array([0.2125, 0.7154, 0.0721])


def min_side_check(a: np.ndarray, need: int, metric: str) -> None:
    """Refuse images smaller than a metric's window."""
    h, w = a.shape[-3], a.shape[-2]
    if min(h, w) < need:
        raise GenimgError(f"{metric} needs images at least {need}x{need} pixels, got {w}x{h}")

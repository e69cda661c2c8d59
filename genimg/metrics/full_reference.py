"""Full-reference metrics: MSE, PSNR, SSIM, MS-SSIM as pure functions.

Inputs follow :mod:`genimg.metrics.arrays` (numpy channel-last, torch channel-first, or lists).
One image pair in → a float; a batch in (a 4-D array/tensor or a list) → a float64 numpy
array with one value per image. A single reference is broadcast over a batch.

SSIM is the Gaussian-window SSIM of Wang et al. 2004 exactly as scikit-image computes it with
``gaussian_weights=True, sigma=1.5, use_sample_covariance=False`` (window radius 5 — scipy's
``truncate=3.5`` — K1=0.01, K2=0.03, borders of width 5 left out of the mean, channels
averaged). It is written here in torch (not called from scikit-image) so that a batch of N
images is one vectorised call: the 5 local moments of every image and channel are filtered by
one separable depthwise convolution. Only "valid" filter outputs are used, which are exactly
the pixels scikit-image keeps after its border crop, so no padding mode is involved.

Precision: by default the moments are filtered in float32 after subtracting each image's mean
(which removes most of the cancellation in E[x²] − E[x]²); the result matches scikit-image's
float64 to ~1e-7. ``precise=True`` computes everything in float64 (slower).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from genimg.metrics.arrays import intra_op_threads, match_pair, min_side_check, resolve_range

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # int(3.5 * 1.5 + 0.5): scikit-image / scipy's truncate=3.5
K1, K2 = 0.01, 0.03
# Wang, Simoncelli & Bovik 2003, "Multi-scale structural similarity for image quality assessment".
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
# Moments of one chunk are kept under this many bytes: big batches go in cache-sized chunks
# (measured: 1-4 images of 256x256 per chunk ran ~2.5x faster per image than 16 at once).
_CHUNK_BYTES = 32 * 2**20


def _is_batch(x: Any) -> bool:
    return isinstance(x, (list, tuple)) or (hasattr(x, "ndim") and x.ndim == 4)


def _out(values: np.ndarray, batched: bool) -> float | np.ndarray:
    return values if batched else float(values[0])


def _mean_sq_err(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image mean squared difference, float64; exact integer arithmetic for 8/16-bit."""
    if a.dtype.kind == "u" and b.dtype.kind == "u" and max(a.itemsize, b.itemsize) <= 2:
        diff = a.astype(np.int32) - b.astype(np.int32)
        return np.einsum("nhwc,nhwc->n", diff, diff, dtype=np.int64) / float(np.prod(a.shape[1:]))
    diff = a.astype(np.float64) - b.astype(np.float64)
    return np.mean(diff * diff, axis=(1, 2, 3))


def mse(image: Any, reference: Any, *, resize_to_match: bool = False) -> float | np.ndarray:
    """Mean squared error in the images' own units (uint8: 0..255²), like skimage's.

    Takes an image (or batch) and its reference; returns a float (or one per image).
    Raises GenimgError on size/channel mismatch or empty input.
    """
    a, b = match_pair(image, reference, resize_to_match=resize_to_match)
    return _out(_mean_sq_err(a, b), _is_batch(image))


def psnr(image: Any, reference: Any, *, data_range: float | None = None,
         resize_to_match: bool = False) -> float | np.ndarray:
    """Peak signal-to-noise ratio in dB: 10·log10(data_range² / MSE); identical images → inf.

    ``data_range`` defaults from the dtype (uint8 255, uint16 65535, float 1.0).
    Returns a float (or one per image). Raises GenimgError on mismatch or bad range.
    """
    a, b = match_pair(image, reference, resize_to_match=resize_to_match)
    peak = resolve_range(a, b, data_range=data_range)
    err = _mean_sq_err(a, b)
    with np.errstate(divide="ignore"):
        values = np.where(err == 0, np.inf, 10.0 * np.log10(peak * peak / np.maximum(err, 1e-300)))
    return _out(values, _is_batch(image))


def gaussian_window(dtype: torch.dtype = torch.float64, sigma: float = SSIM_SIGMA, radius: int = SSIM_RADIUS) -> torch.Tensor:
    """The normalised 1-D Gaussian (2·radius+1 taps) that scipy's gaussian_filter uses."""
    x = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return (g / g.sum()).to(dtype)


def _filter_valid(stack: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of (N, K, H, W), 'valid' part only → (N, K, H-2r, W-2r)."""
    n, k, h, w = stack.shape
    taps = g.numel()
    if stack.dtype == torch.float32:
        # oneDNN's depthwise convolution, one 1-D pass per axis. A single 11x11 pass ran as fast
        # single-threaded but sums 121 float32 terms instead of 22: 4x the error vs skimage.
        out = F.conv2d(stack, g.view(1, 1, taps, 1).expand(k, 1, taps, 1).contiguous(), groups=k)
        return F.conv2d(out, g.view(1, 1, 1, taps).expand(k, 1, 1, taps).contiguous(), groups=k)
    # float64 has no fast depthwise kernel on the CPU; banded matrices make it two BLAS calls.
    rows = torch.zeros(h - taps + 1, h, dtype=stack.dtype)
    cols = torch.zeros(w - taps + 1, w, dtype=stack.dtype)
    for i in range(h - taps + 1):
        rows[i, i:i + taps] = g
    for i in range(w - taps + 1):
        cols[i, i:i + taps] = g
    return rows @ stack @ cols.T


def _ssim_terms(x: torch.Tensor, y: torch.Tensor, peak: float, g: torch.Tensor,
                integer_values: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Per (image, channel) means of the SSIM map and of its contrast-structure part.

    x, y: (N, C, H, W) in the compute dtype. Returns two float64 tensors (N, C).
    """
    n, c, h, w = x.shape
    # Subtracting one constant per image and channel leaves variances and covariances as they
    # are but makes the float32 sums of squares far smaller (less cancellation).
    centre = 0.5 * (x.mean(dim=(2, 3), keepdim=True) + y.mean(dim=(2, 3), keepdim=True))
    if integer_values:  # an integer centre keeps 8-bit values and their products exact in float32
        centre = centre.round()
    xc, yc = x - centre, y - centre
    stack = torch.cat([xc, yc, xc * xc, yc * yc, xc * yc], dim=1)
    moments = _filter_valid(stack, g).view(n, 5, c, h - g.numel() + 1, w - g.numel() + 1)
    mx, my, mxx, myy, mxy = moments.unbind(1)
    vx = mxx - mx * mx
    vy = myy - my * my
    vxy = mxy - mx * my
    mx = mx + centre
    my = my + centre
    c1 = (K1 * peak) ** 2
    c2 = (K2 * peak) ** 2
    cs_map = (2 * vxy + c2) / (vx + vy + c2)
    ssim_map = (2 * mx * my + c1) / (mx * mx + my * my + c1) * cs_map
    return ssim_map.double().mean(dim=(2, 3)), cs_map.double().mean(dim=(2, 3))


def _to_tensor(batch: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    batch = np.ascontiguousarray(batch)
    if not batch.flags.writeable:  # torch warns on read-only memory (PIL-backed arrays)
        batch = batch.copy()
    return torch.from_numpy(batch).permute(0, 3, 1, 2).to(dtype)


def _chunk(h: int, w: int, c: int, precise: bool) -> int:
    """Images per chunk: the 5 moments and their filtered copy stay under _CHUNK_BYTES."""
    return max(1, _CHUNK_BYTES // (h * w * c * 5 * 2 * (8 if precise else 4)))


def ssim(image: Any, reference: Any, *, data_range: float | None = None, precise: bool = False,
         resize_to_match: bool = False, threads: int | None = -1) -> float | np.ndarray:
    """Structural similarity (Gaussian σ=1.5, K1=0.01, K2=0.03), equal to scikit-image's.

    Takes an image (or batch) and reference; images need at least 11 pixels per side.
    ``threads``: torch intra-op threads for this call (-1: GENIMG_METRICS_THREADS, default 1; None: torch's).
    Returns the mean SSIM (channels averaged) as a float, or one per image for a batch.
    Raises GenimgError on mismatch, tiny images or a bad range.
    """
    a, b = match_pair(image, reference, resize_to_match=resize_to_match)
    peak = resolve_range(a, b, data_range=data_range)
    min_side_check(a, 2 * SSIM_RADIUS + 1, "SSIM")
    dtype = torch.float64 if precise else torch.float32
    g = gaussian_window(dtype)
    n, h, w, c = a.shape
    integer_values = a.dtype.kind in "ui" and b.dtype.kind in "ui"
    values = np.empty(n, dtype=np.float64)
    step = _chunk(h, w, c, precise)
    with torch.inference_mode(), intra_op_threads(threads):
        for start in range(0, n, step):
            s, _ = _ssim_terms(_to_tensor(a[start:start + step], dtype), _to_tensor(b[start:start + step], dtype),
                               peak, g, integer_values)
            values[start:start + step] = s.mean(dim=1).numpy()
    return _out(values, _is_batch(image))


def _downsample2(x: torch.Tensor) -> torch.Tensor:
    """2x2 mean, as Wang's msssim.m (imfilter(ones(2)/4, 'symmetric') then every 2nd pixel):
    an odd last row/column is averaged with itself."""
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
    return F.avg_pool2d(x, 2)


def ms_ssim_min_side(scales: int = len(MS_SSIM_WEIGHTS)) -> int:
    """Smallest side for which the coarsest scale still holds one 11x11 window."""
    need = 2 * SSIM_RADIUS + 1
    side = need
    for _ in range(scales - 1):
        side = 2 * side - 1  # ceil(side / 2) >= need
    return side


def ms_ssim(image: Any, reference: Any, *, data_range: float | None = None, precise: bool = False,
            weights: tuple[float, ...] = MS_SSIM_WEIGHTS, resize_to_match: bool = False,
            threads: int | None = -1) -> float | np.ndarray:
    """Multi-scale SSIM (Wang et al. 2003): 5 scales, weights 0.0448 0.2856 0.3001 0.2363 0.1333.

    MS-SSIM = SSIM_M^w_M · Π_{j<M} CS_j^w_j per channel (negative terms clamped to 0, as
    pytorch-msssim does), channels averaged. Images need at least 161 pixels per side.
    Returns a float, or one per image for a batch. Raises GenimgError on mismatch or tiny images.
    """
    a, b = match_pair(image, reference, resize_to_match=resize_to_match)
    peak = resolve_range(a, b, data_range=data_range)
    min_side_check(a, ms_ssim_min_side(len(weights)), f"MS-SSIM ({len(weights)} scales)")
    dtype = torch.float64 if precise else torch.float32
    g = gaussian_window(dtype)
    w_t = torch.tensor(weights, dtype=torch.float64)
    n, h, w, c = a.shape
    integer_values = a.dtype.kind in "ui" and b.dtype.kind in "ui"
    values = np.empty(n, dtype=np.float64)
    step = _chunk(h, w, c, precise)
    with torch.inference_mode(), intra_op_threads(threads):
        for start in range(0, n, step):
            x = _to_tensor(a[start:start + step], dtype)
            y = _to_tensor(b[start:start + step], dtype)
            terms = []
            for scale in range(len(weights)):
                s, cs = _ssim_terms(x, y, peak, g, integer_values and scale == 0)
                terms.append(s if scale == len(weights) - 1 else cs)
                if scale < len(weights) - 1:
                    x, y = _downsample2(x), _downsample2(y)
            stacked = torch.stack(terms, dim=-1).clamp_min(0)  # (N, C, scales)
            values[start:start + step] = torch.prod(stacked ** w_t, dim=-1).mean(dim=1).numpy()
    return _out(values, _is_batch(image))


def psnr_text(value: float) -> str:
    """'∞' for identical images, else '32.41 dB'."""
    return "∞" if math.isinf(value) else f"{value:.2f} dB"

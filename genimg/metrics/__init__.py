"""Image metrics as pure functions (numpy / torch in, floats out), batched where it matters.

Full-reference: :func:`mse`, :func:`psnr`, :func:`ssim`, :func:`ms_ssim` (equal to scikit-image /
Wang et al.), :func:`effnet_distance` ("EffNetLite0 feature distance"), :func:`lpips` (needs its
weights). No-reference: :func:`brisque`, :func:`niqe`, :func:`sharpness`, :func:`colourfulness`,
:func:`entropy`. Sets: :func:`frechet_distance`, :func:`kid` on any features; :func:`fd_effnet`,
:func:`kid_effnet` on images (named FD-EffNetLite0 / KID-EffNetLite0: not Inception FID/KID);
:func:`diversity`. See docs/metrics.md.
"""

from genimg.metrics.diversity import DiversityResult, diversity, diversity_from_features
from genimg.metrics.full_reference import ms_ssim, mse, psnr, ssim
from genimg.metrics.no_reference import brisque, colourfulness, entropy, niqe, sharpness
from genimg.metrics.perceptual import effnet_distance, lpips
from genimg.metrics.set_level import (SetMetricResult, fd_effnet, fd_result, frechet_distance, kid, kid_effnet,
                                      kid_result)

colorfulness = colourfulness

__all__ = ["mse", "psnr", "ssim", "ms_ssim", "effnet_distance", "lpips", "brisque", "niqe", "sharpness",
           "colourfulness", "colorfulness", "entropy", "frechet_distance", "kid", "fd_result", "kid_result",
           "fd_effnet", "kid_effnet", "SetMetricResult", "diversity", "diversity_from_features", "DiversityResult"]

"""LR consistency: how far a super-resolved image contradicts the LR image it was made from.

    lr_psnr(SR, LR, s) = PSNR( imresize(SR, 1/s), LR )        (dB, peak = the dtype's maximum)

``imresize`` is the MATLAB-style bicubic of the data preparation (:mod:`medsr_se.utils.bicubic`), applied in
float64 and not rounded, so the HR image itself, from which LR was made by the same resize and then rounded, scores
at the rounding limit 10·log10(12·peak²) ≈ 58.9 dB (uniform rounding error, variance 1/12 grey level²); any output
whose detail is not in the measurement (a GAN's invented texture, noise, blur) scores lower. Images are (H, W) or
(H, W, C), uint8 or uint16; SR is s times LR in each dimension.
"""

from __future__ import annotations

import numpy as np
from basicsr.utils.matlab_functions import imresize


def rounding_limit(dtype: np.dtype) -> float:
    """The score of an exact image: 10·log10(12·peak²) dB."""
    return float(10 * np.log10(12.0 * float(np.iinfo(dtype).max) ** 2))


def lr_psnr(sr: np.ndarray, lr: np.ndarray, scale: int) -> float:
    """PSNR (dB) of ``sr`` downscaled by ``scale`` (MATLAB bicubic, float) against ``lr`` (module docstring)."""
    if sr.shape[:2] != (lr.shape[0] * scale, lr.shape[1] * scale):
        raise ValueError(f"SR {sr.shape[:2]} is not {scale} x LR {lr.shape[:2]}")
    down = imresize(sr.astype(np.float64), 1 / scale)
    mse = float(np.mean((down - lr.astype(np.float64)) ** 2))
    peak = float(np.iinfo(lr.dtype).max)
    return float("inf") if mse == 0 else float(10 * np.log10(peak * peak / mse))

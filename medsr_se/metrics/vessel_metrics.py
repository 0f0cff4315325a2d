"""Vessel fidelity: do the retinal vessels of the HR photograph survive super-resolution, and are none invented?

PSNR and SSIM average over all pixels; the fine vessels and microaneurysms that are the reason to super-resolve a
fundus photograph cover about a tenth of it. A GAN can raise PSNR and still erase or invent vessels. This metric
compares *vessel maps* of SR and HR:

    g_X   = green channel of X / max_value                 (H, W)  vessels have the most contrast in green
    v_X   = Frangi vesselness of g_X, dark ridges,         (H, W)  scikit-image's ``frangi``
            sigmas (1.5, 2.5, 3.5) px, beta 0.5, gamma 0.05 (fixed, so SR and HR go through the same filter)
    F     = field of view of HR (:func:`fov_mask`), eroded by 8 px more (the disc's rim is an edge, not a vessel)
    t     = 90th percentile of v_HR over F                  the top 10 % of the FOV counts as vessel in HR
    M_X   = (v_X > t) ∩ F                                  binary vessel maps, the same threshold for both
    vessel_f1 = 2 |M_SR ∩ M_HR| / (|M_SR| + |M_HR|)        Dice / F1 in [0, 1]; 1 = the same vessel map

Choices and why: the threshold comes from HR only, so an SR image cannot lower the bar by being blurry (blur weakens
its responses and it loses vessels) and noise or GAN texture that looks like vessels counts against it (false
positives). Sigmas 1.5-3.5 px cover the capillaries and small vessels of a 700-1400 px photograph (the wide vessels
respond at their edges too); sigma 1 would mostly measure pixel noise. The value is a relative measure of agreement
with the HR's vessel map, not a clinical segmentation. Gray images (CT, MRI) use their only channel; the metric is
defined for them but means "ridge structures kept", not vessels.

Registered in BasicSR's METRIC_REGISTRY; in an option file's ``val.metrics``:

    vessel_f1: {type: calculate_vessel_f1, crop_border: 4}

Inputs are BasicSR's: ``img`` (SR) and ``img2`` (HR), HWC BGR (or HW gray), range [0, max_value].
"""

from __future__ import annotations

import numpy as np
from basicsr.metrics.metric_util import reorder_image
from skimage.filters import frangi

from medsr_se.metrics.fov_metrics import fov_mask

SIGMAS = (1.5, 2.5, 3.5)
GAMMA = 0.05
VESSEL_SHARE = 0.10
RIM_ERODE = 8


def green_channel(img: np.ndarray, max_value: float) -> np.ndarray:
    """(H, W) float64 in [0, 1]: the green channel of a BGR image, or the image itself if gray."""
    channel = img[..., 1] if img.ndim == 3 and img.shape[2] >= 3 else img.reshape(img.shape[:2])
    return channel.astype(np.float64) / max_value


def vesselness(img: np.ndarray, max_value: float = 255.0) -> np.ndarray:
    """Frangi vesselness (dark ridges) of the green channel, (H, W) float64 >= 0 (module docstring)."""
    return frangi(green_channel(img, max_value), sigmas=SIGMAS, black_ridges=True, gamma=GAMMA)


def vessel_maps(sr: np.ndarray, hr: np.ndarray, max_value: float = 255.0) -> tuple[np.ndarray, np.ndarray]:
    """Binary (H, W) vessel maps (M_SR, M_HR) at the HR-derived threshold, inside the HR's field of view."""
    hr_8bit = hr if max_value == 255.0 else (hr.astype(np.float64) * (255.0 / max_value))
    field = fov_mask(hr_8bit, erode=RIM_ERODE)
    if not field.any():
        raise ValueError("the field-of-view mask is empty (is the HR image black?)")
    response_hr = vesselness(hr, max_value)
    threshold = np.quantile(response_hr[field], 1.0 - VESSEL_SHARE)
    return (vesselness(sr, max_value) > threshold) & field, (response_hr > threshold) & field


def calculate_vessel_f1(img: np.ndarray, img2: np.ndarray, crop_border: int, input_order: str = "HWC",
                        max_value: float = 255.0, **kwargs) -> float:
    """vessel_f1 of SR ``img`` against HR ``img2`` (module docstring): 1.0 for identical images."""
    if img.shape != img2.shape:
        raise ValueError(f"image shapes differ: {img.shape} vs {img2.shape}")
    sr = reorder_image(img, input_order=input_order)
    hr = reorder_image(img2, input_order=input_order)
    if crop_border:
        sr = sr[crop_border:-crop_border, crop_border:-crop_border]
        hr = hr[crop_border:-crop_border, crop_border:-crop_border]
    map_sr, map_hr = vessel_maps(sr, hr, max_value)
    total = int(map_sr.sum()) + int(map_hr.sum())
    return 1.0 if total == 0 else float(2 * np.count_nonzero(map_sr & map_hr) / total)

"""PSNR and SSIM inside the field of view (FOV) of a fundus photograph, registered in BasicSR's METRIC_REGISTRY.

A fundus photograph is a bright disc on a black background. The background is trivially easy to super-resolve
(raising whole-image PSNR) and the disc's sharp rim is where interpolation errs most (lowering it): either way the
whole-image number is not about the retina. The FOV mask is derived from the HR image only:

    mask = largest connected component of (max over channels of HR > threshold), opened (removes speckle),
           holes filled, eroded by ``erode`` pixels (the disc's rim is excluded)

An image without a dark border (a crop inside the FOV, a CT slice) gets a full mask, and then the metrics equal
BasicSR's ``calculate_psnr`` / ``calculate_ssim``. Use them in option files next to BasicSR's own:

    metrics:
      psnr_fov: {type: calculate_psnr_fov, crop_border: 4, test_y_channel: false}
      ssim_fov: {type: calculate_ssim_fov, crop_border: 4, test_y_channel: false}

Inputs are BasicSR's: ``img`` (SR) and ``img2`` (HR), HWC BGR (or HW gray), range [0, 255].
"""

from __future__ import annotations

import cv2
import numpy as np
from basicsr.metrics.metric_util import reorder_image, to_y_channel

# BasicSR's SSIM (basicsr.metrics.psnr_ssim._ssim): constants, Gaussian window, 'valid' part of the filtering
SSIM_C1 = (0.01 * 255) ** 2
SSIM_C2 = (0.03 * 255) ** 2
SSIM_WINDOW, SSIM_SIGMA = 11, 1.5
SSIM_VALID_MARGIN = SSIM_WINDOW // 2


def fov_mask(hr: np.ndarray, threshold: float = 20.0, erode: int = 3) -> np.ndarray:
    """Boolean (H, W) field-of-view mask of an HR fundus image (module docstring)."""
    brightness = hr.max(axis=2) if hr.ndim == 3 else hr
    if np.issubdtype(brightness.dtype, np.floating) and brightness.max() <= 1.0:
        brightness = brightness * 255.0
    mask = (brightness > threshold).astype(np.uint8)
    if mask.all():
        return mask.astype(bool)
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if count <= 1:
        return np.zeros(mask.shape, bool)
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    mask = (labels == largest).astype(np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = np.zeros_like(mask)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    if erode > 0:
        filled = cv2.erode(filled, np.ones((2 * erode + 1, 2 * erode + 1), np.uint8))
    return filled.astype(bool)


def _prepare(img: np.ndarray, img2: np.ndarray, crop_border: int, input_order: str, test_y_channel: bool,
             threshold: float, erode: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sr, hr, mask) in float64 HWC, border-cropped, Y channel if asked; the mask comes from the HR."""
    if img.shape != img2.shape:
        raise ValueError(f"image shapes differ: {img.shape} vs {img2.shape}")
    sr = reorder_image(img, input_order=input_order)
    hr = reorder_image(img2, input_order=input_order)
    mask = fov_mask(hr, threshold, erode)
    if crop_border:
        sr = sr[crop_border:-crop_border, crop_border:-crop_border]
        hr = hr[crop_border:-crop_border, crop_border:-crop_border]
        mask = mask[crop_border:-crop_border, crop_border:-crop_border]
    if test_y_channel:
        sr, hr = to_y_channel(sr), to_y_channel(hr)
    return sr.astype(np.float64), hr.astype(np.float64), mask


def calculate_psnr_fov(img: np.ndarray, img2: np.ndarray, crop_border: int, input_order: str = "HWC",
                       test_y_channel: bool = False, threshold: float = 20.0, erode: int = 3, **kwargs) -> float:
    """PSNR = 10 log10(255² / MSE) with the MSE over FOV pixels (all channels) only."""
    sr, hr, mask = _prepare(img, img2, crop_border, input_order, test_y_channel, threshold, erode)
    if not mask.any():
        raise ValueError("the field-of-view mask is empty (is the HR image black?)")
    mse = np.mean((sr[mask] - hr[mask]) ** 2)
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0 * 255.0 / mse))


def ssim_map(img: np.ndarray, img2: np.ndarray) -> np.ndarray:
    """SSIM map of two (H, W) float64 images in [0, 255] (Wang et al. 2004), valid part only: (H - 10, W - 10).

    The same computation as BasicSR's ``_ssim`` (its constants, 11x11 sigma 1.5 Gaussian window, valid part),
    which returns only the map's mean: the FOV SSIM needs the map itself, to average only the windows that lie
    wholly inside the field of view (:func:`calculate_ssim_fov`). ``ssim_map(a, b).mean()`` equals
    ``_ssim(a, b)`` (tested)."""
    kernel = cv2.getGaussianKernel(SSIM_WINDOW, SSIM_SIGMA)
    window = np.outer(kernel, kernel.transpose())
    m = SSIM_VALID_MARGIN

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.filter2D(x, -1, window)[m:-m, m:-m]

    mu1, mu2 = blur(img), blur(img2)
    sigma1_sq = blur(img ** 2) - mu1 ** 2
    sigma2_sq = blur(img2 ** 2) - mu2 ** 2
    sigma12 = blur(img * img2) - mu1 * mu2
    return ((2 * mu1 * mu2 + SSIM_C1) * (2 * sigma12 + SSIM_C2)) / (
        (mu1 ** 2 + mu2 ** 2 + SSIM_C1) * (sigma1_sq + sigma2_sq + SSIM_C2))


def calculate_ssim_fov(img: np.ndarray, img2: np.ndarray, crop_border: int, input_order: str = "HWC",
                       test_y_channel: bool = False, threshold: float = 20.0, erode: int = 3, **kwargs) -> float:
    """Mean of the SSIM map over the windows (11 x 11) that lie wholly inside the FOV, averaged over channels."""
    sr, hr, mask = _prepare(img, img2, crop_border, input_order, test_y_channel, threshold, erode)
    # only windows lying wholly inside the FOV count, so pixels outside it cannot change the value
    window = 2 * SSIM_VALID_MARGIN + 1
    inside = cv2.erode(mask.astype(np.uint8), np.ones((window, window), np.uint8)).astype(bool)
    valid = inside[SSIM_VALID_MARGIN:-SSIM_VALID_MARGIN, SSIM_VALID_MARGIN:-SSIM_VALID_MARGIN]
    if not valid.any():
        raise ValueError("the field-of-view mask is empty (is the HR image black?)")
    if sr.ndim == 2:
        sr, hr = sr[..., None], hr[..., None]
    return float(np.mean([ssim_map(sr[..., c], hr[..., c])[valid].mean() for c in range(sr.shape[2])]))


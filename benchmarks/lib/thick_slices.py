"""Thick slices simulated from an isotropic volume exactly as medsr-selfsr models them, and what is measured on a
through-plane result (``python -m benchmarks.throughplane``).

Along one axis of an isotropic ground truth of n = r·N voxels (spacing d mm), thick slice j is the truth blurred by a
Gaussian slice profile of FWHM f pixels, sampled at voxel r·j + (r − 1)/2 (:func:`medsr_se.data.degradations.degrade`
with :func:`~medsr_se.data.degradations.gaussian_profile`, the degradation the method assumes):

    thick[j] = sum_t w(t − c_j) · truth[clip(t)] / sum_t w(t − c_j),   c_j = r·j + (r − 1)/2,
    w(t) = exp(−t² / 2σ²),  σ = f / 2.3548,     f = r ("nogap": thickness = spacing), 0.6·r ("gap") or 1.2·r ("overlap")

Rician noise of level s (a fraction of the truth's mean inside the head): |thick + σ_n·(n₁ + i·n₂)|, σ_n = s · mean,
n₁, n₂ ~ N(0, 1) (seeded). Metrics inside the head (truth > 10 % of its maximum), data range = the truth's range:
PSNR, SSIM (scikit-image, 3-D, window 7, its map averaged over the head), and LR consistency: the result degraded
with the same profile and subsampling, against the input slices (PSNR over the head on the thick grid).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from medsr_se.data.degradations import degrade, gaussian_profile

FOREGROUND = 0.10  # the head: truth above this fraction of its maximum
# slice thickness (the profile's FWHM) / slice spacing; "overlap" (slices slightly thicker than their spacing, as a
# CT reconstruction may be) is not in the default set: it measures what the estimate's rule for touching slices costs
PROFILES = {"nogap": 1.0, "gap": 0.6, "overlap": 1.2}
SSIM_WINDOW = 7


def fwhm_pixels(profile: str, r: int) -> float:
    """The slice profile's FWHM in ground-truth voxels: ``PROFILES[profile]`` x the spacing (r voxels), to 6 decimals
    (0.6 x 6 = 3.6, not 3.5999999999999996, in the report and on medsr-selfsr's command line)."""
    return round(PROFILES[profile] * r, 6)


def along(volume: np.ndarray, axis: int, rows: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``rows`` (an (n, m) -> (n', m) function on rows) applied along ``axis`` of a 3-D volume."""
    moved = np.moveaxis(volume, axis, 0)
    flat = rows(moved.reshape(moved.shape[0], -1))
    return np.moveaxis(flat.reshape(flat.shape[0], *moved.shape[1:]), 0, axis)


def cut(volume: np.ndarray, axis: int, r: int) -> np.ndarray:
    """The volume with its first r·floor(n / r) voxels along ``axis`` (the rest dropped)."""
    index = [slice(None)] * 3
    index[axis] = slice(0, volume.shape[axis] // r * r)
    return volume[tuple(index)]


def simulate(truth: np.ndarray, axis: int, r: int, fwhm: float) -> np.ndarray:
    """(…, r·N, …) -> (…, N, …) along ``axis``: medsr-selfsr's degradation (module docstring), float32."""
    if truth.shape[axis] % r:
        raise ValueError(f"simulate: {truth.shape[axis]} voxels along axis {axis} is not a multiple of r = {r}")
    profile = gaussian_profile(fwhm)
    return along(np.asarray(truth, np.float32), axis, lambda rows: degrade(rows, profile, r))


def thick_affine(affine: np.ndarray, axis: int, r: int) -> np.ndarray:
    """The thick volume's affine: column ``axis`` times r (slice spacing r·d), origin at truth voxel (r − 1)/2."""
    result = np.array(affine, np.float64)
    result[:3, axis] *= r
    offset = np.zeros(4)
    offset[axis], offset[3] = (r - 1) / 2, 1.0
    result[:, 3] = np.asarray(affine, np.float64) @ offset
    return result


def rician(values: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """|values + sigma·(n₁ + i·n₂)|, n₁, n₂ ~ N(0, 1) from ``numpy.random.default_rng(seed)``; float32."""
    rng = np.random.default_rng(seed)
    real = values + sigma * rng.standard_normal(values.shape)
    imaginary = sigma * rng.standard_normal(values.shape)
    return np.hypot(real, imaginary).astype(np.float32)


def interpolate(thick: np.ndarray, axis: int, r: int, order: int) -> np.ndarray:
    """r times the slices along ``axis`` by a spline of ``order`` (3: cubic B-spline, 1: linear) on the
    pixel-centre grid (``scipy.ndimage.zoom(grid_mode=True)``: output voxel r·j + (r − 1)/2 lies on input slice j,
    the simulation's convention); the other axes untouched."""
    from scipy import ndimage

    zoom = [1] * 3
    zoom[axis] = r
    return ndimage.zoom(thick, zoom, order=order, mode="nearest", grid_mode=True)


def head_mask(truth: np.ndarray) -> np.ndarray:
    return truth > FOREGROUND * truth.max()


def bounding_box(mask: np.ndarray, margin: int) -> list[tuple[int, int]]:
    """[(start, stop)] per axis of the smallest box holding ``mask``, widened by ``margin`` voxels (inside the
    volume)."""
    box = []
    for axis in range(mask.ndim):
        hits = np.flatnonzero(mask.any(axis=tuple(a for a in range(mask.ndim) if a != axis)))
        if hits.size == 0:
            raise ValueError("bounding_box: the mask is empty")
        box.append((max(0, int(hits[0]) - margin), min(mask.shape[axis], int(hits[-1]) + 1 + margin)))
    return box


def crop_affine(affine: np.ndarray, box: list[tuple[int, int]]) -> np.ndarray:
    """The affine of ``volume[box]``: origin moved to voxel (start₀, start₁, start₂)."""
    result = np.array(affine, np.float64)
    result[:, 3] = np.asarray(affine, np.float64) @ np.array([*(start for start, _ in box), 1.0])
    return result


def psnr(result: np.ndarray, reference: np.ndarray, mask: np.ndarray, data_range: float) -> float:
    """10·log10(range² / mean((result − reference)²)) over ``mask`` (scikit-image's PSNR of the masked voxels)."""
    from skimage.metrics import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(reference[mask].astype(np.float64), result[mask].astype(np.float64),
                                         data_range=data_range))


def ssim(result: np.ndarray, truth: np.ndarray, mask: np.ndarray, data_range: float) -> float:
    """The mean of scikit-image's 3-D SSIM map (window 7) over ``mask``."""
    from skimage.metrics import structural_similarity

    _, ssim_map = structural_similarity(truth.astype(np.float32), result.astype(np.float32), data_range=data_range,
                                        win_size=SSIM_WINDOW, full=True)
    return float(ssim_map[mask].mean())


def lr_consistency(result: np.ndarray, thick_input: np.ndarray, lr_mask: np.ndarray, axis: int, r: int,
                   fwhm: float, data_range: float) -> float:
    """PSNR of ``simulate(result)`` (the same profile and subsampling) against the input slices, over ``lr_mask``
    (the head on the thick grid)."""
    return psnr(simulate(result, axis, r, fwhm), thick_input, lr_mask, data_range)

"""LR consistency of a through-plane result: the one check a scan without ground truth allows. The result is degraded
again exactly as the thick slices are modelled (:func:`medsr_se.data.degradations.degrade` along the slice axis: the
slice profile, then every r-th sample at r·k + (r − 1)/2) and compared with the input's slices; the same is done for
cubic B-spline interpolation of the input, the floor the network should beat.

    LR-PSNR = 10·log10(range² / mean_M (D(result) − input)²)    dB;  RMSE = √mean_M (D(result) − input)²  (scan units)
    range   = max(input) − min(input)
    M       = the mask: input voxels > min + 10 % of range (head / body: 10 % of the maximum when the minimum is 0;
              above air for CT, whose minimum is about −1024 HU), or every voxel ("whole")
    cubic   = scipy.ndimage.zoom(input, r along the slice axis, order=3, mode="nearest", grid_mode=True): output
              voxel r·k + (r − 1)/2 on input slice k, as the sheet and ``benchmarks/throughplane.py`` make it

What it can show: a result that contradicts the measured slices (detail that is not in them, shifted edges, added
noise, a wrong intensity) scores lower; below cubic is a warning sign. What it cannot: that the detail between the
slices is right. Any result whose degraded copy matches the slices scores high, one that only interpolates them
included (cubic is such a result), and the check uses the same slice profile as the training, so a wrong profile
goes unseen. On a noisy scan the input's noise is in the reference, so a result that removes it scores lower.

    consistency = lr_consistency(scan.values, values, profile, r, axis)     LRConsistency: result, cubic (Agreement)
    consistency.result.psnr_db_mask, consistency.cubic.psnr_db_mask

The volume is processed in slabs along an in-plane axis (at most :data:`SLAB_VOXELS` voxels of the result at a time),
so a large CT costs little memory beyond the result itself; a 4-D volume is measured whole (all its 3-D volumes).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from medsr_se.data.degradations import SliceProfile, degrade

FOREGROUND = 0.10  # of the input's range above its minimum: the mask (head / body)
SLAB_VOXELS = 1 << 22  # voxels of the result per slab (4 Mi: some 16 MB of float32, a few times that while measured)
WHAT_IT_SHOWS = (
    "LR consistency: the result degraded again with the slice profile and the subsampling the training assumed, "
    "compared with the input's slices (PSNR in dB, peak = the input's max - min, and RMSE in the scan's units), "
    "inside the mask and over the whole volume, next to the same for cubic B-spline interpolation of the input. "
    "It can show a result that contradicts the measured slices (detail not in them, shifted edges, added noise, a "
    "wrong intensity): below cubic is a warning sign. It cannot show that the detail between the slices is right: "
    "any result whose degraded copy matches the slices scores high, one that merely interpolates or copies them "
    "included, and it uses the same slice profile as the training, so a wrong profile goes unseen. On a noisy scan "
    "the noise is in the reference: a result that removes it scores lower.")


@dataclass(frozen=True)
class Agreement:
    """How well one candidate's degraded copy matches the input slices: PSNR (dB; None when undefined: a constant
    input, no voxel in the mask, or an exact match) and RMSE (the scan's units; None for an empty mask), inside the
    mask and over every voxel."""

    psnr_db_mask: float | None
    psnr_db_whole: float | None
    rmse_mask: float | None
    rmse_whole: float | None


@dataclass(frozen=True)
class LRConsistency:
    """The result's and cubic B-spline's :class:`Agreement`, with what they were measured by: the PSNR's peak
    (``data_range``, the input's max − min), the mask's ``threshold`` (scan units), and the voxel counts of the
    input in the mask and in all."""

    result: Agreement
    cubic: Agreement
    data_range: float
    threshold: float
    mask_voxels: int
    voxels: int


def cubic_rows(thick: np.ndarray, r: int) -> np.ndarray:
    """(N, m) -> (r·N, m): cubic B-spline along the rows on the pixel-centre grid (module docstring), float32."""
    from scipy import ndimage

    return ndimage.zoom(np.asarray(thick, np.float32), (r, 1), order=3, mode="nearest", grid_mode=True)


def slabs(source: np.ndarray, result: np.ndarray, axis: int, r: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(input rows (N, m), result rows (r·N, m)) for slabs of the volume along its first in-plane axis: the slice
    axis first, every other voxel of the slab a column."""
    thick, fine = np.moveaxis(source, axis, 0), np.moveaxis(result, axis, 0)
    per_index = max(1, fine[0, 0].size * fine.shape[0])  # result voxels per index of the slab axis
    step = max(1, SLAB_VOXELS // per_index)
    for start in range(0, thick.shape[1], step):
        part = slice(start, start + step)
        yield (thick[:, part].reshape(thick.shape[0], -1), fine[:, part].reshape(fine.shape[0], -1))


def _agreement(squared_mask: float, count_mask: int, squared_all: float, count_all: int,
               data_range: float) -> Agreement:
    def rmse(squared: float, count: int) -> float | None:
        return math.sqrt(squared / count) if count else None

    def psnr(value: float | None) -> float | None:
        if value is None or value == 0 or data_range <= 0:
            return None
        return 20 * math.log10(data_range / value)

    mask, whole = rmse(squared_mask, count_mask), rmse(squared_all, count_all)
    return Agreement(psnr(mask), psnr(whole), mask, whole)


def lr_consistency(source: np.ndarray, result: np.ndarray, profile: SliceProfile, r: int,
                   axis: int) -> LRConsistency:
    """The LR consistency of ``result`` (r·N samples along ``axis``) against ``source`` (N), and of cubic
    B-spline interpolation of ``source`` (module docstring). ``ValueError`` when the shapes do not match (a bug)."""
    expected = list(source.shape)
    expected[axis] *= r
    if list(result.shape) != expected:
        raise ValueError(f"lr_consistency: a result of shape {tuple(result.shape)}; r = {r} along axis {axis} of "
                         f"{tuple(source.shape)} gives {tuple(expected)}")
    low, high = float(np.min(source)), float(np.max(source))
    data_range = high - low
    threshold = low + FOREGROUND * data_range
    sums = {"result": [0.0, 0.0], "cubic": [0.0, 0.0]}  # squared error inside the mask, over every voxel
    mask_voxels = 0
    for thick, fine in slabs(source, result, axis, r):
        thick = thick.astype(np.float64)
        mask = thick > threshold
        mask_voxels += int(mask.sum())
        for name, candidate in (("result", fine), ("cubic", cubic_rows(thick, r))):
            squared = (degrade(candidate, profile, r).astype(np.float64) - thick) ** 2
            sums[name][0] += float(squared[mask].sum())
            sums[name][1] += float(squared.sum())
    voxels = int(source.size)
    result_agreement, cubic_agreement = (
        _agreement(sums[name][0], mask_voxels, sums[name][1], voxels, data_range) for name in ("result", "cubic"))
    return LRConsistency(result_agreement, cubic_agreement, data_range, threshold, mask_voxels, voxels)

"""Data consistency for a through-plane result: the thin slices changed as little as possible so that the model of a
thick slice the network was trained on gives the acquired thick slices back exactly.

Along the slice axis every line of voxels (N thick slices y of the scan, r·N thin slices x of the result) is
modelled by the training degradation (:func:`medsr_se.data.degradations.degrade`: the slice profile, its boundary
rows repeated, every r-th sample at r·k + (r − 1)/2):

    y = A x            A: (N, r·N), column j = degrade(e_j, profile, r)   (built from the operator itself)

and x is replaced by the x' nearest to it (Euclidean, per line) with A x' = y:

    x' = x + A⁺ (y − A x)        A⁺ = Aᵀ (A Aᵀ)⁻¹: (r·N, N), when A has full row rank N

A⁺ is the pseudo-inverse, computed from A's SVD with the singular values under :data:`RCOND` of the largest dropped
(A's weights are float32, as ``blur_rows`` writes them: smaller singular values are below their rounding). For a
rank-deficient A (a profile far wider than the slice spacing, rows that nearly coincide) x' is then the minimum-norm
least-squares correction and A x' is y's projection onto A's range, not y; a warning says so, and another when A is
ill-conditioned (the correction then magnifies the thick slices' noise). x' − x lies in the range of Aᵀ, orthogonal
to A's null space: what the thick slices cannot see is left as the network made it.

The work is in float64 on the values in the scan's units (the network's float result, before a writer rounds it to
an integer type); the whole volume takes one SVD of A and, per block of lines, three products with A or A⁺: about
3·r·N multiply-adds per voxel of the scan. An array of 4 or more dimensions is corrected along ``axis`` in every
line likewise.

    fixed = make_consistent(thin, scan.values, axis, profile, r)    fixed.values: float64, thin's shape
    A = consistency_operator(profile, r, N)                         (N, r·N) float64
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from medsr_se.data.degradations import SliceProfile, degrade, gaussian_profile
from medsr_se.io.scans import SliceGeometry, ThroughPlaneError
from medsr_se.io.volumes import Volume

logger = logging.getLogger(__name__)

RCOND = 1e-7  # singular values of A under this fraction of the largest are dropped (A's weights are float32)
ILL_CONDITIONED = 100.0  # a condition number of A above this: the correction magnifies noise (a warning)
BLOCK_VALUES = 1 << 22  # thin values (float64: 32 MiB) corrected per matrix product


@dataclass(frozen=True)
class Consistency:
    """The corrected result and what the correction did.

    Attributes:
        values: x', float64, the shape of the thin result given.
        largest_correction: max |x' − x| (the scan's units).
        mismatch: max |A x' − y| over every line (float rounding when ``rank == slices``).
        rank: A's numerical rank (``slices`` when every thick slice is matched).
        slices: N, the thick slices per line.
        condition: A's largest / smallest singular value kept.
        input_range: max − min of the thick slices (for the correction's size relative to the data).
    """

    values: np.ndarray
    largest_correction: float
    mismatch: float
    rank: int
    slices: int
    condition: float
    input_range: float


def consistency_operator(profile: SliceProfile, r: int, slices: int) -> np.ndarray:
    """A: (``slices``, r·``slices``) float64, the training degradation as a matrix: column j is
    ``degrade(e_j, profile, r)`` of the j-th unit vector (every column at once: the identity's rows blurred)."""
    return degrade(np.eye(r * slices), profile, r).astype(np.float64)


def pseudo_inverse(operator: np.ndarray) -> tuple[np.ndarray, int, float]:
    """(A⁺: (r·N, N), A's numerical rank, its condition number over the singular values kept): A⁺ = V S⁻¹ Uᵀ over
    the singular values above :data:`RCOND` of the largest, = Aᵀ (A Aᵀ)⁻¹ when the rank is N."""
    left, singular, right = np.linalg.svd(operator, full_matrices=False)
    kept = singular > RCOND * singular[0]
    inverse = (right[kept].T / singular[kept]) @ left[:, kept].T
    return inverse, int(kept.sum()), float(singular[0] / singular[kept][-1])


def _check_shapes(thin: np.ndarray, thick: np.ndarray, axis: int, r: int) -> None:
    if thick.ndim < 3 or not 0 <= axis < 3:
        raise ThroughPlaneError(f"thick: shape {thick.shape} with axis={axis}: give a volume of 3 or more "
                                "dimensions and its slice axis 0, 1 or 2", parameter="axis")
    expected = list(thick.shape)
    expected[axis] *= r
    if list(thin.shape) != expected:
        raise ThroughPlaneError(f"thin: shape {thin.shape}; r = {r} times the thick slices {thick.shape} along "
                                f"axis {axis} is {tuple(expected)}", parameter="thin")
    for name, values in (("thick", thick), ("thin", thin)):
        if not np.isfinite(values).all():
            raise ThroughPlaneError(f"{name}: {np.count_nonzero(~np.isfinite(values))} NaN / ±inf value(s); data "
                                    "consistency needs finite values (each would spread along its whole line)",
                                    parameter=name)


def make_consistent(thin: np.ndarray, thick: np.ndarray, axis: int, profile: SliceProfile,
                    r: int) -> Consistency:
    """x' = x + A⁺ (y − A x) along ``axis`` (module docstring): ``thin`` x with r·N slices (the network's result),
    ``thick`` y with N (the scan's), both in the same units, ``profile`` the slice profile the training pairs were
    made with. :class:`ThroughPlaneError` for shapes that do not fit or NaN / ±inf values; warnings (logged) for a
    rank-deficient or ill-conditioned A."""
    thin, thick = np.asarray(thin), np.asarray(thick)
    _check_shapes(thin, thick, axis, r)
    slices = thick.shape[axis]
    operator = consistency_operator(profile, r, slices)
    inverse, rank, condition = pseudo_inverse(operator)
    _warn_about(operator, rank, condition, profile, r)
    result = np.empty(thin.shape, np.float64)
    lines_out, lines_in, measured = (np.moveaxis(a, axis, 0) for a in (result, thin, thick))  # views
    largest = mismatch = 0.0
    step = max(1, BLOCK_VALUES // max(1, lines_in[0, 0].size * r * slices))
    for start in range(0, lines_in.shape[1], step):
        block = slice(start, start + step)
        x = lines_in[:, block].astype(np.float64)
        y = measured[:, block].astype(np.float64)
        correction = np.tensordot(inverse, y - np.tensordot(operator, x, axes=1), axes=1)
        lines_out[:, block] = x + correction
        largest = max(largest, float(np.abs(correction).max()))
        mismatch = max(mismatch, float(np.abs(np.tensordot(operator, lines_out[:, block], axes=1) - y).max()))
    return Consistency(result, largest, mismatch, rank, slices, condition, float(np.ptp(thick)))


def _warn_about(operator: np.ndarray, rank: int, condition: float, profile: SliceProfile, r: int) -> None:
    slices = operator.shape[0]
    if rank < slices:
        logger.warning("data consistency: the slice profile (%s) at r = %d makes the %d thick slices of a line "
                       "depend on each other (rank %d): the result matches them in least squares only",
                       profile.name, r, slices, rank)
    if condition > ILL_CONDITIONED:
        logger.warning("data consistency: the slice profile (%s) is wide for r = %d (condition number %.3g): the "
                       "correction can magnify the thick slices' noise that much; compare with data_consistency off",
                       profile.name, r, condition)


def scan_profile(geometry: SliceGeometry, kernel: SliceProfile | None = None) -> SliceProfile:
    """The slice profile a scan's training pairs are made with (as
    :class:`~medsr_se.data.through_plane_dataset.ThroughPlaneVolumeDataset`): ``kernel`` (a user's) or the Gaussian
    of FWHM = the slice thickness in in-plane pixels."""
    return kernel if kernel is not None else gaussian_profile(geometry.fwhm_pixels)


def stored_dtype(volume: Volume) -> np.dtype:
    """The type a result of ``volume``'s kind is written in: the NIfTI's on-disk type, a DICOM series' pixel type."""
    if volume.kind == "nifti":
        return np.dtype(volume.source.header.get_data_dtype())
    from pydicom.pixels.utils import pixel_dtype

    return np.dtype(pixel_dtype(volume.source[0]))


def consistency_note(fixed: Consistency, r: int, written: np.dtype | None = None,
                     resampled_to: float | None = None) -> str:
    """One line: that the correction was applied, its largest size, and what makes the written result's match
    approximate: ``written`` an integer type (rounding), ``resampled_to`` a slice spacing (mm) the r·N corrected
    slices are then resampled to."""
    share = f" ({fixed.largest_correction / fixed.input_range:.2%} of the scan's range)" if fixed.input_range else ""
    matched = (f"give the scan's {fixed.slices} slices back" if fixed.rank == fixed.slices
               else f"match the scan's {fixed.slices} slices in least squares only (rank {fixed.rank})")
    note = (f"data consistency applied: the result changed by the least amount for which its slices, degraded as "
            f"the training pairs are (the slice profile, one slice in {r} kept), {matched}; largest correction "
            f"{fixed.largest_correction:.4g}{share}")
    if resampled_to is not None:
        note += (f"; the slices written are these resampled to {resampled_to:g} mm, where the match is "
                 "approximate")
    if written is not None and np.dtype(written).kind in "iub":
        note += f"; written as {np.dtype(written).name}, rounding to its steps makes that match approximate"
    return note

"""The network's r·N slices resampled onto the result's grid (:class:`~medsr_se.io.slice_grid.SliceGrid`): a cubic
B-spline along the slice axis alone, every other axis untouched.

    values = to_grid(network_values, axis, grid)     M slices of spacing t; the same array when not resampled

The interpolating cubic B-spline: coefficients c from the samples by scipy.ndimage's prefilter
(``scipy.ndimage.spline_filter1d``, order 3), then at fractional index x = m + f (m = ⌊x⌋)

    value(x) = c[m−1]·(1 − f)³/6 + c[m]·(4 − 6f² + 3f³)/6 + c[m+1]·(1 + 3f + 3f² − 3f³)/6 + c[m+2]·f³/6

(the 4-tap evaluation ``scipy.ndimage.map_coordinates`` does with ``order=3``, here along one axis only). Beyond
each end the samples are continued by point reflection (2·a_0 − a_k, :data:`EDGE_SAMPLES` of them, then scipy's
mirror), so a linear ramp along the slice axis is reproduced to its ends. Every result slice lies between the
network's first and last slice (:meth:`~medsr_se.io.slice_grid.SliceGrid.network_indices`), and the values are
clipped to the range of those they are resampled from (a cubic's overshoot makes no value the network did not).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from medsr_se.io.slice_grid import SliceGrid

__all__ = ["BLOCK", "EDGE_SAMPLES", "bspline_weights", "resample_along", "to_grid"]

EDGE_SAMPLES = 16  # point-reflected samples beyond each end: the mirror beyond them reaches in by 0.268^16 ≈ 7e-10
BLOCK = 1 << 22  # values resampled at a time (float64: 32 MiB)


def bspline_weights(fraction: np.ndarray) -> np.ndarray:
    """The cubic B-spline's weights of coefficients m−1, m, m+1, m+2 at x = m + ``fraction``, shape (4, len)."""
    f = np.asarray(fraction, np.float64)
    return np.stack([(1 - f) ** 3, 4 - 6 * f ** 2 + 3 * f ** 3, 1 + 3 * f + 3 * f ** 2 - 3 * f ** 3, f ** 3]) / 6


def resample_along(values: np.ndarray, axis: int, positions: np.ndarray) -> np.ndarray:
    """``values`` (any number of dimensions) at the fractional indices ``positions`` (within [0, n − 1], n =
    ``values.shape[axis]``) along ``axis``: the cubic B-spline of the module docstring, float32, clipped to the
    range of ``values``; len(positions) samples along ``axis``. Worked in float64 blocks of :data:`BLOCK` values."""
    positions = np.asarray(positions, np.float64)
    count = values.shape[axis]
    if positions.size and (positions.min() < 0 or positions.max() > count - 1):
        raise ValueError(f"positions {positions.min():g} .. {positions.max():g} outside 0 .. {count - 1}")
    moved = np.moveaxis(values, axis, 0)
    columns = moved.reshape(count, -1)  # (n, every line along the slice axis)
    shifted = positions + EDGE_SAMPLES
    first = np.floor(shifted).astype(np.intp)
    weights = bspline_weights(shifted - first)[:, :, None]  # (4, len(positions), 1)
    result = np.empty((len(positions), columns.shape[1]), np.float32)
    step = max(1, BLOCK // (count + 2 * EDGE_SAMPLES))
    for start in range(0, columns.shape[1], step):
        extended = np.pad(columns[:, start:start + step].astype(np.float64), ((EDGE_SAMPLES, EDGE_SAMPLES), (0, 0)),
                          mode="reflect", reflect_type="odd")
        coefficients = ndimage.spline_filter1d(extended, order=3, axis=0, mode="mirror")
        result[:, start:start + step] = sum(coefficients[first - 1 + tap] * weights[tap] for tap in range(4))
    if values.size:
        np.clip(result, values.min(), values.max(), out=result)
    return np.ascontiguousarray(np.moveaxis(result.reshape((len(positions),) + moved.shape[1:]), 0, axis))


def to_grid(values: np.ndarray, axis: int, grid: SliceGrid) -> np.ndarray:
    """The network's result (``grid.network_scale`` · N slices along ``axis``; 3-D or more) on ``grid``'s M slices:
    ``values`` itself when ``grid.resampled`` is False, else :func:`resample_along` at
    :meth:`~medsr_se.io.slice_grid.SliceGrid.network_indices`."""
    expected = grid.network_scale * grid.input_count
    if values.shape[axis] != expected:
        raise ValueError(f"values have {values.shape[axis]} slices along axis {axis}, the grid's network {expected}")
    if not grid.resampled:
        return values
    return resample_along(values, axis, grid.network_indices())

"""The network's r·N slices resampled onto the target grid (medsr_se.inference.slice_resampling): a linear ramp in
mm along the slice axis is reproduced at the target positions (every slice axis, a 4-D volume too), the interior
agrees with scipy.ndimage.map_coordinates' cubic B-spline, nothing leaves the values' range, and the integer grid is
the network's array itself."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medsr_se import throughplane as tp
from medsr_se.inference.slice_resampling import resample_along, to_grid
from medsr_se.io.slice_grid import choose_grid


def ramp_volume(shape, axis: int, positions_mm: np.ndarray, slope: float = 3.0, offset: float = -40.0):
    """offset + slope · (mm along the slice axis) + a different constant per in-plane voxel."""
    others = np.indices([n for a, n in enumerate(shape) if a != axis]).sum(axis=0).astype(np.float64)
    moved = offset + slope * positions_mm[:, None, None] + 7.0 * others[None]
    return np.moveaxis(moved, 0, axis).astype(np.float32)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_a_linear_ramp_along_the_slice_axis_is_reproduced(axis):
    """0.9 mm pixels, 5 mm slices, N = 5: the network's 30 slices of 5/6 mm hold a ramp in mm; the 27 result
    slices hold the same ramp at c0 − D/2 + t/2 + k·t (the ends included: no edge effect)."""
    d_slice, t, n, c0 = 5.0, 0.9, 5, 2.0
    grid = choose_grid(tp.geometry_from_spacing(tuple(0.9 if a != axis else d_slice for a in range(3))), n, "scan")
    assert (grid.network_scale, grid.count, grid.spacing) == (6, 27, 0.9)
    network_mm = c0 - d_slice / 2 + (np.arange(6 * n) + 0.5) * d_slice / 6
    in_plane = (4, 3)
    shape = list(in_plane)
    shape.insert(axis, 6 * n)
    result = to_grid(ramp_volume(tuple(shape), axis, network_mm), axis, grid)
    target_mm = c0 - d_slice / 2 + t / 2 + t * np.arange(27)
    expected_shape = list(in_plane)
    expected_shape.insert(axis, 27)
    expected = ramp_volume(tuple(expected_shape), axis, target_mm)
    assert result.shape == expected.shape and result.dtype == np.float32
    np.testing.assert_allclose(result, expected, atol=2e-4)


def test_a_4d_volume_is_resampled_along_its_slice_axis_alone():
    grid = choose_grid(tp.geometry_from_spacing((1.0, 1.0, 3.5)), 4, "scan")  # r = 4, 14 slices of 1 mm
    network_mm = (np.arange(16) + 0.5) * 3.5 / 4
    volume = np.stack([ramp_volume((3, 2, 16), 2, network_mm, slope=s) for s in (1.0, -2.0)], axis=-1)
    result = to_grid(volume, 2, grid)
    target_mm = 0.5 + np.arange(14)
    for index, slope in enumerate((1.0, -2.0)):
        np.testing.assert_allclose(result[..., index], ramp_volume((3, 2, 14), 2, target_mm, slope=slope), atol=2e-4)


def test_the_interior_is_scipys_cubic_b_spline():
    """Away from the ends the samples' continuation does not matter (0.268^20): the values equal
    scipy.ndimage.map_coordinates(order=3) of the 2-D array at (position, column)."""
    rng = np.random.default_rng(3)
    values = rng.normal(size=(120, 5)).astype(np.float32)
    positions = np.linspace(20.0, 99.0, 53)
    result = resample_along(values, 0, positions)
    rows, columns = np.meshgrid(positions, np.arange(5), indexing="ij")
    expected = ndimage.map_coordinates(values.astype(np.float64), [rows, columns], order=3, mode="mirror")
    np.testing.assert_allclose(result, expected, atol=1e-5)


def test_the_result_stays_within_the_values_range():
    """A step overshoots under a cubic; the result is clipped to the values' own range."""
    values = np.repeat(np.array([0.0] * 10 + [100.0] * 10, np.float32)[:, None], 2, axis=1)
    result = resample_along(values, 0, np.linspace(0, 19, 57))
    unclipped = ndimage.map_coordinates(values[:, 0].astype(np.float64), [np.linspace(0, 19, 57)], order=3)
    assert unclipped.min() < -1 and unclipped.max() > 101  # the cubic alone would leave it
    assert result.min() == 0.0 and result.max() == 100.0


def test_todays_grid_returns_the_networks_array_itself():
    grid = choose_grid(tp.geometry_from_spacing((1.0, 1.0, 4.0)), 6, "scan", target_spacing=1.0)
    values = np.random.default_rng(0).normal(size=(5, 24, 4)).astype(np.float32)
    assert not grid.resampled and to_grid(values, 1, grid) is values
    with pytest.raises(ValueError, match="values have 23 slices along axis 1, the grid's network 24"):
        to_grid(values[:, :23], 1, grid)

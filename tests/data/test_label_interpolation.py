"""Shape-based interpolation of a label map along the slice axis (medsr_se.data.label_interpolation). Oracles: the
analytic sphere on the thin slices (Dice), the distances of a straight edge worked out by hand, the output slice
positions (j + 0.5)/r − 0.5 written out here, and the sets of labels of the input."""

from __future__ import annotations

import numpy as np
import pytest

from medsr_se.data.label_interpolation import interpolate_labels, signed_distance
from medsr_se.io.scans import SliceGeometry
from medsr_se.io.slice_grid import choose_grid


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / float(a.sum() + b.sum())


def positions(count: int, r: int) -> np.ndarray:
    """Output slice j at input slice index (j + 0.5)/r − 0.5 (docs/through-plane.md)."""
    return (np.arange(count * r) + 0.5) / r - 0.5


def test_signed_distance_is_the_distance_in_mm_to_the_other_side():
    """A straight edge between columns 4 and 5, columns 2 mm apart and rows 0.5 mm: inside column c is (5 − c)·2 mm
    from the nearest outside voxel, outside column c (c − 4)·2 mm from the nearest inside one; a fully inside slice
    is inside everywhere."""
    mask = np.zeros((6, 9), bool)
    mask[:, :5] = True
    columns = np.arange(9)
    expected = np.where(columns < 5, (5 - columns) * 2.0, -(columns - 4) * 2.0)
    np.testing.assert_allclose(signed_distance(mask, (0.5, 2.0)), np.tile(expected, (6, 1)), rtol=1e-6)
    rows = signed_distance(mask.T.copy(), (2.0, 0.5))  # the same edge across rows: the sampling follows the axis
    np.testing.assert_allclose(rows, np.tile(expected, (6, 1)).T, rtol=1e-6)
    assert (signed_distance(np.ones((4, 5), bool), (1.0, 1.0)) > 0).all()


def sphere(shape_in_plane: tuple[int, int], sampling: tuple[float, float], slice_mm: np.ndarray,
           centre: np.ndarray, radius: float) -> np.ndarray:
    """(n0, n1, len(slice_mm)) bool: voxel centres within ``radius`` mm of ``centre`` (in-plane mm, slice mm)."""
    x = np.arange(shape_in_plane[0])[:, None, None] * sampling[0]
    y = np.arange(shape_in_plane[1])[None, :, None] * sampling[1]
    z = np.asarray(slice_mm)[None, None, :]
    return (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2 <= radius ** 2


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("r,radius", [(3, 9.0), (4, 12.0)])
def test_a_sphere_drawn_on_thick_slices_comes_back_on_the_thin_ones(axis, r, radius):
    """The analytic sphere sampled at the thick slices' centres (r mm apart; 1 x 0.8 mm in-plane), interpolated to
    the thin slices at (j + 0.5)/r − 0.5: Dice against the sphere sampled there > 0.9, and better than repeating
    each thick slice r times (nearest slice)."""
    sampling, count = (1.0, 0.8), 12
    centre = np.array([19.3, 16.1, count * r / 2 - 0.7])
    thick = sphere((40, 42), sampling, np.arange(count) * float(r), centre, radius)
    truth = sphere((40, 42), sampling, positions(count, r) * r, centre, radius)
    labels = np.moveaxis(thick.astype(np.uint8) * 3, 2, axis)
    thin = np.moveaxis(interpolate_labels(labels, axis, sampling, positions(count, r)), axis, 2)
    assert thin.shape == truth.shape and set(np.unique(thin)) == {0, 3}
    interpolated = dice(thin == 3, truth)
    nearest = dice(np.repeat(thick, r, axis=2), truth)
    assert interpolated > 0.9 and interpolated > nearest, (interpolated, nearest)


def test_a_label_on_one_thick_slice_survives_next_to_a_larger_one():
    """Label 7 (2 x 2 voxels) on thick slice 3 only, inside label 5, which fills slices 3 and 4: on the output
    slices nearest slice 3 (round((j + 0.5)/4 − 0.5) = 3: j = 12..15) it is where it was, and nowhere else; label 5
    is where it was on those slices but label 7's (the competition alone would give slices 14 and 15 to label 5,
    whose distances grow towards slice 4)."""
    r, count = 4, 7
    labels = np.zeros((12, 12, count), np.uint8)
    labels[1:11, 1:11, 3:5] = 5
    labels[5:7, 5:7, 3] = 7
    thin = interpolate_labels(labels, 2, (1.0, 1.0), positions(count, r))
    on_slice = [j for j in range(count * r) if (thin[:, :, j] == 7).any()]
    assert on_slice == [12, 13, 14, 15]
    for j in on_slice:
        np.testing.assert_array_equal(thin[:, :, j] == 7, labels[:, :, 3] == 7)
    assert set(np.unique(thin)) == {0, 5, 7}


@pytest.mark.parametrize("ratio", [1.3, 2.5])
def test_a_label_on_the_last_slice_survives_on_a_fractional_grid(ratio):
    """A target spacing D / 1.3 (the result's last slice lies nearer the second-last thick slice's centre than
    the last's own half-spacing: no output slice rounds to the last one) and D / 2.5: label 9 on the last thick
    slice alone is on the output slice nearest it. Positions from the result's grid (SliceGrid), the nearest
    computed here."""
    count, spacing = 6, 5.0
    grid = choose_grid(SliceGeometry(2, 1.0, spacing, spacing), count, "scan", target_spacing=spacing / ratio)
    u = (np.arange(grid.count) + 0.5) * (grid.spacing / spacing) - 0.5  # the oracle's own grid
    np.testing.assert_allclose(grid.input_indices(), u)
    labels = np.zeros((8, 8, count), np.int16)
    labels[2:5, 3:6, count - 1] = 9
    labels[:, :, 0] = 1
    thin = interpolate_labels(labels, 2, (1.0, 1.0), u)
    nearest = int(np.argmin(np.abs(u - (count - 1))))
    np.testing.assert_array_equal(thin[:, :, nearest] == 9, labels[:, :, count - 1] == 9)
    assert thin.dtype == np.int16 and set(np.unique(thin)) == {0, 1, 9}


@pytest.mark.parametrize("dtype,values", [(np.uint8, (1, 2, 200)), (np.int16, (-3, 4, 1000)),
                                          (np.uint16, (7, 40000, 65535))])
def test_every_label_kept_none_invented_background_kept(dtype, values):
    """Random blobs of three labels on 6 thick slices: the result has the input's dtype, exactly the input's
    labels, and 0 wherever both thick slices around an output slice are 0."""
    rng = np.random.default_rng(0)
    labels = np.zeros((20, 18, 6), dtype)
    for label in values:
        for _ in range(4):
            x, y, k = rng.integers(0, 16), rng.integers(0, 14), rng.integers(0, 6)
            labels[x:x + rng.integers(1, 5), y:y + rng.integers(1, 5), k] = label
    r = 3
    u = positions(6, r)
    thin = interpolate_labels(labels, 2, (0.7, 0.7), u)
    assert thin.dtype == labels.dtype
    assert set(np.unique(thin)) == set(np.unique(labels))
    lower = np.floor(np.clip(u, 0, 5)).astype(int)
    upper = np.minimum(lower + 1, 5)
    both_background = (labels[:, :, lower] == 0) & (labels[:, :, upper] == 0)
    assert (thin[both_background] == 0).all()


def test_an_object_ends_half_way_to_the_slice_without_it_as_a_cone():
    """A disc (radius 6 mm) on thick slice 3 alone, r = 4: on the output slices 0.125 and 0.375 of a spacing from
    it (j = 13, 14 and 12, 15) it is a concentric disc, smaller the further from its slice, the deepest voxel
    (the centre) still in: a voxel at depth d of a piece m deep stays in while t < d / (d + m) (checked per voxel
    against the distances worked out here); beyond half-way it is gone."""
    r, count = 4, 7
    x, y = np.meshgrid(np.arange(21), np.arange(21), indexing="ij")
    disc = (x - 10) ** 2 + (y - 10) ** 2 <= 36
    labels = np.zeros((21, 21, count), np.uint8)
    labels[:, :, 3] = disc * 2
    thin = interpolate_labels(labels, 2, (1.0, 1.0), positions(count, r))
    assert [j for j in range(count * r) if thin[:, :, j].any()] == [12, 13, 14, 15]
    from scipy import ndimage

    depth = ndimage.distance_transform_edt(disc) - ndimage.distance_transform_edt(~disc)
    deepest = depth.max()
    for j, t in ((13, 0.125), (14, 0.125), (12, 0.375), (15, 0.375)):
        expected = disc & ((1 - t) * depth - t * deepest > 0)
        np.testing.assert_array_equal(thin[:, :, j] == 2, expected)
        assert thin[10, 10, j] == 2
    assert 0 < (thin[:, :, 12] == 2).sum() < (thin[:, :, 13] == 2).sum() <= disc.sum()

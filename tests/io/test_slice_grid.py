"""The result's grid along the slice axis (medsr_se.io.slice_grid): r = ceil(D / t) within a tolerance, M slices
tiling the input's slab from its start, t = D / r being today's grid exactly, and the refusals naming the parameter.
Oracles: the positions written out in mm from the grid convention (slab [c0 − D/2, c_{N−1} + D/2], centres
c0 − D/2 + t/2 + k·t), counts by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medsr_se import throughplane as tp
from medsr_se.errors import MedSRError, OptionError
from medsr_se.io.slice_grid import choose_grid


def geometry(in_plane: float, slice_spacing: float):
    return tp.geometry_from_spacing((in_plane, in_plane, slice_spacing))


def test_a_ratio_of_5_56_gives_the_in_plane_spacing_exactly():
    """0.9 mm pixels, 5 mm slices: r = 6 (never fewer samples than asked), 0.9 mm slices (was: r = round(5.56) = 6
    and 0.833 mm slices, silently not isotropic), M = floor(40 · 5 / 0.9) = 222."""
    grid = choose_grid(geometry(0.9, 5.0), 40, "scan")
    assert grid.network_scale == 6 and grid.spacing == 0.9 and grid.resampled
    assert grid.count == 222 and grid.label == "0.9mm"
    assert grid.scale == pytest.approx(5.0 / 0.9)


def test_the_positions_tile_the_slab_from_its_start():
    """Result centre k at c0 − D/2 + t/2 + k·t mm, i.e. input index (that − c0) / D; network index j of the r·N
    network slices at (j + 0.5)·D/r − D/2 from c0."""
    d_slice, t, n, c0 = 5.0, 0.9, 7, -12.5
    grid = choose_grid(geometry(0.8, d_slice), n, "scan", target_spacing=t)
    mm = c0 - d_slice / 2 + t / 2 + t * np.arange(grid.count)
    assert grid.count == math.floor(n * d_slice / t) == 38
    assert mm[-1] + t / 2 <= c0 + (n - 1) * d_slice + d_slice / 2 + 1e-9  # inside the slab
    np.testing.assert_allclose(c0 + grid.input_indices() * d_slice, mm, atol=1e-12)
    network_mm = c0 - d_slice / 2 + (np.arange(grid.network_scale * n) + 0.5) * d_slice / grid.network_scale
    np.testing.assert_allclose(np.interp(grid.network_indices(), np.arange(len(network_mm)), network_mm), mm,
                               atol=1e-12)


@pytest.mark.parametrize("target", [1.25, 1.25 * (1 + 1e-8), 1.25 * (1 - 1e-8), 1.25 * (1 - 5e-5)])
def test_a_target_of_d_over_r_is_todays_grid(target):
    """t = D / r (to within the tolerance: 4.0000001 is 4, and 3.9998, a ratio blurred by rounded DICOM positions):
    r·N slices of D / r, not resampled, named x<r>; the grid of slice j at input index (j + 0.5)/r − 0.5."""
    grid = choose_grid(geometry(1.0, 5.0), 9, "scan", target_spacing=target)
    assert (grid.network_scale, grid.count, grid.resampled, grid.label, grid.scale) == (4, 36, False, "x4", 4)
    assert grid.spacing == 5.0 / 4
    np.testing.assert_allclose(grid.input_indices(), (np.arange(36) + 0.5) / 4 - 0.5, atol=1e-12)


def test_scale_alone_is_todays_choice_and_agreeing_flags_are_accepted():
    assert choose_grid(geometry(0.9, 5.0), 10, "scan", scale=5).label == "x5"
    assert choose_grid(geometry(0.9, 5.0), 10, "scan", scale=5, target_spacing=1.0).count == 50
    assert choose_grid(geometry(1.0, 4.0), 10, "scan").label == "x4"  # an integer ratio: as before


def test_ratios_just_above_an_integer_round_up():
    """D / t = 3.01: r = 4 and M = floor(N · 3.01); 4.001 (beyond the tolerance): r = 5, 400 slices of t."""
    grid = choose_grid(geometry(1.0, 3.01), 100, "scan", target_spacing=1.0)
    assert (grid.network_scale, grid.count, grid.resampled) == (4, 301, True)
    grid = choose_grid(geometry(1.0, 5.0), 100, "scan", target_spacing=1.25 / 1.001)
    assert (grid.network_scale, grid.count, grid.resampled) == (5, 400, True)


@pytest.mark.parametrize("target,says", [
    (0.0, "target_spacing=0: must be a positive number of mm"),
    (-1.0, "target_spacing=-1: must be a positive number of mm"),
    (float("nan"), "target_spacing=nan: must be a positive number of mm"),
    (float("inf"), "target_spacing=inf: must be a positive number of mm"),
    (5.0, "target_spacing=5: must be smaller than the slice spacing 5 mm"),
    (7.5, "target_spacing=7.5: must be smaller than the slice spacing 5 mm"),
    (0.5, "target_spacing=0.5: 10.00 x finer than the slice spacing; at most 8 is supported (give "
          "target_spacing=0.625 or scale=8"),
])
def test_a_bad_target_is_one_line_naming_it(target, says):
    with pytest.raises(MedSRError) as raised:
        choose_grid(geometry(0.9, 5.0), 10, "scan", target_spacing=target)
    assert says in str(raised.value) and "\n" not in str(raised.value)
    assert raised.value.parameter == "target_spacing"


def test_scale_and_a_target_that_disagree_are_refused_naming_both():
    with pytest.raises(OptionError, match=r"^target_spacing=0.9 and scale=4 disagree: scale=4 gives 1.25 mm") as raised:
        choose_grid(geometry(0.9, 5.0), 10, "scan", scale=4, target_spacing=0.9)
    assert raised.value.parameter == "target_spacing"


def test_the_default_keeps_refusing_an_isotropic_scan_and_names_the_ways_past_8():
    with pytest.raises(tp.ThroughPlaneError, match="already \\(nearly\\) isotropic"):
        choose_grid(geometry(1.0, 1.2), 10, "scan")
    assert choose_grid(geometry(1.0, 1.2), 10, "scan", target_spacing=0.6).label == "x2"  # asked for: done
    with pytest.raises(tp.ThroughPlaneError, match=r"scan: slice spacing 6 mm is 12.0 x the in-plane 0.5 mm; at most "
                                                   r"8 is supported \(give target_spacing=0.75 or scale=8"):
        choose_grid(geometry(0.5, 6.0), 10, "scan")

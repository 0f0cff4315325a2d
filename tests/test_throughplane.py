"""The Python API of medsr_se.throughplane: an array with its spacing through a through-plane network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsr_se import throughplane as tp
from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from tests.archs.test_anisotropic import cubic_rows_reference


@pytest.mark.parametrize("axis", [0, 2])
def test_untrained_skip_network_gives_1d_cubic_along_the_slice_axis(axis):
    """Both orientations of an untrained skip model are 1-D cubic interpolation along the slice axis, so their
    mean is too; values go through the data's own range and come back (clamped to it, as the result is)."""
    r = 3
    rng = np.random.default_rng(axis)
    values = (rng.random((7, 8, 9)) * 1000 - 200).astype(np.float32)
    spacing = [0.5, 0.5, 0.5]
    spacing[axis] = 1.5
    torch.manual_seed(0)
    net = SEEDSRGenerator(1, 1, num_feat=8, num_block=1, upscale=[r, 1], img_residual=True)
    result, new_spacing = tp.super_resolve(values, tuple(spacing), net)
    moved = np.moveaxis(values, axis, 0).astype(np.float64)
    reference = np.stack([cubic_rows_reference(moved[:, :, c], r) for c in range(moved.shape[2])], axis=2)
    reference = np.moveaxis(np.clip(reference, values.min(), values.max()), 0, axis)
    assert result.shape == reference.shape
    np.testing.assert_allclose(result, reference, atol=1e-2)
    assert new_spacing == pytest.approx(tuple(0.5 for _ in range(3)))


def test_geometry_and_scale_choice():
    geometry = tp.geometry_from_spacing((0.9, 0.9, 5.0), slice_thickness=4.0)
    assert (geometry.axis, geometry.scale) == (2, 6)
    assert geometry.fwhm_pixels == pytest.approx(4.0 / 0.9)
    assert geometry.upscaled(6).slice_spacing == pytest.approx(5.0 / 6)
    with pytest.raises(tp.ThroughPlaneError, match="already .*isotropic"):
        tp.choose_scale(tp.geometry_from_spacing((1.0, 1.0, 1.2)), "scan")
    with pytest.raises(tp.ThroughPlaneError, match="at most 8"):
        tp.choose_scale(tp.geometry_from_spacing((0.5, 0.5, 6.0)), "scan")
    assert tp.choose_scale(tp.geometry_from_spacing((0.5, 0.5, 6.0)), "scan", scale=8) == 8

"""The FOV SSIM against BasicSR (issue 23, point 2): our SSIM map is BasicSR's ``_ssim`` before its mean, and with a
full mask the FOV SSIM is BasicSR's ``calculate_ssim``; what ours adds (the map, windows inside the FOV) matters
for an image with a dark border."""

from __future__ import annotations

import numpy as np
import pytest
from basicsr.metrics import calculate_ssim
from basicsr.metrics.psnr_ssim import _ssim

from medsr_se.metrics.fov_metrics import calculate_ssim_fov, fov_mask, ssim_map


@pytest.fixture
def pair(retina):
    hr = retina[500:596, 520:632].astype(np.float64)  # inside the disc: no dark border, so a full mask
    assert fov_mask(hr).all()
    noise = np.random.default_rng(0).normal(0, 12, hr.shape)
    return np.clip(hr + noise, 0, 255), hr


def test_the_map_is_basicsrs_before_its_mean(pair):
    sr, hr = pair
    for channel in range(3):
        ours = ssim_map(sr[..., channel], hr[..., channel])
        assert ours.shape == (hr.shape[0] - 10, hr.shape[1] - 10)
        assert ours.mean() == pytest.approx(_ssim(sr[..., channel], hr[..., channel]), abs=1e-12)


@pytest.mark.parametrize("crop_border", [0, 4])
def test_with_a_full_mask_it_is_basicsrs_calculate_ssim(pair, crop_border):
    sr, hr = pair
    assert calculate_ssim_fov(sr, hr, crop_border) == pytest.approx(calculate_ssim(sr, hr, crop_border), abs=1e-12)


@pytest.mark.slow
def test_what_ours_adds_pixels_outside_the_fov_do_not_count(retina):
    hr = retina.astype(np.float64)
    sr = np.clip(hr + np.random.default_rng(1).normal(0, 8, hr.shape), 0, 255)
    spoiled = sr.copy()
    spoiled[:12, :12] = 255.0  # a corner far outside the disc
    assert calculate_ssim_fov(spoiled, hr, 4) == calculate_ssim_fov(sr, hr, 4)
    assert calculate_ssim(spoiled, hr, 4) != calculate_ssim(sr, hr, 4)

"""The comparison sheets' choices: the most detailed window and the error map (medsr_se/evaluation/sheets.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from medsr_se.evaluation.sheets import detail_window, error_map


def textured_square(size: int, top: int, left: int, side: int, channels: int) -> np.ndarray:
    """A flat grey image (inside any field of view) with a random-noise square of ``side`` pixels at (top, left)."""
    shape = (size, size, channels) if channels else (size, size)
    image = np.full(shape, 120, np.uint8)
    noise = np.random.default_rng(0).integers(40, 220, (side, side) + shape[2:], dtype=np.uint8)
    image[top:top + side, left:left + side] = noise
    return image


@pytest.mark.parametrize("channels", [0, 3])
@pytest.mark.parametrize("top,left", [(0, 0), (40, 88), (104, 16)])
def test_detail_window_covers_the_only_textured_square(channels, top, left):
    crop = 24
    image = textured_square(128, top, left, crop, channels)
    found_top, found_left = detail_window(image, crop)
    # windows are tried every crop // 2 pixels: the chosen one overlaps the square by at least half in each axis
    assert abs(found_top - top) <= crop // 2 and abs(found_left - left) <= crop // 2
    # and it is the best of all grid windows by the oracle's own count of textured pixels
    covered = np.zeros((128, 128), bool)
    covered[top:top + crop, left:left + crop] = True
    assert covered[found_top:found_top + crop, found_left:found_left + crop].sum() >= (crop // 2) ** 2 * 2


def test_detail_window_stays_inside_the_field_of_view():
    """Texture outside the FOV (black background, e.g. the corner of a fundus photo) is never chosen."""
    image = np.zeros((128, 128, 3), np.uint8)
    cv2.circle(image, (64, 64), 60, (120, 120, 120), thickness=-1)
    image[0:20, 0:20] = np.random.default_rng(1).integers(0, 255, (20, 20, 3), dtype=np.uint8)  # outside the FOV
    image[56:72, 56:72] = np.random.default_rng(2).integers(40, 220, (16, 16, 3), dtype=np.uint8)  # inside
    top, left = detail_window(image, 16)
    assert abs(top - 56) <= 8 and abs(left - 56) <= 8


def test_error_map_of_a_known_difference():
    hr = np.full((40, 50, 3), 100, np.uint8)
    sr = hr.copy()
    sr[10:20, 10:20, 0] = 130  # one channel off by 30: 10 grey levels averaged over the three channels
    colours, brightest = error_map(sr, hr)
    assert colours.shape == (40, 50, 3) and colours.dtype == np.uint8
    assert brightest == pytest.approx(10.0)  # 100 of 2000 pixels differ: the 99.5th percentile is their error
    inferno = cv2.applyColorMap(np.array([[0, 255]], np.uint8), cv2.COLORMAP_INFERNO)[0]
    assert (colours[10:20, 10:20] == inferno[1]).all()  # brightest colour where the error reaches the maximum
    outside = np.ones((40, 50), bool)
    outside[10:20, 10:20] = False
    assert (colours[outside] == inferno[0]).all()  # black where SR equals HR


def test_error_map_clips_rare_outliers_and_floors_the_scale_at_one_level():
    hr = np.zeros((100, 100), np.uint16)
    sr = hr.copy()
    sr[:, :2] = 4  # 2 % of the pixels off by 4
    sr[50, 50] = 60000  # one outlier (0.01 %) does not set the scale
    colours, brightest = error_map(sr, hr)
    assert brightest == pytest.approx(4.0)
    inferno_top = cv2.applyColorMap(np.array([[255]], np.uint8), cv2.COLORMAP_INFERNO)[0, 0]
    assert (colours[50, 50] == inferno_top).all() and (colours[:, :2] == inferno_top).all()
    assert error_map(hr, hr)[1] == 1.0  # identical images: the scale never divides by zero

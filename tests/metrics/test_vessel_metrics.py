"""Vessel fidelity (calculate_vessel_f1) on scikit-image's real fundus photograph."""

import cv2
import numpy as np
import pytest
from basicsr.metrics import calculate_metric

import medsr_se  # noqa: F401  (registers the metric)
from medsr_se.evaluation import image_metrics
from medsr_se.metrics.vessel_metrics import calculate_vessel_f1, vessel_maps
from medsr_se.utils.bicubic import matlab_bicubic, mod_crop


@pytest.fixture(scope="module")
def fundus(retina) -> np.ndarray:
    """The right part of the photograph (with its dark border), BGR uint8, 1408 x 512."""
    return np.ascontiguousarray(mod_crop(retina[:, :, ::-1], 16)[:, 896:])


def test_identical_images_score_one(fundus):
    assert calculate_vessel_f1(fundus, fundus.copy(), 4) == 1.0


def test_the_hr_map_is_a_tenth_of_the_field_of_view_and_follows_the_vessels(fundus):
    map_sr, map_hr = vessel_maps(fundus, fundus)
    assert 0.05 < map_hr.mean() < 0.12  # a tenth of the FOV, which is most of the image
    green = fundus[..., 1].astype(float)
    assert green[map_hr].mean() < green[~map_hr & (green > 20)].mean()  # vessels are darker than the background


def test_blur_lowers_the_score_monotonically(fundus):
    scores = [calculate_vessel_f1(cv2.GaussianBlur(fundus, (0, 0), sigma), fundus, 4) for sigma in (0.7, 1.5, 3.0)]
    assert 1.0 > scores[0] > scores[1] > scores[2]


def test_noise_lowers_the_score_monotonically(fundus):
    rng = np.random.default_rng(0)
    noisy = [np.clip(fundus + rng.normal(0, std, fundus.shape), 0, 255).astype(np.uint8) for std in (1, 4, 12)]
    scores = [calculate_vessel_f1(image, fundus, 4) for image in noisy]
    assert 1.0 > scores[0] > scores[1] > scores[2]


def test_bicubic_scores_below_hr_and_x8_below_x4(fundus):
    x4 = matlab_bicubic(matlab_bicubic(fundus, 1 / 4), 4)
    x8 = matlab_bicubic(matlab_bicubic(fundus, 1 / 8), 8)
    score_x4, score_x8 = calculate_vessel_f1(x4, fundus, 4), calculate_vessel_f1(x8, fundus, 8)
    assert 1.0 > score_x4 > score_x8 > 0


@pytest.mark.slow
def test_usable_from_option_files_and_in_the_evaluation_table(fundus):
    blurred = cv2.GaussianBlur(fundus, (0, 0), 1.0)
    value = calculate_metric({"img": blurred, "img2": fundus}, {"type": "calculate_vessel_f1", "crop_border": 4})
    assert value == pytest.approx(calculate_vessel_f1(blurred, fundus, 4))
    assert image_metrics(blurred, fundus, 4)["vessel_f1"] == pytest.approx(value)


def test_sixteen_bit_gray_input_uses_its_range(fundus):
    gray8 = fundus[..., 1]
    gray16 = gray8.astype(np.uint16) * 257
    blurred16 = cv2.GaussianBlur(gray16, (0, 0), 1.5)
    blurred8 = cv2.GaussianBlur(gray8, (0, 0), 1.5)
    value16 = calculate_vessel_f1(blurred16, gray16, 4, max_value=65535.0)
    assert value16 == pytest.approx(calculate_vessel_f1(blurred8, gray8, 4), abs=0.05)


def test_shape_mismatch_is_refused(fundus):
    with pytest.raises(ValueError, match="shapes differ"):
        calculate_vessel_f1(fundus[:-4], fundus, 4)

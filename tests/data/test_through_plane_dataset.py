"""The through-plane degradation (slice profile blur + every r-th row) and ThroughPlaneVolumeDataset."""

from __future__ import annotations

import os

import nibabel
import numpy as np
import pytest
from basicsr.data import build_dataset

import medsr_se  # noqa: F401  (registration)
from medsr_se import throughplane as tp


def measured_fwhm(profile: np.ndarray) -> float:
    """Full width at half maximum of a sampled 1-D peak, the half-maximum crossings interpolated linearly."""
    peak = int(np.argmax(profile))
    half = profile[peak] / 2
    left = peak - np.argmax(profile[peak::-1] < half)  # first sample below half, going left
    right = peak + np.argmax(profile[peak:] < half)
    x_left = left + (half - profile[left]) / (profile[left + 1] - profile[left])
    x_right = right - 1 + (profile[right - 1] - half) / (profile[right - 1] - profile[right])
    return float(x_right - x_left)


@pytest.mark.parametrize("fwhm", [3.0, 4.0, 6.5])
def test_a_bright_row_spreads_with_the_requested_fwhm(fwhm):
    image = np.zeros((81, 5), np.float32)
    image[40] = 1.0
    blurred = tp.blur_rows(image, tp.gaussian_profile(fwhm))
    for column in range(5):
        assert measured_fwhm(blurred[:, column].astype(np.float64)) == pytest.approx(fwhm, abs=0.1)
    assert blurred.sum(axis=0) == pytest.approx(np.ones(5), abs=1e-5)  # the profile keeps the total


def test_a_user_kernel_is_the_bright_rows_spread(tmp_path):
    kernel = np.array([1.0, 2.0, 1.0])
    np.save(tmp_path / "profile.npy", kernel)
    image = np.zeros((11, 3), np.float32)
    image[5] = 8.0
    blurred = tp.blur_rows(image, tp.load_profile(tmp_path / "profile.npy"))
    np.testing.assert_allclose(blurred[4:7, 0], [2.0, 4.0, 2.0], atol=1e-6)
    assert not blurred[:4].any() and not blurred[7:].any()


@pytest.mark.parametrize("r", [2, 3, 4, 5])
def test_an_image_constant_along_the_degraded_axis_is_unchanged(r):
    row = np.random.default_rng(r).random(17).astype(np.float32)
    image = np.tile(row, (6 * r, 1))  # every row the same
    lr = tp.degrade(image, tp.gaussian_profile(1.2 * r), r)
    assert lr.shape == (6, 17)
    np.testing.assert_allclose(lr, image[:6], atol=1e-6)


@pytest.mark.parametrize("r", [2, 3, 4])
def test_lr_row_k_is_centred_on_hr_rows_r_k_to_r_k_plus_r_minus_1(r):
    """A linear ramp is unchanged by a symmetric blur, so (away from the borders) LR row k must equal the ramp at
    the centre of the HR rows it covers, r·k + (r − 1)/2: the mean of rows r·k .. r·k + r − 1."""
    height = 20 * r
    image = np.tile(np.arange(height, dtype=np.float32)[:, None] * 0.5, (1, 3))
    lr = tp.degrade(image, tp.gaussian_profile(r), r)
    block_means = image.reshape(20, r, 3).mean(axis=1)
    np.testing.assert_allclose(lr[4:-4], block_means[4:-4], atol=1e-4)


def test_bad_kernels_and_fwhm_are_refused(tmp_path):
    np.save(tmp_path / "k2d.npy", np.ones((3, 3)))
    with pytest.raises(tp.ThroughPlaneError, match=r"k2d.npy: 2-D \(shape 3 x 3\): a slice profile is a 1-D array"):
        tp.load_profile(tmp_path / "k2d.npy")
    (tmp_path / "junk.npy").write_text("not numpy")
    with pytest.raises(tp.ThroughPlaneError, match=r"junk.npy: not a .npy file"):
        tp.load_profile(tmp_path / "junk.npy")
    with pytest.raises(tp.ThroughPlaneError, match="FWHM"):
        tp.gaussian_profile(0.0)


def striped_volume(path, shape=(40, 36, 6), zooms=(1.0, 1.0, 3.0)):
    """In-plane slices with stripes along axis 0 only (constant along axis 1)."""
    stripes = (np.arange(shape[0]) // 3 % 2).astype(np.float32) * 100
    values = np.broadcast_to(stripes[:, None, None], shape).astype(np.int16)
    image = nibabel.Nifti1Image(values, np.diag([*zooms, 1.0]))
    image.header.set_zooms(zooms)
    nibabel.save(image, str(path))
    return path


def test_dataset_pairs_shapes_both_axes_and_nothing_written(tmp_path):
    volume = striped_volume(tmp_path / "scan.nii.gz")
    before = sorted(os.listdir(tmp_path))
    dataset = build_dataset({"name": "t", "type": "ThroughPlaneVolumeDataset", "phase": "train", "scale": 3,
                             "volumes": [str(volume)], "gt_size": 24, "samples_per_epoch": 7})
    assert len(dataset) == 7
    rng = np.random.default_rng(0)
    kinds = set()
    for _ in range(40):
        lr, hr = dataset.pair(rng)
        assert lr.shape == (8, 24) and hr.shape == (24, 24)
        assert 0.0 <= hr.min() and hr.max() <= 1.0
        # the stripes run along one in-plane axis: the patch is either constant along its rows or along its columns
        kinds.add("rows vary" if np.ptp(hr[:, 0]) > 0 else "columns vary")
        if np.ptp(hr[:, 0]) == 0:  # degraded across constant rows: LR = every 3rd row exactly
            np.testing.assert_allclose(lr, hr[1::3], atol=1e-6)
    assert kinds == {"rows vary", "columns vary"}
    item = dataset[0]
    assert tuple(item["lq"].shape) == (1, 8, 24) and tuple(item["gt"].shape) == (1, 24, 24)
    assert sorted(os.listdir(tmp_path)) == before


def test_dataset_refuses_a_gt_size_that_r_does_not_divide(tmp_path):
    volume = striped_volume(tmp_path / "scan.nii.gz")
    with pytest.raises(ValueError, match="gt_size 25 is not a multiple of scale 3"):
        build_dataset({"name": "t", "type": "ThroughPlaneVolumeDataset", "phase": "train", "scale": 3,
                       "volumes": [str(volume)], "gt_size": 25})


def test_an_asymmetric_kernel_gets_no_vertical_flip(tmp_path):
    """A user kernel [0, 0, 1] samples one row below the sample position: LR row k is HR row 3k + 2 in every pair
    (r = 3). A vertical flip of such a pair would make it HR row 3k (the flip commutes with symmetric profiles
    only), so half the pairs were wrong. Oracle: the row picked by hand from the HR patch of each pair."""
    rng = np.random.default_rng(1)
    values = (rng.random((30, 27, 5)) * 1000).astype(np.int16)
    nibabel.save(nibabel.Nifti1Image(values, np.diag([1.0, 1.0, 3.0, 1.0])), str(tmp_path / "scan.nii.gz"))
    np.save(tmp_path / "below.npy", np.array([0.0, 0.0, 1.0]))
    assert not tp.load_profile(tmp_path / "below.npy").symmetric
    assert tp.gaussian_profile(2.0).symmetric
    dataset = build_dataset({"name": "t", "type": "ThroughPlaneVolumeDataset", "phase": "train", "scale": 3,
                             "volumes": [str(tmp_path / "scan.nii.gz")], "gt_size": 24,
                             "slice_profile": str(tmp_path / "below.npy")})
    pairs = np.random.default_rng(0)
    for _ in range(40):
        lr, hr = dataset.pair(pairs)
        np.testing.assert_array_equal(lr, hr[2::3])


def line_volume(path, spacing_mm=4.0):
    """In-plane slices of bright rows 12 pixels apart (constant along the other in-plane axis), slices
    ``spacing_mm`` apart (1 mm in-plane): the default profile is a Gaussian of FWHM ``spacing_mm`` pixels."""
    rows = (np.arange(48) % 12 == 0).astype(np.float32) * 1000
    values = np.broadcast_to(rows[:, None, None], (48, 40, 6)).astype(np.int16)
    nibabel.save(nibabel.Nifti1Image(values, np.diag([1.0, 1.0, spacing_mm, 1.0])), str(path))
    return path


def pair_fwhms(dataset, draws: int = 300) -> list[float]:
    """The FWHM of the blurred bright row in each pair whose rows cross the lines (r = 1: the LR is the blurred
    HR), measured on the samples (the oracle: ``measured_fwhm``, independent of the dataset)."""
    rng = np.random.default_rng(0)
    widths = []
    for _ in range(draws):
        lr, hr = dataset.pair(rng)
        if np.ptp(hr[:, 0]) == 0:  # transposed: the lines run along the blur
            continue
        column = lr[:, 0].astype(np.float64)
        peak = 4 + int(np.argmax(column[4:20]))
        widths.append(measured_fwhm(column[peak - 4:peak + 5]))
    return widths


@pytest.mark.parametrize("jitter", [0, 0.25])
def test_fwhm_jitter_spreads_each_pairs_profile_over_the_range(tmp_path, jitter):
    """``fwhm_jitter: 0.25`` gives pairs blurred by FWHMs across f · [0.75, 1.25] (3 to 5 pixels for f = 4);
    without it every pair has f itself."""
    dataset = build_dataset({"name": "t", "type": "ThroughPlaneVolumeDataset", "phase": "train", "scale": 1,
                             "volumes": [str(line_volume(tmp_path / "lines.nii.gz"))], "gt_size": 24,
                             "fwhm_jitter": jitter})
    widths = pair_fwhms(dataset)
    assert len(widths) > 100
    if jitter:
        assert 2.85 < min(widths) < 3.15 and 4.85 < max(widths) < 5.15
        assert len({round(w * 4) for w in widths}) >= 7  # spread over the range, not two ends
    else:
        assert max(widths) - min(widths) < 0.1 and abs(np.mean(widths) - 4.0) < 0.1


@pytest.mark.parametrize("bad", ["wide", -0.1, 1.0, True, float("nan"), [0.2]])
def test_bad_fwhm_jitter_is_named(tmp_path, bad):
    with pytest.raises(ValueError, match=r"^datasets:train:fwhm_jitter .*: a fraction in \[0, 1\)"):
        build_dataset({"name": "t", "type": "ThroughPlaneVolumeDataset", "phase": "train", "scale": 1,
                       "volumes": [str(line_volume(tmp_path / "lines.nii.gz"))], "gt_size": 24, "fwhm_jitter": bad})


def test_fwhm_jitter_with_a_kernel_file_is_refused(tmp_path):
    np.save(tmp_path / "k.npy", np.array([1.0, 2.0, 1.0]))
    with pytest.raises(ValueError, match="fwhm_jitter with datasets:train:slice_profile: a kernel file has no FWHM"):
        build_dataset({"name": "t", "type": "ThroughPlaneVolumeDataset", "phase": "train", "scale": 1,
                       "volumes": [str(line_volume(tmp_path / "lines.nii.gz"))], "gt_size": 24,
                       "fwhm_jitter": 0.2, "slice_profile": str(tmp_path / "k.npy")})

"""Noise matching of the through-plane training pairs (``datasets:train:lr_noise``). Oracles: the empirical standard
deviation of simulated white noise, and of the pairs' LR on a scan whose only content is noise of a known σ."""

from __future__ import annotations

import nibabel
import numpy as np
import pytest
from basicsr.data import build_dataset

import medsr_se  # noqa: F401  (registration)
from medsr_se.data.degradations import blur_rows, gaussian_profile, kernel_profile, sample_rows
from medsr_se.data.noise_matching import scan_noise_sigma, top_up_sigma, training_noise_sigma
from medsr_se.errors import OptionError

SIGMA = 20.0  # the scan's noise, in its own units
LEVEL = 1000.0


def noisy_scan(path, shape=(96, 80, 12), zooms=(1.0, 1.0, 4.0), sigma=SIGMA, seed=0):
    """A constant LEVEL plus white Gaussian noise of ``sigma`` (float32): all its variation is noise."""
    values = (LEVEL + np.random.default_rng(seed).normal(0.0, sigma, shape)).astype(np.float32)
    image = nibabel.Nifti1Image(values, np.diag([*zooms, 1.0]))
    image.header.set_zooms(zooms)
    nibabel.save(image, str(path))
    return path, values


def dataset_for(path, **options):
    return build_dataset({"name": "t", "type": "ThroughPlaneVolumeDataset", "phase": "train", "scale": 4,
                          "volumes": [str(path)], "gt_size": 32, **options})


def lr_noise_std(dataset, pairs=300) -> tuple[float, float]:
    """The pooled standard deviation of the LR and of the HR patches (each about its own mean)."""
    rng = np.random.default_rng(1)
    lr_var, hr_var = [], []
    for _ in range(pairs):
        lr, hr = dataset.pair(rng)
        lr_var.append(lr.var())
        hr_var.append(hr.var())
    return float(np.sqrt(np.mean(lr_var))), float(np.sqrt(np.mean(hr_var)))


@pytest.mark.parametrize("profile", [gaussian_profile(4.0), gaussian_profile(2.4), kernel_profile(np.ones(4))])
@pytest.mark.parametrize("r", [3, 4])
def test_topped_up_lr_noise_has_the_scans_sigma(profile, r):
    """White noise of σ blurred by the profile (as the LR is made), plus independent noise of top_up_sigma:
    the empirical σ of the sum is σ (the oracle: a simulation, not the formula)."""
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, 1.0, (4000, 200))
    blurred = blur_rows(noise, profile, sample_rows(r)[1])[::r]
    assert blurred.std() < 0.9  # the blur alone leaves less noise
    added = top_up_sigma(1.0, profile, r)
    total = blurred + rng.normal(0.0, added, blurred.shape)
    assert total.std() == pytest.approx(1.0, rel=0.01)


def test_a_sampling_profile_needs_no_top_up():
    assert top_up_sigma(1.0, kernel_profile(np.array([1.0])), 3) == pytest.approx(0.0, abs=1e-12)


def test_the_pairs_lr_carries_the_scans_noise(tmp_path):
    """The LR of a pair had σ·‖w‖ (0.5 σ for a 4-pixel Gaussian) of the scan's noise: the network never saw an
    input as noisy as the thick slices it is applied to. With ``lr_noise: auto`` it carries σ (unit units: σ /
    (max − min) of the scan, the dataset's min-max scaling), as the HR does."""
    path, values = noisy_scan(tmp_path / "scan.nii.gz")
    sigma_unit = SIGMA / float(values.max() - values.min())
    lr_off, hr_off = lr_noise_std(dataset_for(path))
    assert hr_off == pytest.approx(sigma_unit, rel=0.05)
    assert lr_off < 0.7 * sigma_unit  # the old pairs
    lr_auto, hr_auto = lr_noise_std(dataset_for(path, lr_noise="auto"))
    assert hr_auto == pytest.approx(sigma_unit, rel=0.05)
    assert lr_auto == pytest.approx(sigma_unit, rel=0.06)


def test_sigma_in_the_scans_units_and_the_estimate_agree(tmp_path):
    path, values = noisy_scan(tmp_path / "scan.nii.gz")
    given = dataset_for(path, lr_noise=SIGMA)
    assert given.noise_sigmas == [pytest.approx(SIGMA / float(values.max() - values.min()), rel=1e-6)]
    estimated = dataset_for(path, lr_noise="auto")
    assert estimated.noise_sigmas[0] == pytest.approx(given.noise_sigmas[0], rel=0.05)
    assert dataset_for(path, lr_noise=0).noise_sigmas == [0.0]
    assert dataset_for(path).noise_sigmas == [0.0]  # the dataset's default: off (the recipe chooses)


def test_a_noise_free_scan_gets_no_noise(tmp_path):
    """A constant scan (98 % of it one value): σ̂ = 0, so ``auto`` leaves the pairs exactly as without it."""
    values = np.zeros((40, 40, 8), np.float32)
    values[10:30, 10:30] = 100.0
    values[0, 0, 0] = 1.0
    nibabel.save(nibabel.Nifti1Image(values, np.diag([1.0, 1.0, 4.0, 1.0])), str(tmp_path / "flat.nii.gz"))
    assert scan_noise_sigma(values / 100.0, 2) == pytest.approx(0.0, abs=1e-9)
    auto, off = dataset_for(tmp_path / "flat.nii.gz", lr_noise="auto"), dataset_for(tmp_path / "flat.nii.gz")
    for seed in range(5):
        a, b = auto.pair(np.random.default_rng(seed)), off.pair(np.random.default_rng(seed))
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("bad", ["loud", -1.0, float("nan"), float("inf"), True, [1]])
def test_bad_lr_noise_is_refused_naming_it(bad):
    with pytest.raises(OptionError, match="lr_noise") as error:
        training_noise_sigma(bad, np.zeros((8, 8, 8), np.float32), 2, 1.0)
    assert error.value.parameter == "lr_noise"

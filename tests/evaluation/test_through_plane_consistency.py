"""LR consistency of a through-plane result (medsr_se.evaluation.through_plane_consistency) against an oracle written
here: the thick slices' model by hand (Gaussian taps summed over every row in reach, border rows repeated), PSNR from
numpy, cubic B-spline from scipy on the whole 3-D volume (as the --sheet and benchmarks/throughplane.py make it)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from medsr_se.data.degradations import gaussian_profile
from medsr_se.evaluation import through_plane_consistency as tpc


def degrade_by_hand(volume: np.ndarray, axis: int, r: int, fwhm: float) -> np.ndarray:
    """Thick slice k = Σ_t w(t − c_k)·x[clip(t)] / Σ_t w(t − c_k), c_k = r·k + (r − 1)/2, w = exp(−t²/2σ²),
    σ = fwhm / 2.3548, over every integer t within 10σ of c_k (border slices repeated beyond the volume)."""
    sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
    moved = np.moveaxis(np.asarray(volume, np.float64), axis, 0)
    n = moved.shape[0]
    out = []
    for k in range(n // r):
        centre = r * k + (r - 1) / 2
        reach = int(math.ceil(10 * sigma)) + 1
        taps = np.arange(math.floor(centre) - reach, math.ceil(centre) + reach + 1)
        weights = np.exp(-0.5 * ((taps - centre) / sigma) ** 2)
        rows = moved[np.clip(taps, 0, n - 1)]
        out.append(np.tensordot(weights / weights.sum(), rows, axes=1))
    return np.moveaxis(np.stack(out), 0, axis)


def psnr_by_hand(candidate: np.ndarray, thick: np.ndarray, mask: np.ndarray | None) -> float:
    peak = float(thick.max() - thick.min())
    error = (candidate.astype(np.float64) - thick) ** 2
    return 10 * math.log10(peak ** 2 / float(error[mask].mean() if mask is not None else error.mean()))


def smooth_volume(shape, seed: int = 0) -> np.ndarray:
    """A smooth positive 'head' on a zero background: random blobs, a box of zeros around them."""
    rng = np.random.default_rng(seed)
    values = ndimage.gaussian_filter(rng.random(shape), 1.5) * 1000
    values -= values.min()
    values[:2] = 0  # background (below the mask's threshold)
    return values.astype(np.float32)


@pytest.mark.parametrize("axis,r,fwhm,offset", [(2, 3, 3.0, 0.0), (0, 4, 2.4, -1024.0), (1, 2, 2.0, 0.0)])
def test_the_numbers_are_the_hand_made_degradation_and_psnr(axis, r, fwhm, offset):
    """Result and cubic B-spline PSNR (inside the mask and whole) and RMSE equal the oracle's to 1e-4 dB; the mask
    is above min + 10 % of the range (a CT-like offset of -1024 keeps the same voxels in it)."""
    shape = [9, 10, 11]
    shape[axis] = 6
    thick = smooth_volume(shape) + np.float32(offset)
    result = np.repeat(thick, r, axis=axis) + np.random.default_rng(1).normal(0, 5, [
        n * (r if a == axis else 1) for a, n in enumerate(shape)]).astype(np.float32)
    measured = tpc.lr_consistency(thick, result, gaussian_profile(fwhm), r, axis)
    thick64 = thick.astype(np.float64)
    mask = thick64 > thick64.min() + 0.1 * (thick64.max() - thick64.min())
    assert 0 < mask.sum() < mask.size
    zoom = [1] * 3
    zoom[axis] = r
    cubic = ndimage.zoom(thick, zoom, order=3, mode="nearest", grid_mode=True)
    for agreement, candidate in ((measured.result, result), (measured.cubic, cubic)):
        again = degrade_by_hand(candidate, axis, r, fwhm)
        assert agreement.psnr_db_mask == pytest.approx(psnr_by_hand(again, thick64, mask), abs=1e-4)
        assert agreement.psnr_db_whole == pytest.approx(psnr_by_hand(again, thick64, None), abs=1e-4)
        assert agreement.rmse_whole == pytest.approx(math.sqrt(((again - thick64) ** 2).mean()), rel=1e-5)
    assert measured.mask_voxels == int(mask.sum()) and measured.voxels == thick.size
    assert measured.data_range == pytest.approx(float(thick.max() - thick.min()))


def test_noise_lowers_it_and_the_truth_is_consistent():
    """The HR volume the thick slices were made from matches them to float rounding; the same with noise added scores
    far lower, and the noisier the lower."""
    r, fwhm = 3, 3.0
    truth = smooth_volume((12, 10, 18))
    thick = degrade_by_hand(truth, 2, r, fwhm).astype(np.float32)
    rng = np.random.default_rng(2)
    scores = [tpc.lr_consistency(thick, truth + rng.normal(0, sigma, truth.shape).astype(np.float32),
                                 gaussian_profile(fwhm), r, 2).result for sigma in (0.0, 5.0, 20.0)]
    assert scores[0].rmse_mask < 1e-3  # float32 rounding of values up to ~1000
    assert scores[0].psnr_db_mask is None or scores[0].psnr_db_mask > 100
    assert scores[1].psnr_db_mask < 70 and scores[2].psnr_db_mask < scores[1].psnr_db_mask - 10
    assert scores[2].psnr_db_whole < scores[1].psnr_db_whole


def test_repeated_slices_are_not_consistent_under_a_gaussian_profile():
    """Sanity: each thick slice repeated r times, blurred by a Gaussian of FWHM r and sampled, mixes in the
    neighbouring slices, so it does not give the thick slices back; under a box profile r taps wide it does."""
    from medsr_se.data.degradations import kernel_profile

    r = 4
    thick = (np.random.default_rng(3).random((10, 12, 8)) * 1000).astype(np.float32)
    repeated = np.repeat(thick, r, axis=2)
    gaussian = tpc.lr_consistency(thick, repeated, gaussian_profile(float(r)), r, 2).result
    assert gaussian.rmse_mask > 10.0 and gaussian.psnr_db_mask < 40
    again = degrade_by_hand(repeated, 2, r, float(r))
    assert gaussian.rmse_whole == pytest.approx(math.sqrt(((again - thick) ** 2).mean()), rel=1e-5)
    box = tpc.lr_consistency(thick, repeated, kernel_profile(np.ones(r)), r, 2).result
    assert box.rmse_whole < 1e-3


def test_slabs_give_the_same_numbers_as_the_whole_volume(monkeypatch):
    thick = smooth_volume((7, 9, 5))
    result = np.repeat(thick, 3, axis=2) * 1.01
    whole = tpc.lr_consistency(thick, result, gaussian_profile(2.0), 3, 2)
    monkeypatch.setattr(tpc, "SLAB_VOXELS", 40)  # one index of the slab axis at a time
    assert len(list(tpc.slabs(thick, result, 2, 3))) == 7
    sliced = tpc.lr_consistency(thick, result, gaussian_profile(2.0), 3, 2)
    for name in ("psnr_db_mask", "psnr_db_whole", "rmse_mask", "rmse_whole"):
        assert getattr(sliced.result, name) == pytest.approx(getattr(whole.result, name), rel=1e-9)
        assert getattr(sliced.cubic, name) == pytest.approx(getattr(whole.cubic, name), rel=1e-5)


def test_a_4d_volume_is_measured_whole():
    """(x, y, slices, time): every 3-D volume counts; the oracle measures them one by one and pools the squares."""
    thick = np.stack([smooth_volume((6, 7, 5), seed) for seed in (0, 1)], axis=3)
    result = np.repeat(thick, 2, axis=2) + 3.0
    measured = tpc.lr_consistency(thick, result, gaussian_profile(2.0), 2, 2)
    squares = [(degrade_by_hand(result[..., t], 2, 2, 2.0) - thick[..., t]) ** 2 for t in (0, 1)]
    assert measured.voxels == thick.size
    assert measured.result.rmse_whole == pytest.approx(math.sqrt(np.mean(np.stack(squares))), rel=1e-5)


def test_undefined_numbers_are_none_and_a_wrong_shape_is_a_bug():
    constant = np.full((4, 4, 3), 7.0, np.float32)
    flat = tpc.lr_consistency(constant, np.full((4, 4, 6), 7.0, np.float32), gaussian_profile(2.0), 2, 2)
    assert flat.result.psnr_db_mask is None and flat.result.rmse_mask is None  # nothing above the threshold
    assert flat.result.psnr_db_whole is None and flat.result.rmse_whole == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="a result of shape"):
        tpc.lr_consistency(constant, np.zeros((4, 4, 7), np.float32), gaussian_profile(2.0), 2, 2)

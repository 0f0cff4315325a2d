"""Data consistency of a through-plane result (medsr_se.inference.data_consistency): x' = x + A⁺(y − A x) along the
slice axis. The oracle for A is the training degradation itself, ``degrade`` applied to each unit column one at a
time here (not the module's matrix), and for the minimal correction LAPACK's minimum-norm least squares."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from medsr_se.data.degradations import degrade, gaussian_profile, load_profile
from medsr_se.inference import data_consistency as dc
from medsr_se.io.scans import ThroughPlaneError

SLICES = 5  # N thick slices per line


def oracle_operator(profile, r: int, slices: int) -> np.ndarray:
    """A: (N, r·N), column j = degrade of the j-th unit vector, each column on its own (a 1-pixel-wide image)."""
    columns = []
    for j in range(r * slices):
        unit = np.zeros((r * slices, 1))
        unit[j] = 1.0
        columns.append(degrade(unit, profile, r)[:, 0])
    return np.stack(columns, axis=1).astype(np.float64)


def apply_along(operator: np.ndarray, values: np.ndarray, axis: int) -> np.ndarray:
    return np.moveaxis(np.tensordot(operator, np.moveaxis(values, axis, 0), axes=1), 0, axis)


def volumes(axis: int, r: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(thin x with r·N slices along ``axis``, thick y with N), random, float32 as apply_network / read_scan give."""
    rng = np.random.default_rng(seed)
    thick_shape = [4, 6, 3]
    thick_shape[axis] = SLICES
    thin_shape = list(thick_shape)
    thin_shape[axis] *= r
    return ((rng.random(thin_shape) * 200 - 50).astype(np.float32),
            (rng.random(thick_shape) * 200 - 50).astype(np.float32))


@pytest.fixture(params=["gaussian", "npy kernel"])
def profile(request, tmp_path):
    if request.param == "gaussian":
        return gaussian_profile(2.5)
    np.save(tmp_path / "kernel.npy", np.array([1.0, 3.0, 4.0, 2.0, 1.0], np.float32))  # asymmetric, 5 taps
    return load_profile(tmp_path / "kernel.npy")


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("r", [2, 3, 4, 6])
def test_the_training_degradation_of_the_result_gives_the_thick_slices(profile, r, axis):
    """A x' = y to ~1e-10 relative, A the training degradation column by column; and ``degrade`` itself, run on the
    result's lines along the slice axis (float32, as training), gives y to float32 precision."""
    thin, thick = volumes(axis, r)
    fixed = dc.make_consistent(thin, thick, axis, profile, r)
    assert fixed.values.dtype == np.float64 and fixed.values.shape == thin.shape
    operator = oracle_operator(profile, r, SLICES)
    scale = float(np.abs(thick).max())
    np.testing.assert_allclose(apply_along(operator, fixed.values, axis), thick, rtol=0, atol=1e-10 * scale)
    assert fixed.rank == SLICES and fixed.mismatch < 1e-10 * scale
    lines = np.moveaxis(fixed.values, axis, 0).reshape(r * SLICES, -1)
    degraded = np.moveaxis(degrade(lines, profile, r).reshape(np.moveaxis(thick, axis, 0).shape), 0, axis)
    np.testing.assert_allclose(degraded, thick, rtol=0, atol=1e-5 * scale)
    before = np.abs(apply_along(operator, thin.astype(np.float64), axis) - thick).max()
    assert before > 1.0  # random x was far from consistent: the test is not passing by luck


@pytest.mark.parametrize("r", [2, 4])
def test_the_correction_is_the_minimal_one(profile, r):
    """x' − x is LAPACK's minimum-norm solution of A d = y − A x (gelsd), so it lies in the range of Aᵀ: it has no
    component in A's null space (what the thick slices cannot see is left as the network made it)."""
    thin, thick = volumes(2, r, seed=1)
    fixed = dc.make_consistent(thin, thick, 2, profile, r)
    operator = oracle_operator(profile, r, SLICES)
    x = thin.reshape(-1, r * SLICES).T.astype(np.float64)
    residual = thick.reshape(-1, SLICES).T - operator @ x
    minimal = np.linalg.lstsq(operator, residual, rcond=None)[0]
    correction = fixed.values.reshape(-1, r * SLICES).T - x
    np.testing.assert_allclose(correction, minimal, rtol=0, atol=1e-9 * np.abs(minimal).max())
    null_space = np.linalg.svd(operator)[2][SLICES:]  # rows: an orthonormal basis of A's null space
    assert np.abs(null_space @ correction).max() < 1e-9 * np.abs(correction).max()
    assert fixed.largest_correction == pytest.approx(np.abs(correction).max(), rel=1e-12)


@pytest.mark.parametrize("r", [2, 3])
def test_a_result_already_consistent_is_left_unchanged(profile, r):
    rng = np.random.default_rng(2)
    thin = rng.random((3, 4, r * SLICES)) * 100
    thick = apply_along(oracle_operator(profile, r, SLICES), thin, 2)
    fixed = dc.make_consistent(thin, thick, 2, profile, r)
    np.testing.assert_allclose(fixed.values, thin, rtol=0, atol=1e-10)
    assert fixed.largest_correction < 1e-10


@pytest.mark.parametrize("level", [0.0, 1000.0])
def test_constant_volumes_stay_finite_and_constant(level):
    """A constant thick scan and a constant result of the same level (zero too: no range to divide by) are
    consistent already; a result of another level is moved to it (rows of A sum to 1), finite."""
    profile = gaussian_profile(3.0)
    thick = np.full((3, 4, SLICES), level, np.float32)
    fixed = dc.make_consistent(np.full((3, 4, 3 * SLICES), level, np.float32), thick, 2, profile, 3)
    assert np.isfinite(fixed.values).all() and np.abs(fixed.values - level).max() <= 1e-6 * max(level, 1)
    assert fixed.input_range == 0 and "largest correction" in dc.consistency_note(fixed, 3)
    other = dc.make_consistent(np.full((3, 4, 3 * SLICES), level + 7, np.float32), thick, 2, profile, 3)
    assert np.isfinite(other.values).all()
    np.testing.assert_allclose(apply_along(oracle_operator(profile, 3, SLICES), other.values, 2), thick, atol=1e-9)


def test_more_dimensions_and_many_blocks(monkeypatch):
    """A 4-D array (the 4th axis another volume) is corrected per line too; blocks of lines smaller than the array
    (BLOCK_VALUES cut down) give the same result."""
    profile = gaussian_profile(2.0)
    rng = np.random.default_rng(3)
    thin, thick = rng.random((5, 2 * SLICES, 4, 2)), rng.random((5, SLICES, 4, 2))
    whole = dc.make_consistent(thin, thick, 1, profile, 2)
    monkeypatch.setattr(dc, "BLOCK_VALUES", 1)
    blocks = dc.make_consistent(thin, thick, 1, profile, 2)
    np.testing.assert_array_equal(blocks.values, whole.values)
    operator = oracle_operator(profile, 2, SLICES)
    np.testing.assert_allclose(apply_along(operator, whole.values, 1), thick, atol=1e-12)


def test_a_rank_deficient_operator_is_least_squares_and_says_so(tmp_path, caplog):
    """A box kernel far wider than the line (33 taps, r·N = 10): every thick slice is nearly the same mean, A has
    rank < N. x' − x is then the minimum-norm least-squares correction (lstsq) and A x' is y's projection onto A's
    range; a warning and the note say the match is least-squares only."""
    np.save(tmp_path / "box.npy", np.ones(33))
    profile = load_profile(tmp_path / "box.npy")
    r = 2
    operator = oracle_operator(profile, r, SLICES)
    assert np.linalg.matrix_rank(operator) < SLICES
    rng = np.random.default_rng(4)
    thin, thick = rng.random((2, 3, r * SLICES)), rng.random((2, 3, SLICES))
    with caplog.at_level(logging.WARNING, logger="medsr_se"):
        fixed = dc.make_consistent(thin, thick, 2, profile, r)
    assert fixed.rank < SLICES and fixed.mismatch > 1e-3
    x, y = thin.reshape(-1, r * SLICES).T, thick.reshape(-1, SLICES).T
    minimal = np.linalg.lstsq(operator, y - operator @ x, rcond=1e-7)[0]
    np.testing.assert_allclose(fixed.values.reshape(-1, r * SLICES).T - x, minimal, atol=1e-8)
    projection = operator @ np.linalg.lstsq(operator, y, rcond=1e-7)[0]
    np.testing.assert_allclose(operator @ fixed.values.reshape(-1, r * SLICES).T, projection, atol=1e-8)
    assert "least squares" in caplog.text and f"rank {fixed.rank}" in caplog.text
    assert "least squares only" in dc.consistency_note(fixed, r)


def test_an_ill_conditioned_profile_is_a_warning_a_usual_one_is_not(caplog):
    """40 slices, a Gaussian of FWHM 3 slice spacings: A's condition number is about 2e3 (a warning naming the
    parameter that turns it off); FWHM = the slice spacing: about 1.7, no warning."""
    rng = np.random.default_rng(5)
    thin, thick = rng.random((2, 2, 80)), rng.random((2, 2, 40))
    with caplog.at_level(logging.WARNING, logger="medsr_se"):
        usual = dc.make_consistent(thin, thick, 2, gaussian_profile(2.0), 2)
        assert not caplog.records and usual.condition < 3
        wide = dc.make_consistent(thin, thick, 2, gaussian_profile(6.0), 2)
    assert wide.condition > dc.ILL_CONDITIONED and "condition number" in caplog.text
    assert "data_consistency off" in caplog.text


def test_the_note_says_integer_rounding_makes_the_match_approximate():
    fixed = dc.make_consistent(*volumes(2, 2), 2, gaussian_profile(2.0), 2)
    assert "rounding" not in dc.consistency_note(fixed, 2, np.dtype(np.float32))
    for dtype in (np.int16, np.uint16, np.uint8):
        assert f"written as {np.dtype(dtype).name}, rounding" in dc.consistency_note(fixed, 2, np.dtype(dtype))


@pytest.mark.parametrize("change,says", [
    (lambda thin, thick: (thin[..., :-1], thick), "thin: shape"),
    (lambda thin, thick: (thin, thick[0]), "axis=2"),
    (lambda thin, thick: (np.where(np.arange(thin.shape[2]) == 3, np.nan, thin), thick), "thin: 24 NaN"),
    (lambda thin, thick: (thin, np.where(np.arange(thick.shape[2]) == 0, np.inf, thick)), "thick: 24 NaN / ±inf"),
])
def test_what_does_not_fit_is_one_line_naming_it(change, says):
    thin, thick = change(*volumes(2, 2))
    with pytest.raises(ThroughPlaneError) as raised:
        dc.make_consistent(thin, thick, 2, gaussian_profile(2.0), 2)
    assert says in str(raised.value) and "\n" not in str(raised.value)

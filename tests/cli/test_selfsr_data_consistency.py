"""medsr-selfsr --data-consistency through the command (an untrained tiny through-plane --model: no training): the
written result, degraded by the training degradation (``degrade`` with the profile the note names, here the oracle),
gives the thick input back to within the integer type's rounding step; without the flag it does not."""

from __future__ import annotations

import nibabel
import numpy as np
import pydicom

from medsr_se.cli import selfsr
from medsr_se.data.degradations import degrade, gaussian_profile
from medsr_se.io.scans import read_scan
from tests.cli.test_selfsr import R, thick_scan, through_plane_model
from tests.io.test_through_plane_geometry import mr_series


def degraded_along(values: np.ndarray, axis: int, fwhm_pixels: float, r: int) -> np.ndarray:
    """The training degradation (Gaussian profile, every r-th sample) on every line along ``axis``."""
    moved = np.moveaxis(np.asarray(values, np.float64), axis, 0)
    lines = degrade(moved.reshape(moved.shape[0], -1), gaussian_profile(fwhm_pixels), r).astype(np.float64)
    return np.moveaxis(lines.reshape((-1,) + moved.shape[1:]), 0, axis)


def test_the_nifti_result_gives_the_thick_slices_back_within_rounding(tmp_path, capsys):
    scan = thick_scan(tmp_path / "thick.nii.gz")  # int16, 2 mm in-plane, 6 mm slices along axis 2: FWHM 3 px
    model = through_plane_model(tmp_path / "g3.pth")
    thick = np.asarray(nibabel.load(str(scan)).dataobj, np.float64)
    errors = {}
    for flag in ([], ["--data-consistency", "--sheet"]):
        out = tmp_path / ("dc" if flag else "plain")
        assert selfsr.main(["-i", str(scan), "-o", str(out), "--model", str(model), "--device", "cpu", *flag]) == 0
        err = capsys.readouterr().err
        result = nibabel.load(str(out / "thick_selfsr_x3.nii.gz"))
        assert result.get_data_dtype() == np.int16 and result.shape == (33, 41, 8 * R)
        values = np.asarray(result.dataobj, np.float64)  # nibabel's slope applied
        step = float(result.dataobj.slope)
        errors[bool(flag)] = (np.abs(degraded_along(values, 2, 3.0, R) - thick).max(), step)
        assert ("data consistency applied" in err) == bool(flag)
    error, step = errors[True]
    assert "written as int16, rounding to its steps makes that match approximate" in err
    assert "largest correction" in err and "the scan's 8 slices back" in err
    assert error <= step / 2 + 1e-3 * step  # each thick value a weighted mean (weights sum 1) of rounded ones
    assert errors[False][0] > 10 * step  # the untrained network alone is far from it


def test_a_dicom_series_result_matches_within_its_integer_steps(tmp_path, capsys):
    series = mr_series(tmp_path / "series", count=4, gap=0.3125 * R)  # SliceThickness 0.9 mm: 2.88 px
    model = through_plane_model(tmp_path / "g3.pth")
    assert selfsr.main(["-i", str(series), "-o", str(tmp_path / "o"), "--model", str(model), "--device", "cpu",
                        "--data-consistency", "--scale", "3"]) == 0  # the network's slices, not resampled
    err = capsys.readouterr().err
    assert "rounding to its steps" in err and "resampled" not in err
    thick, result = read_scan(series), read_scan(tmp_path / "o" / "series_selfsr_x3")
    assert result.values.shape == (4 * R, 64, 64) and result.geometry.axis == 0
    slope = float(pydicom.dcmread(str(next((tmp_path / "o" / "series_selfsr_x3").iterdir()))).get("RescaleSlope", 1))
    error = np.abs(degraded_along(result.values, 0, 0.9 / 0.3125, R) - thick.values).max()
    assert error <= slope / 2 + 1e-3


def test_a_wide_profile_warns_under_the_commands_flag(tmp_path, capsys):
    """--slice-thickness 20 mm on 6 mm slices (FWHM 3.3 slice spacings): A is ill-conditioned, a warning that says
    to compare with --data-consistency off (the library's parameter shown as the flag)."""
    scan = thick_scan(tmp_path / "thick.nii.gz")
    model = through_plane_model(tmp_path / "g3.pth")
    assert selfsr.main(["-i", str(scan), "-o", str(tmp_path / "o"), "--model", str(model), "--device", "cpu",
                        "--slice-thickness", "20", "--data-consistency"]) == 0
    warning = [line for line in capsys.readouterr().err.splitlines() if "condition number" in line]
    assert len(warning) == 1 and warning[0].startswith("warning: data consistency:")
    assert "compare with --data-consistency off" in warning[0]


def test_a_result_resampled_after_the_correction_says_its_match_is_approximate(tmp_path, capsys):
    """--target-spacing 1.7 mm on 6 mm slices: the network runs at r = 4 and its corrected 4·N slices are then
    resampled to 1.7 mm; the note says the match holds there only approximately."""
    scan = thick_scan(tmp_path / "thick.nii.gz")
    model = through_plane_model(tmp_path / "g4.pth", r=4)
    assert selfsr.main(["-i", str(scan), "-o", str(tmp_path / "o"), "--model", str(model), "--device", "cpu",
                        "--target-spacing", "1.7", "--data-consistency", "--sheet"]) == 0
    err = capsys.readouterr().err
    assert "data consistency applied" in err and "resampled to 1.7 mm, where the match is approximate" in err

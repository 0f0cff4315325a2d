"""medsr-infer refuses option values that cannot mean what the user wants (issue 22, defects 11 and 17): a window
the data collapse in, ``--window`` with ``--intensity``, an intensity option without a volume to apply it to."""

from __future__ import annotations

import numpy as np
import pytest

from medsr_se.cli import infer
from medsr_se.io.intensity import ct_window
from tests.medical import bicubic_skip_model, ct_series, pydicom_file


@pytest.fixture(scope="module")
def gray_model(tmp_path_factory) -> str:
    return bicubic_skip_model(tmp_path_factory.mktemp("model") / "net_g.pth", scale=2, channels=1)


@pytest.fixture(scope="module")
def ct_folder(tmp_path_factory):
    """One CT series of 2 slices (pydicom's CT_small.dcm: -896 ... 1167 HU)."""
    return ct_series(tmp_path_factory.mktemp("ct") / "in", volumes=1, slices=2) / "patient0"


def run(*args: str) -> int:
    return infer.main(list(args))


def ct_hu() -> np.ndarray:
    import pydicom

    dataset = pydicom.dcmread(str(pydicom_file("CT_small.dcm")))
    return dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)


def test_window_fit_counts_the_levels_the_data_span():
    """Oracle: the data's range inside the window over the window's width, times the 65535 levels of 16 bits."""
    from medsr_se.io.intensity import window_fit

    values = ct_hu()
    low, high = values.min(), values.max()
    assert window_fit(ct_window("full"), values, "--window full") is None  # 2063 of 4095 HU: 33000 levels
    collapsed = (high - low) / 2e9 * 65535  # 0.068 levels
    with pytest.raises(ValueError, match=rf"--window -1e9,1e9: .* span {collapsed:.2g} of the 65535 levels"):
        window_fit(ct_window("-1e9,1e9"), values, "--window -1e9,1e9")
    few = (high - low) / 2e6 * 65535  # 67.6 levels: kept, with a warning
    assert f"span only {few:.3g} of the 65535 levels" in window_fit(ct_window("-1e6,1e6"), values, "--window w")
    with pytest.raises(ValueError, match=r"all its values \(-896 to 1167\) lie outside \[5000, 6000\] HU"):
        window_fit(ct_window("5000,6000"), values, "--window 5000,6000")
    assert window_fit(ct_window("-1e9,1e9"), np.full((4, 4), 7.0), "--window w") is None  # constant data


def test_a_window_the_data_collapse_in_is_refused_before_anything_is_written(tmp_path, gray_model, ct_folder,
                                                                             capsys):
    assert run("-i", str(ct_folder), "-o", str(tmp_path / "out"), "--model", gray_model,
               "--window=-1e9,1e9") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --window -1e9,1e9: {ct_folder}") and err.count("\n") == 1
    assert "collapse to one level" in err
    assert not (tmp_path / "out").exists()


def test_a_very_wide_window_is_a_warning(tmp_path, gray_model, ct_folder, capsys):
    assert run("-i", str(ct_folder), "-o", str(tmp_path / "out"), "--model", gray_model, "--window=-1e6,1e6") == 0
    assert "warning: --window -1e6,1e6:" in capsys.readouterr().err


def test_window_and_intensity_together_are_refused(tmp_path, gray_model, ct_folder, capsys):
    assert run("-i", str(ct_folder), "-o", str(tmp_path / "out"), "--model", gray_model, "--window", "lung",
               "--intensity", "minmax") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --window lung and --intensity minmax") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_intensity_options_without_a_volume_are_refused(tmp_path, gray_model, capsys):
    import cv2

    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "a.png"), np.zeros((8, 8), np.uint8))
    for option in (["--window", "lung"], ["--intensity", "minmax"]):
        assert run("-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", gray_model, *option) == 2
        assert capsys.readouterr().err.startswith(f"error: {option[0]} {option[1]}: applies to CT/MRI volumes")
    assert not (tmp_path / "out").exists()


def test_the_outside_warning_names_the_window_once(tmp_path, gray_model, ct_folder, capsys):
    assert run("-i", str(ct_folder), "-o", str(tmp_path / "out"), "--model", gray_model, "--window", "brain") == 0
    err = capsys.readouterr().err
    assert "lie outside [0, 80] HU (window brain)" in err and "window window" not in err

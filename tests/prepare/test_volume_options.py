"""Preparing CT / MRI volumes: options and sources that cannot give what the user wants are refused in one line
(issue 22, defects 10, 11 and 17): mixed modalities pooled into one window, ``--window`` with ``--intensity``, a
window the data collapse in, a split that cannot be made; ``--skip-bad`` skips an unreadable ``.dcm`` and says so."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from medsr_se.cli import prepare as prepare_cli
from tests.medical import ct_series, mr_series, nibabel_data

pytest.importorskip("pydicom", reason="the medical extra is part of the test extra")

SMALL = ["--scales", "2", "--crop-size", "64", "--step", "64", "--workers", "1", "--n-test", "1"]


def prepare(source: Path, output: Path, *extra: str) -> int:
    return prepare_cli.main([str(source), "-o", str(output), *SMALL, *extra])


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and err.rstrip("\n").splitlines()[-1] == lines[0], err
    return lines[0]


@pytest.fixture()
def ct_and_mr(tmp_path) -> Path:
    """Two CT series in HU (CT_small.dcm) and nibabel's two-slice MR series, in one folder."""
    source = ct_series(tmp_path / "scans", volumes=2, slices=1)
    mr_series(source / "mr")
    return source


def test_a_mixed_modality_source_is_refused_naming_a_file_of_each(ct_and_mr, tmp_path, capsys):
    assert prepare(ct_and_mr, tmp_path / "out") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "mixed modalities" in line and "--mixed-modalities" in line
    assert str(ct_and_mr / "patient0" / "slice1.dcm") in line and str(ct_and_mr / "mr") in line
    assert not (tmp_path / "out").exists()


def test_mixed_modalities_are_pooled_only_when_asked(ct_and_mr, tmp_path, capsys):
    assert prepare(ct_and_mr, tmp_path / "out", "--mixed-modalities", "--intensity", "minmax") == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["modality"] == "CT/MR" and manifest["intensity"]["kind"] == "minmax"
    assert "warning: pooling CT in HU and MR" in capsys.readouterr().err


def test_a_nifti_beside_ct_series_is_mixed_too(tmp_path, capsys):
    source = ct_series(tmp_path / "scans", volumes=2, slices=1)
    shutil.copy(nibabel_data() / "anatomical.nii", source / "head.nii")
    assert prepare(source, tmp_path / "out") == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(source / "head.nii") in line and "NIfTI" in line


def test_window_and_intensity_together_are_one_error_naming_both(ct_and_mr, tmp_path, capsys):
    assert prepare(ct_and_mr, tmp_path / "out", "--window", "lung", "--intensity", "minmax") == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("error: --window lung and --intensity minmax:")
    assert not (tmp_path / "out").exists()


def test_a_window_the_data_collapse_in_is_refused(tmp_path, capsys):
    source = ct_series(tmp_path / "scans", volumes=2, slices=1)
    assert prepare(source, tmp_path / "out", "--window=-1e9,1e9") == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: --window -1e9,1e9: {source / 'patient0'}") and "collapse to one level" in line
    assert not (tmp_path / "out").exists()


def test_intensity_options_on_an_image_source_are_refused(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / "photos" / name), np.zeros((64, 64, 3), np.uint8))
    assert prepare(tmp_path / "photos", tmp_path / "out", "--window", "lung") == 2
    assert one_error_line(capsys.readouterr().err).startswith("error: --window lung: applies to CT/MRI volumes")


def test_one_volume_cannot_be_split_and_says_so(tmp_path, capsys):
    source = ct_series(tmp_path / "scans", volumes=1, slices=2)
    assert prepare(source, tmp_path / "out") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "between 1 and 0" not in line
    assert "needs at least 2 volumes" in line and "has 1" in line


def test_one_image_cannot_be_split_and_says_so(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    cv2.imwrite(str(tmp_path / "photos" / "a.png"), np.zeros((64, 64, 3), np.uint8))
    assert prepare(tmp_path / "photos", tmp_path / "out") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "between 1 and 0" not in line and "needs at least 2 images" in line and "has 1" in line


def test_a_test_list_leaving_no_training_image_is_refused(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(tmp_path / "photos" / name), np.zeros((64, 64, 3), np.uint8))
    (tmp_path / "all.txt").write_text("a\nb\n")
    assert prepare(tmp_path / "photos", tmp_path / "out", "--test-list", str(tmp_path / "all.txt")) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--test-list" in line and "no training" in line and "skipping" not in line


@pytest.fixture()
def ct_with_a_broken_slice(tmp_path) -> Path:
    source = ct_series(tmp_path / "scans", volumes=2, slices=2)
    (source / "patient1" / "broken.dcm").write_bytes(b"DICM but not really" * 3)
    return source


def test_an_unreadable_dcm_is_one_error_line_without_skip_bad(ct_with_a_broken_slice, tmp_path, capsys):
    assert prepare(ct_with_a_broken_slice, tmp_path / "out") == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(ct_with_a_broken_slice / "patient1" / "broken.dcm") in line and "--skip-bad" in line


def test_skip_bad_skips_an_unreadable_dcm_and_records_it(ct_with_a_broken_slice, tmp_path, capsys):
    assert prepare(ct_with_a_broken_slice, tmp_path / "out", "--skip-bad") == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    broken = str(ct_with_a_broken_slice / "patient1" / "broken.dcm")
    assert [entry["file"] for entry in manifest["skipped"]] == [broken]
    assert broken in manifest["skipped"][0]["error"]
    assert sum(len(v["slices"]) for v in manifest["volumes"]["volumes"].values()) == 4  # every readable slice
    assert f"warning: skipped: {broken}" in capsys.readouterr().err


def test_the_skip_bad_hint_is_on_the_error_line(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    for name in ("a.png", "b.png", "c.png"):
        cv2.imwrite(str(tmp_path / "photos" / name), np.zeros((64, 64, 3), np.uint8))
    (tmp_path / "photos" / "c.png").write_bytes(b"\x89PNG broken")
    assert prepare(tmp_path / "photos", tmp_path / "out") == 2
    assert "--skip-bad" in one_error_line(capsys.readouterr().err)


def test_skip_bad_with_nothing_readable_left_names_a_file(tmp_path, capsys):
    (tmp_path / "scans").mkdir()
    (tmp_path / "scans" / "x.dcm").write_bytes(b"junk")
    assert prepare(tmp_path / "scans", tmp_path / "out", "--skip-bad") == 2
    line = one_error_line(capsys.readouterr().err)
    assert "all 1 DICOM / NIfTI file(s) are unreadable" in line and str(tmp_path / "scans" / "x.dcm") in line

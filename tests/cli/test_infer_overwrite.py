"""medsr-infer never replaces a file it did not create (issue 22, defects 3 and 4): a result whose path already
holds a file is refused before anything is written unless ``--overwrite`` is given, and no result lands inside the
input folder, however the output folder is spelt (parent of the input, symlinks)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from medsr_se.cli import infer
from tests.medical import bicubic_skip_model, ct_series, nibabel_data


@pytest.fixture(scope="module")
def gray_model(tmp_path_factory) -> str:
    return bicubic_skip_model(tmp_path_factory.mktemp("model") / "net_g.pth", scale=2, channels=1)


def write_images(folder: Path, names: list[str], size: int = 12) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        assert cv2.imwrite(str(folder / name), rng.integers(0, 255, (size, size), dtype=np.uint8))


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (hidden ones too) with its bytes: what 'nothing changed' compares."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def run_infer(*args: str) -> int:
    return infer.main(list(args))


def test_an_existing_image_result_is_refused_before_anything_is_written(tmp_path, gray_model, capsys):
    scan = tmp_path / "scan"
    write_images(scan / "ct", ["a.png", "b.png"])
    (scan / "a.png").write_bytes(b"written by another acquisition")
    before = snapshot(scan)
    assert run_infer("-i", str(scan / "ct"), "-o", str(scan), "--model", gray_model) == 2
    err = capsys.readouterr().err
    assert err == f"error: {scan / 'a.png'} exists (use --overwrite to replace it)\n"
    assert snapshot(scan) == before  # b.png's result was not written either
    assert run_infer("-i", str(scan / "ct"), "-o", str(scan), "--model", gray_model, "--overwrite", "-q") == 0
    assert cv2.imread(str(scan / "a.png"), cv2.IMREAD_UNCHANGED).shape == (24, 24)
    assert snapshot(scan / "ct") == {name[3:]: data for name, data in before.items() if name.startswith("ct/")}


def test_an_existing_nifti_result_is_refused(tmp_path, gray_model, capsys):
    scan = tmp_path / "scan"
    (scan / "mr").mkdir(parents=True)
    shutil.copy(nibabel_data() / "anatomical.nii", scan / "mr" / "head.nii")
    (scan / "head.nii").write_bytes(b"another volume")
    before = snapshot(scan)
    assert run_infer("-i", str(scan / "mr"), "-o", str(scan), "--model", gray_model, "--intensity", "minmax") == 2
    assert capsys.readouterr().err == f"error: {scan / 'head.nii'} exists (use --overwrite to replace it)\n"
    assert snapshot(scan) == before


def test_an_existing_dicom_file_of_another_series_is_refused(tmp_path, gray_model, capsys):
    scan = tmp_path / "scan"
    ct_series(scan / "ct", volumes=1, slices=2)  # scan/ct/patient0/slice{1,2}.dcm -> scan/patient0/...
    (scan / "patient0").mkdir()
    shutil.copy(scan / "ct" / "patient0" / "slice2.dcm", scan / "patient0" / "slice2.dcm")
    before = snapshot(scan)
    assert run_infer("-i", str(scan / "ct"), "-o", str(scan), "--model", gray_model) == 2
    assert capsys.readouterr().err == (f"error: {scan / 'patient0' / 'slice2.dcm'} exists (use --overwrite to "
                                       "replace it)\n")
    assert snapshot(scan) == before  # slice1.dcm (whose path was free) was not written either


def test_overwrite_replaces_a_dicom_series_whole_and_never_merges(tmp_path, gray_model):
    """--overwrite onto a folder holding an earlier result (3 slices) of a now 2-slice series: the old series goes
    as a whole (its third slice too), so the folder holds one series, not a mix; files of other series stay."""
    import pydicom

    source, out = tmp_path / "source", tmp_path / "out"
    ct_series(tmp_path / "old", volumes=1, slices=3)
    assert run_infer("-i", str(tmp_path / "old"), "-o", str(out), "--model", gray_model, "-q") == 0
    old_uid = pydicom.dcmread(out / "patient0" / "slice3.dcm").SeriesInstanceUID
    other = tmp_path / "other"
    ct_series(other, volumes=1, slices=1)
    shutil.copy(other / "patient0" / "slice1.dcm", out / "patient0" / "unrelated.dcm")
    unrelated = (out / "patient0" / "unrelated.dcm").read_bytes()
    ct_series(source, volumes=1, slices=2)
    assert run_infer("-i", str(source), "-o", str(out), "--model", gray_model, "-q") == 2
    assert run_infer("-i", str(source), "-o", str(out), "--model", gray_model, "-q", "--overwrite") == 0
    names = sorted(path.name for path in (out / "patient0").iterdir())
    assert names == ["slice1.dcm", "slice2.dcm", "unrelated.dcm"]
    uids = {pydicom.dcmread(out / "patient0" / name).SeriesInstanceUID for name in ("slice1.dcm", "slice2.dcm")}
    assert len(uids) == 1 and old_uid not in uids
    assert (out / "patient0" / "unrelated.dcm").read_bytes() == unrelated


def test_overwrite_never_replaces_an_input(tmp_path, gray_model, capsys):
    write_images(tmp_path / "data", ["a.png"])
    before = snapshot(tmp_path)
    assert run_infer("-i", str(tmp_path / "data"), "-o", str(tmp_path / "data"), "--model", gray_model,
                     "--overwrite") == 2
    assert "results would replace inputs" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_a_folder_at_a_result_path_is_refused_even_with_overwrite(tmp_path, gray_model, capsys):
    write_images(tmp_path / "data", ["a.png"])
    (tmp_path / "out" / "a.png").mkdir(parents=True)
    for extra in ([], ["--overwrite"]):
        assert run_infer("-i", str(tmp_path / "data"), "-o", str(tmp_path / "out"), "--model", gray_model,
                         *extra) == 2
        assert f"error: {tmp_path / 'out' / 'a.png'} exists" in capsys.readouterr().err
    assert (tmp_path / "out" / "a.png").is_dir()


def test_output_above_the_input_never_writes_inside_it(tmp_path, gray_model, capsys):
    """``-i top/data -o top`` where data has a sub-folder ``data``: data/data/x.png would become top/data/x.png,
    a new file inside the input folder (read as an input next time)."""
    top = tmp_path / "top"
    write_images(top / "data", ["a.png"])
    write_images(top / "data" / "data", ["x.png"])
    before = snapshot(top)
    assert run_infer("-i", str(top / "data"), "-o", str(top), "--model", gray_model) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {top / 'data' / 'x.png'}: would be written inside the input folder ")
    assert err.count("\n") == 1
    assert snapshot(top) == before


def test_a_symlinked_output_sub_folder_into_the_input_is_refused(tmp_path, gray_model, capsys):
    write_images(tmp_path / "data" / "sub", ["y.png"])
    (tmp_path / "out").mkdir()
    os.symlink(tmp_path / "data", tmp_path / "out" / "sub")  # out/sub/y.png would be data/y.png
    before = snapshot(tmp_path / "data")
    assert run_infer("-i", str(tmp_path / "data"), "-o", str(tmp_path / "out"), "--model", gray_model) == 2
    assert "inside the input folder" in capsys.readouterr().err
    assert snapshot(tmp_path / "data") == before


def test_a_symlinked_input_folder_is_recognised_as_the_output(tmp_path, gray_model, capsys):
    write_images(tmp_path / "data", ["a.png"])
    os.symlink(tmp_path / "data", tmp_path / "alias")
    before = snapshot(tmp_path / "data")
    assert run_infer("-i", str(tmp_path / "alias"), "-o", str(tmp_path / "data" / "results"),
                     "--model", gray_model) == 2
    assert "inside the input folder" in capsys.readouterr().err
    assert snapshot(tmp_path / "data") == before


def test_a_file_where_a_result_folder_goes_is_refused_before_any_work(tmp_path, gray_model, capsys):
    scan = tmp_path / "scan"
    ct_series(scan / "ct", volumes=1, slices=2)
    (scan / "patient0").write_text("a file where the series' folder goes")
    before = snapshot(scan)
    for extra in ([], ["--overwrite"]):
        assert run_infer("-i", str(scan / "ct"), "-o", str(scan), "--model", gray_model, *extra) == 2
        assert capsys.readouterr().err.startswith(f"error: {scan / 'patient0'} exists and is not a folder")
    assert snapshot(scan) == before

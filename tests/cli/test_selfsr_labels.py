"""medsr-selfsr --labels: a segmentation drawn on the thick scan written on the result's grid
(out/<result>_labels.nii.gz), with --model (no training) and with training, beside --sheet; a label map that cannot
follow is one `error: --labels ...` line before anything is made. Oracles: nibabel's apply_affine on the two written
files, pydicom's positions of the derived series, the labels written here."""

from __future__ import annotations

import itertools

import nibabel
import numpy as np
import pydicom
import pytest
from nibabel.affines import apply_affine

from medsr_se.cli import selfsr
from tests.cli.test_selfsr import R, error_line, thick_scan, through_plane_model, tiny_recipe
from tests.io.test_label_maps import dcm2niix_like, save, series_world_ras, shifted
from tests.io.test_through_plane_geometry import mr_series


def seg_on(scan_path, path, dtype=np.int16):
    source = nibabel.load(str(scan_path))
    labels = np.zeros(source.shape, dtype)
    labels[8:20, 10:30, 2:6] = 4
    labels[3:6, 3:7, 6] = 11
    return save(labels, source.affine, path)


def check_follows(result_path, labels_path, dtype):
    result, written = nibabel.load(str(result_path)), nibabel.load(str(labels_path))
    assert written.shape == result.shape
    voxels = np.array(list(itertools.product(*[range(n) for n in written.shape])), float)
    np.testing.assert_allclose(apply_affine(written.affine, voxels), apply_affine(result.affine, voxels), atol=1e-6)
    assert written.get_data_dtype() == np.dtype(dtype)
    assert set(np.unique(np.asarray(written.dataobj))) == {0, 4, 11}


def test_labels_follow_the_result_with_a_model_and_a_sheet(tmp_path, capsys):
    scan = thick_scan(tmp_path / "thick.nii.gz")
    seg = seg_on(scan, tmp_path / "seg.nii.gz")
    model = through_plane_model(tmp_path / "g3.pth")
    out = tmp_path / "out"
    assert selfsr.main(["-i", str(scan), "-o", str(out), "--model", str(model), "--device", "cpu", "--labels",
                        str(seg), "--sheet", "-q"]) == 0
    check_follows(out / "thick_selfsr_x3.nii.gz", out / "thick_selfsr_x3_labels.nii.gz", np.int16)
    assert (out / "thick_selfsr_x3_sheet.png").stat().st_size > 0
    assert capsys.readouterr().err == ""


def test_labels_follow_a_result_resampled_to_a_target_spacing(tmp_path):
    """--target-spacing 2.5 (6 mm slices: 19 slices of 2.5 mm, not r·N): the label map has the result's grid."""
    scan = thick_scan(tmp_path / "thick.nii.gz")
    seg = seg_on(scan, tmp_path / "seg.nii.gz", np.uint8)
    model = through_plane_model(tmp_path / "g3.pth")
    assert selfsr.main(["-i", str(scan), "-o", str(tmp_path / "out"), "--model", str(model), "--device", "cpu",
                        "--labels", str(seg), "--target-spacing", "2.5", "-q"]) == 0
    result = tmp_path / "out" / "thick_selfsr_2.5mm.nii.gz"
    assert nibabel.load(str(result)).shape == (33, 41, 19)
    check_follows(result, tmp_path / "out" / "thick_selfsr_2.5mm_labels.nii.gz", np.uint8)


def test_labels_of_a_dicom_series_lie_on_the_derived_series(tmp_path):
    series = mr_series(tmp_path / "dicom", count=4, gap=0.3125 * R)
    affine, count, rows, columns = dcm2niix_like(series, False)
    labels = np.zeros((columns, rows, count), np.uint8)
    labels[20:40, 10:30, 1:3] = 1
    save(labels, affine, tmp_path / "seg.nii.gz", qform_code=1, sform_code=1)
    model = through_plane_model(tmp_path / "g3.pth")
    out = tmp_path / "out"
    assert selfsr.main(["-i", str(series), "-o", str(out), "--model", str(model), "--device", "cpu", "--labels",
                        str(tmp_path / "seg.nii.gz"), "--scale", str(R), "-q"]) == 0
    written = sorted((pydicom.dcmread(str(p)) for p in (out / "dicom_selfsr_x3").iterdir()),
                     key=lambda ds: int(ds.InstanceNumber))
    result = nibabel.load(str(out / "dicom_selfsr_x3_labels.nii.gz"))
    assert result.shape == (columns, rows, count * R) and len(written) == count * R
    row, column = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    for j in (0, 5, count * R - 1):
        got = apply_affine(result.affine, np.stack([column, rows - 1 - row, np.full_like(row, j)], -1))
        np.testing.assert_allclose(got, series_world_ras([written[j]], row, column)[0], atol=1e-3)


def float_labels(labels: np.ndarray) -> np.ndarray:
    return labels.astype(np.float32) + 0.5 * (labels > 0)


@pytest.mark.parametrize("name,make,says", [
    ("shifted", lambda labels, affine: (labels, shifted(affine, [0, 0, 0.5])), "not on the scan's grid: shifted by"),
    ("fractional", lambda labels, affine: (float_labels(labels), affine), "not integer labels"),
    ("fourd", lambda labels, affine: (np.stack([labels] * 3, 3), affine), "a 4-D image"),
])
def test_a_label_map_that_cannot_follow_is_one_error_line_before_anything_is_made(tmp_path, capsys, name, make,
                                                                                  says):
    scan = thick_scan(tmp_path / "thick.nii.gz")
    source = nibabel.load(str(scan))
    labels = np.zeros(source.shape, np.int16)
    labels[8:20, 10:30, 2:6] = 4
    values, affine = make(labels, source.affine)
    seg = save(values, affine, tmp_path / f"{name}.nii.gz")
    model = through_plane_model(tmp_path / "g3.pth")
    assert selfsr.main(["-i", str(scan), "-o", str(tmp_path / "out"), "--model", str(model), "--device", "cpu",
                        "--labels", str(seg)]) == 2
    line = error_line(capsys)
    assert line.startswith(f"error: --labels {seg}: ") and says in line
    assert not (tmp_path / "out").exists()


def test_an_existing_label_map_result_is_not_overwritten(tmp_path, capsys):
    scan = thick_scan(tmp_path / "thick.nii.gz")
    seg = seg_on(scan, tmp_path / "seg.nii.gz")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "thick_selfsr_x3_labels.nii.gz").write_bytes(b"keep me")
    model = through_plane_model(tmp_path / "g3.pth")
    assert selfsr.main(["-i", str(scan), "-o", str(tmp_path / "out"), "--model", str(model), "--device", "cpu",
                        "--labels", str(seg)]) == 2
    assert "thick_selfsr_x3_labels.nii.gz: exists" in error_line(capsys)
    assert (tmp_path / "out" / "thick_selfsr_x3_labels.nii.gz").read_bytes() == b"keep me"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["thick_selfsr_x3_labels.nii.gz"]


@pytest.mark.slow
def test_labels_follow_a_result_trained_on_the_scan(tmp_path):
    scan = thick_scan(tmp_path / "thick.nii.gz")
    seg = seg_on(scan, tmp_path / "seg.nii.gz", np.uint8)
    recipe = tiny_recipe(tmp_path / "tiny.yml", total_iter=2, checkpoint_every=2)
    out = tmp_path / "out"
    assert selfsr.main(["-i", str(scan), "-o", str(out), "-opt", str(recipe), "--iterations", "2", "--device", "cpu",
                        "--labels", str(seg), "--sheet", "-q"]) == 0
    check_follows(out / "thick_selfsr_x3.nii.gz", out / "thick_selfsr_x3_labels.nii.gz", np.uint8)
    assert (out / "thick_selfsr_x3_sheet.png").stat().st_size > 0

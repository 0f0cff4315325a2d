"""medsr-selfsr --target-spacing MM (default: the in-plane spacing) with a tiny untrained --model (no training):
a non-integer ratio gives the exact spacing asked for under a name that says it, t = D / r is today's result bit for
bit under today's name, and a bad or conflicting value is one error line naming the flag with nothing made in -o.
Oracles: the input file's affine (world positions of fractional input indices), the library's old integer path."""

from __future__ import annotations

import nibabel
import numpy as np
import pydicom
import pytest
from nibabel.affines import apply_affine

from medsr_se import throughplane as tp
from medsr_se.cli import selfsr
from tests.cli.test_selfsr import error_line, thick_scan, through_plane_model
from tests.io.test_through_plane_geometry import mr_series


def scan_09_by_5(path):
    """24 x 20 x 6 voxels of 0.9 x 0.9 x 5 mm (ratio 5.56), an offset origin, a smooth pattern."""
    affine = np.diag([0.9, 0.9, 5.0, 1.0])
    affine[:3, 3] = [-10.0, 4.0, 3.0]
    x, y, z = np.meshgrid(np.arange(24), np.arange(20), np.arange(6), indexing="ij")
    values = 500 + 300 * np.sin(x / 4.0) * np.cos(y / 5.0) + 40 * z
    nibabel.save(nibabel.Nifti1Image(values.astype(np.int16), affine), str(path))
    return path


def selfsr_main(scan, out, model, *extra) -> int:
    return selfsr.main(["-i", str(scan), "-o", str(out), "--model", str(model), "--device", "cpu", *extra])


def test_a_ratio_of_5_56_is_written_at_the_in_plane_spacing(tmp_path, capsys):
    """No flag: r = 6 runs, the result is resampled to 0.9 mm, 33 slices (was: thick_selfsr_x6.nii.gz, 36 slices of
    0.833 mm, and nothing said), named by its spacing; each voxel centre where the input's affine puts its
    fractional input index (k + 0.5)·0.9/5 − 0.5."""
    scan = scan_09_by_5(tmp_path / "thick.nii.gz")
    model = through_plane_model(tmp_path / "g6.pth", 6)
    assert selfsr_main(scan, tmp_path / "out", model) == 0
    assert "33 slices of 0.9 mm (from 6 of 5 mm" in capsys.readouterr().out
    result = nibabel.load(str(tmp_path / "out" / "thick_selfsr_0.9mm.nii.gz"))
    assert not (tmp_path / "out" / "thick_selfsr_x6.nii.gz").exists()
    assert result.shape == (24, 20, 33)
    assert [float(z) for z in result.header.get_zooms()] == [float(np.float32(0.9))] * 3
    k = np.arange(33)
    voxels = np.stack([np.full(33, 3), np.full(33, 7), k], axis=1)
    inputs = voxels.astype(np.float64)
    inputs[:, 2] = (k + 0.5) * 0.9 / 5.0 - 0.5
    source = nibabel.load(str(scan))
    np.testing.assert_allclose(apply_affine(result.affine, voxels), apply_affine(source.affine, inputs), atol=1e-4)


def test_a_target_of_d_over_r_is_todays_result_bit_for_bit(tmp_path, capsys):
    """thick_scan: 2 mm pixels, 6 mm slices. --target-spacing 2 (and 2.000000002, within the tolerance) writes
    thick_selfsr_x3.nii.gz, the same bytes as --scale 3 and as the library's integer path (apply_network, then
    write_result with r = 3)."""
    scan = thick_scan(tmp_path / "thick.nii.gz")
    model = through_plane_model(tmp_path / "g3.pth", 3)
    written = {}
    for name, extra in (("target", ["--target-spacing", "2"]), ("near", ["--target-spacing", "2.000000002"]),
                        ("scale", ["--scale", "3"]), ("both", ["--scale", "3", "--target-spacing", "2"])):
        assert selfsr_main(scan, tmp_path / name, model, *extra) == 0, capsys.readouterr().err
        written[name] = (tmp_path / name / "thick_selfsr_x3.nii.gz").read_bytes()
    read = tp.read_scan(scan)
    values, _ = tp.apply_network(read.values, read.geometry, tp.load_through_plane_model(model, 3, "cpu"))
    tp.write_result(read, values, 3, tmp_path / "library.nii.gz", "x3")
    old = nibabel.load(str(tmp_path / "library.nii.gz"))
    new = nibabel.load(str(tmp_path / "target" / "thick_selfsr_x3.nii.gz"))
    np.testing.assert_array_equal(np.asarray(new.dataobj), np.asarray(old.dataobj))
    np.testing.assert_array_equal(new.affine, old.affine)
    assert set(written.values()) == {(tmp_path / "library.nii.gz").read_bytes()}


def test_a_dicom_series_at_a_target_spacing(tmp_path, capsys):
    """0.3125 mm pixels, slices 1 mm apart: --target-spacing 0.3 gives r = 4, floor(4 / 0.3) = 13 instances 0.3 mm
    apart along the normal from the slab's start, in in_selfsr_0.3mm/."""
    folder = mr_series(tmp_path / "in", count=4, gap=1.0)
    model = through_plane_model(tmp_path / "g4.pth", 4)
    assert selfsr_main(folder, tmp_path / "out", model, "--target-spacing", "0.3") == 0, capsys.readouterr().err
    written = sorted((pydicom.dcmread(str(p)) for p in (tmp_path / "out" / "in_selfsr_0.3mm").iterdir()),
                     key=lambda ds: int(ds.InstanceNumber))
    assert len(written) == 13
    inputs = sorted((pydicom.dcmread(str(p)) for p in folder.iterdir()), key=lambda ds: float(ds.SliceLocation))
    first = np.array([float(v) for v in inputs[0].ImagePositionPatient])
    last = np.array([float(v) for v in inputs[-1].ImagePositionPatient])
    normal = (last - first) / np.linalg.norm(last - first)
    along = (np.arange(13) + 0.5) * 0.3 - 0.5  # mm from the first input slice
    np.testing.assert_allclose([[float(v) for v in ds.ImagePositionPatient] for ds in written],
                               first + along[:, None] * normal, atol=2e-4)
    assert float(written[0].SpacingBetweenSlices) == pytest.approx(0.3)
    assert "to 0.3 mm slices" in str(written[0].DerivationDescription)


@pytest.mark.parametrize("value,says", [
    ("0", "--target-spacing 0: must be a positive number of mm"),
    ("-2", "--target-spacing -2: must be a positive number of mm"),
    ("nan", "--target-spacing nan: must be a positive number of mm"),
    ("inf", "--target-spacing inf: must be a positive number of mm"),
    ("6", "--target-spacing 6: must be smaller than the slice spacing 6 mm (through-plane SR makes slices "
          "thinner)"),
    ("9", "--target-spacing 9: must be smaller than the slice spacing 6 mm (through-plane SR makes slices "
            "thinner)"),
    ("0.5", "--target-spacing 0.5: 12.00 x finer than the slice spacing; at most 8 is supported (give "
            "--target-spacing 0.75 or --scale 8 to go that far)"),
])
def test_a_bad_target_spacing_is_one_error_line(tmp_path, capsys, value, says):
    scan = thick_scan(tmp_path / "thick.nii.gz")
    model = through_plane_model(tmp_path / "g3.pth", 3)
    assert selfsr_main(scan, tmp_path / "o", model, "--target-spacing", value) == 2
    assert error_line(capsys) == f"error: {says}"
    assert not (tmp_path / "o").exists()


def test_scale_and_target_spacing_that_disagree(tmp_path, capsys):
    scan = thick_scan(tmp_path / "thick.nii.gz")
    model = through_plane_model(tmp_path / "g3.pth", 3)
    assert selfsr_main(scan, tmp_path / "o", model, "--scale", "3", "--target-spacing", "1.5") == 2
    assert error_line(capsys) == ("error: --target-spacing 1.5 and --scale 3 disagree: --scale 3 gives 2 mm slices "
                                  "here (slice spacing 6 mm); give one of them")
    assert not (tmp_path / "o").exists()

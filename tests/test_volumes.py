"""CT / MRI volumes through medsr-infer: NIfTI, DICOM series, multi-frame DICOM, derived DICOM, geometry, HU."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from medsr_se.cli import infer
from medsr_se.intensity import ct_window
from medsr_se.volumes import read_dicom_volumes, scaled_affine
from tests.medical import bicubic_skip_model, ct_series, mr_series, nibabel_data, pydicom_file, torch_bicubic

nibabel = pytest.importorskip("nibabel", reason="the medical extra is part of the test extra")
pydicom = pytest.importorskip("pydicom", reason="the medical extra is part of the test extra")


def run_infer(source, output, model, *extra, capsys=None) -> str:
    code = infer.main(["-i", str(source), "-o", str(output), "--model", model, *extra])
    err = capsys.readouterr().err if capsys else ""
    assert code == 0, err
    return err


def test_nifti_round_trip_geometry_and_values(tmp_path, capsys):
    """Before: "cannot read the image". anatomical.nii: int16 (33, 41, 25), 2 mm voxels, upscaled in-plane."""
    model = bicubic_skip_model(tmp_path / "g.pth")
    source = nibabel.load(nibabel_data() / "anatomical.nii")
    run_infer(nibabel_data() / "anatomical.nii", tmp_path / "out", model, "--intensity", "minmax", capsys=capsys)
    result = nibabel.load(tmp_path / "out" / "anatomical.nii")
    assert result.shape == (66, 82, 25) and result.get_data_dtype() == source.get_data_dtype()
    assert result.header.get_zooms() == pytest.approx((1.0, 1.0, 2.0))
    # the centre of input voxel (i, j, k) is the centre of output voxels (2i + 0.5, 2j + 0.5, k)
    from nibabel.affines import apply_affine

    old = apply_affine(source.affine, [[3, 5, 7], [20, 30, 4]])
    new = apply_affine(result.affine, [[6.5, 10.5, 7], [40.5, 60.5, 4]])
    np.testing.assert_allclose(new, old, atol=1e-5)
    np.testing.assert_allclose(result.affine, scaled_affine(source.affine, (0, 1), 2))
    # the identity-like (bicubic) model: voxel values are the bicubic of the input, within int16 rounding
    values = np.asarray(source.dataobj, np.float64)
    low, high = values.min(), values.max()
    expected = low + np.clip(torch_bicubic((values[:, :, 12] - low) / (high - low), 2), 0, 1) * (high - low)
    np.testing.assert_allclose(np.asarray(result.dataobj)[:, :, 12], expected, atol=1.0)


def test_nifti_axis_and_4d(tmp_path, capsys):
    model = bicubic_skip_model(tmp_path / "g.pth")
    run_infer(nibabel_data() / "anatomical.nii", tmp_path / "a0", model, "--axis", "0", capsys=capsys)
    assert nibabel.load(tmp_path / "a0" / "anatomical.nii").shape == (33, 82, 50)
    four_d = nibabel.load(nibabel_data() / "example4d.nii.gz")
    err = run_infer(nibabel_data() / "example4d.nii.gz", tmp_path / "4d", model, capsys=capsys)
    result = nibabel.load(tmp_path / "4d" / "example4d.nii.gz")
    x, y, z, t = four_d.shape
    assert result.shape == (2 * x, 2 * y, z, t)
    assert f"{z * t} slice(s)" in err and f"{z * t}/{z * t}" in err  # progress per slice


def test_dicom_series_is_one_volume_written_as_one_derived_series(tmp_path, capsys):
    """Before: each slice was an unrelated image, written with the input's SeriesInstanceUID and ORIGINAL."""
    folder = mr_series(tmp_path / "mr")
    volumes = read_dicom_volumes(sorted(folder.glob("*.dcm")))
    assert len(volumes) == 1 and [p.name for p in volumes[0].paths] == ["b.dcm", "a.dcm"]  # sorted along the normal
    assert volumes[0].values.shape == (2, 256, 256)
    shutil.copy(pydicom_file("CT_small.dcm"), folder / "ct.dcm")  # another series in the same folder
    model = bicubic_skip_model(tmp_path / "g.pth")
    run_infer(folder, tmp_path / "out", model, capsys=capsys)
    written = {p.name: pydicom.dcmread(str(p)) for p in (tmp_path / "out").glob("*.dcm")}
    originals = {name: pydicom.dcmread(str(folder / name)) for name in written}
    assert set(written) == {"a.dcm", "b.dcm", "ct.dcm"}
    mr_uids = {written[name].SeriesInstanceUID for name in ("a.dcm", "b.dcm")}
    assert len(mr_uids) == 1 and mr_uids.isdisjoint({originals["a.dcm"].SeriesInstanceUID,
                                                     written["ct.dcm"].SeriesInstanceUID})
    for name, dataset in written.items():
        original = originals[name]
        assert list(dataset.ImageType)[:2] == ["DERIVED", "SECONDARY"]
        assert "x2" in dataset.DerivationDescription and "g.pth" in dataset.DerivationDescription
        assert dataset.SourceImageSequence[0].ReferencedSOPInstanceUID == original.SOPInstanceUID
        assert dataset.SOPInstanceUID != original.SOPInstanceUID
        assert (dataset.Rows, dataset.Columns) == (2 * original.Rows, 2 * original.Columns)
        assert [float(v) for v in dataset.PixelSpacing] == pytest.approx([float(v) / 2
                                                                          for v in original.PixelSpacing])
        assert dataset.pixel_array.dtype == original.pixel_array.dtype
        assert dataset.SmallestImagePixelValue == dataset.pixel_array.min()
        assert dataset.LargestImagePixelValue == dataset.pixel_array.max()
        # the slice position is untouched along the normal; in-plane it moves to the new first pixel's centre
        row = np.asarray(original.ImageOrientationPatient[:3], float)
        column = np.asarray(original.ImageOrientationPatient[3:], float)
        shift = np.asarray(dataset.ImagePositionPatient, float) - np.asarray(original.ImagePositionPatient, float)
        assert np.dot(shift, np.cross(row, column)) == pytest.approx(0, abs=1e-4)
        assert np.dot(shift, row) == pytest.approx(-0.25 * float(original.PixelSpacing[1]), abs=1e-4)
        assert np.dot(shift, column) == pytest.approx(-0.25 * float(original.PixelSpacing[0]), abs=1e-4)


def test_ct_hounsfield_units_survive_the_round_trip(tmp_path, capsys):
    """Before: no RescaleSlope/Intercept; the signed slice was squashed into 0.502 ... 0.533 of the range."""
    shutil.copy(pydicom_file("CT_small.dcm"), tmp_path / "ct.dcm")
    model = bicubic_skip_model(tmp_path / "g.pth")
    err = run_infer(tmp_path / "ct.dcm", tmp_path / "out", model, capsys=capsys)
    assert "window full [-1024, 3071] HU" in err
    original, written = (pydicom.dcmread(str(p)) for p in (tmp_path / "ct.dcm", tmp_path / "out" / "ct.dcm"))
    hu_in = original.pixel_array * float(original.RescaleSlope) + float(original.RescaleIntercept)
    hu_out = written.pixel_array * float(written.RescaleSlope) + float(written.RescaleIntercept)
    window = ct_window("full")
    expected = window.from_unit(np.clip(torch_bicubic(window.to_unit(hu_in), 2), 0, 1))
    np.testing.assert_allclose(hu_out, expected, atol=1.0)  # HU recovered, within rounding
    assert hu_out.min() < -800 and written.RescaleIntercept == original.RescaleIntercept


def test_multiframe_dicom_is_one_volume(tmp_path, capsys):
    """Before: multi-frame DICOM was rejected."""
    source = pydicom.dcmread(str(pydicom_file("CT_small.dcm")))
    frames = np.stack([source.pixel_array, source.pixel_array[::-1], np.roll(source.pixel_array, 9, axis=1)])
    source.NumberOfFrames = 3
    source.PixelData = frames.tobytes()
    source.save_as(str(tmp_path / "multi.dcm"), enforce_file_format=True)
    model = bicubic_skip_model(tmp_path / "g.pth")
    run_infer(tmp_path / "multi.dcm", tmp_path / "out", model, capsys=capsys)
    written = pydicom.dcmread(str(tmp_path / "out" / "multi.dcm"))
    assert int(written.NumberOfFrames) == 3 and written.pixel_array.shape == (3, 256, 256)
    assert np.corrcoef(written.pixel_array[1, ::2, ::2].ravel(), frames[1].ravel())[0, 1] > 0.95  # frame order kept


def test_colour_model_on_ct_warns(tmp_path, capsys):
    """Before: a fundus RGB model on CT gave artefacts without a word."""
    shutil.copy(pydicom_file("CT_small.dcm"), tmp_path / "ct.dcm")
    model = bicubic_skip_model(tmp_path / "rgb.pth", channels=3)
    err = run_infer(tmp_path / "ct.dcm", tmp_path / "out", model, capsys=capsys)
    assert "warning:" in err and "3-channel" in err and "gray model" in err


def test_bad_volume_inputs_are_one_line_errors(tmp_path, capsys):
    model = bicubic_skip_model(tmp_path / "g.pth")
    (tmp_path / "bad.nii").write_bytes(b"not nifti")
    assert infer.main(["-i", str(tmp_path / "bad.nii"), "-o", str(tmp_path / "o"), "--model", model]) == 2
    assert "bad.nii: cannot read the NIfTI volume" in capsys.readouterr().err
    shutil.copy(nibabel_data() / "anatomical.nii", tmp_path / "anatomical.nii")
    assert infer.main(["-i", str(tmp_path / "anatomical.nii"), "-o", str(tmp_path / "o"), "--model", model,
                       "--window", "wide"]) == 2
    assert "error: --window: window 'wide'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_series_folder_in_place_is_refused(tmp_path, capsys):
    folder = ct_series(tmp_path / "ct", volumes=1)
    model = bicubic_skip_model(tmp_path / "g.pth")
    series = folder / "patient0"
    assert infer.main(["-i", str(series), "-o", str(series), "--model", model]) == 2
    assert "results would replace inputs" in capsys.readouterr().err


def test_a_dicom_without_sop_class_is_still_written_as_derived(tmp_path, capsys):
    """Before: a file lacking SOPClassUID (invalid, but found in the wild) ended in an AttributeError traceback."""
    dataset = pydicom.dcmread(str(pydicom_file("CT_small.dcm")))
    del dataset.SOPClassUID
    dataset.save_as(str(tmp_path / "ct.dcm"))
    run_infer(tmp_path / "ct.dcm", tmp_path / "out", bicubic_skip_model(tmp_path / "g.pth"), capsys=capsys)
    written = pydicom.dcmread(str(tmp_path / "out" / "ct.dcm"))
    assert list(written.ImageType)[:2] == ["DERIVED", "SECONDARY"] and "SourceImageSequence" not in written

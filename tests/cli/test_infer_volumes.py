"""CT / MRI volumes through medsr-infer: NIfTI, DICOM series, multi-frame DICOM, derived DICOM, geometry, HU."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from medsr_se.cli import infer
from medsr_se.io.dicom_reading import read_dicom_volumes
from medsr_se.io.intensity import ct_window
from medsr_se.io.nifti import scaled_affine
from tests.medical import (
    bicubic_skip_model,
    ct_series,
    dicom_world,
    mr_series,
    nibabel_data,
    pydicom_file,
    torch_bicubic,
)

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

    old_index = [[0, 0, 0], [3, 5, 7], [20, 30, 4], [32, 40, 24]]  # corners included
    new_index = [[0.5, 0.5, 0], [6.5, 10.5, 7], [40.5, 60.5, 4], [64.5, 80.5, 24]]
    np.testing.assert_allclose(apply_affine(result.affine, new_index), apply_affine(source.affine, old_index),
                               atol=1e-5)
    for form in ("qform", "sform"):  # each form, from the input's own
        before, after = (getattr(image.header, f"get_{form}")() for image in (source, result))
        np.testing.assert_allclose(apply_affine(after, new_index), apply_affine(before, old_index), atol=1e-4,
                                   err_msg=form)
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
        # world coordinates from each file's own attributes: input pixel (r, c) is output pixel (2r + ½, 2c + ½)
        rows, columns = np.meshgrid([0, 17, original.Rows - 1], [0, 40, original.Columns - 1], indexing="ij")
        np.testing.assert_allclose(dicom_world(dataset, 2 * rows + 0.5, 2 * columns + 0.5),
                                   dicom_world(original, rows, columns), atol=1e-4)



@pytest.mark.parametrize("shape", [(33, 41, 25), (32, 40, 25)])
def test_rescale_affine_would_move_the_image_by_half_a_new_voxel(shape):
    """Why scaled_affine is not nibabel.affines.rescale_affine, checked: rescale_affine keeps voxel (n − 1) // 2 at
    new voxel (2n − 1) // 2, where the pixel-centre convention puts it at 2·((n − 1) // 2) + ½; the correct world
    position of new voxel j is the input affine at (j + ½) / 2 − ½ (nibabel's apply_affine, independently)."""
    from nibabel.affines import apply_affine, rescale_affine, voxel_sizes

    affine = nibabel.load(nibabel_data() / "anatomical.nii").affine.copy()
    affine[:3, :3] = affine[:3, :3] @ np.array([[0.96, -0.28, 0.0], [0.28, 0.96, 0.0], [0.0, 0.0, 1.0]])  # oblique
    new_shape = (2 * shape[0], 2 * shape[1], shape[2])
    new = np.array([[0, 0, 0], [7, 12, 3], [new_shape[0] - 1, new_shape[1] - 1, shape[2] - 1]], float)
    old = new.copy()
    old[:, :2] = (new[:, :2] + 0.5) / 2 - 0.5
    correct = apply_affine(affine, old)
    np.testing.assert_allclose(apply_affine(scaled_affine(affine, (0, 1), 2), new), correct, atol=1e-6)
    zooms = voxel_sizes(affine) / [2, 2, 1]
    theirs = rescale_affine(affine, shape, zooms, new_shape)
    shift = np.linalg.solve(theirs[:3, :3], (apply_affine(theirs, new) - correct).T).T  # in new voxels
    np.testing.assert_allclose(np.abs(shift), [[0.5, 0.5, 0]] * len(new), atol=1e-6)


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
    assert "error: --window 'wide': use one of" in capsys.readouterr().err
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


def nan_nifti(path, value=np.nan):
    """anatomical.nii as float32 with one voxel of slice 12 set to ``value``."""
    source = nibabel.load(nibabel_data() / "anatomical.nii")
    data = np.asarray(source.dataobj, np.float32)
    data[10, 20, 12] = value
    nibabel.save(nibabel.Nifti1Image(data, source.affine), str(path))
    return path


def test_a_nan_voxel_is_an_error_or_replaced_on_request(tmp_path, capsys):
    """Before: one NaN voxel turned its whole output slice NaN, exit 0, no message."""
    model = bicubic_skip_model(tmp_path / "g.pth")
    (tmp_path / "in").mkdir()
    source = nan_nifti(tmp_path / "in" / "nan.nii")
    assert infer.main(["-i", str(source), "-o", str(tmp_path / "out"), "--model", model]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and "nan.nii: 1 non-finite value(s)" in err
    assert "--nonfinite" in err and not (tmp_path / "out").exists()
    err = run_infer(source, tmp_path / "out", model, "--nonfinite", "0", capsys=capsys)
    assert "warning:" in err and "nan.nii: 1 non-finite value(s)" in err and "replaced by 0" in err
    result = np.asarray(nibabel.load(tmp_path / "out" / "nan.nii").dataobj)
    assert np.isfinite(result).all()
    # the same as upscaling the input with a 0 there
    (tmp_path / "zero").mkdir()
    run_infer(nan_nifti(tmp_path / "zero" / "nan.nii", 0.0), tmp_path / "out0", model, capsys=capsys)
    np.testing.assert_array_equal(result, np.asarray(nibabel.load(tmp_path / "out0" / "nan.nii").dataobj))
    for bad in ("nan", "-inf"):
        assert infer.main(["-i", str(source), "-o", str(tmp_path / "o2"), "--model", model, f"--nonfinite={bad}"]) == 2
        assert "error: --nonfinite" in capsys.readouterr().err and not (tmp_path / "o2").exists()


def test_infinite_voxels_in_a_folder_are_named(tmp_path, capsys):
    model = bicubic_skip_model(tmp_path / "g.pth")
    (tmp_path / "in").mkdir()
    nan_nifti(tmp_path / "in" / "a.nii", np.inf)
    nibabel.save(nibabel.Nifti1Image(np.full((4, 4, 3), np.nan, np.float32), np.eye(4)), str(tmp_path / "in" / "b.nii"))
    assert infer.main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", model]) == 2
    err = capsys.readouterr().err
    assert "a.nii: 1 non-finite value(s)" in err and "1 +inf" in err and not (tmp_path / "out").exists()


def test_a_2d_nifti_with_axis_0_is_one_line_and_leaves_no_folder(tmp_path, capsys):
    """Before: IndexError traceback from write_nifti, and an empty output folder left behind."""
    model = bicubic_skip_model(tmp_path / "g.pth")
    nibabel.save(nibabel.Nifti1Image(np.ones((16, 12), np.float32), np.eye(4)), str(tmp_path / "flat.nii"))
    assert infer.main(["-i", str(tmp_path / "flat.nii"), "-o", str(tmp_path / "out"), "--model", model,
                       "--axis", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and "flat.nii: a 2-D NIfTI" in err
    assert not (tmp_path / "out").exists()


def failing_on(monkeypatch, call: int):
    """pydicom's Dataset.save_as raises OSError (a full disk) on its ``call``-th use."""
    original, calls = pydicom.dataset.Dataset.save_as, []

    def save_as(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise OSError(28, "No space left on device")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pydicom.dataset.Dataset, "save_as", save_as)


def snapshot(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>" for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("fail_at", [1, 2, 3])
def test_a_series_is_written_whole_or_not_at_all(tmp_path, capsys, monkeypatch, fail_at):
    """Before: a write failing at the N-th file left the first N-1 files of the new series behind."""
    folder = ct_series(tmp_path / "ct", volumes=1)
    model = bicubic_skip_model(tmp_path / "g.pth")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "other.dcm").write_bytes(b"another acquisition")
    before = snapshot(tmp_path / "out")
    failing_on(monkeypatch, fail_at)
    assert infer.main(["-i", str(folder), "-o", str(tmp_path / "out"), "--model", model]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "No space left on device" in err and "nothing of it was written" in err
    assert snapshot(tmp_path / "out") == before  # no slice, no temporary file, no sub-folder
    monkeypatch.undo()
    run_infer(folder, tmp_path / "out", model, capsys=capsys)
    assert sorted(snapshot(tmp_path / "out")) == ["other.dcm", "patient0", "patient0/slice1.dcm",
                                                  "patient0/slice2.dcm", "patient0/slice3.dcm"]


def test_overwriting_a_series_that_fails_keeps_the_old_one(tmp_path, capsys, monkeypatch):
    folder = ct_series(tmp_path / "ct", volumes=1)
    model = bicubic_skip_model(tmp_path / "g.pth")
    run_infer(folder, tmp_path / "out", model, capsys=capsys)
    before = snapshot(tmp_path / "out")
    failing_on(monkeypatch, 3)
    assert infer.main(["-i", str(folder), "-o", str(tmp_path / "out"), "--model", model, "--overwrite"]) == 2
    assert "nothing of it was written" in capsys.readouterr().err
    assert snapshot(tmp_path / "out") == before


def test_a_nifti_write_that_fails_leaves_nothing(tmp_path, capsys, monkeypatch):
    model = bicubic_skip_model(tmp_path / "g.pth")
    (tmp_path / "in" / "sub").mkdir(parents=True)
    shutil.copy(nibabel_data() / "anatomical.nii", tmp_path / "in" / "sub" / "anatomical.nii")
    # to_file_map: what nibabel.save and Nifti1Image.to_stream both write through
    monkeypatch.setattr(nibabel.Nifti1Image, "to_file_map",
                        lambda *args, **kwargs: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    assert infer.main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model", model]) == 2
    assert "anatomical.nii: cannot write it" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "out").rglob("*")] == []  # not even the sub-folder

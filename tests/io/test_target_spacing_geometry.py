"""The geometry written for a result at an exact target spacing t (a non-integer ratio D / t): every output voxel
centre's world position (nibabel's apply_affine on the written file) against the position the INPUT file's affine
gives its fractional input index (k + 0.5)·t/D − 0.5, for the sform and the qform, oblique, each slice axis; the
derived DICOM series' ImagePositionPatient against the input's first position + (that index · D)·normal, its
slice attributes; and t = D / r, which writes exactly what the integer path writes."""

from __future__ import annotations

import nibabel
import numpy as np
import pydicom
import pytest
from nibabel.affines import apply_affine

from medsr_se import throughplane as tp
from medsr_se.io import dicom_derived, volumes
from tests.io.test_through_plane_geometry import (
    COLUMN_DIRECTION,
    ROW_DIRECTION,
    mr_series,
    oblique_affine,
    tilt_along_rows,
)


def expected_input_index(count: int, target: float, slice_spacing: float) -> np.ndarray:
    """The grid convention, from mm: centre k at c0 − D/2 + t/2 + k·t, i.e. input index (that − c0) / D."""
    mm_from_c0 = -slice_spacing / 2 + target / 2 + target * np.arange(count)
    return mm_from_c0 / slice_spacing


def rotated_affine(spacing: tuple[float, float, float]) -> np.ndarray:
    """oblique_affine without its shear: the columns' lengths are the spacings."""
    affine = oblique_affine((1.0, 1.0, 1.0))
    rotation = np.linalg.qr(affine[:3, :3])[0]
    affine[:3, :3] = rotation @ np.diag(spacing)
    return affine


def oblique_nifti(path, shape, axis: int, slice_spacing: float, in_plane: float = 0.9, qform_code: int = 1,
                  shear: bool = True):
    spacing = [in_plane] * 3
    spacing[axis] = slice_spacing
    affine = (oblique_affine if shear else rotated_affine)(tuple(spacing))
    image = nibabel.Nifti1Image(np.arange(np.prod(shape), dtype=np.int16).reshape(shape), affine)
    image.set_qform(affine, code=qform_code)
    nibabel.save(image, str(path))
    return path


def every_voxel(shape) -> np.ndarray:
    return np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).reshape(-1, 3)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_nifti_voxel_centres_at_the_target_spacing(tmp_path, axis):
    """An oblique, sheared affine with slices about 5 mm apart (D: the length of the input affine's slice column),
    target 0.9 mm: M = floor(6 · D / 0.9) slices, each at the input's world position of its fractional index."""
    shape = [5, 4, 3]
    shape[axis] = 6
    source_path = oblique_nifti(tmp_path / "in.nii.gz", tuple(shape), axis, 5.0)
    source = nibabel.load(str(source_path))
    slice_spacing = float(np.linalg.norm(source.affine[:3, axis]))
    scan = tp.read_scan(source_path)
    assert scan.geometry.axis == axis
    grid = tp.choose_grid(scan.geometry, 6, "in", target_spacing=0.9)
    count = int(np.floor(6 * slice_spacing / 0.9))
    assert grid.count == count and grid.network_scale == 6
    out_shape = list(shape)
    out_shape[axis] = count
    tp.write_result(scan, np.zeros(out_shape, np.float32), grid.scale, tmp_path / "out.nii.gz", "test")
    result = nibabel.load(str(tmp_path / "out.nii.gz"))
    assert result.shape == tuple(out_shape)
    voxels = every_voxel(out_shape)
    inputs = voxels.astype(np.float64)
    inputs[:, axis] = expected_input_index(count, 0.9, slice_spacing)[voxels[:, axis]]
    for form in ("sform", "qform"):
        np.testing.assert_allclose(apply_affine(getattr(result, f"get_{form}")(), voxels),
                                   apply_affine(getattr(source, f"get_{form}")(), inputs), atol=1e-4)
        assert int(result.header[f"{form}_code"]) == int(source.header[f"{form}_code"])
    assert np.linalg.norm(result.affine[:3, axis]) == pytest.approx(0.9, rel=1e-6)
    assert result.header.get_zooms()[axis] == pytest.approx(0.9, rel=1e-6)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_a_ratio_of_5_56_gives_isotropic_09_mm_voxels(tmp_path, axis):
    """0.9 mm pixels, 5 mm slices, rotated: the default target is the in-plane spacing, and the result's voxels are
    0.9 mm on every axis (the header's float32 0.9 exactly), 33 slices (was: 36 of 0.833 mm)."""
    shape = [5, 4, 3]
    shape[axis] = 6
    source_path = oblique_nifti(tmp_path / "in.nii.gz", tuple(shape), axis, 5.0, shear=False)
    scan = tp.read_scan(source_path)
    grid = tp.choose_grid(scan.geometry, 6, "in")
    assert (grid.count, grid.network_scale, grid.label) == (33, 6, "0.9mm")
    out_shape = list(shape)
    out_shape[axis] = 33
    tp.write_result(scan, np.zeros(out_shape, np.float32), grid.scale, tmp_path / "out.nii.gz", "test")
    result = nibabel.load(str(tmp_path / "out.nii.gz"))
    assert [float(z) for z in result.header.get_zooms()[:3]] == [float(np.float32(0.9))] * 3
    np.testing.assert_allclose(np.linalg.norm(result.affine[:3, :3], axis=0), 0.9, rtol=1e-6)
    source = nibabel.load(str(source_path))
    voxels = every_voxel(out_shape)
    inputs = voxels.astype(np.float64)
    inputs[:, axis] = expected_input_index(33, 0.9, 5.0)[voxels[:, axis]]
    np.testing.assert_allclose(apply_affine(result.affine, voxels), apply_affine(source.affine, inputs), atol=1e-4)


def test_an_uncoded_qform_is_placed_too(tmp_path):
    """qform code 0 keeps code 0 and is scaled from itself (a reader that picks it still finds the voxels)."""
    source_path = oblique_nifti(tmp_path / "in.nii.gz", (4, 5, 7), 2, 3.3, in_plane=1.0, qform_code=0)
    scan = tp.read_scan(source_path)
    grid = tp.choose_grid(scan.geometry, 7, "in", target_spacing=1.0)
    assert (grid.network_scale, grid.count) == (4, 23)
    tp.write_result(scan, np.zeros((4, 5, 23), np.float32), grid.scale, tmp_path / "out.nii.gz", "test")
    source, result = nibabel.load(str(source_path)), nibabel.load(str(tmp_path / "out.nii.gz"))
    assert int(result.header["qform_code"]) == 0
    voxels = every_voxel((4, 5, 23))
    inputs = voxels.astype(np.float64)
    inputs[:, 2] = expected_input_index(23, 1.0, 3.3)[voxels[:, 2]]
    np.testing.assert_allclose(apply_affine(result.header.get_qform(), voxels),
                               apply_affine(source.header.get_qform(), inputs), atol=1e-4)


def test_a_target_of_d_over_r_writes_what_the_integer_path_writes(tmp_path):
    """t = D / 3: no resampling; the file's array, affines and zooms are those write_result(scan, values, 3)
    writes, the path the command took before target spacings (bit for bit)."""
    source_path = oblique_nifti(tmp_path / "in.nii.gz", (5, 4, 6), 2, 2.7, in_plane=0.9)
    scan = tp.read_scan(source_path)
    values = np.random.default_rng(1).normal(100, 20, size=(5, 4, 18)).astype(np.float32)
    tp.write_result(scan, values, 3, tmp_path / "old.nii.gz", "test")
    grid = tp.choose_grid(scan.geometry, 6, "in", target_spacing=0.9)
    assert not grid.resampled and grid.scale == 3 and isinstance(grid.scale, int)
    tp.write_result(scan, tp.to_grid(values, 2, grid), grid.scale, tmp_path / "new.nii.gz", "test")
    old, new = nibabel.load(str(tmp_path / "old.nii.gz")), nibabel.load(str(tmp_path / "new.nii.gz"))
    np.testing.assert_array_equal(np.asarray(new.dataobj), np.asarray(old.dataobj))
    np.testing.assert_array_equal(new.affine, old.affine)
    np.testing.assert_array_equal(new.header.get_qform(), old.header.get_qform())
    assert (tmp_path / "new.nii.gz").read_bytes() == (tmp_path / "old.nii.gz").read_bytes()


def test_dicom_series_positions_at_the_target_spacing(tmp_path):
    """0.3125 mm pixels, slices 1 mm apart (ratio 3.2), oblique: t = 0.3125 mm, r = 4, M = floor(4 · 3.2) = 12;
    slice k at the input's first ImagePositionPatient + (input index · D)·normal, SliceLocation likewise,
    SpacingBetweenSlices t, SliceThickness the input's · t / D, InstanceNumber k + 1."""
    folder = mr_series(tmp_path / "in", count=4, gap=1.0, thickness=0.9)
    scan = tp.read_scan(folder)
    grid = tp.choose_grid(scan.geometry, 4, "in")
    assert (grid.network_scale, grid.count, grid.label) == (4, 12, "0.3125mm")
    values = np.repeat(scan.values, 3, axis=0)  # 12 slices: values are not what this test is about
    tp.write_result(scan, values, grid.scale, tmp_path / "out", "test")
    written = sorted((pydicom.dcmread(str(p)) for p in (tmp_path / "out").iterdir()),
                     key=lambda ds: int(ds.InstanceNumber))
    inputs = sorted((pydicom.dcmread(str(p)) for p in folder.iterdir()), key=lambda ds: float(ds.SliceLocation))
    assert [int(ds.InstanceNumber) for ds in written] == list(range(1, 13))
    normal = np.cross(ROW_DIRECTION, COLUMN_DIRECTION)
    first = np.array([float(v) for v in inputs[0].ImagePositionPatient])
    along = expected_input_index(12, 0.3125, 1.0) * 1.0
    np.testing.assert_allclose([[float(v) for v in ds.ImagePositionPatient] for ds in written],
                               first + along[:, None] * normal, atol=2e-4)
    np.testing.assert_allclose([float(ds.SliceLocation) for ds in written], float(inputs[0].SliceLocation) + along,
                               atol=2e-4)
    assert all(float(ds.SpacingBetweenSlices) == pytest.approx(0.3125, abs=1e-5) for ds in written)
    assert all(float(ds.SliceThickness) == pytest.approx(0.9 * 0.3125, abs=1e-5) for ds in written)
    assert all(ds.SeriesDescription.endswith("through-plane SR 0.3125 mm") for ds in written)
    assert len({ds.SOPInstanceUID for ds in written}) == 12 and len({ds.SeriesInstanceUID for ds in written}) == 1


def test_a_tilted_series_at_the_target_spacing(tmp_path):
    """A gantry tilt (each slice 0.3 mm further along the row direction): slice k on the line through the input's
    positions at input index u_k, and the description names t along the normal (0.3125 mm, not the tilted step's)."""
    folder = mr_series(tmp_path / "in", count=5, gap=1.0)
    tilt_along_rows(folder, 0.3)
    scan = tp.read_scan(folder)
    grid = tp.choose_grid(scan.geometry, 5, "in")
    assert (grid.network_scale, grid.count) == (4, 16)
    tp.write_result(scan, np.zeros((16, 64, 64), np.float32), grid.scale, tmp_path / "out", "test")
    written = sorted((pydicom.dcmread(str(p)) for p in (tmp_path / "out").iterdir()),
                     key=lambda ds: int(ds.InstanceNumber))
    inputs = sorted((pydicom.dcmread(str(p)) for p in folder.iterdir()), key=lambda ds: int(ds.InstanceNumber))
    first = np.array([float(v) for v in inputs[0].ImagePositionPatient])
    step = np.cross(ROW_DIRECTION, COLUMN_DIRECTION) * 1.0 + 0.3 * ROW_DIRECTION  # one input slice further
    u = expected_input_index(16, 0.3125, 1.0)
    np.testing.assert_allclose([[float(v) for v in ds.ImagePositionPatient] for ds in written],
                               first + u[:, None] * step, atol=2e-4)
    assert written[0].SeriesDescription.endswith("through-plane SR 0.3125 mm")


def test_a_dicom_series_of_an_integer_ratio_blurred_by_rounding_stays_integer(tmp_path):
    """0.9375 mm gaps and 0.3125 mm pixels, positions written to 5 decimals on an oblique normal: the measured ratio
    is 2.99998, which is x3 (r·N slices, not resampled, named x3), as before target spacings."""
    scan = tp.read_scan(mr_series(tmp_path / "in", count=4, gap=0.9375))
    assert scan.geometry.slice_spacing / scan.geometry.in_plane_spacing != 3.0
    grid = tp.choose_grid(scan.geometry, 4, "in")
    assert (grid.label, grid.count, grid.resampled, grid.scale) == ("x3", 12, False, 3)


def test_the_integer_dicom_series_is_unchanged_by_a_float_scale(tmp_path):
    """A scale of 3.0 (a float, as D / t may come) writes the positions, attributes and description of r = 3."""
    folder = mr_series(tmp_path / "in", count=4, gap=0.9375)
    scan = tp.read_scan(folder)
    values = np.repeat(scan.values, 3, axis=0)
    for name, scale in (("int", 3), ("float", 3.0)):
        series = dicom_derived.through_plane_series(scan.volume, values, scale, "test")
        dicom_derived.write_dicom_series((dataset, tmp_path / name / file) for file, dataset in series)
    for path in sorted((tmp_path / "int").iterdir()):
        a, b = pydicom.dcmread(str(path)), pydicom.dcmread(str(tmp_path / "float" / path.name))
        for keyword in ("ImagePositionPatient", "SliceLocation", "SliceThickness", "SpacingBetweenSlices",
                        "SeriesDescription", "InstanceNumber"):
            assert a.get(keyword) == b.get(keyword), keyword
        np.testing.assert_array_equal(a.pixel_array, b.pixel_array)
    assert pydicom.dcmread(str(path)).SeriesDescription.endswith("through-plane SR x3")


def test_write_nifti_through_plane_keeps_integer_factors_whole():
    """axis_scales: whole factors stay ints (the integer path's arithmetic), fractional ones floats."""
    from medsr_se.io.nifti import axis_scales

    volume = volumes.Volume(np.zeros((2, 2, 2), np.float32), "nifti", "", "stored", 2, [], None)
    assert axis_scales(volume, (1, 1, 3.0)) == (1, 1, 3) and isinstance(axis_scales(volume, (1, 1, 3.0))[2], int)
    assert axis_scales(volume, (1, 1, 5 / 0.9))[2] == pytest.approx(5.5555555)

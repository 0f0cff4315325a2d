"""Label maps read against the scan's grid and written on the through-plane result's grid
(medsr_se.io.label_maps, with medsr_se.data.label_interpolation). Oracles: the world positions of voxel centres by
nibabel's apply_affine on the written result (NIfTI), by ImagePositionPatient / ImageOrientationPatient /
PixelSpacing read back with pydicom (a DICOM series: tests.medical.dicom_world); the labels and dtypes written here."""

from __future__ import annotations

import itertools
import pickle

import nibabel
import numpy as np
import pydicom
import pytest
from nibabel.affines import apply_affine

from medsr_se.data.label_interpolation import write_upscaled_labels
from medsr_se.io import scans
from medsr_se.io.label_maps import LabelMapError, read_label_map
from medsr_se.io.slice_grid import choose_grid
from tests.cli.test_selfsr import thick_scan
from tests.io.test_through_plane_geometry import mr_series
from tests.medical import dicom_world

R = 3


def every_voxel(shape) -> np.ndarray:
    return np.array(list(itertools.product(*[range(n) for n in shape])), float)


def save(values: np.ndarray, affine: np.ndarray, path, qform_code: int = 0, sform_code: int = 2):
    image = nibabel.Nifti1Image(values, affine)
    image.set_qform(affine, code=qform_code)
    image.set_sform(affine, code=sform_code)
    nibabel.save(image, str(path))
    return path


def labels_on(scan_path, dtype=np.uint8) -> np.ndarray:
    shape = nibabel.load(str(scan_path)).shape
    labels = np.zeros(shape, dtype)
    labels[8:20, 10:30, 2:6] = 4
    labels[3:6, 3:7, 6] = 2  # on one thick slice only
    return labels


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float32])
def test_written_on_exactly_the_results_grid_labels_and_dtype_kept(tmp_path, dtype):
    scan_path = thick_scan(tmp_path / "thick.nii.gz")
    source = nibabel.load(str(scan_path))
    labels = labels_on(scan_path, dtype)
    save(labels, source.affine, tmp_path / "seg.nii.gz")
    scan = scans.read_scan(scan_path)
    grid = choose_grid(scan.geometry, scan.values.shape[2], scan.name, scale=R)
    label_map = read_label_map(tmp_path / "seg.nii.gz", scan)
    write_upscaled_labels(label_map, grid, tmp_path / "seg_x3.nii.gz")
    scans.write_result(scan, np.repeat(scan.values, R, axis=2), R, tmp_path / "result.nii.gz", "test")
    result, written = nibabel.load(str(tmp_path / "result.nii.gz")), nibabel.load(str(tmp_path / "seg_x3.nii.gz"))
    assert written.shape == result.shape == (33, 41, 8 * R)
    voxels = every_voxel(written.shape)
    np.testing.assert_allclose(apply_affine(written.affine, voxels), apply_affine(result.affine, voxels), atol=1e-6)
    for form in ("qform", "sform"):  # whichever form a reader takes, the two files agree
        assert int(written.header[f"{form}_code"]) == int(result.header[f"{form}_code"])
        np.testing.assert_allclose(getattr(written, f"get_{form}")(), getattr(result, f"get_{form}")(), atol=1e-6)
    assert written.get_data_dtype() == np.dtype(dtype)
    values = np.asarray(written.dataobj)
    assert set(np.unique(values)) == {0, 2, 4}
    # label 2, on thick slice 6 alone, is on the thin slices within half a thick slice of its world position
    slice_z = apply_affine(source.affine, [10, 10, 6])
    thin_z = apply_affine(written.affine, np.stack([np.full(24, 10), np.full(24, 10), np.arange(24)], 1))
    near = np.flatnonzero(np.linalg.norm(thin_z - slice_z, axis=1) < 6.0 / 2)
    assert [j for j in range(24) if (values[:, :, j] == 2).any()] == list(near)


def test_the_scans_qform_is_matched_by_a_label_maps_sform(tmp_path):
    """A scan placed by its qform alone (sform code 0) and a label map by its sform: the same world grid, accepted;
    the written label map carries the scan's forms and codes, so nibabel's affine of both results agree."""
    scan_path = thick_scan(tmp_path / "thick.nii.gz")
    source = nibabel.load(str(scan_path))
    save(np.asarray(source.dataobj), source.affine, tmp_path / "q.nii.gz", qform_code=1, sform_code=0)
    save(labels_on(scan_path), source.affine, tmp_path / "seg.nii.gz", qform_code=0, sform_code=2)
    scan = scans.read_scan(tmp_path / "q.nii.gz")
    grid = choose_grid(scan.geometry, 8, scan.name, scale=R)
    write_upscaled_labels(read_label_map(tmp_path / "seg.nii.gz", scan), grid, tmp_path / "seg_x3.nii.gz")
    scans.write_result(scan, np.repeat(scan.values, R, axis=2), R, tmp_path / "result.nii.gz", "test")
    written, result = (nibabel.load(str(tmp_path / n)) for n in ("seg_x3.nii.gz", "result.nii.gz"))
    assert (int(written.header["qform_code"]), int(written.header["sform_code"])) == (1, 0)
    np.testing.assert_allclose(written.affine, result.affine, atol=1e-6)


def shifted(affine: np.ndarray, voxels) -> np.ndarray:
    moved = affine.copy()
    moved[:3, 3] += affine[:3, :3] @ np.asarray(voxels, float)
    return moved


def scaled(affine: np.ndarray, axis: int, factor: float) -> np.ndarray:
    changed = affine.copy()
    changed[:3, axis] *= factor
    return changed


@pytest.mark.parametrize("name,make,says", [
    ("shape", lambda labels, affine: (labels[:, :, :7], affine), "shape 33 x 41 x 7, the scan's is 33 x 41 x 8"),
    ("shifted", lambda labels, affine: (labels, shifted(affine, [0, 0, 0.5])), "shifted by"),
    ("zooms", lambda labels, affine: (labels, scaled(affine, 2, 5 / 6)), "voxel size (2, 2, 5) mm"),
    ("flipped", lambda labels, affine: (labels, scaled(affine, 0, -1)), "voxel axes point elsewhere"),
    ("fractional", lambda labels, affine: (labels.astype(np.float32) + 0.25, affine), "not integer labels"),
    ("nan", lambda labels, affine: (np.where(labels > 0, np.nan, 0).astype(np.float32), affine), "NaN or ±inf"),
    ("4d", lambda labels, affine: (np.stack([labels, labels], 3), affine), "a 4-D image (33 x 41 x 8 x 2)"),
    ("many", lambda labels, affine: (np.arange(labels.size, dtype=np.int32).reshape(labels.shape), affine),
     "10824 distinct values: not a label map"),
])
def test_a_label_map_that_cannot_follow_is_refused_naming_it(tmp_path, name, make, says):
    scan_path = thick_scan(tmp_path / "thick.nii.gz")
    values, affine = make(labels_on(scan_path), nibabel.load(str(scan_path)).affine)
    path = save(values, affine, tmp_path / f"{name}.nii.gz")
    with pytest.raises(LabelMapError) as refused:
        read_label_map(path, scans.read_scan(scan_path))
    assert str(refused.value).startswith(f"labels={path}: ") and says in str(refused.value)
    assert refused.value.parameter == "labels"
    copy = pickle.loads(pickle.dumps(refused.value))  # as it crosses a process pool (a cohort's workers)
    assert (type(copy), str(copy), copy.parameter) == (LabelMapError, str(refused.value), "labels")


def test_not_a_nifti_missing_or_unplaced_is_refused_naming_it(tmp_path):
    scan_path = thick_scan(tmp_path / "thick.nii.gz")
    scan = scans.read_scan(scan_path)
    (tmp_path / "seg.txt").write_text("1 2 3")
    (tmp_path / "broken.nii.gz").write_bytes(b"\x1f\x8b not really")
    unplaced = nibabel.Nifti1Image(labels_on(scan_path), None)
    unplaced.set_qform(None, code=0)
    unplaced.set_sform(None, code=0)
    nibabel.save(unplaced, str(tmp_path / "unplaced.nii.gz"))
    for name, says in (("seg.txt", "not a NIfTI file"), ("absent.nii.gz", "no such file"),
                       ("broken.nii.gz", "cannot read the NIfTI file"), ("unplaced.nii.gz", "places no voxel")):
        with pytest.raises(LabelMapError, match=f"^labels={tmp_path / name}: .*{says}"):
            read_label_map(tmp_path / name, scan)


def series_world_ras(datasets, rows, columns) -> np.ndarray:
    """RAS mm of pixel (row, column) of each dataset (DICOM's LPS with x and y negated)."""
    return np.stack([dicom_world(ds, rows, columns) for ds in datasets]) * [-1, -1, 1]


def dcm2niix_like(series_folder, flip_slices: bool):
    """The series' grid as a NIfTI label file would have it: axes (column, row reversed, slice), the slices in the
    series' order along its normal (or reversed), the affine from three steps of dicom_world's positions."""
    datasets = [pydicom.dcmread(str(p)) for p in series_folder.iterdir()]
    normal = np.cross(*np.asarray(datasets[0].ImageOrientationPatient, float).reshape(2, 3))
    datasets.sort(key=lambda ds: float(np.dot(np.asarray(ds.ImagePositionPatient, float), normal)))
    if flip_slices:
        datasets = datasets[::-1]
    rows = int(datasets[0].Rows)
    origin = series_world_ras(datasets[:1], rows - 1, 0)[0]
    affine = np.eye(4)
    affine[:3, 0] = series_world_ras(datasets[:1], rows - 1, 1)[0] - origin
    affine[:3, 1] = series_world_ras(datasets[:1], rows - 2, 0)[0] - origin
    affine[:3, 2] = series_world_ras(datasets[1:2], rows - 1, 0)[0] - origin
    affine[:3, 3] = origin
    return affine, len(datasets), rows, int(datasets[0].Columns)


@pytest.mark.parametrize("flip_slices", [False, True])
@pytest.mark.parametrize("target_spacing", [None, 0.4])
def test_a_dicom_series_takes_a_label_map_on_its_grid_in_any_axis_order(tmp_path, flip_slices, target_spacing):
    """An oblique series (pydicom's MR_small, 4 slices 0.9375 mm apart): a label map in the axis order dcm2niix
    writes (columns, rows reversed, slices; or the slices reversed too) is accepted; the written label map's voxel
    centres are, one for one, the pixel centres of the derived series written beside it (pydicom's positions; the
    written slices in the series' order), for r = 3 and for a target spacing of 0.4 mm (5 slices that do not tile
    the slab: placed from the series' first slice, whichever way the label file ran). At r = 3 a label of thick
    slice 1 alone lies on the instances of that slice (the middle one at its centre: its footprint)."""
    series = mr_series(tmp_path / "dicom", count=4, gap=0.3125 * R)
    affine, count, rows, columns = dcm2niix_like(series, flip_slices)
    labels = np.zeros((columns, rows, count), np.int16)
    k = count - 2 if flip_slices else 1  # series slice 1 in this file's order
    labels[10:20, rows - 1 - 40:rows - 1 - 30, k] = 6  # rows 31..40, columns 10..19 of series slice 1
    save(labels, affine, tmp_path / "seg.nii.gz", qform_code=1, sform_code=1)
    scan = scans.read_scan(series)
    label_map = read_label_map(tmp_path / "seg.nii.gz", scan)
    assert label_map.axis == 2 and label_map.sampling == pytest.approx((0.3125, 0.3125))
    grid = choose_grid(scan.geometry, count, scan.name, scale=None if target_spacing else R,
                       target_spacing=target_spacing)
    write_upscaled_labels(label_map, grid, tmp_path / "seg_x3.nii.gz")
    scans.write_result(scan, np.zeros((grid.count, rows, columns), np.float32), grid.scale, tmp_path / "out", "test")
    written = sorted((pydicom.dcmread(str(p)) for p in (tmp_path / "out").iterdir()),
                     key=lambda ds: int(ds.InstanceNumber))
    result = nibabel.load(str(tmp_path / "seg_x3.nii.gz"))
    assert result.shape == (columns, rows, grid.count) and len(written) == grid.count
    assert grid.count == (count * R if target_spacing is None else 9)
    row, column = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    values = np.asarray(result.dataobj)
    for j, dataset in enumerate(written):
        expected = series_world_ras([dataset], row, column)[0]  # (rows, columns, 3)
        got = apply_affine(result.affine, np.stack([column, rows - 1 - row, np.full_like(row, j)], -1))
        np.testing.assert_allclose(got, expected, atol=1e-3)
        on_it = values[column, rows - 1 - row, j] == 6  # (rows, columns) of this instance
        if target_spacing is not None:
            continue
        if j == R * 1 + 1:  # at thick slice 1's centre: its footprint
            assert on_it[31:41, 10:20].all() and on_it.sum() == 100
        elif j in (R * 1, R * 1 + 2):  # a third of a thick slice away: inside it, smaller (the object's end)
            assert 0 < on_it.sum() < 100 and on_it[31:41, 10:20].sum() == on_it.sum()
        else:
            assert not on_it.any()


def test_a_label_map_off_the_series_grid_is_refused(tmp_path):
    series = mr_series(tmp_path / "dicom", count=4, gap=0.3125 * R)
    affine, count, rows, columns = dcm2niix_like(series, False)
    scan = scans.read_scan(series)
    save(np.zeros((columns, rows, count), np.uint8), shifted(affine, [0, 0, 0.5]), tmp_path / "half.nii.gz")
    with pytest.raises(LabelMapError, match="not on the DICOM series' grid: shifted by"):
        read_label_map(tmp_path / "half.nii.gz", scan)
    save(np.zeros((columns, rows, count + 1), np.uint8), affine, tmp_path / "more.nii.gz")
    with pytest.raises(LabelMapError, match=r"shape 64 x 64 x 5, the DICOM series' grid is 64 x 64 x 4"):
        read_label_map(tmp_path / "more.nii.gz", scan)

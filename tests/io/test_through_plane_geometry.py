"""Geometry of through-plane results: every input slice centre keeps its world position at output slice
r·k + (r − 1)/2, checked with nibabel's apply_affine on the input's affine and with ImagePositionPatient read back
by pydicom, oblique grids included; the DICOM series' slice attributes; uneven DICOM spacing refused."""

from __future__ import annotations

import gzip
import logging

import nibabel
import numpy as np
import pydicom
import pytest
from nibabel.affines import apply_affine
from pydicom.uid import generate_uid

from medsr_se import throughplane as tp
from medsr_se.io import dicom_derived, volumes
from tests.medical import pydicom_file


def oblique_affine(spacing: tuple[float, float, float]) -> np.ndarray:
    """A rotation about two axes, a shear and an offset: no column is axis-aligned."""
    a, b = np.deg2rad(20), np.deg2rad(35)
    rotation = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]]) @ \
        np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    shear = np.array([[1, 0.1, 0], [0, 1, 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rotation @ shear @ np.diag(spacing)
    affine[:3, 3] = [-31.5, 12.25, 7.0]
    return affine


def world_positions(affine: np.ndarray, axis: int, indices: np.ndarray, voxel=(2, 3, 1)) -> np.ndarray:
    ijk = np.tile(np.asarray(voxel, float), (len(indices), 1))
    ijk[:, axis] = indices
    return apply_affine(affine, ijk)


@pytest.mark.parametrize("axis,r", [(2, 3), (2, 4), (0, 2)])
def test_nifti_slice_centres_keep_their_world_positions(tmp_path, axis, r):
    spacing = [1.0, 1.0, 1.0]
    spacing[axis] = float(r)
    shape = [6, 7, 8]
    affine = oblique_affine(tuple(spacing))
    source = nibabel.Nifti1Image(np.arange(np.prod(shape), dtype=np.int16).reshape(shape), affine)
    source.set_qform(affine, code=1)
    nibabel.save(source, str(tmp_path / "in.nii.gz"))
    scan = tp.read_scan(tmp_path / "in.nii.gz")
    assert scan.geometry.axis == axis and tp.choose_scale(scan.geometry, "in") == r
    out_shape = list(shape)
    out_shape[axis] *= r
    volumes.write_nifti_through_plane(scan.volume, np.zeros(out_shape, np.float32), r, tmp_path / "out.nii.gz")
    result = nibabel.load(str(tmp_path / "out.nii.gz"))
    assert result.shape == tuple(out_shape)
    k = np.arange(shape[axis])
    for form in ("sform", "qform"):
        expected = world_positions(getattr(source, f"get_{form}")(), axis, k)
        got = world_positions(getattr(result, f"get_{form}")(), axis, r * k + (r - 1) / 2)
        np.testing.assert_allclose(got, expected, atol=1e-4)
    zooms = np.asarray(result.header.get_zooms()[:3])
    expected_zooms = np.asarray(nibabel.load(str(tmp_path / "in.nii.gz")).header.get_zooms()[:3])
    expected_zooms[axis] /= r
    np.testing.assert_allclose(zooms, expected_zooms, rtol=1e-5)


ROW_DIRECTION = np.array([np.cos(0.3), np.sin(0.3), 0.0])  # oblique: rotated in x-y, then tilted
COLUMN_DIRECTION = np.array([-np.sin(0.3) * np.cos(0.4), np.cos(0.3) * np.cos(0.4), np.sin(0.4)])


def mr_series(folder, count=4, gap=0.9375, gaps=None, thickness=0.9):
    """A series of ``count`` slices from pydicom's MR_small.dcm (64 x 64, 0.3125 mm pixels), oblique, slice
    positions ``gap`` mm apart along the normal (or the given ``gaps``), SliceLocation along the normal."""
    folder.mkdir(parents=True, exist_ok=True)
    source = pydicom.dcmread(str(pydicom_file("MR_small.dcm")))
    normal = np.cross(ROW_DIRECTION, COLUMN_DIRECTION)
    origin = np.array([-20.0, 15.5, 40.25])
    uid = generate_uid()
    steps = np.concatenate([[0.0], np.cumsum(gaps if gaps is not None else [gap] * (count - 1))])
    for index, step in enumerate(steps):
        dataset = source.copy()
        pixels = np.roll(source.pixel_array, 5 * index, axis=0)
        dataset.PixelData = np.ascontiguousarray(pixels).tobytes()
        dataset.ImageOrientationPatient = [round(float(v), 6) for v in (*ROW_DIRECTION, *COLUMN_DIRECTION)]
        dataset.ImagePositionPatient = [round(float(v), 5) for v in origin + step * normal]
        dataset.SliceLocation = round(float(step) + 3.0, 5)
        dataset.SliceThickness = thickness
        dataset.SeriesInstanceUID, dataset.SOPInstanceUID = uid, generate_uid()
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        dataset.InstanceNumber = index + 1
        dataset.save_as(str(folder / f"s{count - index}.dcm"), enforce_file_format=True)
    return folder


@pytest.mark.parametrize("r", [3, 4])
def test_dicom_series_positions_and_slice_attributes(tmp_path, r):
    folder = mr_series(tmp_path / "in", gap=0.3125 * r)
    scan = tp.read_scan(folder)
    assert tp.choose_scale(scan.geometry, "in") == r
    count = scan.values.shape[0]
    values = np.repeat(scan.values, r, axis=0)
    series = dicom_derived.through_plane_series(scan.volume, values, r, "test")
    dicom_derived.write_dicom_series((dataset, tmp_path / "out" / name) for name, dataset in series)
    written = sorted((pydicom.dcmread(str(p)) for p in (tmp_path / "out").iterdir()),
                     key=lambda ds: int(ds.InstanceNumber))
    assert [int(ds.InstanceNumber) for ds in written] == list(range(1, r * count + 1))
    inputs = sorted((pydicom.dcmread(str(p)) for p in folder.iterdir()), key=lambda ds: int(ds.InstanceNumber))
    out_positions = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in written])
    out_locations = np.array([float(ds.SliceLocation) for ds in written])
    for k, source in enumerate(inputs):
        j = r * k + (r - 1) / 2  # a half-integer for even r: between two output slices
        low, high = int(np.floor(j)), int(np.ceil(j))
        np.testing.assert_allclose((out_positions[low] + out_positions[high]) / 2,
                                   [float(v) for v in source.ImagePositionPatient], atol=1e-4)
        assert (out_locations[low] + out_locations[high]) / 2 == pytest.approx(float(source.SliceLocation), abs=1e-4)
    steps = np.linalg.norm(np.diff(out_positions, axis=0), axis=1)
    np.testing.assert_allclose(steps, 0.3125, atol=1e-4)
    first = written[0]
    assert float(first.SpacingBetweenSlices) == pytest.approx(0.3125)
    assert float(first.SliceThickness) == pytest.approx(0.9 / r, abs=1e-5)
    assert list(first.ImageType[:2]) == ["DERIVED", "SECONDARY"]
    assert len({ds.SeriesInstanceUID for ds in written}) == 1 and first.SeriesInstanceUID != inputs[0].SeriesInstanceUID
    assert len({ds.SOPInstanceUID for ds in written}) == r * count
    assert [float(v) for v in first.PixelSpacing] == [0.3125, 0.3125]
    np.testing.assert_array_equal(written[0].pixel_array, inputs[0].pixel_array)  # the nearest input slice's values


def test_uneven_dicom_spacing_is_an_error_naming_the_gap(tmp_path):
    folder = mr_series(tmp_path / "in", count=5, gaps=[0.9375, 0.9375, 1.875, 0.9375])  # s5.dcm .. s1.dcm
    with pytest.raises(tp.ThroughPlaneError, match=r"uneven slice spacing: 1.875 mm between s3.dcm .* and s2.dcm "
                                                   r".*usual gap is 0.9375 mm"):
        tp.read_scan(folder)


def skipped_warnings(caplog) -> list[str]:
    """The scans module's logged warnings since the last call (then forgotten)."""
    said = [r.getMessage() for r in caplog.records if r.name == "medsr_se.io.scans" and r.levelno == logging.WARNING]
    caplog.clear()
    return said


def test_uneven_spacing_is_said_once_as_the_error_whether_warned_or_logged(tmp_path, monkeypatch, caplog):
    """dicom_reading's own "uneven slice spacing" warning (a Python warning today, a log record by the package's
    rule) is not said beside read_scan's error that names the gap. Oracle: the error's text and the records."""
    import warnings

    from medsr_se.io import dicom_reading

    read = dicom_reading.read_dicom_volumes

    def warns_and_logs(files):
        logging.getLogger(dicom_reading.__name__).warning("series x: uneven slice spacing: 2 mm (logged)")
        return read(files)

    monkeypatch.setattr(dicom_reading, "read_dicom_volumes", warns_and_logs)
    caplog.set_level(logging.WARNING, logger=dicom_reading.__name__)
    folder = mr_series(tmp_path / "in", count=5, gaps=[0.9375, 0.9375, 1.875, 0.9375])
    with warnings.catch_warnings(record=True) as caught, pytest.raises(tp.ThroughPlaneError, match="uneven slice"):
        warnings.simplefilter("always")
        tp.read_scan(folder)
    assert [str(w.message) for w in caught] == [] and caplog.records == []
    logging.getLogger(dicom_reading.__name__).warning("uneven slice spacing elsewhere")  # the filter is gone after
    assert len(caplog.records) == 1


def test_in_plane_spacings_that_differ_are_a_logged_warning(caplog):
    caplog.set_level(logging.WARNING, logger="medsr_se.io.scans")
    geometry = tp.geometry_from_spacing((0.5, 0.6, 3.0))
    assert geometry.in_plane_spacing == pytest.approx(0.55)
    assert [r.getMessage() for r in caplog.records] == ["spacing: in-plane spacings differ (0.5 and 0.6 mm); their "
                                                        "mean is used for the scale and the slice profile"]


def test_a_series_folder_with_export_files_beside_the_slices(tmp_path, caplog):
    """A DICOM export: DICOMDIR, a report, a viewer and a thumbnail beside the slices are skipped with one logged
    warning naming them, and the scan is the four slices (oracle: the series written here); a suffix-less file
    that is not DICOM stays an error naming it; a folder of export files only is an error naming the folder."""
    caplog.set_level(logging.WARNING, logger="medsr_se.io.scans")
    folder = mr_series(tmp_path / "export", count=4, gap=0.9375)
    for name in ("DICOMDIR", "report.TXT", "viewer.exe", "thumb.jpg"):
        (folder / name).write_bytes(b"\0" * 300)
    scan = tp.read_scan(folder)
    assert skipped_warnings(caplog) == [f"{folder}: skipped 4 file(s) that are not slices: DICOMDIR, report.TXT, "
                                        "thumb.jpg, viewer.exe"]
    assert scan.values.shape == (4, 64, 64) and scan.geometry.slice_spacing == pytest.approx(0.9375, abs=1e-4)
    (folder / "IM0005").write_bytes(b"not dicom at all")
    with pytest.raises(tp.ThroughPlaneError, match="IM0005: cannot read the DICOM file"):
        tp.read_scan(folder)
    assert len(skipped_warnings(caplog)) == 1
    only_extras = tmp_path / "extras"
    only_extras.mkdir()
    (only_extras / "DICOMDIR").write_bytes(b"\0" * 300)
    with pytest.raises(tp.ThroughPlaneError, match="extras: no DICOM files"):
        tp.read_scan(only_extras)
    assert skipped_warnings(caplog) == [f"{only_extras}: skipped 1 file(s) that are not slices: DICOMDIR"]


def test_an_export_root_names_what_it_skipped_and_its_sub_folders(tmp_path, caplog):
    """An export's root (a real DICOMDIR beside an IMAGES/ folder of slices) is an error that names the skipped
    DICOMDIR and the sub-folder that may hold the series, not a bare "no DICOM files" beside a DICOM file."""
    root = tmp_path / "export"
    mr_series(root / "IMAGES", count=4, gap=0.9375)
    (root / "DICOMDIR").write_bytes(pydicom_file("DICOMDIR").read_bytes())
    caplog.set_level(logging.WARNING, logger="medsr_se.io.scans")
    with pytest.raises(tp.ThroughPlaneError) as raised:
        tp.read_scan(root)
    assert len(skipped_warnings(caplog)) == 1
    message = str(raised.value)
    assert "\n" not in message and "skipped DICOMDIR" in message and "IMAGES" in message
    assert message.endswith("may hold the series: give that folder instead") and "with -i" not in message
    assert tp.read_scan(root / "IMAGES").values.shape == (4, 64, 64)


def test_windows_litter_is_skipped_but_a_compressed_slice_is_an_error(tmp_path, caplog):
    """Thumbs.db / desktop.ini beside the slices are skipped (with the warning); a gzipped slice is not silently
    dropped (the series would be one slice shorter): it is an error naming it."""
    folder = mr_series(tmp_path / "series", count=4, gap=0.9375)
    (folder / "Thumbs.db").write_bytes(b"\0" * 100)
    (folder / "desktop.ini").write_text("[.ShellClassInfo]")
    caplog.set_level(logging.WARNING, logger="medsr_se.io.scans")
    assert tp.read_scan(folder).values.shape == (4, 64, 64)
    assert skipped_warnings(caplog) == [f"{folder}: skipped 2 file(s) that are not slices: Thumbs.db, desktop.ini"]
    (folder / "s5.dcm.gz").write_bytes(gzip.compress((folder / "s1.dcm").read_bytes()))
    with pytest.raises(tp.ThroughPlaneError, match="s5.dcm.gz"):
        tp.read_scan(folder)
    assert len(skipped_warnings(caplog)) == 1


def edit_slices(folder, edit, names=None):
    """``edit(dataset, index)`` on the slices of ``folder`` (all, or those named), saved in place; index in name
    order."""
    for index, path in enumerate(sorted(folder.iterdir())):
        if names is None or path.name in names:
            dataset = pydicom.dcmread(str(path))
            edit(dataset, index)
            dataset.save_as(str(path), enforce_file_format=True)
    return folder


def tilt_along_rows(folder, step):
    """A gantry tilt: slice k of the series moved k·``step`` mm along the row direction (positions stored rounded
    to 1e-5 mm, as scanners write them)."""

    def tilt(dataset, index):
        k = int(dataset.InstanceNumber) - 1
        dataset.ImagePositionPatient = [round(float(p) + step * k * float(d), 5) for p, d in
                                        zip(dataset.ImagePositionPatient, ROW_DIRECTION)]

    edit_slices(folder, tilt)


@pytest.mark.parametrize("keyword", ["ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"])
def test_a_slice_without_a_plane_attribute_is_refused_at_read_time(tmp_path, keyword):
    """Every slice needs ImagePositionPatient, ImageOrientationPatient and PixelSpacing: the through-plane writer
    places the r·N new slices from them. A slice lacking one, even with SpacingBetweenSlices, is one line naming
    the file and the attribute when the scan is read (was: accepted, trained, applied, then AttributeError while
    writing; a later slice's PixelSpacing was never looked at)."""
    folder = mr_series(tmp_path / "in", count=4)

    def drop(dataset, index):
        dataset.SpacingBetweenSlices = 0.9375
        if index == 1:  # s2.dcm
            delattr(dataset, keyword)

    edit_slices(folder, drop)
    with pytest.raises(tp.ThroughPlaneError) as raised:
        tp.read_scan(folder)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"{folder / 's2.dcm'}: no {keyword}"), message


@pytest.mark.parametrize("keyword,value,says", [
    ("ImagePositionPatient", [1.0, 2.0], "ImagePositionPatient has 2 values, not 3"),
    ("ImagePositionPatient", ["abc", "1", "2"], "ImagePositionPatient"),
    ("ImageOrientationPatient", [0.0] * 6, "ImageOrientationPatient [0, 0, 0, 0, 0, 0]: not two orthogonal unit"),
    ("ImageOrientationPatient", [1.0, 0, 0, 0, 1.0, 0], "ImageOrientationPatient [1, 0, 0, 0, 1, 0] differs from"),
    ("PixelSpacing", [0.3125, 0.5], "PixelSpacing [0.3125, 0.5] differs from"),
    ("PixelSpacing", [0.3125, -0.3125], "PixelSpacing [0.3125, -0.3125]: must be positive"),
    ("SliceLocation", "abc", "SliceLocation 'abc' is not a finite number"),
    ("SliceThickness", "abc", "SliceThickness 'abc' is not a finite number"),
])
def test_a_damaged_plane_attribute_is_one_line_naming_the_file(tmp_path, keyword, value, says):
    """What the writer would fail on, or place wrongly: a position of 2 values, a non-numeric one, a degenerate
    orientation, one slice of another orientation or pixel spacing, a SliceLocation / SliceThickness that is no
    number (was: read, then a traceback or a wrong geometry)."""
    from pydicom.datadict import dictionary_VR, tag_for_keyword
    from pydicom.dataelem import RawDataElement

    folder = mr_series(tmp_path / "in", count=4)

    def damage(dataset, index):
        tag = tag_for_keyword(keyword)
        raw = "\\".join(str(v) for v in value) if isinstance(value, list) else value
        raw = raw.encode() + (b" " if len(raw) % 2 else b"")
        dataset._dict[tag] = RawDataElement(pydicom.tag.Tag(tag), dictionary_VR(tag), len(raw), raw, 0, False, True)

    edit_slices(folder, damage, names={"s2.dcm"})
    with pytest.raises(tp.ThroughPlaneError) as raised:
        tp.read_scan(folder)
    message = str(raised.value)
    assert "\n" not in message and "s2.dcm" in message and says in message, message


def test_a_slice_off_the_line_of_the_others_is_refused(tmp_path):
    """Positions evenly spaced along the normal but one slice shifted 1 mm in its plane: the writer interpolates
    the new positions on the line from the first to the last slice, so this would misplace them."""
    folder = mr_series(tmp_path / "in", count=4)

    def shift(dataset, index):
        dataset.ImagePositionPatient = [round(float(p) + float(d), 5) for p, d in
                                        zip(dataset.ImagePositionPatient, ROW_DIRECTION)]

    edit_slices(folder, shift, names={"s2.dcm"})
    with pytest.raises(tp.ThroughPlaneError, match=r"s2.dcm: ImagePositionPatient .* is 1 mm off the line"):
        tp.read_scan(folder)


def test_a_tilted_series_keeps_its_slice_positions(tmp_path):
    """A gantry tilt: slice positions on a line that is not the normal (each slice 0.3 mm further along the row
    direction). Read (slice spacing along the normal), and every input slice keeps its ImagePositionPatient at
    output slice r·k + (r − 1)/2. Oracle: the positions written into the input files."""
    r = 3
    folder = mr_series(tmp_path / "in", count=4, gap=0.3125 * r)
    tilt_along_rows(folder, 0.3)
    scan = tp.read_scan(folder)
    assert scan.geometry.slice_spacing == pytest.approx(0.3125 * r, abs=1e-4)
    series = dicom_derived.through_plane_series(scan.volume, np.repeat(scan.values, r, axis=0), r, "test")
    dicom_derived.write_dicom_series((dataset, tmp_path / "out" / name) for name, dataset in series)
    written = sorted((pydicom.dcmread(str(p)) for p in (tmp_path / "out").iterdir()),
                     key=lambda ds: int(ds.InstanceNumber))
    inputs = sorted((pydicom.dcmread(str(p)) for p in folder.iterdir()), key=lambda ds: int(ds.InstanceNumber))
    for k, source in enumerate(inputs):
        np.testing.assert_allclose([float(v) for v in written[r * k + 1].ImagePositionPatient],
                                   [float(v) for v in source.ImagePositionPatient], atol=1e-4)


def test_slice_location_on_some_slices_only_is_not_copied_stale(tmp_path):
    """SliceLocation on two of four slices: the result cannot interpolate it, so no output slice carries one (was:
    each output slice copied its nearest input slice's, r slices sharing one location)."""
    r = 3
    folder = mr_series(tmp_path / "in", count=4, gap=0.3125 * r)
    edit_slices(folder, lambda dataset, index: delattr(dataset, "SliceLocation"), names={"s1.dcm", "s2.dcm"})
    scan = tp.read_scan(folder)
    series = dicom_derived.through_plane_series(scan.volume, np.repeat(scan.values, r, axis=0), r, "test")
    assert not any("SliceLocation" in dataset for _, dataset in series)


def test_the_slice_thickness_and_its_source_from_dicom(tmp_path):
    """SliceThickness of every slice gives the profile and says so; missing or 0 everywhere: assumed = the slice
    spacing, and said; different between slices, or negative: one line naming the files."""
    folder = mr_series(tmp_path / "in", count=4, thickness=0.9)
    geometry = tp.read_scan(folder).geometry
    assert geometry.slice_thickness == pytest.approx(0.9) and geometry.thickness_source == "from DICOM SliceThickness"
    assert tp.read_scan(folder, slice_thickness=2.0).geometry.thickness_source == "from slice_thickness"
    for name, edit, says in [("none", lambda ds, i: delattr(ds, "SliceThickness"), "has no SliceThickness"),
                             ("zero", lambda ds, i: setattr(ds, "SliceThickness", 0), "SliceThickness is 0")]:
        other = edit_slices(mr_series(tmp_path / name, count=4, thickness=0.9), edit)
        geometry = tp.read_scan(other).geometry
        assert geometry.thickness_assumed and geometry.slice_thickness == pytest.approx(0.9375, abs=1e-4)
        assert geometry.thickness_source.startswith("assumed = slice spacing") and says in geometry.thickness_source
    mixed = edit_slices(mr_series(tmp_path / "mixed", count=4, thickness=0.9),
                        lambda ds, i: setattr(ds, "SliceThickness", 2.0), names={"s3.dcm"})
    with pytest.raises(tp.ThroughPlaneError, match=r"SliceThickness differs between slices: 2 mm in s3.dcm, 0.9 mm "
                                                   r"in s\d.dcm; give slice_thickness=MM$") as raised:
        tp.read_scan(mixed)
    assert raised.value.parameter == "slice_thickness"
    assert tp.read_scan(mixed, slice_thickness=1.0).geometry.slice_thickness == 1.0  # the option settles it
    negative = edit_slices(mr_series(tmp_path / "negative", count=4), lambda ds, i: setattr(ds, "SliceThickness", -1))
    with pytest.raises(tp.ThroughPlaneError, match=r"s\d.dcm: SliceThickness -1 mm is negative; give "
                                                   r"slice_thickness=MM$"):
        tp.read_scan(negative)

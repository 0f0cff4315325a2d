"""medsr_se.io.volumes at the library level: NIfTI forms, DICOM attributes, whole-or-nothing writes, refused inputs.

Every geometric check is against nibabel / the DICOM attributes computed by hand here, never against
:func:`medsr_se.io.nifti.scaled_affine`.
"""

from __future__ import annotations

import numpy as np
import pytest

from medsr_se.io import dicom_derived, dicom_reading, nifti, volumes
from tests.logged import logs_no_warning, logs_warning
from tests.medical import nibabel_data

nibabel = pytest.importorskip("nibabel", reason="the medical extra is part of the test extra")
pydicom = pytest.importorskip("pydicom", reason="the medical extra is part of the test extra")

from nibabel.affines import apply_affine  # noqa: E402
from nibabel.eulerangles import euler2mat  # noqa: E402

SCALE = 2


def nearest(values: np.ndarray, in_plane: tuple[int, int], scale: int = SCALE) -> np.ndarray:
    """Stand-in for the network: every voxel repeated ``scale`` times along the in-plane axes."""
    for a in in_plane:
        values = np.repeat(values, scale, axis=a)
    return values


def centres(shape: tuple[int, ...], in_plane: tuple[int, int], scale: int = SCALE) -> tuple[np.ndarray, np.ndarray]:
    """Input voxel indices (a few, corners included) and the same voxel centres in the result's index space:
    i' = i·s + (s − 1)/2 on the in-plane axes, unchanged on the slice axis."""
    rng = np.random.default_rng(0)
    old = np.vstack([np.zeros(3), np.asarray(shape[:3]) - 1, rng.integers(0, shape[:3], size=(6, 3))]).astype(float)
    new = old.copy()
    for a in in_plane:
        new[:, a] = old[:, a] * scale + (scale - 1) / 2
    return old, new


QFORM = np.eye(4)
QFORM[:3, :3] = euler2mat(0.5, -0.2, 0.1) @ np.diag([2.0, 2.2, 3.0])
QFORM[:3, 3] = [10.0, -20.0, 5.0]
SFORM = QFORM.copy()
SFORM[:3, 3] += [10.0, 0.0, 0.0]  # the probe's 10 mm: a qform rebuilt from the sform moves every voxel by it
SFORM[0, 1] += 0.3  # a shear the qform cannot hold

FLAVOURS = {  # name -> (image class, suffix, qform code, sform code)
    "nifti1": (nibabel.Nifti1Image, ".nii", 1, 2),
    "nifti1-gz": (nibabel.Nifti1Image, ".nii.gz", 1, 4),
    "nifti2": (nibabel.Nifti2Image, ".nii", 1, 2),
    "nifti2-gz": (nibabel.Nifti2Image, ".nii.gz", 3, 1),
    "qform-only": (nibabel.Nifti1Image, ".nii", 1, 0),
    "sform-only": (nibabel.Nifti1Image, ".nii", 0, 2),
    "neither": (nibabel.Nifti1Image, ".nii", 0, 0),
}


def flavoured_nifti(tmp_path, flavour: str):
    image_class, suffix, qcode, scode = FLAVOURS[flavour]
    data = np.asarray(nibabel.load(nibabel_data() / "anatomical.nii").dataobj)
    image = image_class(data, None)
    image.header.set_zooms((2.0, 2.2, 3.0))
    image.set_qform(QFORM, code=qcode)
    image.set_sform(SFORM, code=scode)
    path = tmp_path / f"in{suffix}"
    nibabel.save(image, str(path))
    return path


@pytest.mark.parametrize("axis", [2, 0])
@pytest.mark.parametrize("flavour", list(FLAVOURS))
def test_nifti_forms_are_scaled_each_from_itself_with_its_code(tmp_path, flavour, axis):
    """Before: the qform was rebuilt from the scaled sform (10 mm off through the qform) and an uncoded form kept
    its unscaled offsets. Both forms, coded or not, keep voxel centres: old voxel i is new voxel i·s + (s−1)/2."""
    path = flavoured_nifti(tmp_path, flavour)
    source = nibabel.load(str(path))
    volume = nifti.read_nifti(path, axis)
    target = tmp_path / ("out" + FLAVOURS[flavour][1])
    nifti.write_nifti(volume, nearest(volume.values, volume.in_plane_axes), SCALE, target)
    result = nibabel.load(str(target))
    assert type(result) is type(source)
    old, new = centres(source.shape, volume.in_plane_axes)
    for form in ("qform", "sform"):
        assert int(result.header[f"{form}_code"]) == int(source.header[f"{form}_code"])
        before = getattr(source.header, f"get_{form}")()  # the stored form, even when its code is 0
        after = getattr(result.header, f"get_{form}")()
        np.testing.assert_allclose(apply_affine(after, new), apply_affine(before, old), atol=1e-3, err_msg=form)
    np.testing.assert_allclose(apply_affine(result.affine, new), apply_affine(source.affine, old), atol=1e-3)
    zooms = np.asarray(source.header.get_zooms(), float)
    zooms[list(volume.in_plane_axes)] /= SCALE
    np.testing.assert_allclose(result.header.get_zooms(), zooms, rtol=1e-6)
    slope = float(result.header.get_slope_inter()[0] or 1)  # nibabel scales float values into the int16 type
    np.testing.assert_allclose(np.asarray(result.dataobj), nearest(np.asarray(source.dataobj), volume.in_plane_axes),
                               atol=slope)


def small_nifti(path, data: np.ndarray, image_class=None):
    """``data`` saved as a NIfTI with 2 mm voxels (Nifti1Image unless ``image_class``)."""
    image = (image_class or nibabel.Nifti1Image)(data, np.diag([2.0, 2.0, 2.0, 1.0]))
    nibabel.save(image, str(path))
    return path


def test_non_finite_nifti_values_are_refused_with_the_count(tmp_path, caplog):
    """Before: one NaN voxel made its whole output slice NaN (the SE squeeze pools over the image), exit 0."""
    data = np.arange(6 * 5 * 4, dtype=np.float32).reshape(6, 5, 4)
    data[1, 2, 3], data[0, 0, 0], data[2, 2, 2], data[3, 1, 0] = np.nan, np.inf, np.inf, -np.inf
    path = small_nifti(tmp_path / "nan.nii", data)
    with pytest.raises(volumes.VolumeError, match=r"nan.nii: 4 non-finite value\(s\) of 120 \(1 NaN, 2 \+inf, "
                                                  r"1 -inf\).*nonfinite=VALUE") as raised:
        nifti.read_nifti(path)
    assert raised.value.parameter == "nonfinite" and "--" not in str(raised.value)
    with logs_warning(caplog, "medsr_se.io.intensity", r"nan.nii: 4 non-finite value\(s\).*replaced by -5"):
        volume = nifti.read_nifti(path, nonfinite=-5.0)
    expected = np.where(np.isfinite(data), data, -5.0)
    np.testing.assert_array_equal(volume.values, expected)


@pytest.mark.parametrize("module,read", [("nibabel", lambda path: nifti.read_nifti(path)),
                                         ("pydicom", lambda path: dicom_reading.read_dicom_volumes([path]))])
def test_a_missing_medical_extra_is_a_data_error(tmp_path, monkeypatch, module, read):
    """Without nibabel / pydicom a volume is refused in one line saying which extra to install: a DataError (was a
    plain ValueError, which a command now shows with a traceback)."""
    from medsr_se.errors import DataError

    monkeypatch.setitem(__import__("sys").modules, module, None)  # import fails as if it were not installed
    with pytest.raises(DataError, match=r'needs the extra: pip install "medsr-se\[medical\]"'):
        read(tmp_path / "scan")


def test_all_nan_nifti_is_refused_naming_the_file(tmp_path):
    """Before (defect 14): "no finite values to measure an intensity range on", no file named."""
    path = small_nifti(tmp_path / "empty.nii", np.full((4, 4, 3), np.nan, np.float32))
    with pytest.raises(volumes.VolumeError, match=r"empty.nii: 48 non-finite value\(s\) of 48 \(48 NaN"):
        nifti.read_nifti(path)


def test_complex_nifti_is_refused_in_one_line_without_numpy_warning(tmp_path, recwarn):
    """Before: the imaginary part was dropped with numpy's raw ComplexWarning."""
    path = small_nifti(tmp_path / "complex.nii", (np.ones((4, 4, 3)) * (1 + 2j)).astype(np.complex64))
    with pytest.raises(volumes.VolumeError, match=r"complex.nii: complex-valued NIfTI \(complex64\).*magnitude"):
        nifti.read_nifti(path)
    assert not [w for w in recwarn if issubclass(w.category, np.exceptions.ComplexWarning)]


def test_rgb_and_cifti_files_are_refused_in_one_line(tmp_path):
    rgb = np.zeros((4, 4, 3), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    with pytest.raises(volumes.VolumeError, match=r"rgb.nii: .*RGB.*one value per voxel"):
        nifti.read_nifti(small_nifti(tmp_path / "rgb.nii", rgb))
    with pytest.raises(volumes.VolumeError, match=r"row_major.dconn.nii: a CIFTI-2 file"):
        nifti.read_nifti(nibabel_data() / "row_major.dconn.nii")


@pytest.mark.parametrize("cut", [0.5, 0.001])
def test_truncated_nifti_is_one_line(tmp_path, cut):
    """Before: nibabel's two-line "Expected ... bytes ... - could the file be damaged?" inside the error."""
    raw = (nibabel_data() / "anatomical.nii").read_bytes()
    (tmp_path / "cut.nii").write_bytes(raw[: int(len(raw) * cut)])
    with pytest.raises(volumes.VolumeError, match="cut.nii: cannot read the NIfTI volume") as caught:
        nifti.read_nifti(tmp_path / "cut.nii")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("shape,axis,message", [((8, 6), 0, "2-D NIfTI"), ((8, 6), 1, "2-D NIfTI"),
                                                ((8, 1, 5), 2, "axis 1 has 1 voxel")])
def test_an_in_plane_axis_of_one_voxel_is_refused(tmp_path, shape, axis, message):
    """Before: a 2-D NIfTI with --axis 0 ended in an IndexError traceback in write_nifti (an empty folder left).
    The error names the parameter (``axis=0``, ``error.parameter``), not a command's flag (it said --axis)."""
    path = small_nifti(tmp_path / "flat.nii", np.ones(shape, np.float32))
    with pytest.raises(volumes.VolumeError, match=f"flat.nii: .*{message}.*axis={axis}") as raised:
        nifti.read_nifti(path, axis)
    assert raised.value.parameter == "axis" and "--" not in str(raised.value)
    assert str(raised.value).count("axis=") == 1  # the one a command shows as its flag (errors.for_command)


def test_a_2d_nifti_along_its_own_plane_round_trips(tmp_path):
    path = small_nifti(tmp_path / "flat.nii", np.arange(48, dtype=np.float32).reshape(8, 6))
    volume = nifti.read_nifti(path, 2)
    nifti.write_nifti(volume, nearest(volume.values, (0, 1)), SCALE, tmp_path / "out.nii")
    result = nibabel.load(str(tmp_path / "out.nii"))
    assert result.shape == (16, 12)
    np.testing.assert_allclose(np.asarray(result.dataobj), nearest(np.asarray(nibabel.load(path).dataobj), (0, 1)),
                               atol=1e-3)


def test_slice_timing_of_an_upscaled_slice_dimension_is_cleared(tmp_path, caplog):
    """example4d.nii.gz says its slices (dim_info) run along axis 2 with slice_end 23: upscaling axis 2
    (--axis 0) leaves them describing no slice of the result."""
    volume = nifti.read_nifti(nibabel_data() / "example4d.nii.gz", 0)
    with logs_warning(caplog, "medsr_se.io.nifti", r"example4d.nii.gz: the NIfTI slice dimension \(dim_info\) is "
                      r"axis 2, upscaled here: its slice timing does not describe the result and was cleared"):
        nifti.write_nifti(volume, nearest(volume.values, (1, 2)), SCALE, tmp_path / "out.nii.gz")
    header = nibabel.load(str(tmp_path / "out.nii.gz")).header
    assert header.get_dim_info()[2] is None and int(header["slice_end"]) == 0
    kept = nifti.read_nifti(nibabel_data() / "example4d.nii.gz", 2)
    nifti.write_nifti(kept, nearest(kept.values, (0, 1)), SCALE, tmp_path / "kept.nii.gz")
    assert nibabel.load(str(tmp_path / "kept.nii.gz")).header.get_dim_info() == (0, 1, 2)


def ct_copy(tmp_path, name: str = "ct.dcm", **attributes):
    """pydicom's CT_small.dcm saved to ``tmp_path / name`` with ``attributes`` set (None deletes one)."""
    from tests.medical import pydicom_file

    dataset = pydicom.dcmread(str(pydicom_file("CT_small.dcm")))
    for keyword, value in attributes.items():
        if value is None:
            delattr(dataset, keyword)
        else:
            setattr(dataset, keyword, value)
    path = tmp_path / name
    dataset.save_as(str(path), enforce_file_format=True)
    return path


def test_rescale_slope_zero_is_refused(tmp_path):
    """Before: RescaleSlope 0 was read as 1 without a word (and written back as 0)."""
    with pytest.raises(volumes.VolumeError, match=r"ct.dcm: RescaleSlope 0.*every pixel"):
        dicom_reading.read_dicom_volumes([ct_copy(tmp_path, RescaleSlope=0)])
    volume = dicom_reading.read_dicom_volumes([ct_copy(tmp_path, "two.dcm", RescaleSlope=2, RescaleIntercept=-1000)])[0]
    stored = pydicom.dcmread(str(tmp_path / "two.dcm")).pixel_array
    np.testing.assert_array_equal(volume.values[0], stored * 2.0 - 1000)


@pytest.mark.parametrize("name,photometric", [("examples_palette.dcm", "PALETTE COLOR"),
                                              ("examples_rgb_color.dcm", "RGB"),
                                              ("SC_ybr_full_422_uncompressed.dcm", "YBR_FULL_422")])
def test_colour_dicom_is_refused_naming_its_photometric_interpretation(name, photometric):
    """Before: a PALETTE COLOR file was accepted and its palette indices interpolated as if intensities."""
    from tests.medical import pydicom_file

    with pytest.raises(volumes.VolumeError, match=f"{name}: PhotometricInterpretation {photometric}"):
        dicom_reading.read_dicom_volumes([pydicom_file(name)])


def test_monochrome1_keeps_its_values_and_its_photometric_interpretation(tmp_path):
    """MONOCHROME1 only tells a viewer to show the lowest value white: the physical values are the same as the
    MONOCHROME2 file's, and the result keeps MONOCHROME1 so that it displays like its input."""
    one = dicom_reading.read_dicom_volumes([ct_copy(tmp_path, "one.dcm", PhotometricInterpretation="MONOCHROME1")])[0]
    two = dicom_reading.read_dicom_volumes([ct_copy(tmp_path, "two.dcm")])[0]
    np.testing.assert_array_equal(one.values, two.values)
    (_, derived), = dicom_derived.derived_series(one, nearest(one.values, (1, 2)), SCALE, "test")
    assert derived.PhotometricInterpretation == "MONOCHROME1"


def test_compressed_dicom_without_a_decoder_is_one_line(tmp_path):
    """Before: pydicom's multi-line list of decoding plugins and their missing dependencies."""
    import shutil

    from tests.medical import pydicom_file

    source = pydicom_file("MR_small_jpeg_ls_lossless.dcm")
    try:
        assert pydicom.dcmread(str(source)).pixel_array.size
        pytest.skip("a JPEG-LS decoder is installed here")
    except Exception:
        pass
    shutil.copy(source, tmp_path / "jls.dcm")
    with pytest.raises(volumes.VolumeError, match=r"jls.dcm: pixel data compressed as JPEG-LS Lossless.*pip "
                                                  r"install") as e:
        dicom_reading.read_dicom_volumes([tmp_path / "jls.dcm"])
    assert "\n" not in str(e.value)


def derive(volume, scale: int = SCALE) -> list:
    """The derived datasets of ``volume`` upscaled by nearest-neighbour (a stand-in for the network)."""
    return [dataset for _, dataset in dicom_derived.derived_series(volume, nearest(volume.values, (1, 2), scale), scale,
                                                            "test")]


def test_overlays_follow_the_pixel_grid_and_the_icon_is_dropped_with_a_note(tmp_path, caplog):
    """Before: OverlayRows/Columns/Data stayed on the input's grid (a 300x484 overlay on a 600x968 image) and the
    icon (a thumbnail of the input) was copied as if it showed the result."""
    from tests.medical import pydicom_file

    source = pydicom.dcmread(str(pydicom_file("examples_overlay.dcm")))
    source[0x6000, 0x0050].value = [3, -1]  # OverlayOrigin, 1-based (row, column)
    source[0x6000, 0x1301] = pydicom.DataElement(0x60001301, "IS", 222)  # ROIArea, in input pixels
    source[0x6000, 0x1302] = pydicom.DataElement(0x60001302, "DS", 12.5)  # ROIMean, of the input's pixels
    source.save_as(str(tmp_path / "overlay.dcm"), enforce_file_format=True)
    volume = dicom_reading.read_dicom_volumes([tmp_path / "overlay.dcm"])[0]
    with logs_warning(caplog, "medsr_se.io.dicom_derived") as caught:
        (derived,) = derive(volume)
    notes = " ".join(caught)
    assert "IconImageSequence" in notes and "ROIMean" in notes
    assert "IconImageSequence" not in derived and (0x6000, 0x1302) not in derived
    overlay = source.overlay_array(0x6000)
    assert (derived[0x6000, 0x0010].value, derived[0x6000, 0x0011].value) == (600, 968)
    assert list(derived[0x6000, 0x0050].value) == [5, -3]  # 1-based origin o -> (o − 1)·s + 1
    np.testing.assert_array_equal(derived.overlay_array(0x6000), np.kron(overlay, np.ones((2, 2), overlay.dtype)))
    assert int(derived[0x6000, 0x1301].value) == 222 * 4


def ultrasound_region():
    from pydicom.dataset import Dataset

    region = Dataset()
    region.RegionSpatialFormat, region.RegionDataType, region.RegionFlags = 1, 1, 0
    region.RegionLocationMinX0, region.RegionLocationMinY0 = 10, 20
    region.RegionLocationMaxX1, region.RegionLocationMaxY1 = 100, 90
    region.PhysicalUnitsXDirection, region.PhysicalUnitsYDirection = 3, 3  # cm
    region.PhysicalDeltaX, region.PhysicalDeltaY = 0.05, 0.04
    region.ReferencePixelX0, region.ReferencePixelY0 = 40, -5
    region.ReferencePixelPhysicalValueX, region.ReferencePixelPhysicalValueY = 1.5, 0.0
    return region


def test_spacings_shutters_and_ultrasound_regions_follow_the_pixel_grid(tmp_path):
    """Before: only PixelSpacing followed the new grid."""
    path = ct_copy(tmp_path, ImagerPixelSpacing=[0.8, 0.6], NominalScannedPixelSpacing=[0.5, 0.4],
                   ShutterShape="RECTANGULAR", ShutterLeftVerticalEdge=11, ShutterRightVerticalEdge=120,
                   ShutterUpperHorizontalEdge=1, ShutterLowerHorizontalEdge=64,
                   SequenceOfUltrasoundRegions=[ultrasound_region()], PixelAspectRatio=[1, 1])
    source = pydicom.dcmread(str(path))
    (derived,) = derive(dicom_reading.read_dicom_volumes([path])[0])
    assert [float(v) for v in derived.PixelSpacing] == pytest.approx([float(v) / 2 for v in source.PixelSpacing])
    assert [float(v) for v in derived.ImagerPixelSpacing] == pytest.approx([0.4, 0.3])
    assert [float(v) for v in derived.NominalScannedPixelSpacing] == pytest.approx([0.25, 0.2])
    assert list(derived.PixelAspectRatio) == [1, 1]  # both axes scale alike
    # a rectangular shutter's edges are 1-based inclusive pixel columns / rows: [l, r] -> [(l − 1)·s + 1, r·s]
    assert (derived.ShutterLeftVerticalEdge, derived.ShutterRightVerticalEdge) == (21, 240)
    assert (derived.ShutterUpperHorizontalEdge, derived.ShutterLowerHorizontalEdge) == (1, 128)
    # ultrasound region: 0-based inclusive bounds [a, b] -> [a·s, b·s + s − 1]; the physical coordinate of every
    # input pixel centre x (region-relative) is the same at its new centre x·s + (s − 1)/2
    old, new = source.SequenceOfUltrasoundRegions[0], derived.SequenceOfUltrasoundRegions[0]
    assert (new.RegionLocationMinX0, new.RegionLocationMaxX1) == (20, 201)
    assert (new.RegionLocationMinY0, new.RegionLocationMaxY1) == (40, 181)
    for axis in "XY":
        x = np.arange(-3.0, 50.0)
        x_new = x * SCALE + (SCALE - 1) / 2

        def physical(region, pixel, axis=axis):
            return ((pixel - region[f"ReferencePixel{axis}0"].value) * region[f"PhysicalDelta{axis}"].value
                    + region[f"ReferencePixelPhysicalValue{axis}"].value)

        np.testing.assert_allclose(physical(new, x_new), physical(old, x), atol=1e-9)


@pytest.mark.parametrize("attributes,named", [
    ({"ShutterShape": "CIRCULAR", "CenterOfCircularShutter": [64, 64], "RadiusOfCircularShutter": 30},
     "CenterOfCircularShutter"),
    ({"ShutterShape": "POLYGONAL", "VerticesOfThePolygonalShutter": [1, 1, 1, 64, 64, 64]},
     "VerticesOfThePolygonalShutter"),
    ({"TotalPixelMatrixRows": 1000}, "TotalPixelMatrixRows"),
])
def test_attributes_in_input_pixels_that_cannot_be_scaled_are_refused(tmp_path, attributes, named):
    with pytest.raises(volumes.VolumeError, match=f"ct.dcm: {named}"):
        dicom_reading.read_dicom_volumes([ct_copy(tmp_path, **attributes)])


def test_curves_embedded_overlays_and_one_bit_images_are_refused(tmp_path):
    dataset = pydicom.dcmread(str(ct_copy(tmp_path)))
    dataset[0x5000, 0x3000] = pydicom.DataElement(0x50003000, "OW", b"\0" * 8)  # retired CurveData
    dataset.save_as(str(tmp_path / "curve.dcm"))
    with pytest.raises(volumes.VolumeError, match=r"curve.dcm: CurveData \(5000,3000\)"):
        dicom_reading.read_dicom_volumes([tmp_path / "curve.dcm"])
    dataset = pydicom.dcmread(str(ct_copy(tmp_path)))
    dataset[0x6000, 0x0010] = pydicom.DataElement(0x60000010, "US", 128)  # an overlay without OverlayData:
    dataset[0x6000, 0x0100] = pydicom.DataElement(0x60000100, "US", 16)  # in the pixel data's unused bits
    dataset[0x6000, 0x0102] = pydicom.DataElement(0x60000102, "US", 15)
    dataset.save_as(str(tmp_path / "embedded.dcm"))
    with pytest.raises(volumes.VolumeError, match=r"embedded.dcm: .*overlay.*\(6000"):
        dicom_reading.read_dicom_volumes([tmp_path / "embedded.dcm"])
    from tests.medical import pydicom_file

    with pytest.raises(volumes.VolumeError, match=r"liver_1frame.dcm: BitsAllocated 1"):
        dicom_reading.read_dicom_volumes([pydicom_file("liver_1frame.dcm")])


def test_pixel_padding_stays_padding(tmp_path):
    """PixelPaddingValue marks pixels outside the scanned field: the result marks the same area (each padded input
    pixel's s x s block) with it, instead of values the network made from it."""
    from tests.medical import pydicom_file

    source = pydicom.dcmread(str(pydicom_file("CT_small.dcm")))  # signed, PixelPaddingValue -2000
    pixels = source.pixel_array.copy()
    pixels[:10, :] = -2000
    pixels[20:30, 40:45] = -2000
    source.PixelData = pixels.tobytes()
    source.save_as(str(tmp_path / "pad.dcm"), enforce_file_format=True)
    volume = dicom_reading.read_dicom_volumes([tmp_path / "pad.dcm"])[0]
    blurred = nearest(volume.values, (1, 2)) + 7.0  # a "network" that changes every value, padding included
    (_, derived), = dicom_derived.derived_series(volume, blurred, SCALE, "test")
    padded = np.kron(pixels == -2000, np.ones((2, 2), bool))
    np.testing.assert_array_equal(derived.pixel_array == -2000, padded)
    assert derived.PixelPaddingValue == -2000


def series_of(tmp_path, positions: list[float], same_pixels: bool = False) -> list:
    """CT_small.dcm as one series with slices at ``positions`` (mm along z), each slice's pixels rolled by its
    index unless ``same_pixels``."""
    from pydicom.uid import generate_uid

    from tests.medical import pydicom_file

    source = pydicom.dcmread(str(pydicom_file("CT_small.dcm")))
    uid, paths = generate_uid(), []
    for index, z in enumerate(positions):
        dataset = source.copy()
        dataset.SeriesInstanceUID, dataset.SOPInstanceUID, dataset.InstanceNumber = uid, generate_uid(), index + 1
        x, y, _ = (float(v) for v in source.ImagePositionPatient)
        dataset.ImagePositionPatient = [x, y, z]
        pixels = source.pixel_array if same_pixels else np.roll(source.pixel_array, index, axis=1)
        dataset.PixelData = np.ascontiguousarray(pixels).tobytes()
        paths.append(tmp_path / f"s{index}.dcm")
        dataset.save_as(str(paths[-1]), enforce_file_format=True)
    return paths


def test_duplicate_slice_positions_are_named(tmp_path, caplog):
    """Before: two slices at one position passed without a word."""
    with logs_warning(caplog, "medsr_se.io.dicom_reading", r"2 slices at z = 5 mm.*s1.dcm, s2.dcm.*same pixel data"):
        dicom_reading.read_dicom_volumes(series_of(tmp_path, [0.0, 5.0, 5.0, 10.0], same_pixels=True))
    (tmp_path / "b").mkdir()
    with logs_warning(caplog, "medsr_se.io.dicom_reading", r"2 slices at z = 5 mm.*different pixel data"):
        (volume,) = dicom_reading.read_dicom_volumes(series_of(tmp_path / "b", [0.0, 5.0, 5.0, 10.0]))
    assert [p.name for p in volume.paths] == ["s0.dcm", "s1.dcm", "s2.dcm", "s3.dcm"]  # ties by InstanceNumber


def test_uneven_slice_spacing_is_named(tmp_path, caplog):
    with logs_warning(caplog, "medsr_se.io.dicom_reading",
                      r"uneven slice spacing: 5 mm between z = 5 and z = 10 mm, where the usual gap is 2.5 mm"):
        dicom_reading.read_dicom_volumes(series_of(tmp_path, [0.0, 2.5, 5.0, 10.0, 12.5]))
    (tmp_path / "even").mkdir()
    with logs_no_warning(caplog):
        dicom_reading.read_dicom_volumes(series_of(tmp_path / "even", [0.0, 2.5, 5.0, 7.5]))


def test_big_endian_and_32_bit_dicom_are_written(tmp_path):
    """Found probing: a big-endian file failed at writing ("cannot convert between little and big endian"), and
    a 32-bit RTDOSE failed on SmallestImagePixelValue (a 16-bit attribute) with pydicom's traceback text."""
    from tests.medical import pydicom_file

    for name in ("MR_small_bigendian.dcm", "rtdose_1frame.dcm"):
        volume = dicom_reading.read_dicom_volumes([pydicom_file(name)])[0]
        (derived,) = derive(volume)
        dicom_derived.write_dicom_series([(derived, tmp_path / name)])
        written = pydicom.dcmread(str(tmp_path / name))
        source = pydicom.dcmread(str(pydicom_file(name)))
        assert written.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        np.testing.assert_array_equal(written.pixel_array, nearest(source.pixel_array[None], (1, 2))[0])
        assert written.PatientName == source.PatientName and written.Rows == 2 * source.Rows


# --- enhanced multi-frame geometry, rescale, clipping ----------------------------------------------------------------

ENHANCED_CT = "1.2.840.10008.5.1.4.1.1.2.1"  # Enhanced CT Image Storage
ROW_DIRECTION, COLUMN_DIRECTION = [0.8, 0.6, 0.0], [0.0, 0.0, -1.0]  # oblique
FRAME_INTERCEPTS = [-1024.0, -900.0, -1100.0]


def enhanced_multiframe(path):
    """An enhanced multi-frame CT built with pydicom (pydicom ships none: only 1-bit SEG files have functional
    groups): CT_small's pixels in 3 frames, orientation and spacing in the shared functional groups, a position and
    a rescale intercept of its own in each frame's, none of them at the top level."""
    from pydicom.dataset import Dataset

    from tests.medical import pydicom_file

    dataset = pydicom.dcmread(str(pydicom_file("CT_small.dcm")))
    frames = np.stack([dataset.pixel_array, dataset.pixel_array[::-1], np.roll(dataset.pixel_array, 9, axis=1)])
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "RescaleSlope",
                    "RescaleIntercept", "SliceThickness"):
        delattr(dataset, keyword)
    dataset.SOPClassUID = dataset.file_meta.MediaStorageSOPClassUID = ENHANCED_CT
    dataset.NumberOfFrames = len(frames)
    dataset.PixelData = frames.tobytes()
    measures, orientation, shared = Dataset(), Dataset(), Dataset()
    measures.PixelSpacing, measures.SliceThickness = [0.7, 0.6], 5.0
    orientation.ImageOrientationPatient = ROW_DIRECTION + COLUMN_DIRECTION
    shared.PixelMeasuresSequence, shared.PlaneOrientationSequence = [measures], [orientation]
    dataset.SharedFunctionalGroupsSequence = [shared]
    per_frame = []
    for index, intercept in enumerate(FRAME_INTERCEPTS):
        position, transformation, group = Dataset(), Dataset(), Dataset()
        position.ImagePositionPatient = [10.0, -20.0 + 0.5 * index, 30.0 - 5.0 * index]
        transformation.RescaleSlope, transformation.RescaleIntercept = 1.0, intercept
        transformation.RescaleType = "HU"
        group.PlanePositionSequence, group.PixelValueTransformationSequence = [position], [transformation]
        per_frame.append(group)
    dataset.PerFrameFunctionalGroupsSequence = per_frame
    dataset.save_as(str(path), enforce_file_format=True)
    return path, frames


def frame_geometry(dataset, index: int):
    """Frame ``index``'s ImagePositionPatient, ImageOrientationPatient and PixelSpacing from its functional groups
    (per-frame first, then shared), read with pydicom, as one dataset for :func:`tests.medical.dicom_world`."""
    from pydicom.dataset import Dataset

    groups = [dataset.PerFrameFunctionalGroupsSequence[index], dataset.SharedFunctionalGroupsSequence[0]]

    def find(sequence: str, keyword: str):
        return next(g[sequence][0][keyword].value for g in groups if sequence in g and keyword in g[sequence][0])

    geometry = Dataset()
    geometry.ImagePositionPatient = find("PlanePositionSequence", "ImagePositionPatient")
    geometry.ImageOrientationPatient = find("PlaneOrientationSequence", "ImageOrientationPatient")
    geometry.PixelSpacing = find("PixelMeasuresSequence", "PixelSpacing")
    return geometry


def test_enhanced_multiframe_geometry_and_rescale_follow_each_frame(tmp_path):
    """Each frame's physical values use its own PixelValueTransformationSequence, and the result's functional groups
    put every input pixel centre at the same patient position (world coordinates from the attributes, by hand).
    Before: a rescale in the per-frame groups only was not seen as one, so an enhanced CT was 'stored', not HU."""
    from tests.medical import dicom_world

    path, frames = enhanced_multiframe(tmp_path / "enhanced.dcm")
    (volume,) = dicom_reading.read_dicom_volumes([path])
    assert volume.kind == "dicom-multiframe" and volume.unit == "HU"
    np.testing.assert_array_equal(volume.values, frames + np.asarray(FRAME_INTERCEPTS)[:, None, None])
    (derived,) = derive(volume)
    dicom_derived.write_dicom_series([(derived, tmp_path / "out.dcm")])
    source, written = pydicom.dcmread(str(path)), pydicom.dcmread(str(tmp_path / "out.dcm"))
    assert int(written.NumberOfFrames) == 3 and written.pixel_array.shape == (3, 256, 256)
    rows, columns = np.meshgrid([0, 100, 255], [0, 37, 255], indexing="ij")
    for index, intercept in enumerate(FRAME_INTERCEPTS):
        np.testing.assert_allclose(dicom_world(frame_geometry(written, index), 2 * rows + 0.5, 2 * columns + 0.5),
                                   dicom_world(frame_geometry(source, index), rows, columns), atol=1e-4)
        item = written.PerFrameFunctionalGroupsSequence[index].PixelValueTransformationSequence[0]
        assert float(item.RescaleIntercept) == intercept  # stored values keep their meaning per frame
    np.testing.assert_array_equal(written.pixel_array, nearest(frames, (1, 2)))


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
def test_the_rescale_agrees_with_pydicoms_modality_lut(name):
    """Where both read the same top-level attributes, our physical values are pydicom's apply_modality_lut."""
    from pydicom.pixels import apply_modality_lut

    from tests.medical import pydicom_file

    (volume,) = dicom_reading.read_dicom_volumes([pydicom_file(name)])
    dataset = pydicom.dcmread(str(pydicom_file(name)))
    np.testing.assert_allclose(volume.values[0], apply_modality_lut(dataset.pixel_array, dataset), rtol=1e-6)


def test_stored_values_beyond_bits_stored_are_clipped_with_a_warning(tmp_path, caplog):
    """CT_small with BitsStored 12 (signed: [-2048, 2047]) and intercept -1024: physical values above 1023 HU or
    below -3072 HU do not fit; they are clipped to the range, counted and named in a warning."""
    dataset = pydicom.dcmread(str(ct_copy(tmp_path, BitsStored=12, HighBit=11)))
    physical = np.array([[-5000.0, -3072.0, 0.0], [1023.0, 1023.6, 4000.0]])
    stored_by_hand = np.round(physical + 1024.0)  # slope 1
    with logs_warning(caplog, "medsr_se.io.dicom_derived", r"^ct\.dcm: 3 value\(s\) beyond the stored pixel range "
                      r"\[-2048, 2047\] were clipped to it$"):
        stored = dicom_derived.stored_values(dataset, physical, "ct.dcm")
    assert stored.dtype == np.int16
    np.testing.assert_array_equal(stored, np.clip(stored_by_hand, -2048, 2047))


# --- damaged files: one line; a bug: a traceback ---------------------------------------------------------------------

def damaged_nifti(tmp_path, kind: str):
    """anatomical.nii / example4d.nii.gz damaged as probed: each makes nibabel raise a different type."""
    import gzip
    import struct

    raw = (nibabel_data() / "anatomical.nii").read_bytes()
    packed = gzip.compress(raw)
    damaged = {
        "truncated-gz": (".nii.gz", packed[: len(packed) // 2]),  # EOFError
        "corrupt-gz": (".nii.gz", packed[:100] + b"\0" * 200 + packed[300:]),  # zlib.error
        "datatype": (".nii", raw[:70] + struct.pack("<h", 9999) + raw[72:]),  # HeaderDataError
        "negative-dim": (".nii", raw[:42] + struct.pack("<h", -5) + raw[44:]),  # OverflowError
        "garbage": (".nii", b"not nifti"),  # ImageFileError
    }[kind]
    path = tmp_path / f"{kind}{damaged[0]}"
    path.write_bytes(damaged[1])
    return path


@pytest.mark.parametrize("kind", ["truncated-gz", "corrupt-gz", "datatype", "negative-dim", "garbage"])
def test_a_damaged_nifti_is_one_line_naming_it(tmp_path, kind):
    path = damaged_nifti(tmp_path, kind)
    with pytest.raises(volumes.VolumeError, match=rf"^{path}: cannot read the NIfTI volume \(") as caught:
        nifti.read_nifti(path)
    assert "\n" not in str(caught.value)


def damaged_dicom(tmp_path, kind: str):
    from tests.medical import pydicom_file

    raw = pydicom_file("CT_small.dcm").read_bytes()
    patient_id = raw.index(b"\x10\x00\x20\x00LO")  # (0010,0020) PatientID, explicit VR LO
    damaged = {
        "garbage": b"garbage" * 10,  # InvalidDicomError
        "truncated-pixels": raw[:-5000],  # ValueError at decoding
        "unknown-vr": raw[: patient_id + 4] + b"\x4c\xf8" + raw[patient_id + 6:],  # NotImplementedError, lazily
        "no-pixels": raw[:2000],  # no PixelData at all
    }[kind]
    path = tmp_path / f"{kind}.dcm"
    path.write_bytes(damaged)
    return path


@pytest.mark.parametrize("kind,reason", [
    ("garbage", "cannot read the DICOM file"), ("truncated-pixels", "cannot read the DICOM pixel data"),
    ("unknown-vr", r"cannot read the DICOM file \(Unknown Value Representation"),
    ("no-pixels", "no PixelData")])
def test_a_damaged_dicom_is_one_line_naming_it(tmp_path, kind, reason):
    """unknown-vr, before: pydicom decodes elements lazily, so the damaged PatientID escaped the read's try and
    surfaced later as a NotImplementedError traceback; now every element is decoded inside it."""
    path = damaged_dicom(tmp_path, kind)
    with pytest.raises(volumes.VolumeError, match=rf"^{path}: {reason}") as caught:
        dicom_reading.read_dicom_volumes([path])
    assert "\n" not in str(caught.value)


def test_a_bug_inside_the_readers_is_a_traceback_not_a_damaged_file(tmp_path, monkeypatch):
    """Before: every exception, a TypeError of ours too, became "cannot read the ... volume"."""
    from tests.medical import pydicom_file

    def bug(*args, **kwargs):
        raise TypeError("a bug")

    monkeypatch.setattr(nibabel, "load", bug)
    with pytest.raises(TypeError, match="a bug"):
        nifti.read_nifti(nibabel_data() / "anatomical.nii")
    monkeypatch.setattr(pydicom, "dcmread", bug)
    with pytest.raises(TypeError, match="a bug"):
        dicom_reading.read_dicom_volumes([pydicom_file("CT_small.dcm")])
    monkeypatch.undo()
    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(bug))
    with pytest.raises(TypeError, match="a bug"):
        dicom_reading.read_dicom_volumes([pydicom_file("CT_small.dcm")])


def test_a_bug_while_writing_leaves_nothing_and_is_a_traceback(tmp_path, monkeypatch):
    """Before: a TypeError inside a write became "cannot write it (...)", as if the disk had failed."""
    (volume,) = dicom_reading.read_dicom_volumes([ct_copy(tmp_path)])
    (derived,) = derive(volume)
    monkeypatch.setattr(pydicom.dataset.Dataset, "save_as", lambda *args, **kwargs: (_ for _ in ()).throw(
        TypeError("a bug")))
    with pytest.raises(TypeError, match="a bug"):
        dicom_derived.write_dicom_series([(derived, tmp_path / "out" / "ct.dcm")])
    assert not (tmp_path / "out").exists()  # the folder it made is removed all the same

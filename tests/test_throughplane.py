"""The Python API of medsr_se.throughplane: an array with its spacing through a through-plane network."""

from __future__ import annotations

import json
import logging
import warnings

import nibabel
import numpy as np
import pytest
import torch

from medsr_se import errors
from medsr_se import throughplane as tp
from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from tests.archs.test_anisotropic import cubic_rows_reference


@pytest.mark.parametrize("axis", [0, 2])
def test_untrained_skip_network_gives_1d_cubic_along_the_slice_axis(axis):
    """Both orientations of an untrained skip model are 1-D cubic interpolation along the slice axis, so their
    mean is too; values go through the data's own range and come back (clamped to it, as the result is)."""
    r = 3
    rng = np.random.default_rng(axis)
    values = (rng.random((7, 8, 9)) * 1000 - 200).astype(np.float32)
    spacing = [0.5, 0.5, 0.5]
    spacing[axis] = 1.5
    torch.manual_seed(0)
    net = SEEDSRGenerator(1, 1, num_feat=8, num_block=1, upscale=[r, 1], img_residual=True)
    result, new_spacing = tp.super_resolve(values, tuple(spacing), net)
    moved = np.moveaxis(values, axis, 0).astype(np.float64)
    reference = np.stack([cubic_rows_reference(moved[:, :, c], r) for c in range(moved.shape[2])], axis=2)
    reference = np.moveaxis(np.clip(reference, values.min(), values.max()), 0, axis)
    assert result.shape == reference.shape
    np.testing.assert_allclose(result, reference, atol=1e-2)
    assert new_spacing == pytest.approx(tuple(0.5 for _ in range(3)))


def test_geometry_and_scale_choice():
    geometry = tp.geometry_from_spacing((0.9, 0.9, 5.0), slice_thickness=4.0)
    assert (geometry.axis, geometry.scale) == (2, 6)
    assert geometry.fwhm_pixels == pytest.approx(4.0 / 0.9)
    assert geometry.upscaled(6).slice_spacing == pytest.approx(5.0 / 6)
    with pytest.raises(tp.ThroughPlaneError, match="already .*isotropic"):
        tp.choose_scale(tp.geometry_from_spacing((1.0, 1.0, 1.2)), "scan")
    with pytest.raises(tp.ThroughPlaneError, match="at most 8"):
        tp.choose_scale(tp.geometry_from_spacing((0.5, 0.5, 6.0)), "scan")
    assert tp.choose_scale(tp.geometry_from_spacing((0.5, 0.5, 6.0)), "scan", scale=8) == 8


SELFSR_FLAGS = {"scale": "--scale", "slice_thickness": "--slice-thickness", "axis": "--axis"}


def test_errors_name_the_parameter_not_a_command_flag(tmp_path):
    """A Python caller is told the parameter it passed (``scale=9``), with ``error.parameter`` saying which; a
    command shows it under its flag (errors.for_command) (was: ``--scale 9``, a flag the caller does not have).
    Oracle: the parameters passed here."""
    cases = [
        (lambda: tp.choose_scale(tp.geometry_from_spacing((0.5, 0.5, 3.0)), "scan", scale=9), "scale",
         "scale=9: must be an integer from 2 to 8", "--scale 9: must be an integer from 2 to 8"),
        (lambda: tp.choose_scale(tp.geometry_from_spacing((0.5, 0.5, 6.0)), "scan"), "scale",
         "(give scale=8 to go that far)", "(give --scale 8 to go that far)"),
        (lambda: tp.read_scan(gap_scan(tmp_path / "scan.nii.gz"), slice_thickness=0.0), "slice_thickness",
         "slice_thickness=0.0: must be a positive number of mm", "--slice-thickness 0.0: must be a positive number"),
        (lambda: tp.read_scan(gap_scan(tmp_path / "scan.nii.gz"), axis=3), "axis", "axis=3: must be 0, 1 or 2",
         "--axis 3: must be 0, 1 or 2"),
    ]
    for call, parameter, says, shown in cases:
        with pytest.raises(tp.ThroughPlaneError) as raised:
            call()
        assert raised.value.parameter == parameter and says in str(raised.value), str(raised.value)
        assert "--" not in str(raised.value)
        assert shown in errors.for_command(raised.value, SELFSR_FLAGS)


# ------------------------------------------------------------------------------------------------ --slice-profile files
def _npy(array):
    return lambda path: np.save(path, array, allow_pickle=True)


def huge_header(path, taps: int = 100_000_000, data: bytes = b""):
    """The .npy header of a float64 kernel of ``taps`` taps (800 MB by default), followed by only ``data``: a huge
    kernel is refused from its header, before any loading."""
    with open(path, "wb") as file:
        np.lib.format.write_array_header_1_0(file, {"descr": "<f8", "fortran_order": False, "shape": (taps,)})
        file.write(data)


@pytest.mark.parametrize("name,write,says", [
    ("strings.npy", _npy(np.array(["1", "2", "1"])), "not numeric (dtype <U1)"),
    ("complex.npy", _npy(np.array([1 + 1j, 2, 1])), "complex"),
    ("text.txt", lambda path: path.write_text("1 2 1\n"), "not a .npy file"),
    ("archive.npz", lambda path: np.savez(path, a=np.ones(3)), "not a .npy file"),
    ("objects.npy", _npy(np.array([1, None], dtype=object)), "an object array"),
    ("mask.npy", _npy(np.array([True, True])), "boolean"),
    ("records.npy", _npy(np.zeros(3, dtype=[("a", "f4")])), "not numeric"),
    ("square.npy", _npy(np.ones((3, 3))), "2-D (shape 3 x 3)"),
    ("scalar.npy", _npy(np.array(1.0)), "0-D"),
    ("empty.npy", _npy(np.array([])), "empty (no taps)"),
    ("nan.npy", _npy(np.array([1.0, np.nan, 1.0])), "not finite"),
    ("negative.npy", _npy(np.array([1.0, -0.5, 1.0])), "has negative weights"),
    ("zeros.npy", _npy(np.zeros(3)), "sum to 0"),
    ("huge.npy", huge_header, "100000000 taps"),
    ("short.npy", lambda path: huge_header(path, 5, b"\0" * 16), "truncated"),
    ("missing.npy", lambda path: None, "no such file"),
    ("folder.npy", lambda path: path.mkdir(), "a folder"),
])
def test_a_slice_profile_file_that_is_not_weights_is_one_line_naming_it(tmp_path, name, write, says):
    """Each bad --slice-profile file is a ThroughPlaneError of one line naming the file and what is wrong (was: a
    ValueError traceback for strings, a complex kernel silently cut to its real part, "pickled data" for a text
    file). Oracle: what each file was written to hold."""
    path = tmp_path / name
    write(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's ComplexWarning (a cast dropping the imaginary part) is a failure
        with pytest.raises(tp.ThroughPlaneError) as raised:
            tp.load_profile(path)
    message = str(raised.value)
    assert "\n" not in message and str(path) in message and says in message, message
    assert "pickle" not in message or name == "objects.npy"


def test_integer_and_float_kernels_are_the_same_profile(tmp_path):
    np.save(tmp_path / "int.npy", np.array([1, 2, 1], np.int16))
    np.save(tmp_path / "float.npy", np.array([0.25, 0.5, 0.25], np.float32))
    offsets = np.linspace(-2, 2, 9)
    a, b = tp.load_profile(tmp_path / "int.npy"), tp.load_profile(tmp_path / "float.npy")
    np.testing.assert_allclose(a.weights(offsets) / 4, b.weights(offsets))
    assert a.symmetric and "3 taps" in a.name


# ------------------------------------------------------------------------------------------------- slice thickness
def gap_scan(path, spacing=(1.0, 1.0, 5.0), shape=(12, 12, 4)):
    """A NIfTI of 1 mm in-plane and 5 mm slices (a gap protocol when its slices are 3 mm thick)."""
    nibabel.save(nibabel.Nifti1Image(np.zeros(shape, np.int16), np.diag([*spacing, 1.0])), str(path))
    return path


def test_slice_thickness_from_the_bids_sidecar(tmp_path, caplog):
    """dcm2niix's sidecar scan.json beside scan.nii.gz / scan.nii (any case of the suffixes) gives the profile's
    FWHM and says so (was: FWHM = the slice spacing, 5 mm, whatever the sidecar said)."""
    caplog.set_level(logging.WARNING, logger="medsr_se.io.scans")
    for name, sidecar in [("scan.nii.gz", "scan.json"), ("plain.nii", "plain.json"), ("UP.NII.GZ", "UP.JSON")]:
        path = gap_scan(tmp_path / name)
        (tmp_path / sidecar).write_text(json.dumps({"SliceThickness": 3, "SpacingBetweenSlices": 5.0,
                                                    "Modality": "MR"}))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # agreeing spacings: no warning
            geometry = tp.read_scan(path).geometry
        assert not caplog.records, caplog.text
        assert (geometry.slice_spacing, geometry.slice_thickness) == (5.0, 3.0)
        assert geometry.thickness_source == f"from the BIDS sidecar {sidecar}: SliceThickness"
        assert not geometry.thickness_assumed and geometry.fwhm_pixels == pytest.approx(3.0)


def test_without_a_sidecar_the_thickness_is_assumed_and_says_so(tmp_path):
    path = gap_scan(tmp_path / "scan.nii.gz")
    (tmp_path / "other.json").write_text(json.dumps({"SliceThickness": 3}))  # another scan's sidecar
    geometry = tp.read_scan(path).geometry
    assert geometry.slice_thickness == 5.0 and geometry.thickness_assumed
    assert geometry.thickness_source == ("assumed = slice spacing: the scan does not say, as no BIDS sidecar "
                                         "scan.json is beside it")  # where it came from; what to give: the caller's
    (tmp_path / "scan.json").write_text(json.dumps({"RepetitionTime": 2.0}))  # a sidecar that does not say
    geometry = tp.read_scan(path).geometry
    assert geometry.thickness_assumed and "scan.json has no SliceThickness" in geometry.thickness_source


def test_the_option_wins_over_any_sidecar(tmp_path):
    path = gap_scan(tmp_path / "scan.nii.gz")
    (tmp_path / "scan.json").write_text("{not json")
    geometry = tp.read_scan(path, slice_thickness=2.5).geometry
    assert geometry.slice_thickness == 2.5 and geometry.thickness_source == "from slice_thickness"


@pytest.mark.parametrize("text,says", [
    ("{not json", "not valid JSON"),
    ("[3]", "not a JSON object"),
    ('{"SliceThickness": "3"}', 'SliceThickness "3" is not a positive number of mm'),
    ('{"SliceThickness": -3}', "SliceThickness -3 is not a positive number of mm"),
    ('{"SliceThickness": 0}', "SliceThickness 0 is not a positive number of mm"),
    ('{"SliceThickness": NaN}', "SliceThickness NaN is not a positive number of mm"),
    ('{"SliceThickness": Infinity}', "SliceThickness Infinity is not a positive number of mm"),
    ('{"SliceThickness": true}', "SliceThickness true is not a positive number of mm"),
    ('{"SliceThickness": 3, "SpacingBetweenSlices": "5"}', 'SpacingBetweenSlices "5" is not a positive number'),
    (b"\xff\xfe{", "not valid JSON"),
])
def test_a_damaged_sidecar_is_one_line_naming_it(tmp_path, text, says):
    path = gap_scan(tmp_path / "scan.nii.gz")
    sidecar = tmp_path / "scan.json"
    sidecar.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(tp.ThroughPlaneError) as raised:
        tp.read_scan(path)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"{sidecar}: ") and says in message, message
    assert "give slice_thickness=MM" in message and raised.value.parameter == "slice_thickness"
    assert "give --slice-thickness MM" in errors.for_command(raised.value, SELFSR_FLAGS)


def test_a_sidecar_whose_spacing_disagrees_is_a_warning_naming_it(tmp_path, caplog):
    """SpacingBetweenSlices 4 mm beside a NIfTI of 5 mm slices (a resampled scan, or another scan's sidecar): a
    logged warning (not a Python warning) naming the sidecar, both spacings and the parameter to give; r and the
    profile still from the header and SliceThickness."""
    caplog.set_level(logging.WARNING, logger="medsr_se.io.scans")
    path = gap_scan(tmp_path / "scan.nii.gz")
    (tmp_path / "scan.json").write_text(json.dumps({"SliceThickness": 3, "SpacingBetweenSlices": 4}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # logged, not warned
        geometry = tp.read_scan(path).geometry
    [record] = caplog.records
    assert record.levelno == logging.WARNING and record.name == "medsr_se.io.scans"
    assert f"{tmp_path / 'scan.json'}: SpacingBetweenSlices 4 mm, but scan.nii.gz has slices 5 mm apart" in \
        record.getMessage() and record.getMessage().endswith("give slice_thickness (mm)")
    assert (geometry.slice_spacing, geometry.slice_thickness) == (5.0, 3.0)


def test_a_4d_scan_takes_its_sidecar_too(tmp_path):
    path = tmp_path / "bold.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.zeros((8, 8, 3, 2), np.int16), np.diag([1.0, 1.0, 4.0, 1.0])), str(path))
    (tmp_path / "bold.json").write_text(json.dumps({"SliceThickness": 3.5, "SpacingBetweenSlices": 4}))
    geometry = tp.read_scan(path, axis=2).geometry
    assert geometry.slice_thickness == 3.5 and "bold.json" in geometry.thickness_source


@pytest.mark.parametrize("profile", [tp.gaussian_profile(1e-6), tp.gaussian_profile(0.03),
                                     tp.kernel_profile(np.array([2.0]))], ids=["fwhm-1e-6", "fwhm-0.03", "one-tap"])
def test_a_profile_narrower_than_a_pixel_is_sampling_not_nan(profile):
    """A slice profile far narrower than a pixel (a sidecar's tiny SliceThickness, a 1-tap kernel): for odd r the
    LR rows are HR rows, for even r (LR rows midway between two HR rows) their mean (was: every weight underflowed
    or fell outside the taps, and the training pairs were NaN). Oracle: rows picked with numpy."""
    image = np.random.default_rng(0).random((24, 5)).astype(np.float32)
    np.testing.assert_allclose(tp.degrade(image, profile, 2), (image[0::2] + image[1::2]) / 2, atol=1e-6)
    np.testing.assert_allclose(tp.degrade(image, profile, 3), image[1::3], atol=1e-6)

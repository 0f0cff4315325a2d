"""A label map (a segmentation: one integer label per voxel, 0 = background) drawn on a thick-slice scan, read and
checked against the scan's grid, and written on the grid of its through-plane result.

Reading (:func:`read_label_map`): a 3-D NIfTI of integer labels (a float file only when every value is a whole
number) whose voxels lie where the scan's do: for a NIfTI scan the same shape and, at the 8 corner voxels, world
positions (nibabel's ``affine``) within :data:`GRID_TOLERANCE` of the smallest voxel size; for a DICOM series the
same of the series' grid (ImagePositionPatient, ImageOrientationPatient, PixelSpacing, as the through-plane writer
places its slices), in RAS as NIfTI has it, in whatever axis order and direction the file has (dcm2niix writes
columns, rows, slices); its slice axis is then taken in the series' order (flipped if the file runs the other way,
so that a result resampled to a target spacing starts where the series' does). Anything else is a
:class:`LabelMapError` naming the file (``labels=seg.nii.gz: ...``) and saying what differs; a header that places
no voxel (qform and sform codes 0) is refused where the scan's does.

Writing (:func:`write_label_map`): the result's grid is the scan's grid upscaled along the slice axis
(:func:`medsr_se.io.nifti.write_nifti`, the pixel-centre convention of :mod:`medsr_se.io.volumes`): for a NIfTI scan
the scan's own qform and sform with their codes, scaled as the result's are, so the two files have one affine and
one shape; the label file's on-disk type, intent and description are kept. Published whole or not at all.

    label_map = read_label_map("seg.nii.gz", scan)       LabelMap: values (in the file's axis order), axis, sampling
    write_label_map(label_map, values, grid.scale, target)   values: the result's slices along label_map.axis
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medsr_se.errors import DataError
from medsr_se.io import nifti, scans, volumes

__all__ = ["GRID_TOLERANCE", "MAX_LABELS", "LabelMap", "LabelMapError", "read_label_map", "series_affine",
           "write_label_map"]

GRID_TOLERANCE = 0.01  # of the smallest voxel size: how far a corner voxel of the label map may lie from the scan's
MAX_LABELS = 1000  # distinct values: more is an image, not a label map (whole-brain atlases have a few hundred)
EXACT_FLOAT = 2 ** 53  # beyond it a float does not hold every whole number
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


class LabelMapError(DataError):
    """A label map that cannot be carried to the result; one line naming the file (``parameter="labels"``)."""


def _refused(path: Path, reason: str) -> LabelMapError:
    return LabelMapError(f"labels={path}: {reason}", parameter="labels")


@dataclass
class LabelMap:
    """A label map on a scan's grid, in the file's own axis order.

    Attributes:
        path: the file read.
        values: (3-D) integer labels, 0 = background.
        axis: the slice axis of ``values`` (the scan's slice axis, in this file's order).
        sampling: the voxel size (mm) of the two other axes, in order.
        template: the nibabel image written results start from: the file's header (on-disk type, intent,
            description) with the scan's grid (qform, sform and their codes, voxel size).
    """

    path: Path
    values: np.ndarray
    axis: int
    sampling: tuple[float, float]
    template: object


def _shape(shape: tuple[int, ...]) -> str:
    return " x ".join(map(str, shape))


def _vector(values: np.ndarray) -> str:
    return "(" + ", ".join(f"{float(v):.4g}" for v in values) + ")"


def read_label_map(path: str | Path, scan: scans.Scan) -> LabelMap:
    """The label map ``path``, checked to lie on ``scan``'s grid (module docstring); :class:`LabelMapError`
    naming the file and what differs otherwise."""
    path = Path(path)
    image = _load(path)
    values = _integer_labels(path, image)
    if scan.volume.kind == "nifti":
        reference = scan.volume.source
        shape = tuple(reference.shape[:3])
        if values.shape != shape:
            raise _refused(path, f"shape {_shape(values.shape)}, the scan's is {_shape(shape)}: a label map "
                           "must be drawn on the scan's own grid")
        _check_placed(path, image, _coded(reference.header))
        grid, axis = np.asarray(reference.affine, np.float64), scan.geometry.axis
        _check_grid(path, image.affine, grid, shape, "the scan's")
        header = reference.header
        template = _template(image, values, (header.get_qform(), int(header["qform_code"])),
                             (header.get_sform(), int(header["sform_code"])), header.get_zooms()[:3],
                             header.get_xyzt_units()[0])
    else:
        _check_placed(path, image, True)
        grid, axis = _series_grid_in_file_order(path, image.affine, values.shape, scan)
        _check_grid(path, image.affine, grid, values.shape, "the DICOM series'")
        values, grid = _slices_in_series_order(values, grid, axis, scan)
        qcode, scode = int(image.header["qform_code"]), int(image.header["sform_code"])
        template = _template(image, values, (grid, qcode), (grid, scode or 1), np.linalg.norm(grid[:3, :3], axis=0),
                             "mm")
    in_plane = [a for a in range(3) if a != axis]
    zooms = np.linalg.norm(grid[:3, :3], axis=0)
    return LabelMap(path, values, axis, (float(zooms[in_plane[0]]), float(zooms[in_plane[1]])), template)


def _load(path: Path):
    if not path.exists():
        raise _refused(path, "no such file")
    if not volumes.is_nifti(path) or not path.is_file():
        raise _refused(path, "not a NIfTI file (.nii / .nii.gz): give the label map as NIfTI")
    nibabel = nifti._nibabel()
    try:
        image = nibabel.load(str(path))
    except nifti.nifti_errors() as error:
        raise _refused(path, f"cannot read the NIfTI file ({volumes.one_line(error)})") from error
    if not isinstance(image, (nibabel.Nifti1Image, nibabel.Nifti2Image)) or isinstance(image, nibabel.Cifti2Image):
        raise _refused(path, f"a {type(image).__name__}, not a NIfTI volume of voxels")
    if len(image.shape) != 3:
        raise _refused(path, f"a {len(image.shape)}-D image ({_shape(image.shape)}): a label map is one 3-D "
                       "volume of integer labels on the scan's grid")
    return image


def _integer_labels(path: Path, image) -> np.ndarray:
    """The voxel values (scaling applied) as an integer array; whole-number floats only, at most MAX_LABELS
    distinct values."""
    dtype = image.get_data_dtype()
    if dtype.fields is not None or dtype.kind not in "biuf":
        raise _refused(path, f"voxels of type {dtype}: a label map holds one integer label per voxel")
    try:
        values = np.asarray(image.dataobj)
    except nifti.nifti_errors() as error:
        raise _refused(path, f"cannot read the NIfTI file ({volumes.one_line(error)})") from error
    if values.dtype.kind == "f":
        values = _whole_numbers(path, values)
    elif values.dtype.kind == "b":
        values = values.astype(np.uint8)
    distinct = np.unique(values)
    if len(distinct) > MAX_LABELS:
        raise _refused(path, f"{len(distinct)} distinct values: not a label map (at most {MAX_LABELS} labels; "
                       "is it an image, the scan itself?)")
    return values


def _whole_numbers(path: Path, values: np.ndarray) -> np.ndarray:
    finite = np.isfinite(values)
    if not finite.all():
        raise _refused(path, f"{int((~finite).sum())} voxel(s) are NaN or ±inf: a label map holds whole "
                       "numbers")
    fractional = values != np.round(values)
    if fractional.any():
        example = float(values[fractional].flat[0])
        raise _refused(path, f"not integer labels: {int(fractional.sum())} voxel(s) hold values that are not "
                       f"whole numbers (e.g. {example:g}); a probability or smoothed map must be thresholded "
                       "into labels first")
    low, high = float(values.min()), float(values.max())
    if max(-low, high) >= EXACT_FLOAT:
        raise _refused(path, f"labels up to {max(-low, high):g}: beyond what a float holds exactly")
    fits32 = np.iinfo(np.int32).min <= low and high <= np.iinfo(np.int32).max
    return values.astype(np.int32 if fits32 else np.int64)


def _coded(header) -> bool:
    return int(header["qform_code"]) > 0 or int(header["sform_code"]) > 0


def _check_placed(path: Path, image, scan_placed: bool) -> None:
    """A header that places no voxel (both codes 0) cannot be checked against a scan whose header does."""
    if scan_placed and not _coded(image.header):
        raise _refused(path, "its header places no voxel in the world (qform and sform codes 0), so it "
                       "cannot be checked against the scan's grid: save it with the scan's geometry")


def _corners(shape: tuple[int, ...]) -> np.ndarray:
    return np.array(list(itertools.product(*[(0, n - 1) for n in shape[:3]])), np.float64)


def _check_grid(path: Path, affine: np.ndarray, grid: np.ndarray, shape: tuple[int, ...], whose: str) -> None:
    """Every corner voxel of ``shape`` within GRID_TOLERANCE of the smallest voxel size of where ``grid`` puts it."""
    corners = _corners(shape)
    here = corners @ np.asarray(affine, np.float64)[:3, :3].T + affine[:3, 3]
    there = corners @ grid[:3, :3].T + grid[:3, 3]
    apart = np.linalg.norm(here - there, axis=1)
    sizes, reference_sizes = (np.linalg.norm(m[:3, :3], axis=0) for m in (np.asarray(affine, np.float64), grid))
    tolerance = GRID_TOLERANCE * float(reference_sizes.min())
    worst = int(np.argmax(apart))
    if apart[worst] <= tolerance:
        return
    if np.abs(sizes - reference_sizes).max() > GRID_TOLERANCE * reference_sizes.min():
        what = f"voxel size {_vector(sizes)} mm, {whose} {_vector(reference_sizes)} mm"
    elif np.abs(affine[:3, :3] / sizes - grid[:3, :3] / reference_sizes).max() > 1e-3:
        what = "its voxel axes point elsewhere than " + whose
    else:
        what = f"shifted by {_vector(here[worst] - there[worst])} mm from {whose} grid"
    voxel = tuple(int(v) for v in corners[worst])
    raise _refused(path, f"not on {whose} grid: {what} (voxel {voxel} is at {_vector(here[worst])} mm, "
                   f"{whose} at {_vector(there[worst])}: {apart[worst]:.3g} mm apart, at most {tolerance:.3g} "
                   "allowed)")


def series_affine(scan: scans.Scan) -> np.ndarray:
    """4 x 4: voxel (slice k, row i, column j) of a DICOM series scan -> RAS mm, as the through-plane writer places
    the slices: IPP_0 + k·(IPP_{N−1} − IPP_0)/(N − 1) + i·Δr·column direction + j·Δc·row direction (DICOM's LPS,
    x and y negated)."""
    plane = scans.check_series_plane(scan.volume)
    positions = plane.positions
    step = (positions[-1] - positions[0]) / (len(positions) - 1)
    row_spacing, column_spacing = (float(v) for v in plane.pixel_spacing)
    lps = np.eye(4)
    lps[:3, 0] = step
    lps[:3, 1] = plane.orientation[3:] * row_spacing
    lps[:3, 2] = plane.orientation[:3] * column_spacing
    lps[:3, 3] = positions[0]
    return LPS_TO_RAS @ lps


def _series_grid_in_file_order(path: Path, affine: np.ndarray, shape: tuple[int, ...],
                               scan: scans.Scan) -> tuple[np.ndarray, int]:
    """(the series' grid as an affine of the label file's voxel indices, the file's slice axis): each file axis
    matched to the series axis that points along the same world axis (flipped where the file runs the other way)."""
    from nibabel.orientations import io_orientation

    series = series_affine(scan)
    series_shape = scan.values.shape[:3]
    on_file, on_series = io_orientation(affine), io_orientation(series)
    if np.isnan(on_file).any():
        raise _refused(path, "its affine is degenerate (an axis of zero length): it places no grid")
    to_series = np.zeros((4, 4))
    to_series[3, 3] = 1
    for file_axis, (world, sign) in enumerate(on_file):
        series_axis = int(np.flatnonzero(on_series[:, 0] == world)[0])
        flipped = sign != on_series[series_axis, 1]
        to_series[series_axis, file_axis] = -1 if flipped else 1
        to_series[series_axis, 3] = series_shape[series_axis] - 1 if flipped else 0
    expected = tuple(series_shape[int(np.flatnonzero(to_series[:3, a])[0])] for a in range(3))
    if tuple(shape) != expected:
        raise _refused(path, f"shape {_shape(shape)}, the DICOM series' grid is {_shape(expected)} in this "
                       f"file's axis order ({series_shape[0]} slices of {_shape(series_shape[1:])}): a label map "
                       "must be drawn on the series' own grid")
    return series @ to_series, int(np.flatnonzero(to_series[0, :3])[0])


def _slices_in_series_order(values: np.ndarray, grid: np.ndarray, axis: int,
                            scan: scans.Scan) -> tuple[np.ndarray, np.ndarray]:
    """``values`` and ``grid`` with the slice axis running as the series' slices do (flipped when the file runs the
    other way): the result's slices are placed from the series' first slice, which for a grid that does not tile
    the slab exactly (a target spacing) is not the same as from its last."""
    first = np.zeros(4)
    first[3] = 1
    after = first.copy()
    after[axis] = 1
    step = (grid @ after - grid @ first)[:3]
    series = series_affine(scan)
    if float(np.dot(step, series[:3, 0])) > 0:
        return values, grid
    flip = np.eye(4)
    flip[axis, axis], flip[axis, 3] = -1, values.shape[axis] - 1
    return np.ascontiguousarray(np.flip(values, axis)), grid @ flip


def _template(image, values: np.ndarray, qform: tuple[np.ndarray, int], sform: tuple[np.ndarray, int], zooms,
              space_unit: str | None) -> object:
    """The label file's header (on-disk type, intent, description) with the given grid: (qform, code),
    (sform, code), the voxel size and its unit."""
    template = type(image)(values, None, image.header.copy())
    for form, (matrix, code) in (("qform", qform), ("sform", sform)):
        getattr(template, f"set_{form}")(np.asarray(matrix, np.float64), code=code)
    template.header.set_zooms(tuple(float(v) for v in zooms))
    template.header.set_xyzt_units(xyz=space_unit or "mm")
    template.set_data_dtype(image.get_data_dtype())
    return template


def write_label_map(label_map: LabelMap, values: np.ndarray, scale: float, target: Path) -> None:
    """``values`` (the result's slices along ``label_map.axis``: ``scale`` times as many, or for a fractional
    ``scale`` = D / t those of :class:`~medsr_se.io.slice_grid.SliceGrid`) as a NIfTI on the result's grid (module
    docstring: the slice spacing divided by ``scale`` as the result's writer divides it), the label file's on-disk
    type kept; :class:`~medsr_se.errors.WriteError` naming ``target``
    when it cannot be written (nothing is left of it)."""
    source = volumes.Volume(label_map.values, "nifti", "", "stored", label_map.axis, [label_map.path],
                            label_map.template)
    nifti.write_nifti(source, values, tuple(scale if a == label_map.axis else 1 for a in range(3)), target)

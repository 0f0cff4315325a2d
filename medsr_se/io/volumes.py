"""CT and MRI volumes in and out: NIfTI (nibabel), DICOM series and multi-frame DICOM (pydicom).

A :class:`Volume` holds the voxel values in physical units (HU for CT after RescaleSlope/Intercept, NIfTI's
scl_slope/scl_inter applied) and what is needed to write a result of the same kind with the right geometry. The
network upscales in-plane, slice by slice: the two axes other than ``axis`` grow by the scale s, ``axis`` (the slice
direction) is untouched.

Geometry of the result, for in-plane voxel index i' of the result and i of the input, with pixel centres kept
(the convention of image resizing: the result's pixels tile the input's extent):

    i = (i' + 0.5) / s − 0.5            so   spacing' = spacing / s,   origin' = origin + (0.5/s − 0.5) · spacing · e

NIfTI: affine' = affine · M, M = diag(1/s on the in-plane axes, 1 elsewhere) with translation (0.5/s − 0.5) on
those axes; zooms follow. DICOM: PixelSpacing / s and ImagePositionPatient (the first pixel's centre) moved by
(0.5/s − 0.5) · (column spacing · row direction + row spacing · column direction).

DICOM series: the ``.dcm`` files of a folder are grouped by SeriesInstanceUID and each series sorted by the
position of its slices along the slice normal (ImagePositionPatient · (row direction × column direction)), or by
InstanceNumber where positions are missing (ties by InstanceNumber). Slices sharing a position, and gaps that
differ from the usual one, are warnings naming the series (:func:`check_slice_positions`). Results are written as
*derived* DICOM (:func:`derived_dataset`).

NIfTI-1 and NIfTI-2 (``.nii``, ``.nii.gz``): the qform and the sform are each scaled from themselves and keep
their codes (code 0 too); pixdim follows; slice timing (dim_info) is cleared, with a warning, when its slice
dimension is upscaled. Refused, one line naming the file: CIFTI-2, RGB / complex voxels, non-finite values (unless
a replacement is given: ``nonfinite``), an in-plane axis of one voxel (a 2-D NIfTI takes axis 2 only).

DICOM pixel values: gray only (MONOCHROME1 / MONOCHROME2; MONOCHROME1 only inverts the display, so its values
are used as stored and the result keeps MONOCHROME1); PALETTE COLOR, RGB and YBR are refused, as are 1-bit
pixels, a Modality LUT and a RescaleSlope of 0. Rescale per frame from the functional groups when present.

DICOM attributes in the input's pixels or pixel spacing, and what the result carries:

====================================================  ==================================================
Rows, Columns, NumberOfFrames                         the result's
PixelSpacing, ImagerPixelSpacing,                     / s (top level and every PixelMeasuresSequence)
NominalScannedPixelSpacing
ImagePositionPatient (and PlanePositionSequence)      moved to the new first pixel's centre (above)
PixelAspectRatio, ImageOrientationPatient,            unchanged (both in-plane axes scale alike)
SliceThickness, SpacingBetweenSlices
Overlay planes 60xx with OverlayData                  each bit an s x s block; OverlayRows/Columns · s;
                                                      OverlayOrigin o -> (o − 1)·s + 1; ROIArea · s²;
                                                      ROIMean / ROIStandardDeviation left out (a note)
Overlays embedded in the pixel data's unused bits     refused
Rectangular shutter edges (ShutterLeftVerticalEdge..)  [l, r] -> [(l − 1)·s + 1, r·s]
Circular / polygonal shutters                         refused (integer coordinates between new pixels)
SequenceOfUltrasoundRegions                           bounds [a, b] -> [a·s, b·s + s − 1]; PhysicalDelta / s;
                                                      reference pixel and value so that physical coordinates
                                                      hold at every pixel centre
MaskSubtractionSequence > MaskSubPixelShift           · s
PixelPaddingValue / PixelPaddingRangeLimit            kept; each padded input pixel's s x s block is padding
SmallestImagePixelValue / LargestImagePixelValue      of the written values; the ...InSeries ones removed
WindowCenter / WindowWidth, VOI LUT, rescale          unchanged (stored values keep their meaning)
IconImageSequence                                     left out (a thumbnail of the input; a note)
ExtendedOffsetTable(Lengths)                          left out (offsets of the input's compressed frames;
                                                      the result is uncompressed)
Curve data (50xx, retired), GraphicAnnotationSequence, refused (may be in input pixel coordinates)
TotalPixelMatrixRows/Columns (whole-slide tiling)
AcquisitionMatrix, ReconstructionDiameter,            unchanged: they describe the acquisition /
ReconstructionPixelSpacing, SpatialResolution         reconstruction, which the result does not change
ReferencedImageSequence, SourceImageSequence           references (no pixel coordinates); the source added
Private attributes                                    copied as they are (their meaning is unknown)
====================================================  ==================================================

Every result (a NIfTI, a DICOM series) is published whole or not at all (:func:`write_whole`).
"""

from __future__ import annotations

import contextlib
import copy
import os
import struct
import uuid
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medsr_se.io.atomic import WriteError, write_atomically
from medsr_se.io.intensity import NonFiniteError, replace_nonfinite

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti(path: Path) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def nifti_stem(path: Path) -> str:
    name = Path(path).name
    return name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else Path(name).stem


def _nibabel():
    try:
        import nibabel
    except ImportError as error:
        raise ValueError('reading NIfTI needs the extra: pip install "medsr-se[medical]"') from error
    return nibabel


def _pydicom():
    try:
        import pydicom
    except ImportError as error:
        raise ValueError('reading DICOM needs the extra: pip install "medsr-se[medical]"') from error
    return pydicom


def nifti_errors() -> tuple[type[BaseException], ...]:
    """What nibabel raises for a damaged NIfTI (probed on truncated, garbage and bad-header files): its own
    ImageFileError (not a NIfTI) and HeaderDataError (a bad datatype code or offset), OSError (data shorter than the
    header says), EOFError / zlib.error (a truncated or damaged .gz), OverflowError (a negative dimension), and
    ValueError. Anything else (a TypeError, say) is a bug and surfaces."""
    _nibabel()
    from nibabel.filebasedimages import ImageFileError
    from nibabel.spatialimages import HeaderDataError, ImageDataError

    return ImageFileError, HeaderDataError, ImageDataError, OSError, EOFError, zlib.error, OverflowError, ValueError


def dicom_errors() -> tuple[type[BaseException], ...]:
    """What pydicom raises for a damaged DICOM file (probed on truncated and byte-flipped files): InvalidDicomError
    (no DICOM preamble / meta), BytesLengthException, OSError / EOFError / struct.error (a value cut short),
    NotImplementedError (an unknown VR, a transfer syntax it has no decoder for; a RuntimeError), ValueError
    (pixel data shorter than Rows x Columns says, a bad BitsAllocated). Anything else surfaces."""
    _pydicom()
    from pydicom.errors import BytesLengthException, InvalidDicomError

    return InvalidDicomError, BytesLengthException, OSError, EOFError, struct.error, RuntimeError, ValueError


class VolumeError(ValueError):
    """A file that cannot be read or written as a volume; the message is one line naming the file."""


@dataclass
class Volume:
    """Voxel values in physical units and the source needed to write a result of the same kind.

    Attributes:
        values: float32 array, 3-D or more; slices are taken along ``axis``, the other two of the first three axes
            are in-plane (NIfTI: (X, Y, Z[, T]); DICOM: (slices, rows, columns)).
        kind: 'nifti', 'dicom-series' or 'dicom-multiframe'.
        modality: DICOM Modality ('CT', 'MR', ...), '' when unknown (NIfTI).
        unit: 'HU' for CT with a rescale to Hounsfield units, else 'stored'.
        axis: the slice axis (in-plane axes are the other two of 0, 1, 2).
        paths: the files read, in slice order for a DICOM series.
        source: the nibabel image, or the pydicom datasets (one per file, in slice order).
    """

    values: np.ndarray
    kind: str
    modality: str
    unit: str
    axis: int
    paths: list[Path]
    source: object = field(repr=False)

    @property
    def in_plane_axes(self) -> tuple[int, int]:
        first, second = (a for a in (0, 1, 2) if a != self.axis)
        return first, second

    @property
    def name(self) -> str:
        return str(self.paths[0] if len(self.paths) == 1 else self.paths[0].parent)

    def slice_indices(self) -> list[tuple]:
        """Index tuples selecting each 2-D in-plane slice (every position along ``axis`` and any axes beyond 3)."""
        shape = self.values.shape
        others = [a for a in range(len(shape)) if a not in self.in_plane_axes]
        indices = []
        for position in np.ndindex(*[shape[a] for a in others]):
            index: list = [slice(None)] * len(shape)
            for a, p in zip(others, position):
                index[a] = p
            indices.append(tuple(index))
        return indices


def upscale_volume(volume: Volume, upscale_slice: Callable[[np.ndarray], np.ndarray], scale: int,
                   progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """The volume's values with both in-plane axes ``scale`` times larger, each slice through ``upscale_slice``
    (physical values in, physical values out); ``progress(done, total)`` after each slice."""
    shape = list(volume.values.shape)
    for a in volume.in_plane_axes:
        shape[a] *= scale
    result = np.empty(shape, np.float32)
    indices = volume.slice_indices()
    for done, index in enumerate(indices, 1):
        result[index] = upscale_slice(volume.values[index])
        if progress:
            progress(done, len(indices))
    return result


# --- NIfTI -----------------------------------------------------------------------------------------------------------

def read_nifti(path: Path, axis: int = 2, nonfinite: float | None = None) -> Volume:
    """A NIfTI-1 / NIfTI-2 volume (``.nii``, ``.nii.gz``) as a Volume with slices along ``axis``.

    :class:`VolumeError` (one line naming the file) for what cannot be upscaled as gray voxel values: a damaged
    or truncated file, CIFTI-2, RGB / complex voxels (take the magnitude first), an in-plane axis of one voxel, and
    non-finite values (NaN, ±inf), unless ``nonfinite`` gives the finite value that replaces them (a warning)."""
    nibabel = _nibabel()
    try:
        image = nibabel.load(str(path))
    except nifti_errors() as error:
        raise VolumeError(f"{path}: cannot read the NIfTI volume ({one_line(error)})") from error
    if not isinstance(image, (nibabel.Nifti1Image, nibabel.Nifti2Image)) or isinstance(image, nibabel.Cifti2Image):
        kind = "a CIFTI-2 file (brainordinate data)" if isinstance(image, nibabel.Cifti2Image) else \
            f"a {type(image).__name__}"
        raise VolumeError(f"{path}: {kind}, not a NIfTI volume of voxels")
    dtype = image.get_data_dtype()
    if dtype.kind == "c":
        raise VolumeError(f"{path}: complex-valued NIfTI ({dtype}): take the magnitude (or the real part) first, "
                          "e.g. numpy.abs, and upscale that")
    if dtype.fields is not None or dtype.kind not in "biuf":
        raise VolumeError(f"{path}: voxels of type {dtype} (RGB or vector data); only volumes with one value per "
                          "voxel are supported")
    try:
        values = np.asarray(image.dataobj)  # scl_slope / scl_inter applied
    except nifti_errors() as error:
        raise VolumeError(f"{path}: cannot read the NIfTI volume ({one_line(error)})") from error
    values = _finite(values, str(path), nonfinite)
    with np.errstate(over="ignore"):
        values = values.astype(np.float32)
    if values.size and not np.isfinite(values).all():
        raise VolumeError(f"{path}: values beyond float32's range (about ±3.4e38)")
    if values.ndim < 3:
        if axis != 2:
            raise VolumeError(f"{path}: a 2-D NIfTI ({' x '.join(map(str, values.shape))}) is one slice in axes 0 "
                              f"and 1; --axis {axis} would upscale an axis of one voxel: use --axis 2")
        values = values.reshape(values.shape + (1,) * (3 - values.ndim))
    volume = Volume(values, "nifti", "", "stored", axis, [Path(path)], image)
    for a in volume.in_plane_axes:
        if values.shape[a] < 2:
            raise VolumeError(f"{path}: in-plane axis {a} has {values.shape[a]} voxel(s) (shape "
                              f"{' x '.join(map(str, values.shape))}): nothing to upscale there; choose the slice "
                              "axis with --axis")
    return volume


def _finite(values: np.ndarray, name: str, nonfinite: float | None) -> np.ndarray:
    try:
        return replace_nonfinite(values, name, nonfinite)
    except NonFiniteError as error:
        raise VolumeError(str(error)) from error


def one_line(error: BaseException, limit: int = 400) -> str:
    """An exception's text on one line (pydicom and nibabel put lists and hints on lines of their own; pydicom's
    writer even a traceback, cut off here), at most ``limit`` characters."""
    text = " ".join(str(error).split("Traceback (most recent call last)")[0].split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def scaled_affine(affine: np.ndarray, in_plane: tuple[int, int], scale: int) -> np.ndarray:
    """affine · M (module docstring): in-plane voxel size / scale, origin moved to the new first voxel's centre.

    Not ``nibabel.affines.rescale_affine``: that keeps the world position of voxel ``(shape − 1) // 2`` (an
    integer index) at new voxel ``(new_shape − 1) // 2``, where the pixel-centre convention puts it at
    ``2 · ((shape − 1) // 2) + 0.5`` (33 -> 66: 16 -> 32, not 32.5; 32 -> 64: 15 -> 31, not 30.5): for x2 it shifts
    the image by half a new voxel whatever the size (tests/io/test_volumes.py measures it)."""
    resize = np.eye(4)
    for a in in_plane:
        resize[a, a] = 1.0 / scale
        resize[a, 3] = 0.5 / scale - 0.5
    return np.asarray(affine, np.float64) @ resize


def write_nifti(volume: Volume, values: np.ndarray, scale: int, path: Path) -> None:
    """A NIfTI of the input's flavour and on-disk type with ``values`` (physical units) and the scaled geometry.

    The qform and the sform are each scaled from themselves (:func:`scaled_affine`) and keep their codes, an
    uncoded (code 0) one too, so that every reader's choice of form keeps the voxel centres; pixdim follows."""
    source = volume.source
    header = source.header.copy()
    in_plane = volume.in_plane_axes
    zooms = list(header.get_zooms())
    for a in in_plane:
        zooms[a] = zooms[a] / scale
    data = values.reshape(values.shape[: len(source.shape)]) if values.ndim > len(source.shape) else values
    dtype = header.get_data_dtype()
    header.set_slope_inter(None, None)  # nibabel chooses the scaling that fits these values into the type
    _drop_upscaled_slice_timing(header, in_plane, volume.name)
    image = type(source)(data, None, header)
    image.set_data_dtype(dtype)
    image.header.set_zooms(zooms)
    for form in ("qform", "sform"):  # the image's setters keep its affine in step with the header
        stored = getattr(source.header, f"get_{form}")()  # the form's own transform, coded or not
        getattr(image, f"set_{form}")(scaled_affine(stored, in_plane, scale), code=int(source.header[f"{form}_code"]))
    write_whole([(Path(path), lambda temporary: _nifti_temp(_nibabel(), image, temporary, path))])


def _drop_upscaled_slice_timing(header, in_plane: tuple[int, int], name: str) -> None:
    """dim_info's slice dimension and its timing (slice_code/start/end/duration) count acquired slices: when that
    dimension is one of the upscaled ones they describe no slice of the result, so they are cleared (a warning)."""
    freq, phase, slice_dim = header.get_dim_info()
    if slice_dim is None or slice_dim not in in_plane:
        return
    header.set_dim_info(freq, phase, None)
    for key in ("slice_code", "slice_start", "slice_end", "slice_duration"):
        header[key] = 0
    warnings.warn(f"{name}: the NIfTI slice dimension (dim_info) is axis {slice_dim}, upscaled here: its slice "
                  "timing does not describe the result and was cleared", stacklevel=3)


def _nifti_temp(nibabel, image, temporary: Path, final: Path) -> None:
    """nibabel picks gzip from the file name: write to a temporary name that keeps ``final``'s suffix."""
    suffix = ".nii.gz" if str(final).lower().endswith(".gz") else ".nii"
    named = temporary.with_name(temporary.name + suffix)
    try:
        nibabel.save(image, str(named))
        named.replace(temporary)
    except nifti_errors()[:3] as error:  # nibabel's own types (values its header cannot describe): a ValueError
        raise ValueError(one_line(error)) from error
    finally:
        named.unlink(missing_ok=True)


# --- DICOM -----------------------------------------------------------------------------------------------------------

MONOCHROME = ("MONOCHROME1", "MONOCHROME2")


def dicom_rescale(dataset, name: str = "") -> tuple[float, float]:
    """(RescaleSlope, RescaleIntercept) of the first frame (:func:`frame_rescales`)."""
    return frame_rescales(dataset, name)[0]


def frame_rescales(dataset, name: str = "") -> list[tuple[float, float]]:
    """(slope, intercept) for each frame: physical = stored · slope + intercept. From the frame's
    PixelValueTransformationSequence (enhanced multi-frame), else the shared functional groups', else the top-level
    RescaleSlope / RescaleIntercept, else (1, 0). :class:`VolumeError` naming ``name`` and the attribute for a
    slope of 0 (every pixel would be the intercept), a non-finite or non-numeric one, and a Modality LUT (a table,
    not a linear rescale: not supported).

    Not ``pydicom.pixels.apply_modality_lut`` / ``apply_rescale``: those read the top-level attributes only, and only
    when both are present; this reads each frame's functional groups, a lone slope or intercept, and refuses the
    damaged values above. Where both read the same attributes they agree (tests/io/test_volume_io.py checks it)."""
    frames = max(1, _int(dataset, "NumberOfFrames", 1))
    shared = _first_item(dataset, "SharedFunctionalGroupsSequence")
    per_frame = list(dataset.get("PerFrameFunctionalGroupsSequence") or [])
    rescales = []
    for index in range(frames):
        source = dataset
        for group in (per_frame[index] if index < len(per_frame) else None, shared):
            item = _first_item(group, "PixelValueTransformationSequence")
            if item is not None and ("RescaleSlope" in item or "RescaleIntercept" in item):
                source = item
                break
        rescales.append(_rescale(source, name))
    return rescales


def _rescale(source, name: str) -> tuple[float, float]:
    if "ModalityLUTSequence" in source:
        raise VolumeError(f"{name}: ModalityLUTSequence: its stored values map to physical ones through a lookup "
                          "table, which is not supported (only RescaleSlope / RescaleIntercept)")
    slope, intercept = _number(source, "RescaleSlope", 1.0, name), _number(source, "RescaleIntercept", 0.0, name)
    if slope == 0:
        raise VolumeError(f"{name}: RescaleSlope 0 would make every pixel the intercept {intercept:g}; the "
                          "attribute is damaged (fix RescaleSlope, usually 1)")
    return slope, intercept


def _number(source, keyword: str, default: float, name: str) -> float:
    """A numeric attribute, ``default`` when absent or empty; VolumeError naming it when not a finite number."""
    value = source.get(keyword)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not np.isfinite(number):
        raise VolumeError(f"{name}: {keyword} {value!r} is not a finite number")
    return number


def _int(dataset, keyword: str, default: int) -> int:
    try:
        return int(dataset.get(keyword, default) or default)
    except (TypeError, ValueError):
        return default


def _first_item(dataset, keyword: str):
    """The first item of sequence ``keyword`` of ``dataset`` (None when either is missing or empty)."""
    items = dataset.get(keyword) if dataset is not None else None
    return items[0] if items else None


def dicom_unit(dataset) -> str:
    """'HU' for CT with a rescale (top level, or the functional groups' PixelValueTransformationSequence, shared or
    the first frame's), else 'stored'."""
    modality = str(dataset.get("Modality", ""))
    transform = next((item for group in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence")
                      for item in [_first_item(_first_item(dataset, group), "PixelValueTransformationSequence")]
                      if item is not None), None)
    has_rescale = "RescaleIntercept" in dataset or "RescaleSlope" in dataset or transform is not None
    rescale_type = str(dataset.get("RescaleType", "") or (transform.get("RescaleType", "") if transform else ""))
    return "HU" if modality == "CT" and (has_rescale or rescale_type == "HU") else "stored"


def _slice_position(dataset) -> float | None:
    position, orientation = dataset.get("ImagePositionPatient"), dataset.get("ImageOrientationPatient")
    if position is None or orientation is None:
        return None
    normal = np.cross(np.asarray(orientation[:3], float), np.asarray(orientation[3:], float))
    return float(np.dot(np.asarray(position, float), normal))


def read_dicom_datasets(paths: list[Path]) -> list:
    """Each file read with every element decoded (pydicom decodes lazily: a damaged element would otherwise fail
    later, wherever it is first used); :class:`VolumeError` naming the file for a damaged one (:func:`dicom_errors`)."""
    pydicom = _pydicom()
    datasets = []
    for path in paths:
        try:
            dataset = pydicom.dcmread(str(path))
            for _ in dataset.iterall():
                pass
            datasets.append(dataset)
        except dicom_errors() as error:
            raise VolumeError(f"{path}: cannot read the DICOM file ({one_line(error)})") from error
    return datasets


def group_series(paths: list[Path]) -> dict[str, list[tuple[Path, object]]]:
    """SeriesInstanceUID -> [(path, dataset)] sorted along the slice normal (module docstring)."""
    series: dict[str, list[tuple[Path, object]]] = {}
    for path, dataset in zip(paths, read_dicom_datasets(paths)):
        series.setdefault(str(dataset.get("SeriesInstanceUID", "")), []).append((path, dataset))
    for uid, members in series.items():
        positions = [_slice_position(ds) for _, ds in members]
        numbers = [_int(ds, "InstanceNumber", 0) for _, ds in members]
        if all(p is not None for p in positions):
            order = np.lexsort((numbers, positions))  # along the normal; ties by InstanceNumber
            members[:] = [members[i] for i in order]
            check_slice_positions(members, [positions[i] for i in order], uid)
        else:
            members[:] = [members[i] for i in np.argsort(numbers, kind="stable")]
    return series


POSITION_TOLERANCE = 1e-3  # mm: positions closer than this are one position


def check_slice_positions(members: list[tuple[Path, object]], positions: list[float], uid: str) -> None:
    """Warnings naming the series: slices sharing a position along the normal (the same pixel data: duplicate
    files; different: several echoes / phases / times in one series), and gaps between positions that differ
    from the median gap by more than 1 % (a missing slice, say). Each slice is upscaled on its own, so neither
    changes a result; both can mean a series is not what it seems."""
    name = f"series {members[0][0].parent} (SeriesInstanceUID {uid or 'none'})"
    distinct: list[float] = []
    start = 0
    for index in range(1, len(positions) + 1):
        if index < len(positions) and positions[index] - positions[start] < POSITION_TOLERANCE:
            continue
        group = members[start:index]
        if len(group) > 1:
            same = len({bytes(ds.get("PixelData", b"") or b"") for _, ds in group}) == 1
            warnings.warn(f"{name}: {len(group)} slices at z = {positions[start]:g} mm along the slice normal "
                          f"({', '.join(path.name for path, _ in group)}), with "
                          + ("the same pixel data (duplicate files?)" if same else
                             "different pixel data (several echoes, phases or time points in one series?)")
                          + "; each is upscaled on its own", stacklevel=3)
        distinct.append(positions[start])
        start = index
    gaps = np.diff(distinct)
    if len(gaps) < 2:
        return
    usual = float(np.median(gaps))
    odd = [i for i, gap in enumerate(gaps) if abs(gap - usual) > max(POSITION_TOLERANCE, 0.01 * usual)]
    if odd:
        first = odd[0]
        warnings.warn(f"{name}: uneven slice spacing: {gaps[first]:g} mm between z = {distinct[first]:g} and "
                      f"z = {distinct[first + 1]:g} mm, where the usual gap is {usual:g} mm"
                      + (f" ({len(odd)} such gaps)" if len(odd) > 1 else " (a missing slice?)"), stacklevel=3)


def _pixels(dataset, path: Path) -> np.ndarray:
    """The stored pixel values of a gray DICOM. MONOCHROME1 only tells a viewer to show the lowest value white:
    its values (and their rescale) mean what MONOCHROME2's do, and the result keeps MONOCHROME1. Colour (RGB,
    YBR_*) and PALETTE COLOR (palette indices, not intensities) are refused, naming the attribute."""
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2") or "MONOCHROME2").strip()
    if photometric not in MONOCHROME:
        meaning = ("its pixel values are indices into a colour palette, not intensities"
                   if photometric == "PALETTE COLOR" else "colour pixels")
        raise VolumeError(f"{path}: PhotometricInterpretation {photometric} ({meaning}): only gray DICOM "
                          "(MONOCHROME1 / MONOCHROME2) volumes are supported")
    if "PixelData" not in dataset:
        raise VolumeError(f"{path}: no PixelData (a truncated file, or not an image)")
    try:
        pixels = dataset.pixel_array
    except (*dicom_errors(), AttributeError) as error:  # AttributeError: pydicom's "Missing required element"
        raise VolumeError(_decode_error(dataset, path, error)) from error
    samples = _int(dataset, "SamplesPerPixel", 1)
    if samples != 1 or pixels.dtype.kind not in "iu":
        raise VolumeError(f"{path}: only monochrome integer DICOM is supported (got {samples} samples per pixel, "
                          f"{pixels.dtype})")
    return pixels


def _decode_error(dataset, path: Path, error: Exception) -> str:
    """One line for pydicom's decoding failure: a compressed transfer syntax without an installed decoder names
    what pydicom's plugins would need; anything else its first reason."""
    syntax = getattr(dataset, "file_meta", {}).get("TransferSyntaxUID")
    if syntax is not None and syntax.is_compressed:
        try:
            from pydicom.pixels import get_decoder

            decoder = get_decoder(syntax)
        except NotImplementedError:  # a transfer syntax pydicom has no decoder for at all
            return f"{path}: pixel data compressed as {syntax.name}, which pydicom cannot decode"
        if not decoder.is_available:
            needs = "; ".join(decoder.missing_dependencies)
            return (f"{path}: pixel data compressed as {syntax.name} and no decoder for it is installed; pip "
                    f"install what one of pydicom's plugins requires ({needs})")
        return f"{path}: cannot decode the {syntax.name} pixel data ({one_line(error)})"
    return f"{path}: cannot read the DICOM pixel data ({one_line(error)})"


def series_volume(members: list[tuple[Path, object]]) -> Volume:
    """One DICOM series (single-frame files in slice order) -> a (slices, rows, columns) Volume."""
    slices = []
    for path, dataset in members:
        pixels = _pixels(dataset, path)
        if pixels.ndim != 2:
            raise VolumeError(f"{path}: a multi-frame file inside a series of slices")
        if slices and pixels.shape != slices[0].shape:
            raise VolumeError(f"{path}: {pixels.shape[1]}x{pixels.shape[0]} differs from the series' "
                             f"{slices[0].shape[1]}x{slices[0].shape[0]}")
        check_pixel_attributes(dataset, str(path))
        slope, intercept = dicom_rescale(dataset, str(path))
        slices.append(pixels.astype(np.float32) * slope + intercept)
    first = members[0][1]
    return Volume(np.stack(slices), "dicom-series", str(first.get("Modality", "")), dicom_unit(first), 0,
                  [path for path, _ in members], [dataset for _, dataset in members])


def multiframe_volume(path: Path, dataset) -> Volume:
    """A multi-frame DICOM -> a (frames, rows, columns) Volume."""
    check_pixel_attributes(dataset, str(path))
    pixels = _pixels(dataset, path)
    frames = pixels if pixels.ndim == 3 else pixels[None]
    rescales = np.asarray(frame_rescales(dataset, str(path))[: len(frames)], np.float32)
    values = frames.astype(np.float32) * rescales[:, 0, None, None] + rescales[:, 1, None, None]
    return Volume(values, "dicom-multiframe", str(dataset.get("Modality", "")), dicom_unit(dataset), 0, [path],
                  [dataset])


def read_dicom_volumes(paths: list[Path]) -> list[Volume]:
    """The volumes in ``paths``: each multi-frame file is one, and the single-frame files of one series are one."""
    volumes = []
    for members in group_series(paths).values():
        single = []
        for path, dataset in members:
            if int(dataset.get("NumberOfFrames", 1) or 1) > 1:
                volumes.append(multiframe_volume(path, dataset))
            else:
                single.append((path, dataset))
        if single:
            volumes.append(series_volume(single))
    return volumes


def stored_range(dataset) -> tuple[int, int]:
    """The smallest and largest stored value the dataset's pixel description allows (BitsStored, signedness).
    pydicom has no helper for it: ``Dataset.set_pixel_data`` only refuses values outside, where we clip and warn."""
    bits = int(dataset.get("BitsStored", dataset.get("BitsAllocated", 16)))
    if int(dataset.get("PixelRepresentation", 0)) == 1:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def rounded_stored(dataset, physical: np.ndarray, name: str) -> np.ndarray:
    """round((physical − intercept) / slope) as float64, with each frame's rescale for (frames, rows, columns)."""
    rescales = np.asarray(frame_rescales(dataset, name), np.float64)
    if physical.ndim == 3:
        slope, intercept = rescales[: len(physical), 0, None, None], rescales[: len(physical), 1, None, None]
    else:
        slope, intercept = rescales[0]
    return np.round((physical.astype(np.float64) - intercept) / slope)


def stored_values(dataset, physical: np.ndarray, name: str) -> np.ndarray:
    """physical -> stored = round((physical − intercept) / slope) in the dataset's pixel type (pydicom's
    ``pixel_dtype``: BitsAllocated and PixelRepresentation, here in native byte order), with each frame's rescale
    for (frames, rows, columns); values beyond BitsStored's range are clipped with a warning naming the file
    (never silently)."""
    from pydicom.pixels.utils import pixel_dtype

    stored = rounded_stored(dataset, physical, name)
    low, high = stored_range(dataset)
    outside = int(np.count_nonzero((stored < low) | (stored > high)))
    if outside:
        warnings.warn(f"{name}: {outside} value(s) beyond the stored pixel range [{low}, {high}] were clipped to it",
                      stacklevel=2)
    return np.clip(stored, low, high).astype(pixel_dtype(dataset).newbyteorder("="))


def _shifted_position(dataset, scale: int) -> list[float] | None:
    position, orientation = dataset.get("ImagePositionPatient"), dataset.get("ImageOrientationPatient")
    spacing = dataset.get("PixelSpacing")
    if position is None or orientation is None or spacing is None:
        return None
    row_direction, column_direction = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    row_spacing, column_spacing = float(spacing[0]), float(spacing[1])
    shift = (0.5 / scale - 0.5) * (column_spacing * row_direction + row_spacing * column_direction)
    return [round(float(v), 6) for v in np.asarray(position, float) + shift]


def derived_dataset(source, stored: np.ndarray, scale: int, series_uid: str, description: str,
                    notes: list[str] | None = None):
    """A new DICOM instance derived from ``source`` with the super-resolved ``stored`` pixels (frames, rows, cols)
    or (rows, cols): DERIVED\\SECONDARY image type, new SOP instance UID in the new series ``series_uid``, the
    source image referenced, DerivationDescription, Rows/Columns, PixelSpacing / scale, ImagePositionPatient at
    the new first pixel's centre, pixel value range of the written values; rescale and pixel type unchanged; every
    other attribute in input pixels as the module docstring's table says (what is dropped goes into ``notes``).
    The Image Pixel module and the new SOP instance UID: :func:`_set_pixels`."""
    from pydicom.dataset import Dataset
    from pydicom.uid import ExplicitVRLittleEndian

    dataset = copy.deepcopy(source)
    for _ in dataset.iterall():  # every element decoded from the input's encoding, to be written little endian
        pass
    dataset.set_original_encoding(False, True, dataset.get("SpecificCharacterSet"))
    image_type = list(source.get("ImageType", ["ORIGINAL", "PRIMARY"]))
    dataset.ImageType = ["DERIVED", "SECONDARY", *image_type[2:]]
    dataset.DerivationDescription = description[:1024]
    if "SOPClassUID" in source and "SOPInstanceUID" in source:  # both are required; a file may still lack them
        reference = Dataset()
        reference.ReferencedSOPClassUID = source.SOPClassUID
        reference.ReferencedSOPInstanceUID = source.SOPInstanceUID
        dataset.SourceImageSequence = [reference]
    dataset.SeriesInstanceUID = series_uid
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if "SeriesDescription" in source:
        dataset.SeriesDescription = f"{source.SeriesDescription} SR x{scale}"[:64]
    else:
        dataset.SeriesDescription = f"SR x{scale}"
    _set_pixels(dataset, source, stored)
    position = _shifted_position(source, scale)
    if position is not None:
        dataset.ImagePositionPatient = position
    _scale_functional_groups(dataset, scale)
    _scale_pixel_attributes(dataset, scale, notes if notes is not None else [])
    for tag in ("SmallestPixelValueInSeries", "LargestPixelValueInSeries"):
        if tag in dataset:
            del dataset[tag]
    if stored.dtype.itemsize <= 2:
        dataset.SmallestImagePixelValue = int(stored.min())
        dataset.LargestImagePixelValue = int(stored.max())
        value_vr = "SS" if int(dataset.get("PixelRepresentation", 0)) == 1 else "US"  # 'US or SS' elements
        dataset["SmallestImagePixelValue"].VR = value_vr
        dataset["LargestImagePixelValue"].VR = value_vr
    else:  # 16-bit attributes cannot hold a 32-bit pixel's range (they are optional)
        for tag in ("SmallestImagePixelValue", "LargestImagePixelValue"):
            if tag in dataset:
                del dataset[tag]
    return dataset


def _set_pixels(dataset, source, stored: np.ndarray) -> None:
    """Rows, Columns, NumberOfFrames, the bits, PixelData (and its VR) and a new SOP instance UID for ``stored``:
    pydicom's ``Dataset.set_pixel_data`` for 8- and 16-bit pixels; it refuses 32-bit ones (an RTDOSE's), which are
    set here the same way."""
    from pydicom.uid import generate_uid

    if stored.ndim == 2 and "NumberOfFrames" in source:  # a multi-frame file of one frame keeps NumberOfFrames
        stored = stored[None]
    stored = np.ascontiguousarray(stored)
    if stored.dtype.itemsize <= 2:
        dataset.set_pixel_data(stored, str(source.get("PhotometricInterpretation", "MONOCHROME2")),
                               int(source.get("BitsStored", stored.dtype.itemsize * 8)), generate_instance_uid=True)
        return
    dataset.Rows, dataset.Columns = stored.shape[-2:]
    if stored.ndim == 3:
        dataset.NumberOfFrames = stored.shape[0]
    dataset.PixelData = stored.tobytes()
    dataset["PixelData"].VR = "OW"
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID


def _scale_functional_groups(dataset, scale: int) -> None:
    """Enhanced multi-frame DICOM keeps spacing, orientation and positions in functional groups: the positions
    move as in :func:`_shifted_position` (with the original spacing), then every PixelSpacing is divided."""
    shared = (dataset.get("SharedFunctionalGroupsSequence") or [None])[0]
    groups = [g for g in [shared, *dataset.get("PerFrameFunctionalGroupsSequence", [])] if g is not None]

    def element(group, sequence: str, keyword: str):
        for candidate in (group, shared):
            items = candidate.get(sequence) if candidate is not None else None
            if items and keyword in items[0]:
                return items[0].get(keyword)
        return None

    originals = [element(group, "PixelMeasuresSequence", "PixelSpacing") for group in groups]
    for group, spacing in zip(groups, originals):
        orientation = element(group, "PlaneOrientationSequence", "ImageOrientationPatient")
        positions = group.get("PlanePositionSequence")
        if positions and "ImagePositionPatient" in positions[0] and orientation is not None and spacing is not None:
            probe = {"ImagePositionPatient": positions[0].ImagePositionPatient,
                     "ImageOrientationPatient": orientation, "PixelSpacing": spacing}
            positions[0].ImagePositionPatient = _shifted_position(probe, scale)
    for group in groups:
        for item in group.get("PixelMeasuresSequence", []):
            _divide_spacings(item, scale)


SPACINGS = ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing")
UNSCALABLE = {  # keyword -> why it cannot follow the new grid (refused at reading, naming it)
    "CenterOfCircularShutter": "a shutter in integer input pixel coordinates, whose centre falls between pixels",
    "RadiusOfCircularShutter": "a shutter in integer input pixel coordinates",
    "VerticesOfThePolygonalShutter": "a shutter in integer input pixel coordinates, whose vertices fall between "
                                     "pixels",
    "TotalPixelMatrixRows": "a tiled whole-slide image",
    "TotalPixelMatrixColumns": "a tiled whole-slide image",
    "GraphicAnnotationSequence": "graphics that may be in input pixel coordinates",
}
DROPPED = {  # keyword -> why it is left out of the result (a note says so)
    "IconImageSequence": "a thumbnail of the input image",
}
OVERLAY_GROUPS = range(0x6000, 0x6020, 2)
CURVE_GROUPS = range(0x5000, 0x5020, 2)


def check_pixel_attributes(dataset, name: str) -> None:
    """VolumeError naming the first attribute in input pixels that the result could not carry correctly
    (module docstring): :data:`UNSCALABLE`, the retired curves (50xx), overlays embedded in the pixel data's
    unused bits, and a BitsAllocated other than 8, 16 or 32 (1: a binary segmentation)."""
    for keyword, reason in UNSCALABLE.items():
        if keyword in dataset:
            raise VolumeError(f"{name}: {keyword} ({reason}) cannot follow the upscaled pixel grid; remove it first")
    for element in dataset:
        if element.tag.group in CURVE_GROUPS:
            raise VolumeError(f"{name}: {element.keyword or element.name.replace(' ', '')} ({element.tag.group:04X},"
                              f"{element.tag.element:04X}): the retired Curve module may hold input pixel "
                              "coordinates, which cannot be told apart; remove it first")
    for group in OVERLAY_GROUPS:
        if (group, 0x0010) in dataset and (group, 0x3000) not in dataset:
            raise VolumeError(f"{name}: an overlay ({group:04X},0010) without OverlayData ({group:04X},3000), "
                              "kept in the pixel data's unused bits: not supported")
    bits = _int(dataset, "BitsAllocated", 16)
    if bits not in (8, 16, 32):
        raise VolumeError(f"{name}: BitsAllocated {bits}: only 8-, 16- and 32-bit pixels are supported (1 is a "
                          "binary segmentation, not intensities)")


def _divide_spacings(item, scale: int) -> None:
    for keyword in SPACINGS:
        if keyword in item:
            setattr(item, keyword, [round(float(v) / scale, 8) for v in item[keyword].value])


def _scale_pixel_attributes(dataset, scale: int, notes: list[str]) -> None:
    """The attributes in input pixels besides Rows/Columns, the positions and the functional groups (module
    docstring)."""
    _divide_spacings(dataset, scale)
    for keyword, reason in DROPPED.items():
        if keyword in dataset:
            del dataset[keyword]
            notes.append(f"{keyword} ({reason}) left out")
    for keyword in ("ExtendedOffsetTable", "ExtendedOffsetTableLengths"):  # offsets of the input's compressed frames
        if keyword in dataset:
            del dataset[keyword]
    for group in OVERLAY_GROUPS:
        if (group, 0x3000) in dataset:
            _scale_overlay(dataset, group, scale, notes)
    _scale_shutter(dataset, scale)
    for region in dataset.get("SequenceOfUltrasoundRegions", []):
        _scale_ultrasound_region(region, scale)
    for item in dataset.get("MaskSubtractionSequence", []):
        if "MaskSubPixelShift" in item:  # (row, column) shift in pixels
            item.MaskSubPixelShift = [float(v) * scale for v in item.MaskSubPixelShift]


def _scale_overlay(dataset, group: int, scale: int, notes: list[str]) -> None:
    """Overlay plane ``group`` (60xx): each overlay bit becomes an s x s block (the image pixel it marks grows so),
    OverlayRows/Columns · s, the 1-based OverlayOrigin o -> (o − 1)·s + 1, ROIArea (in pixels) · s²; ROIMean and
    ROIStandardDeviation (statistics of the input's pixels) are left out with a note."""
    from pydicom.pixels import pack_bits

    bits = np.asarray(dataset.overlay_array(group))
    grown = np.repeat(np.repeat(bits, scale, axis=-2), scale, axis=-1)
    dataset[group, 0x3000].value = pack_bits(grown)
    dataset[group, 0x0010].value = grown.shape[-2]
    dataset[group, 0x0011].value = grown.shape[-1]
    if (group, 0x0050) in dataset:
        dataset[group, 0x0050].value = [(int(o) - 1) * scale + 1 for o in dataset[group, 0x0050].value]
    if (group, 0x1301) in dataset and dataset[group, 0x1301].value not in (None, ""):
        dataset[group, 0x1301].value = int(dataset[group, 0x1301].value) * scale * scale
    for element, keyword in ((0x1302, "ROIMean"), (0x1303, "ROIStandardDeviation")):
        if (group, element) in dataset:
            del dataset[group, element]
            notes.append(f"{keyword} ({group:04X},{element:04X}) (a statistic of the input's pixels) left out")


def _scale_shutter(dataset, scale: int) -> None:
    """Rectangular shutter edges are 1-based inclusive pixel columns / rows: [l, r] -> [(l − 1)·s + 1, r·s]."""
    for keyword in ("ShutterLeftVerticalEdge", "ShutterUpperHorizontalEdge"):
        if dataset.get(keyword) not in (None, ""):
            setattr(dataset, keyword, (int(dataset[keyword].value) - 1) * scale + 1)
    for keyword in ("ShutterRightVerticalEdge", "ShutterLowerHorizontalEdge"):
        if dataset.get(keyword) not in (None, ""):
            setattr(dataset, keyword, int(dataset[keyword].value) * scale)


def _scale_ultrasound_region(region, scale: int) -> None:
    """0-based inclusive bounds [a, b] -> [a·s, b·s + s − 1]; PhysicalDelta / s; the reference pixel x0 -> x0·s
    with its physical value moved by −(s − 1)/2 · delta / s, so that physical = (x − x0)·delta + value holds at
    every input pixel centre x -> x·s + (s − 1)/2."""
    for axis in "XY":
        low, high = f"RegionLocationMin{axis}0", f"RegionLocationMax{axis}1"
        if low in region:
            setattr(region, low, int(region[low].value) * scale)
        if high in region:
            setattr(region, high, int(region[high].value) * scale + scale - 1)
        delta = f"PhysicalDelta{axis}"
        if delta not in region:
            continue
        new_delta = float(region[delta].value) / scale
        setattr(region, delta, new_delta)
        reference, value = f"ReferencePixel{axis}0", f"ReferencePixelPhysicalValue{axis}"
        if reference in region:
            setattr(region, reference, int(region[reference].value) * scale)
            setattr(region, value, float(region.get(value, 0.0) or 0.0) - (scale - 1) / 2 * new_delta)


def derived_series(volume: Volume, values: np.ndarray, scale: int, description: str) -> Iterator[tuple[Path, object]]:
    """(input path, derived dataset) for each file of a DICOM volume; one new SeriesInstanceUID for all of them."""
    from pydicom.uid import generate_uid

    series_uid = generate_uid()
    noted: set[str] = set()

    def derived(source, physical_in: np.ndarray, physical_out: np.ndarray, path: Path):
        stored = keep_padding(source, physical_in, stored_values(source, physical_out, str(path)), scale, str(path))
        notes: list[str] = []
        dataset = derived_dataset(source, stored if stored.ndim == 2 or stored.shape[0] > 1 else stored[0], scale,
                                  series_uid, description, notes)
        for note in notes:  # once per volume, not once per slice
            if note not in noted:
                noted.add(note)
                warnings.warn(f"{volume.name}: {note} of the derived series", stacklevel=3)
        return dataset

    if volume.kind == "dicom-multiframe":
        yield volume.paths[0], derived(volume.source[0], volume.values, values, volume.paths[0])
        return
    for index, (path, source) in enumerate(zip(volume.paths, volume.source)):
        yield path, derived(source, volume.values[index], values[index], path)


def keep_padding(dataset, physical_in: np.ndarray, stored_out: np.ndarray, scale: int, name: str) -> np.ndarray:
    """PixelPaddingValue (with PixelPaddingRangeLimit, the stored range between them) marks pixels outside the
    scanned field. Each padded input pixel's s x s block of the result is set to PixelPaddingValue, so the result
    marks the same area; elsewhere the network's values stay."""
    if dataset.get("PixelPaddingValue") in (None, ""):
        return stored_out
    value = int(dataset.PixelPaddingValue)
    limit = int(dataset.get("PixelPaddingRangeLimit", value) or value)
    low, high = min(value, limit), max(value, limit)
    stored_in = rounded_stored(dataset, physical_in, name)
    padded = (stored_in >= low) & (stored_in <= high)
    if not padded.any():
        return stored_out
    grown = np.repeat(np.repeat(padded, scale, axis=-2), scale, axis=-1)
    kept = stored_out.copy()
    kept[grown] = value
    return kept


def write_dicom_file(dataset, path: Path) -> None:
    write_atomically(path, lambda temporary: dataset.save_as(str(temporary), enforce_file_format=True))


def write_dicom_series(items: Iterable[tuple[object, Path]]) -> None:
    """(dataset, target) for every file of one result series, written whole or not at all (:func:`write_whole`);
    ``items`` may be a generator, so only one derived dataset is in memory at a time."""
    write_whole((Path(target), _dicom_writer(dataset)) for dataset, target in items)


def _dicom_writer(dataset) -> Callable[[Path], None]:
    return lambda temporary: dataset.save_as(str(temporary), enforce_file_format=True)


# --- publishing a result whole ---------------------------------------------------------------------------------------

# What writing a file raises for the disk (OSError) or for values the format cannot hold (pydicom's writer:
# ValueError, struct.error, OverflowError; nibabel's, made ValueError in _nifti_temp)
WRITE_ERRORS = (OSError, ValueError, struct.error, OverflowError)

def write_whole(writes: Iterable[tuple[Path, Callable[[Path], None]]]) -> None:
    """Every file of one result (a series, a NIfTI) published, or none.

    Each ``write(temporary)`` goes to a hidden temporary name beside its target (``.<name>.tmp-<id>``; readers skip
    hidden files), flushed to disk; folders are made as needed. Only when every file is written are they renamed
    into place, a file already at a target first moved aside and deleted once all are in place. A failure at any
    step removes what this call wrote and the folders it made and puts back what it moved aside; what a write
    raises for the data or the disk (:data:`WRITE_ERRORS`) becomes :class:`~medsr_se.io.images.WriteError` naming
    the file, anything else (a bug) propagates unchanged."""
    staged: list[tuple[Path, Path]] = []  # (temporary, target)
    made: list[Path] = []
    target = None
    published = False
    try:
        for target, write in writes:
            made += _make_folders(target.parent)
            temporary = _hidden(target, "tmp")
            staged.append((temporary, target))
            write(temporary)
            with open(temporary, "rb+") as handle:
                os.fsync(handle.fileno())
        _publish(staged)
        published = True
    except WriteError:
        raise
    except WRITE_ERRORS as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else one_line(error)
        raise WriteError(f"{target}: cannot write it ({reason}); nothing of it was written") from error
    finally:
        if not published:
            for temporary, _ in staged:
                with contextlib.suppress(OSError):
                    temporary.unlink()
            for folder in reversed(made):
                with contextlib.suppress(OSError):
                    folder.rmdir()


def _publish(staged: list[tuple[Path, Path]]) -> None:
    """Rename every temporary onto its target; on a failure undo the renames already done."""
    done: list[tuple[Path, Path | None]] = []  # (target, the old file moved aside or None)
    try:
        for temporary, target in staged:
            aside = None
            if target.is_file() or target.is_symlink():
                aside = _hidden(target, "old")
                os.replace(target, aside)
            done.append((target, aside))
            os.replace(temporary, target)
    except OSError as error:
        for target, aside in reversed(done):
            with contextlib.suppress(OSError):
                if aside is not None:
                    os.replace(aside, target)
                elif target.exists():
                    target.unlink()
        raise WriteError(f"{target}: cannot put it in place ({error.strerror or error}); nothing of it was "
                         "written") from error
    for _, aside in done:
        if aside is not None:
            with contextlib.suppress(OSError):
                aside.unlink()


def _hidden(path: Path, kind: str) -> Path:
    return path.with_name(f".{path.name}.{kind}-{uuid.uuid4().hex[:8]}")


def _make_folders(folder: Path) -> list[Path]:
    """``folder`` and any missing parents created; the ones made, outermost first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    made = []
    for path in reversed(missing):
        path.mkdir()
        made.append(path)
    return made


# --- through-plane results (medsr-selfsr: r times the slices along the slice axis) ---------------------------------

def write_nifti_through_plane(volume: Volume, values: np.ndarray, scale: int, path: Path) -> None:
    """A NIfTI of the input's flavour and on-disk type with ``values``, which have ``scale`` times the slices along
    ``volume.axis``: that axis's affine column and zoom divided by ``scale`` and the origin moved to the new first
    slice's centre (:func:`scaled_affine` on the slice axis alone; input slice k = output slice
    scale·k + (scale − 1)/2). qform and sform each from themselves, codes kept; slice timing (dim_info) cleared
    when its slice dimension is that axis (a warning)."""
    source = volume.source
    header = source.header.copy()
    zooms = list(header.get_zooms())
    zooms[volume.axis] = zooms[volume.axis] / scale
    dtype = header.get_data_dtype()
    header.set_slope_inter(None, None)  # nibabel chooses the scaling that fits these values into the type
    _drop_upscaled_slice_timing(header, (volume.axis,), volume.name)
    image = type(source)(values, None, header)
    image.set_data_dtype(dtype)
    image.header.set_zooms(zooms)
    for form in ("qform", "sform"):
        stored = getattr(source.header, f"get_{form}")()
        getattr(image, f"set_{form}")(scaled_affine(stored, (volume.axis,), scale),
                                      code=int(source.header[f"{form}_code"]))
    write_whole([(Path(path), lambda temporary: _nifti_temp(_nibabel(), image, temporary, path))])


def through_plane_series(volume: Volume, values: np.ndarray, scale: int,
                         description: str) -> Iterator[tuple[str, object]]:
    """(file name, derived dataset) for each of the scale·N instances of a through-plane result of a DICOM series
    (``values``: (scale·N, rows, columns), physical units). Output slice j lies at input slice index
    t = (j + 0.5)/scale − 0.5: ImagePositionPatient = IPP_0 + t·(IPP_{N−1} − IPP_0)/(N − 1) (along the slice
    normal for an even series), SliceLocation likewise where the input has it, SpacingBetweenSlices and
    SliceThickness the input's / scale, InstanceNumber j + 1; every other attribute that of the nearest input
    slice, with the DERIVED semantics of :func:`derived_dataset` (new series and instance UIDs, the source
    referenced)."""
    from pydicom.uid import generate_uid

    sources = volume.source
    count = len(sources)
    positions = np.asarray([[float(v) for v in ds.ImagePositionPatient] for ds in sources])
    step = (positions[-1] - positions[0]) / (count - 1)
    locations = [ds.get("SliceLocation") for ds in sources]
    has_locations = all(value not in (None, "") for value in locations)
    location_step = (float(locations[-1]) - float(locations[0])) / (count - 1) if has_locations else 0.0
    spacing = float(np.linalg.norm(step))
    series_uid = generate_uid()
    for j in range(count * scale):
        t = (j + 0.5) / scale - 0.5
        nearest = int(np.clip(round(t), 0, count - 1))
        source = sources[nearest]
        name = str(volume.paths[nearest])
        dataset = derived_dataset(source, stored_values(source, values[j], name), 1, series_uid, description)
        dataset.ImagePositionPatient = [round(float(v), 5) for v in positions[0] + t * step]
        if has_locations:
            dataset.SliceLocation = round(float(locations[0]) + t * location_step, 5)
        thickness = float(source.get("SliceThickness") or 0) or spacing
        dataset.SliceThickness = round(thickness / scale, 5)
        dataset.SpacingBetweenSlices = round(spacing / scale, 5)
        dataset.InstanceNumber = j + 1
        base = str(source.get("SeriesDescription", "") or "").strip()
        dataset.SeriesDescription = f"{base} through-plane SR x{scale}".strip()[:64]
        yield f"IM{j + 1:05d}.dcm", dataset

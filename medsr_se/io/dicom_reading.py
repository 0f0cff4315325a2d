"""DICOM volumes in: a series of single-frame files, or one multi-frame file, read with pydicom into a Volume.

Series: the ``.dcm`` files of a folder are grouped by SeriesInstanceUID and each series sorted by the position of its
slices along the slice normal (ImagePositionPatient · (row direction × column direction)), or by InstanceNumber
where positions are missing (ties by InstanceNumber). Slices sharing a position, and gaps that differ from the usual
one, are warnings naming the series (:func:`check_slice_positions`).

Pixel values: gray only (MONOCHROME1 / MONOCHROME2; MONOCHROME1 only inverts the display, so its values are used as
stored and the result keeps MONOCHROME1); PALETTE COLOR, RGB and YBR are refused, as are 1-bit pixels, a Modality
LUT and a RescaleSlope of 0. Rescale per frame from the functional groups when present: physical = stored · slope +
intercept (HU for CT).

Attributes in input pixels that a result could not carry (:data:`UNSCALABLE`, curves, overlays in the pixel data's
unused bits) are refused here, before any work (:func:`check_pixel_attributes`); what the result carries is the
table in :mod:`medsr_se.io.dicom_derived`.
"""

from __future__ import annotations

import logging
import struct
from pathlib import Path

import numpy as np

from medsr_se.errors import DataError
from medsr_se.io.volumes import Volume, VolumeError, one_line

__all__ = ["POSITION_TOLERANCE", "check_pixel_attributes", "dicom_errors", "dicom_number", "dicom_numbers",
           "dicom_rescale", "dicom_unit", "frame_rescales", "group_series", "read_dicom_datasets",
           "read_dicom_volumes", "slice_position"]

logger = logging.getLogger(__name__)


def _pydicom():
    try:
        import pydicom
    except ImportError as error:
        raise DataError('reading DICOM needs the extra: pip install "medsr-se[medical]"') from error
    return pydicom


def dicom_errors() -> tuple[type[BaseException], ...]:
    """What pydicom raises for a damaged DICOM file (probed on truncated and byte-flipped files): InvalidDicomError
    (no DICOM preamble / meta), BytesLengthException, OSError / EOFError / struct.error (a value cut short),
    NotImplementedError (an unknown VR, a transfer syntax it has no decoder for; a RuntimeError), ValueError
    (pixel data shorter than Rows x Columns says, a bad BitsAllocated). Anything else surfaces."""
    _pydicom()
    from pydicom.errors import BytesLengthException, InvalidDicomError

    return InvalidDicomError, BytesLengthException, OSError, EOFError, struct.error, RuntimeError, ValueError


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
    slope = dicom_number(source, "RescaleSlope", 1.0, name)
    intercept = dicom_number(source, "RescaleIntercept", 0.0, name)
    if slope == 0:
        raise VolumeError(f"{name}: RescaleSlope 0 would make every pixel the intercept {intercept:g}; the "
                          "attribute is damaged (fix RescaleSlope, usually 1)")
    return slope, intercept


def dicom_number(source, keyword: str, default: float | None, name: str) -> float | None:
    """A numeric attribute, ``default`` when absent or empty; VolumeError naming ``name`` and the attribute when it
    is not a finite number (pydicom keeps a DS / IS it cannot parse as its text, and several values as a list)."""
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


def dicom_numbers(dataset, keyword: str, count: int, name: str) -> np.ndarray | None:
    """A multi-valued numeric attribute as ``count`` floats (ImagePositionPatient: 3, ImageOrientationPatient: 6,
    PixelSpacing: 2); None when absent or empty; VolumeError naming ``name`` and the attribute when it holds another
    number of values or one that is not a finite number."""
    value = dataset.get(keyword)
    if value is None or value == "":
        return None
    items = [value] if isinstance(value, (str, bytes, int, float)) else list(value)
    try:
        numbers = np.asarray([float(item) for item in items], np.float64)
    except (TypeError, ValueError):
        numbers = np.full(len(items), np.nan)
    if len(numbers) != count:
        raise VolumeError(f"{name}: {keyword} has {len(numbers)} value{'s' if len(numbers) != 1 else ''}, not "
                          f"{count}")
    if not np.isfinite(numbers).all():
        raise VolumeError(f"{name}: {keyword} {[str(item) for item in items]} is not {count} finite numbers")
    return numbers


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


def slice_position(dataset, name: str) -> float | None:
    """ImagePositionPatient · (row direction × column direction): the slice's position along its normal (mm); None
    when either attribute is absent; VolumeError naming ``name`` when one is damaged (:func:`dicom_numbers`)."""
    position = dicom_numbers(dataset, "ImagePositionPatient", 3, name)
    orientation = dicom_numbers(dataset, "ImageOrientationPatient", 6, name)
    if position is None or orientation is None:
        return None
    return float(np.dot(position, np.cross(orientation[:3], orientation[3:])))


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
        positions = [slice_position(ds, str(path)) for path, ds in members]
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
    """Warnings (logged) naming the series: slices sharing a position along the normal (the same pixel data: duplicate
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
            logger.warning("%s: %d slices at z = %g mm along the slice normal (%s), with %s; each is upscaled on its "
                           "own", name, len(group), positions[start], ", ".join(path.name for path, _ in group),
                           "the same pixel data (duplicate files?)" if same else
                           "different pixel data (several echoes, phases or time points in one series?)")
        distinct.append(positions[start])
        start = index
    gaps = np.diff(distinct)
    if len(gaps) < 2:
        return
    usual = float(np.median(gaps))
    odd = [i for i, gap in enumerate(gaps) if abs(gap - usual) > max(POSITION_TOLERANCE, 0.01 * usual)]
    if odd:
        first = odd[0]
        logger.warning("%s: uneven slice spacing: %g mm between z = %g and z = %g mm, where the usual gap is %g mm%s",
                       name, gaps[first], distinct[first], distinct[first + 1], usual,
                       f" ({len(odd)} such gaps)" if len(odd) > 1 else " (a missing slice?)")


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


UNSCALABLE = {  # keyword -> why it cannot follow the new grid (refused at reading, naming it)
    "CenterOfCircularShutter": "a shutter in integer input pixel coordinates, whose centre falls between pixels",
    "RadiusOfCircularShutter": "a shutter in integer input pixel coordinates",
    "VerticesOfThePolygonalShutter": "a shutter in integer input pixel coordinates, whose vertices fall between "
                                     "pixels",
    "TotalPixelMatrixRows": "a tiled whole-slide image",
    "TotalPixelMatrixColumns": "a tiled whole-slide image",
    "GraphicAnnotationSequence": "graphics that may be in input pixel coordinates",
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


"""Derived DICOM results: physical values back to stored ones, the attributes in input pixels scaled to the result's
grid, and the derived series of a result, in-plane (:func:`derived_series`: medsr-infer, s on both in-plane axes)
and through-plane (:func:`through_plane_series`: medsr-selfsr, slices D / s apart), each written whole or not at all
(:func:`write_dicom_series`).

Every result instance is *derived* (:func:`derived_dataset`): DERIVED\\SECONDARY, a new SOPInstanceUID in a new
series, the source image referenced. In-plane geometry (the pixel-centre convention of :mod:`medsr_se.io.volumes`):
PixelSpacing / s and ImagePositionPatient (the first pixel's centre) moved by
(0.5/s − 0.5) · (column spacing · row direction + row spacing · column direction).

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
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from medsr_se.io.dicom_reading import OVERLAY_GROUPS, frame_rescales
from medsr_se.io.publish import write_all_or_nothing
from medsr_se.io.volumes import WRITE_ERRORS, Volume

__all__ = ["derived_dataset", "derived_series", "keep_padding", "rounded_stored", "stored_range", "stored_values",
           "through_plane_series", "write_dicom_series"]

logger = logging.getLogger(__name__)


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
    for (frames, rows, columns); values beyond BitsStored's range are clipped with a warning (logged) naming the
    file (never silently)."""
    from pydicom.pixels.utils import pixel_dtype

    stored = rounded_stored(dataset, physical, name)
    low, high = stored_range(dataset)
    outside = int(np.count_nonzero((stored < low) | (stored > high)))
    if outside:
        logger.warning("%s: %d value(s) beyond the stored pixel range [%d, %d] were clipped to it", name, outside,
                       low, high)
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
DROPPED = {  # keyword -> why it is left out of the result (a note says so)
    "IconImageSequence": "a thumbnail of the input image",
}


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
                logger.warning("%s: %s of the derived series", volume.name, note)
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


def through_plane_series(volume: Volume, values: np.ndarray, scale: float,
                         description: str) -> Iterator[tuple[str, object]]:
    """(file name, derived dataset) for each of the M instances of a through-plane result of a DICOM series
    (``values``: (M, rows, columns), physical units; M = scale·N for a whole ``scale`` r; ``scale`` = D / t, the
    slice spacing's divisor, may be fractional: :mod:`medsr_se.io.slice_grid`). Output slice j lies at input slice
    index u = (j + 0.5)/scale − 0.5: ImagePositionPatient = IPP_0 + u·(IPP_{N−1} − IPP_0)/(N − 1) (along the slice
    normal for an even series), SliceLocation likewise where the input has it, SpacingBetweenSlices and
    SliceThickness the input's / scale, InstanceNumber j + 1, SeriesDescription ending ``through-plane SR x<r>``
    (``... SR <D / scale> mm`` for a fractional one); every other attribute that of the nearest input slice, with
    the DERIVED semantics of :func:`derived_dataset` (new series and instance UIDs, the source referenced)."""
    from pydicom.uid import generate_uid

    sources = volume.source
    count = len(sources)
    positions = np.asarray([[float(v) for v in ds.ImagePositionPatient] for ds in sources])
    step = (positions[-1] - positions[0]) / (count - 1)
    locations = [ds.get("SliceLocation") for ds in sources]
    has_locations = all(value not in (None, "") for value in locations)
    location_step = (float(locations[-1]) - float(locations[0])) / (count - 1) if has_locations else 0.0
    spacing = float(np.linalg.norm(step))
    label = _scale_label(scale, step, sources[0])
    series_uid = generate_uid()
    for j in range(len(values)):
        t = (j + 0.5) / scale - 0.5
        nearest = int(np.clip(round(t), 0, count - 1))
        source = sources[nearest]
        name = str(volume.paths[nearest])
        dataset = derived_dataset(source, stored_values(source, values[j], name), 1, series_uid, description)
        dataset.ImagePositionPatient = [round(float(v), 5) for v in positions[0] + t * step]
        if has_locations:
            dataset.SliceLocation = round(float(locations[0]) + t * location_step, 5)
        elif "SliceLocation" in dataset:  # some input slices have one: not interpolated, so none (not a stale copy)
            del dataset.SliceLocation
        thickness = float(source.get("SliceThickness") or 0) or spacing
        dataset.SliceThickness = round(thickness / scale, 5)
        dataset.SpacingBetweenSlices = round(spacing / scale, 5)
        dataset.InstanceNumber = j + 1
        base = str(source.get("SeriesDescription", "") or "").strip()
        dataset.SeriesDescription = f"{base} through-plane SR {label}".strip()[:64]
        yield f"IM{j + 1:05d}.dcm", dataset


def _scale_label(scale: float, step: np.ndarray, source) -> str:
    """``x<r>`` for a whole ``scale``; else the result's slice spacing, the distance between its planes (``step``,
    the input's position step, along the slice normal: a gantry tilt's shift left out), e.g. ``0.9 mm``."""
    if float(scale).is_integer():
        return f"x{scale:g}"
    orientation = source.get("ImageOrientationPatient")
    if orientation is None:
        return f"{float(np.linalg.norm(step)) / scale:.4g} mm"
    row, column = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    return f"{abs(float(np.dot(step, np.cross(row, column)))) / scale:.4g} mm"


def write_dicom_series(items: Iterable[tuple[object, Path]]) -> None:
    """(dataset, target) for every file of one result series, written whole or not at all
    (:func:`medsr_se.io.publish.write_all_or_nothing`; what the disk or pydicom's writer raises, :data:`WRITE_ERRORS`,
    becomes a WriteError naming the file); ``items`` may be a generator, so only one derived dataset is in memory at a
    time."""
    write_all_or_nothing(((Path(target), _dicom_writer(dataset)) for dataset, target in items), errors=WRITE_ERRORS)


def _dicom_writer(dataset) -> Callable[[Path], None]:
    """``write(temporary)`` for :func:`write_all_or_nothing`: ``dataset`` as a DICOM file (preamble and file meta)."""
    return lambda temporary: dataset.save_as(str(temporary), enforce_file_format=True)

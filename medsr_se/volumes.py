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
InstanceNumber where positions are missing. Results are written as *derived* DICOM (:func:`derived_dataset`).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medsr_se.imageio import write_atomically

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

def read_nifti(path: Path, axis: int = 2) -> Volume:
    nibabel = _nibabel()
    try:
        image = nibabel.load(str(path))
        values = np.asarray(image.dataobj, dtype=np.float32)  # scl_slope / scl_inter applied
    except Exception as error:  # nibabel raises several types for damaged files
        raise ValueError(f"{path}: cannot read the NIfTI volume ({error})") from error
    if values.ndim < 3:
        values = values.reshape(values.shape + (1,) * (3 - values.ndim))
    return Volume(values, "nifti", "", "stored", axis, [Path(path)], image)


def scaled_affine(affine: np.ndarray, in_plane: tuple[int, int], scale: int) -> np.ndarray:
    """affine · M (module docstring): in-plane voxel size / scale, origin moved to the new first voxel's centre."""
    resize = np.eye(4)
    for a in in_plane:
        resize[a, a] = 1.0 / scale
        resize[a, 3] = 0.5 / scale - 0.5
    return np.asarray(affine, np.float64) @ resize


def write_nifti(volume: Volume, values: np.ndarray, scale: int, path: Path) -> None:
    """A NIfTI of the input's on-disk type with ``values`` (physical units) and the scaled geometry."""
    nibabel = _nibabel()
    source = volume.source
    header = source.header.copy()
    affine = scaled_affine(source.affine, volume.in_plane_axes, scale)
    zooms = list(header.get_zooms())
    for a in volume.in_plane_axes:
        zooms[a] = zooms[a] / scale
    data = values.reshape(values.shape[: len(source.shape)]) if values.ndim > len(source.shape) else values
    dtype = header.get_data_dtype()
    header.set_slope_inter(None, None)  # nibabel chooses the scaling that fits these values into the type
    image = type(source)(data, affine, header)
    image.set_data_dtype(dtype)
    image.header.set_zooms(zooms)
    for form in ("qform", "sform"):
        code = int(source.header[f"{form}_code"])
        if code:
            getattr(image, f"set_{form}")(affine, code=code)
    write_atomically(path, lambda temporary: _nifti_temp(nibabel, image, temporary, path))


def _nifti_temp(nibabel, image, temporary: Path, final: Path) -> None:
    """nibabel picks gzip from the file name: write to a temporary name that keeps ``final``'s suffix."""
    suffix = ".nii.gz" if str(final).lower().endswith(".gz") else ".nii"
    named = temporary.with_name(temporary.name + suffix)
    try:
        nibabel.save(image, str(named))
        named.replace(temporary)
    finally:
        named.unlink(missing_ok=True)


# --- DICOM -----------------------------------------------------------------------------------------------------------

def dicom_rescale(dataset) -> tuple[float, float]:
    return float(dataset.get("RescaleSlope", 1) or 1), float(dataset.get("RescaleIntercept", 0) or 0)


def dicom_unit(dataset) -> str:
    modality = str(dataset.get("Modality", ""))
    has_rescale = "RescaleIntercept" in dataset or "RescaleSlope" in dataset
    return "HU" if modality == "CT" and (has_rescale or str(dataset.get("RescaleType", "")) == "HU") else "stored"


def _slice_position(dataset) -> float | None:
    position, orientation = dataset.get("ImagePositionPatient"), dataset.get("ImageOrientationPatient")
    if position is None or orientation is None:
        return None
    normal = np.cross(np.asarray(orientation[:3], float), np.asarray(orientation[3:], float))
    return float(np.dot(np.asarray(position, float), normal))


def read_dicom_datasets(paths: list[Path]) -> list:
    pydicom = _pydicom()
    datasets = []
    for path in paths:
        try:
            datasets.append(pydicom.dcmread(str(path)))
        except Exception as error:
            raise ValueError(f"{path}: cannot read the DICOM file ({error})") from error
    return datasets


def group_series(paths: list[Path]) -> dict[str, list[tuple[Path, object]]]:
    """SeriesInstanceUID -> [(path, dataset)] sorted along the slice normal (module docstring)."""
    series: dict[str, list[tuple[Path, object]]] = {}
    for path, dataset in zip(paths, read_dicom_datasets(paths)):
        series.setdefault(str(dataset.get("SeriesInstanceUID", "")), []).append((path, dataset))
    for members in series.values():
        positions = [_slice_position(ds) for _, ds in members]
        if all(p is not None for p in positions):
            order = np.argsort(positions, kind="stable")
        else:
            order = np.argsort([int(ds.get("InstanceNumber", 0) or 0) for _, ds in members], kind="stable")
        members[:] = [members[i] for i in order]
    return series


def _pixels(dataset, path: Path) -> np.ndarray:
    try:
        pixels = dataset.pixel_array
    except Exception as error:
        raise ValueError(f"{path}: cannot read the DICOM pixel data ({error})") from error
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    if samples != 1 or pixels.dtype.kind not in "iu":
        raise ValueError(f"{path}: only monochrome integer DICOM is supported (got {samples} samples per pixel, "
                         f"{pixels.dtype})")
    return pixels


def series_volume(members: list[tuple[Path, object]]) -> Volume:
    """One DICOM series (single-frame files in slice order) -> a (slices, rows, columns) Volume."""
    slices = []
    for path, dataset in members:
        pixels = _pixels(dataset, path)
        if pixels.ndim != 2:
            raise ValueError(f"{path}: a multi-frame file inside a series of slices")
        if slices and pixels.shape != slices[0].shape:
            raise ValueError(f"{path}: {pixels.shape[1]}x{pixels.shape[0]} differs from the series' "
                             f"{slices[0].shape[1]}x{slices[0].shape[0]}")
        slope, intercept = dicom_rescale(dataset)
        slices.append(pixels.astype(np.float32) * slope + intercept)
    first = members[0][1]
    return Volume(np.stack(slices), "dicom-series", str(first.get("Modality", "")), dicom_unit(first), 0,
                  [path for path, _ in members], [dataset for _, dataset in members])


def multiframe_volume(path: Path, dataset) -> Volume:
    """A multi-frame DICOM -> a (frames, rows, columns) Volume."""
    pixels = _pixels(dataset, path)
    slope, intercept = dicom_rescale(dataset)
    values = pixels.astype(np.float32) * slope + intercept
    if values.ndim == 2:
        values = values[None]
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
    """The smallest and largest stored value the dataset's pixel description allows."""
    bits = int(dataset.get("BitsStored", dataset.get("BitsAllocated", 16)))
    if int(dataset.get("PixelRepresentation", 0)) == 1:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def stored_values(dataset, physical: np.ndarray, name: str) -> np.ndarray:
    """physical -> stored = round((physical − intercept) / slope) in the dataset's pixel type; values beyond what
    the pixel type can hold are clipped with a warning naming the file (never silently)."""
    slope, intercept = dicom_rescale(dataset)
    stored = np.round((physical.astype(np.float64) - intercept) / slope)
    low, high = stored_range(dataset)
    outside = int(np.count_nonzero((stored < low) | (stored > high)))
    if outside:
        warnings.warn(f"{name}: {outside} value(s) beyond the stored pixel range [{low}, {high}] were clipped to it",
                      stacklevel=2)
    bits_allocated = int(dataset.get("BitsAllocated", 16))
    signed = int(dataset.get("PixelRepresentation", 0)) == 1
    dtype = {(8, False): np.uint8, (8, True): np.int8, (16, False): np.uint16, (16, True): np.int16,
             (32, False): np.uint32, (32, True): np.int32}[(bits_allocated, signed)]
    return np.clip(stored, low, high).astype(dtype)


def _shifted_position(dataset, scale: int) -> list[float] | None:
    position, orientation = dataset.get("ImagePositionPatient"), dataset.get("ImageOrientationPatient")
    spacing = dataset.get("PixelSpacing")
    if position is None or orientation is None or spacing is None:
        return None
    row_direction, column_direction = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    row_spacing, column_spacing = float(spacing[0]), float(spacing[1])
    shift = (0.5 / scale - 0.5) * (column_spacing * row_direction + row_spacing * column_direction)
    return [round(float(v), 6) for v in np.asarray(position, float) + shift]


def derived_dataset(source, stored: np.ndarray, scale: int, series_uid: str, description: str):
    """A new DICOM instance derived from ``source`` with the super-resolved ``stored`` pixels (frames, rows, cols)
    or (rows, cols): DERIVED\\SECONDARY image type, new SOP instance UID in the new series ``series_uid``, the
    source image referenced, DerivationDescription, Rows/Columns, PixelSpacing / scale, ImagePositionPatient at
    the new first pixel's centre, pixel value range of the written values; rescale and pixel type unchanged."""
    from pydicom.dataset import Dataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    dataset = copy.deepcopy(source)
    image_type = list(source.get("ImageType", ["ORIGINAL", "PRIMARY"]))
    dataset.ImageType = ["DERIVED", "SECONDARY", *image_type[2:]]
    dataset.DerivationDescription = description[:1024]
    if "SOPClassUID" in source and "SOPInstanceUID" in source:  # both are required; a file may still lack them
        reference = Dataset()
        reference.ReferencedSOPClassUID = source.SOPClassUID
        reference.ReferencedSOPInstanceUID = source.SOPInstanceUID
        dataset.SourceImageSequence = [reference]
    dataset.SeriesInstanceUID = series_uid
    dataset.SOPInstanceUID = generate_uid()
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if "SeriesDescription" in source:
        dataset.SeriesDescription = f"{source.SeriesDescription} SR x{scale}"[:64]
    else:
        dataset.SeriesDescription = f"SR x{scale}"
    dataset.Rows, dataset.Columns = stored.shape[-2:]
    if stored.ndim == 3:
        dataset.NumberOfFrames = stored.shape[0]
    position = _shifted_position(source, scale)
    if "PixelSpacing" in source:
        dataset.PixelSpacing = [round(float(v) / scale, 8) for v in source.PixelSpacing]
    if position is not None:
        dataset.ImagePositionPatient = position
    _scale_functional_groups(dataset, scale)
    for tag in ("SmallestPixelValueInSeries", "LargestPixelValueInSeries"):
        if tag in dataset:
            del dataset[tag]
    dataset.SmallestImagePixelValue = int(stored.min())
    dataset.LargestImagePixelValue = int(stored.max())
    value_vr = "SS" if int(dataset.get("PixelRepresentation", 0)) == 1 else "US"  # 'US or SS' elements
    dataset["SmallestImagePixelValue"].VR = value_vr
    dataset["LargestImagePixelValue"].VR = value_vr
    dataset.PixelData = np.ascontiguousarray(stored).tobytes()
    dataset["PixelData"].VR = "OW" if stored.dtype.itemsize > 1 else "OB"
    return dataset


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
            if "PixelSpacing" in item:
                item.PixelSpacing = [round(float(v) / scale, 8) for v in item.PixelSpacing]


def derived_series(volume: Volume, values: np.ndarray, scale: int, description: str) -> Iterator[tuple[Path, object]]:
    """(input path, derived dataset) for each file of a DICOM volume; one new SeriesInstanceUID for all of them."""
    from pydicom.uid import generate_uid

    series_uid = generate_uid()
    if volume.kind == "dicom-multiframe":
        source = volume.source[0]
        frames = stored_values(source, values, str(volume.paths[0]))
        yield volume.paths[0], derived_dataset(source, frames if frames.shape[0] > 1 else frames[0], scale,
                                               series_uid, description)
        return
    for index, (path, source) in enumerate(zip(volume.paths, volume.source)):
        yield path, derived_dataset(source, stored_values(source, values[index], str(path)), scale, series_uid,
                                    description)


def write_dicom_file(dataset, path: Path) -> None:
    write_atomically(path, lambda temporary: dataset.save_as(str(temporary), enforce_file_format=True))

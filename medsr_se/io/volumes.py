"""CT and MRI volumes in and out: the :class:`Volume` record every format shares, and the names callers import.

    volumes.py          Volume, VolumeError, upscale_volume, is_nifti / nifti_stem, one_line, WRITE_ERRORS
    nifti.py            NIfTI-1 / NIfTI-2 read and write (nibabel), in-plane and through-plane results
    dicom_reading.py    DICOM series and multi-frame DICOM read (pydicom): grouping, slice order, rescale, refusals
    dicom_derived.py    derived DICOM results: stored values, attributes in input pixels, in-plane and through-plane
                        series, written whole

Callers import the readers and writers from their format's module (``from medsr_se.io import nifti``); the format
modules import this one's core.

A :class:`Volume` holds the voxel values in physical units (HU for CT after RescaleSlope/Intercept, NIfTI's
scl_slope/scl_inter applied) and what is needed to write a result of the same kind with the right geometry. The
network upscales in-plane, slice by slice: the two axes other than ``axis`` grow by the scale s, ``axis`` (the slice
direction) is untouched; a through-plane result (medsr-selfsr) has r times the slices along ``axis`` instead.

Geometry of a result along each upscaled axis, for voxel index i' of the result and i of the input, with pixel
centres kept (the convention of image resizing: the result's pixels tile the input's extent):

    i = (i' + 0.5) / s − 0.5            so   spacing' = spacing / s,   origin' = origin + (0.5/s − 0.5) · spacing · e

(NIfTI: :mod:`medsr_se.io.nifti`; DICOM: :mod:`medsr_se.io.dicom_derived`). Every result (a NIfTI, a DICOM series)
is published whole or not at all (:func:`medsr_se.io.publish.write_all_or_nothing`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medsr_se.errors import DataError

NIFTI_SUFFIXES = (".nii", ".nii.gz")

# What writing a file raises for the disk (OSError) or for values the format cannot hold (pydicom's writer:
# ValueError, struct.error, OverflowError; nibabel's, made ValueError in medsr_se.io.nifti): a WriteError naming it
WRITE_ERRORS = (OSError, ValueError, struct.error, OverflowError)

__all__ = ["NIFTI_SUFFIXES", "WRITE_ERRORS", "Volume", "VolumeError", "is_nifti", "nifti_stem", "one_line",
           "upscale_volume", "write_nifti_through_plane"]


def is_nifti(path: Path) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def nifti_stem(path: Path) -> str:
    name = Path(path).name
    return name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else Path(name).stem


def one_line(error: BaseException, limit: int = 400) -> str:
    """An exception's text on one line (pydicom and nibabel put lists and hints on lines of their own; pydicom's
    writer even a traceback, cut off here), at most ``limit`` characters."""
    text = " ".join(str(error).split("Traceback (most recent call last)")[0].split()) or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class VolumeError(DataError):
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


def write_nifti_through_plane(volume: Volume, values: np.ndarray, scale: float, path: Path) -> None:
    """The through-plane NIfTI result (``values``: ``scale`` times the slices along ``volume.axis``; a fractional
    ``scale`` = D / t: slices t mm apart from the slab's start, :mod:`medsr_se.io.slice_grid`):
    :func:`medsr_se.io.nifti.write_nifti` with ``scale`` on the slice axis alone."""
    from medsr_se.io.nifti import write_nifti

    write_nifti(volume, values, tuple(scale if a == volume.axis else 1 for a in range(3)), path)

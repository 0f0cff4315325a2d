"""NIfTI-1 and NIfTI-2 volumes (``.nii``, ``.nii.gz``) in and out, through nibabel.

Reading: the voxel values with scl_slope / scl_inter applied, as float32. Refused, one line naming the file:
CIFTI-2, RGB / complex voxels, non-finite values (unless a replacement is given: ``nonfinite``), an in-plane axis of
one voxel (a 2-D NIfTI takes axis 2 only).

Writing (:func:`write_nifti`): a result with per-axis scale factors (s0, s1, s2), the input's flavour and on-disk
type. medsr-infer's result is s on both in-plane axes, medsr-selfsr's s = D / t along the slice axis (r, or any
ratio when resampled to a target spacing t: :mod:`medsr_se.io.slice_grid`). With the pixel-centre convention of
:mod:`medsr_se.io.volumes` on each axis a,

    affine' = affine · M,   M = diag(1/s0, 1/s1, 1/s2, 1) with translation (0.5/s_a − 0.5) on axis a

(an axis with s_a = 1 is unchanged). The qform and the sform are each scaled from themselves and keep their codes
(code 0 too); pixdim follows; slice timing (dim_info) is cleared, with a warning, when its slice dimension is
upscaled. The file is published whole or not at all (:func:`medsr_se.io.publish.write_all_or_nothing`).
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from medsr_se.errors import DataError
from medsr_se.io.intensity import NonFiniteError, replace_nonfinite
from medsr_se.io.publish import write_all_or_nothing
from medsr_se.io.volumes import WRITE_ERRORS, Volume, VolumeError, one_line

__all__ = ["nifti_errors", "read_nifti", "scaled_affine", "write_nifti"]

logger = logging.getLogger(__name__)

# nibabel's own gzip writer (nibabel.openers.Opener): level 1, no file name and mtime 0 in the gzip header
GZIP_LEVEL = 1


def _nibabel():
    try:
        import nibabel
    except ImportError as error:
        raise DataError('reading NIfTI needs the extra: pip install "medsr-se[medical]"') from error
    return nibabel


def nifti_errors() -> tuple[type[BaseException], ...]:
    """What nibabel raises for a damaged NIfTI (probed on truncated, garbage and bad-header files): its own
    ImageFileError (not a NIfTI) and HeaderDataError (a bad datatype code or offset), OSError (data shorter than the
    header says), EOFError / zlib.error (a truncated or damaged .gz), OverflowError (a negative dimension), and
    ValueError. Anything else (a TypeError, say) is a bug and surfaces."""
    _nibabel()
    from nibabel.filebasedimages import ImageFileError
    from nibabel.spatialimages import HeaderDataError, ImageDataError

    return ImageFileError, HeaderDataError, ImageDataError, OSError, EOFError, zlib.error, OverflowError, ValueError


def read_nifti(path: Path, axis: int = 2, nonfinite: float | None = None) -> Volume:
    """A NIfTI-1 / NIfTI-2 volume (``.nii``, ``.nii.gz``) as a Volume with slices along ``axis``.

    :class:`VolumeError` (one line naming the file) for what cannot be upscaled as gray voxel values: a damaged
    or truncated file, CIFTI-2, RGB / complex voxels (take the magnitude first), an in-plane axis of one voxel
    (``parameter`` "axis"), and non-finite values (NaN, ±inf; ``parameter`` "nonfinite"), unless ``nonfinite`` gives
    the finite value that replaces them (a warning, logged)."""
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
                              f"and 1; axis={axis} would upscale an axis of one voxel: its slice axis is 2",
                              parameter="axis")
        values = values.reshape(values.shape + (1,) * (3 - values.ndim))
    volume = Volume(values, "nifti", "", "stored", axis, [Path(path)], image)
    for a in volume.in_plane_axes:
        if values.shape[a] < 2:
            raise VolumeError(f"{path}: in-plane axis {a} has {values.shape[a]} voxel(s) (shape "
                              f"{' x '.join(map(str, values.shape))}): nothing to upscale there with axis={axis}; "
                              "choose another slice axis", parameter="axis")
    return volume


def _finite(values: np.ndarray, name: str, nonfinite: float | None) -> np.ndarray:
    try:
        return replace_nonfinite(values, name, nonfinite)
    except NonFiniteError as error:
        raise VolumeError(str(error), parameter=error.parameter) from error


def _resize(scales: Sequence[float]) -> np.ndarray:
    """M (module docstring): 1/s_a on the diagonal and (0.5/s_a − 0.5) in the translation of each axis a; the
    identity on an axis with s_a = 1."""
    resize = np.eye(4)
    for a, scale in enumerate(scales):
        resize[a, a] = 1.0 / scale
        resize[a, 3] = 0.5 / scale - 0.5
    return resize


def scaled_affine(affine: np.ndarray, axes: Iterable[int], scale: int) -> np.ndarray:
    """affine · M with ``scale`` on ``axes`` (module docstring): their voxel size / scale, the origin moved to the
    new first voxel's centre.

    Not ``nibabel.affines.rescale_affine``: that keeps the world position of voxel ``(shape − 1) // 2`` (an
    integer index) at new voxel ``(new_shape − 1) // 2``, where the pixel-centre convention puts it at
    ``2 · ((shape − 1) // 2) + 0.5`` (33 -> 66: 16 -> 32, not 32.5; 32 -> 64: 15 -> 31, not 30.5): for x2 it shifts
    the image by half a new voxel whatever the size (tests/io/test_volumes.py measures it)."""
    axes = tuple(axes)
    return np.asarray(affine, np.float64) @ _resize([scale if a in axes else 1 for a in range(3)])


def axis_scales(volume: Volume, scale: int | Sequence[float]) -> tuple[float, float, float]:
    """(s0, s1, s2) for :func:`write_nifti`: an int s is medsr-infer's result (s on both in-plane axes of
    ``volume``), a sequence is taken as the three factors (each an int when it is a whole number)."""
    if isinstance(scale, (int, np.integer)):
        return tuple(int(scale) if a in volume.in_plane_axes else 1 for a in range(3))
    scales = tuple(int(s) if float(s).is_integer() else float(s) for s in scale)
    if len(scales) != 3:
        raise TypeError(f"scale {scale!r}: one factor (in-plane) or three (one per axis)")
    return scales


def write_nifti(volume: Volume, values: np.ndarray, scale: int | Sequence[float], path: Path) -> None:
    """A NIfTI of the input's flavour and on-disk type with ``values`` (physical units) and the scaled geometry.

    ``scale``: s (both in-plane axes × s: medsr-infer) or (s0, s1, s2), one factor per axis (through-plane: s = D / t
    on ``volume.axis``, not necessarily whole, 1 on the others); ``values`` has the input's shape times those factors
    (along an axis of a fractional factor: the result's own count, its voxel k at input index (k + 0.5)/s − 0.5,
    from the slab's start). The qform and the sform are each scaled from themselves (affine · M, module docstring)
    and keep their codes, an uncoded (code 0) one too, so that every reader's choice of form keeps the voxel
    centres; pixdim follows; slice timing is cleared when its slice dimension is upscaled (a warning, logged)."""
    scales = axis_scales(volume, scale)
    upscaled = tuple(a for a in range(3) if scales[a] != 1)
    source = volume.source
    header = source.header.copy()
    zooms = list(header.get_zooms())
    for a in upscaled:
        zooms[a] = zooms[a] / scales[a]
    data = values.reshape(values.shape[: len(source.shape)]) if values.ndim > len(source.shape) else values
    dtype = header.get_data_dtype()
    header.set_slope_inter(None, None)  # nibabel chooses the scaling that fits these values into the type
    _drop_upscaled_slice_timing(header, upscaled, volume.name)
    image = type(source)(data, None, header)
    image.set_data_dtype(dtype)
    image.header.set_zooms(zooms)
    resize = _resize(scales)
    for form in ("qform", "sform"):  # the image's setters keep its affine in step with the header
        stored = getattr(source.header, f"get_{form}")()  # the form's own transform, coded or not
        getattr(image, f"set_{form}")(np.asarray(stored, np.float64) @ resize, code=int(source.header[f"{form}_code"]))
    write_all_or_nothing([(Path(path), lambda temporary: _save(image, temporary, path))], errors=WRITE_ERRORS)


def _drop_upscaled_slice_timing(header, upscaled: tuple[int, ...], name: str) -> None:
    """dim_info's slice dimension and its timing (slice_code/start/end/duration) count acquired slices: when that
    dimension is one of the upscaled ones they describe no slice of the result, so they are cleared (a warning,
    logged)."""
    freq, phase, slice_dim = header.get_dim_info()
    if slice_dim is None or slice_dim not in upscaled:
        return
    header.set_dim_info(freq, phase, None)
    for key in ("slice_code", "slice_start", "slice_end", "slice_duration"):
        header[key] = 0
    logger.warning("%s: the NIfTI slice dimension (dim_info) is axis %s, upscaled here: its slice timing does not "
                   "describe the result and was cleared", name, slice_dim)


def _save(image, temporary: Path, final: Path) -> None:
    """``image`` into the file ``temporary``, gzip-compressed when ``final`` ends in ``.gz``, as ``nibabel.save``
    writes ``final`` (which picks gzip from the name, so cannot write the hidden temporary name itself). nibabel's
    own errors (values its header cannot describe) become a ValueError (:data:`WRITE_ERRORS`)."""
    with open(temporary, "wb") as raw:
        compressed = gzip.GzipFile(filename="", mode="wb", compresslevel=GZIP_LEVEL, fileobj=raw, mtime=0) \
            if str(final).lower().endswith(".gz") else contextlib.nullcontext(raw)
        try:
            with compressed as stream:
                image.to_stream(stream)
        except nifti_errors()[:3] as error:
            raise ValueError(one_line(error)) from error

"""Reading a thick-slice scan for through-plane SR: its values, the slice axis, in-plane and slice spacing, and
the slice thickness with where it came from (the ``slice_thickness`` given, DICOM SliceThickness, the BIDS sidecar
that dcm2niix writes beside a NIfTI, or assumed = the slice spacing). A DICOM series is checked for everything its
through-plane result will be placed by before any work; the result is written beside the scan's kind (NIfTI, or a
derived DICOM series). Errors name the parameter they are about (``scale=9: ...``, ``parameter="scale"``); notes
and warnings go to ``logging.getLogger(__name__)``.

    scan = read_scan("scan.nii.gz")          Scan: values (float32), geometry (SliceGeometry), the Volume
    r = choose_scale(scan.geometry, scan.name)
    write_result(scan, values, r, target)    the r·N slices as a NIfTI file or a DICOM series folder
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from medsr_se.errors import DataError
from medsr_se.io import dicom_derived, dicom_reading, nifti, volumes
from medsr_se.io.intensity import IntensityModel, measured

log = logging.getLogger(__name__)
MIN_SCALE, MAX_SCALE = 2, 8  # r of the anisotropic generator
UNEVEN_TOLERANCE = 0.01  # relative: slice gaps that differ more than 1 % from the usual one are an error
# What a DICOM export puts beside the slices of a series: the media directory and viewer / report files
NOT_SLICE_NAMES = frozenset({"DICOMDIR", "LOCKFILE", "VERSION", "AUTORUN.INF", "README", "README.TXT", "THUMBS.DB",
                             "DESKTOP.INI"})
NOT_SLICE_SUFFIXES = frozenset({".txt", ".xml", ".json", ".csv", ".html", ".htm", ".pdf", ".ini", ".inf", ".log",
                                ".md", ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".exe", ".dll",
                                ".bat", ".nii", ".npy", ".yml", ".yaml"})  # not .gz / .zip: may hold a slice


ASSUMED = "assumed = slice spacing"  # the start of SliceGeometry.thickness_source when the scan does not say
FROM_OPTION = "from slice_thickness"  # SliceGeometry.thickness_source when read_scan was given slice_thickness
SIDECAR_TOLERANCE = 0.01  # relative: a sidecar's SpacingBetweenSlices further than 1 % from the header's is a warning
PLANE_TOLERANCE = 1e-3  # ImageOrientationPatient: unit vectors, orthogonal, the same in every slice, to this much


class ThroughPlaneError(DataError):
    """A scan or option that through-plane SR cannot work with; one line naming the file or option."""


@dataclass(frozen=True)
class SliceGeometry:
    """What through-plane SR needs of a scan's grid (mm).

    Attributes:
        axis: the slice axis of the value array (0, 1 or 2).
        in_plane_spacing: the spacing of the two in-plane axes (their mean when they differ slightly).
        slice_spacing: centre-to-centre distance of the slices, D.
        slice_thickness: FWHM of the slice profile, T (= D when the scan does not say).
        thickness_source: where T came from: ``from slice_thickness`` (:data:`FROM_OPTION`), ``from the BIDS
            sidecar scan.json: SliceThickness``, ``from DICOM SliceThickness``, or ``assumed = slice spacing: ...``
            (why) when the scan does not say (:attr:`thickness_assumed`).
    """

    axis: int
    in_plane_spacing: float
    slice_spacing: float
    slice_thickness: float
    thickness_source: str = f"{ASSUMED}: none given"

    @property
    def thickness_assumed(self) -> bool:
        """True when T is not known but taken = D (a gap or an overlap between slices would make it wrong)."""
        return self.thickness_source.startswith(ASSUMED)

    @property
    def ratio(self) -> float:
        return self.slice_spacing / self.in_plane_spacing

    @property
    def scale(self) -> int:
        """r = round(D / d)."""
        return int(round(self.ratio))

    @property
    def fwhm_pixels(self) -> float:
        """T / d: the slice profile's FWHM in in-plane pixels."""
        return self.slice_thickness / self.in_plane_spacing

    def upscaled(self, scale: float) -> SliceGeometry:
        """The result's geometry: slice spacing and thickness divided by ``scale`` (r, or D / t: any ratio)."""
        return replace(self, slice_spacing=self.slice_spacing / scale, slice_thickness=self.slice_thickness / scale)


@dataclass
class Scan:
    """A volume read for through-plane SR: ``values`` (float32, physical units) with ``geometry`` and the
    :class:`~medsr_se.io.volumes.Volume` it came from (for writing the result)."""

    volume: volumes.Volume
    geometry: SliceGeometry

    @property
    def values(self) -> np.ndarray:
        return self.volume.values

    @property
    def name(self) -> str:
        return self.volume.name


def read_scan(path: str | Path, axis: int | None = None, slice_thickness: float | None = None,
              nonfinite: float | None = None) -> Scan:
    """A NIfTI file or a folder holding one DICOM series, with its slice geometry; :class:`ThroughPlaneError`
    (one line naming the file) for what through-plane SR cannot take: a 2-D image, a 4-D volume without ``axis``, a
    DICOM series with uneven slice spacing or without what the result's slices are placed by
    (:func:`check_series_plane`), fewer than 2 slices, NaN / ±inf voxels unless ``nonfinite`` gives the finite
    value that replaces them (a warning says how many).

    The slice thickness T (the profile's FWHM), and ``geometry.thickness_source`` saying where it came from:
    ``slice_thickness`` (mm) if given; else the scan's: DICOM SliceThickness
    (:func:`dicom_thickness`), or for a NIfTI, which has no such field, the BIDS JSON sidecar that dcm2niix writes
    beside it (:func:`sidecar_thickness`); else T = the slice spacing, *assumed*."""
    path = Path(path)
    if slice_thickness is not None and (not np.isfinite(slice_thickness) or slice_thickness <= 0):
        raise ThroughPlaneError(f"slice_thickness={slice_thickness}: must be a positive number of mm",
                                parameter="slice_thickness")
    if path.is_dir():
        scan = _read_dicom_scan(path, slice_thickness)
    elif volumes.is_nifti(path):
        scan = _read_nifti_scan(path, axis, nonfinite, slice_thickness)
    elif path.is_file():
        raise ThroughPlaneError(f"{path}: not a volume (give a NIfTI .nii / .nii.gz file or a DICOM series folder; "
                                "a 2-D image has no slices to interpolate between)")
    else:
        raise ThroughPlaneError(f"{path}: no such file or folder")
    if scan.values.shape[scan.geometry.axis] < 2:
        raise ThroughPlaneError(f"{scan.name}: one slice along axis {scan.geometry.axis}: nothing to interpolate "
                                "between")
    return scan


def _read_nifti_scan(path: Path, axis: int | None, nonfinite: float | None = None,
                     slice_thickness: float | None = None) -> Scan:
    try:
        volume = nifti.read_nifti(path, 2, nonfinite)  # the slice axis is chosen below
    except volumes.VolumeError as error:
        raise _as_through_plane_error(error) from error
    shape = volume.source.shape
    zooms = [float(z) for z in volume.source.header.get_zooms()[:3]]
    if len(shape) < 3 or min(shape[:3]) < 2:
        raise ThroughPlaneError(f"{path}: a 2-D image ({' x '.join(map(str, shape))}): through-plane SR needs a "
                                "volume of slices")
    if len(shape) > 3 and axis is None:
        raise ThroughPlaneError(f"{path}: a {len(shape)}-D volume ({' x '.join(map(str, shape))}): give the slice "
                                "axis with axis=0|1|2 (each 3-D volume is then processed)", parameter="axis")
    if axis is None:
        axis = int(np.argmax(zooms))
    if axis not in (0, 1, 2):
        raise ThroughPlaneError(f"axis={axis}: must be 0, 1 or 2", parameter="axis")
    volume.axis = axis
    in_plane = [zooms[a] for a in volume.in_plane_axes]
    thickness, source = ((float(slice_thickness), FROM_OPTION) if slice_thickness is not None
                         else sidecar_thickness(path, zooms[axis]))
    return Scan(volume, SliceGeometry(axis, _in_plane_spacing(in_plane, str(path)), zooms[axis], thickness, source))


def sidecar_of(path: Path) -> Path | None:
    """The BIDS JSON sidecar of a NIfTI as dcm2niix writes it: ``scan.json`` beside ``scan.nii.gz`` or
    ``scan.nii`` (the stem as the NIfTI spells it, ``.json`` or ``.JSON``); None when there is none."""
    stem = volumes.nifti_stem(path)
    found = [c for c in (path.with_name(f"{stem}.json"), path.with_name(f"{stem}.JSON")) if c.is_file()]
    if len(found) == 2 and found[0].samefile(found[1]):  # a case-insensitive file system
        found = found[:1]
    if len(found) > 1:
        raise ThroughPlaneError(f"{path}: two sidecars beside it ({found[0].name}, {found[1].name}): give "
                                "slice_thickness=MM", parameter="slice_thickness")
    return found[0] if found else None


def sidecar_thickness(path: Path, slice_spacing: float) -> tuple[float, str]:
    """(T mm, where it came from) for a NIfTI with slices ``slice_spacing`` mm apart: the SliceThickness of its BIDS
    sidecar (:func:`sidecar_of`), else (``slice_spacing``, "assumed ..."). A sidecar whose SpacingBetweenSlices
    differs from ``slice_spacing`` by more than 1 % (a resampled scan, or another scan's sidecar) is a warning
    naming it; a damaged one (not JSON, SliceThickness / SpacingBetweenSlices not a positive number) a
    :class:`ThroughPlaneError` naming it."""
    sidecar = sidecar_of(path)
    if sidecar is None:
        return slice_spacing, (f"{ASSUMED}: the scan does not say, as no BIDS sidecar "
                               f"{volumes.nifti_stem(path)}.json is beside it")
    fields = _read_sidecar(sidecar)
    thickness = _sidecar_mm(fields, "SliceThickness", sidecar)
    between = _sidecar_mm(fields, "SpacingBetweenSlices", sidecar)
    if between is not None and abs(between - slice_spacing) > SIDECAR_TOLERANCE * slice_spacing:
        used = ("" if thickness is None else f" and the slice profile its SliceThickness {thickness:g} mm: if the "
                "sidecar is not this scan's, give slice_thickness (mm)")
        log.warning(f"{sidecar}: SpacingBetweenSlices {between:g} mm, but {path.name} has slices {slice_spacing:g} mm "
                    f"apart (a resampled scan, or another scan's sidecar?); r follows {path.name}{used}")
    if thickness is None:
        return slice_spacing, (f"{ASSUMED}: the scan does not say, as its BIDS sidecar {sidecar.name} has no "
                               "SliceThickness")
    return thickness, f"from the BIDS sidecar {sidecar.name}: SliceThickness"


SIDECAR_HINT = "fix it, or give slice_thickness=MM (the sidecar is then not read)"  # parameter="slice_thickness"


def _read_sidecar(sidecar: Path) -> dict:
    try:
        text = sidecar.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise ThroughPlaneError(f"{sidecar}: cannot read the BIDS sidecar ({error.strerror or error}); "
                                "give slice_thickness=MM", parameter="slice_thickness") from error
    except UnicodeDecodeError as error:
        raise ThroughPlaneError(f"{sidecar}: not valid JSON (not UTF-8 text); {SIDECAR_HINT}",
                                parameter="slice_thickness") from error
    try:
        fields = json.loads(text)
    except json.JSONDecodeError as error:
        raise ThroughPlaneError(f"{sidecar}: not valid JSON (line {error.lineno}: {error.msg}); {SIDECAR_HINT}",
                                parameter="slice_thickness") from error
    if not isinstance(fields, dict):
        raise ThroughPlaneError(f"{sidecar}: not a JSON object (a BIDS sidecar is {{\"Key\": value, ...}}); "
                                f"{SIDECAR_HINT}", parameter="slice_thickness")
    return fields


def _sidecar_mm(fields: dict, key: str, sidecar: Path) -> float | None:
    """``fields[key]`` as mm, None when absent or null; a :class:`ThroughPlaneError` naming the sidecar when it is
    not a positive finite number (a string, a boolean, NaN, Infinity, 0, negative)."""
    value = fields.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ThroughPlaneError(f"{sidecar}: {key} {json.dumps(value)[:40]} is not a positive number of mm; "
                                f"{SIDECAR_HINT}", parameter="slice_thickness")
    return float(value)


def _in_plane_spacing(spacings: list[float], name: str) -> float:
    low, high = min(spacings), max(spacings)
    if low <= 0 or not np.isfinite(high):
        raise ThroughPlaneError(f"{name}: in-plane spacing {spacings} mm: must be positive")
    if high > 1.05 * low:
        log.warning(f"{name}: in-plane spacings differ ({low:g} and {high:g} mm); their mean is used for the scale "
                    "and the slice profile")
    return float(np.mean(spacings))


def series_files(folder: Path) -> list[Path]:
    """The files of a DICOM series folder that may be slices: every file, suffix or not (scanners often write none),
    except hidden ones and what an export puts beside the slices (:data:`NOT_SLICE_NAMES`,
    :data:`NOT_SLICE_SUFFIXES`), which are skipped with a warning naming them. Anything else that is not DICOM
    stays an error naming it (a truncated slice must not silently shorten the series)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    skipped = [p for p in files if p.name.upper() in NOT_SLICE_NAMES or p.suffix.lower() in NOT_SLICE_SUFFIXES]
    if skipped:
        names = ", ".join(p.name for p in skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
        log.warning(f"{folder}: skipped {len(skipped)} file(s) that are not slices: {names}")
    return [p for p in files if p not in skipped]


def _names(paths: list[Path], most: int = 5) -> str:
    names = sorted(p.name for p in paths)
    return ", ".join(names[:most]) + (" ..." if len(names) > most else "")


def _where_the_series_may_be(folder: Path) -> str:
    """For a folder without slices (an export's root: DICOMDIR beside IMAGES/): what was skipped, and the
    sub-folders that may hold the series."""
    visible = [p for p in folder.iterdir() if not p.name.startswith(".")]
    skipped, folders = [p for p in visible if p.is_file()], [p for p in visible if p.is_dir()]
    hint = f"; skipped {_names(skipped)}, not slices" if skipped else ""
    if folders:
        hint += f"; its sub-folder(s) {_names(folders)} may hold the series: give that folder instead"
    return hint


def _read_dicom_scan(folder: Path, slice_thickness: float | None = None) -> Scan:
    files = series_files(folder)
    if not files:
        raise ThroughPlaneError(f"{folder}: no DICOM files (expected the files of one DICOM series)"
                                f"{_where_the_series_may_be(folder)}")
    try:
        with _uneven_spacing_unsaid():
            found = dicom_reading.read_dicom_volumes(files)
    except volumes.VolumeError as error:
        raise _as_through_plane_error(error) from error
    if len(found) != 1:
        raise ThroughPlaneError(f"{folder}: holds {len(found)} DICOM volumes; give a folder with one series")
    volume = found[0]
    if volume.kind != "dicom-series":
        raise ThroughPlaneError(f"{folder}: a multi-frame DICOM file; only a series of single-frame slices is "
                                "supported (convert it to NIfTI first)")
    plane = check_series_plane(volume)
    slice_spacing = _dicom_slice_spacing(volume, plane)
    _check_on_one_line(volume, plane)
    thickness, source = ((float(slice_thickness), FROM_OPTION) if slice_thickness is not None
                         else dicom_thickness(volume, slice_spacing))
    in_plane = _in_plane_spacing([float(v) for v in plane.pixel_spacing], str(folder))
    return Scan(volume, SliceGeometry(0, in_plane, slice_spacing, thickness, source))


def _as_through_plane_error(error: volumes.VolumeError) -> ThroughPlaneError:
    return ThroughPlaneError(str(error), parameter=error.parameter)


@contextlib.contextmanager
def _uneven_spacing_unsaid() -> Iterator[None]:
    """dicom_reading logs a warning of uneven slice spacing; for through-plane SR it is
    an error naming the gap (:func:`_dicom_slice_spacing`), said once."""
    def said(record: logging.LogRecord) -> bool:
        return "uneven slice spacing" not in record.getMessage()

    reading_log = logging.getLogger(dicom_reading.__name__)
    reading_log.addFilter(said)
    try:
        yield
    finally:
        reading_log.removeFilter(said)


@dataclass(frozen=True)
class SeriesPlane:
    """The verified image plane of a DICOM series, in slice order: ``positions`` (N, 3) ImagePositionPatient (mm),
    ``orientation`` (6,) ImageOrientationPatient (row then column direction), ``pixel_spacing`` (2,) PixelSpacing
    (row spacing, column spacing; mm)."""

    positions: np.ndarray
    orientation: np.ndarray
    pixel_spacing: np.ndarray

    @property
    def normal(self) -> np.ndarray:
        """row direction × column direction (unit)."""
        return np.cross(self.orientation[:3], self.orientation[3:])


PLANE_ATTRIBUTES = (("ImagePositionPatient", 3), ("ImageOrientationPatient", 6), ("PixelSpacing", 2))


def check_series_plane(volume: volumes.Volume) -> SeriesPlane:
    """What the through-plane writer (:func:`~medsr_se.io.dicom_derived.through_plane_series`) places the r·N new slices
    by, verified in every slice before any work: ImagePositionPatient (3 numbers), ImageOrientationPatient (two
    orthogonal unit vectors, the same in every slice), PixelSpacing (2 positive numbers, the same in every slice),
    and SliceLocation / SliceThickness numbers where present. :class:`ThroughPlaneError` naming the file and the
    attribute otherwise."""
    positions, orientations, spacings = [], [], []
    for path, dataset in zip(volume.paths, volume.source):
        try:
            values = {keyword: dicom_reading.dicom_numbers(dataset, keyword, count, str(path))
                      for keyword, count in PLANE_ATTRIBUTES}
            for keyword in ("SliceLocation", "SliceThickness"):
                dicom_reading.dicom_number(dataset, keyword, None, str(path))
        except volumes.VolumeError as error:
            raise _as_through_plane_error(error) from error
        missing = [keyword for keyword, value in values.items() if value is None]
        if missing:
            raise ThroughPlaneError(f"{path}: no {' / '.join(missing)}: every slice needs ImagePositionPatient, "
                                    "ImageOrientationPatient and PixelSpacing to place the new slices")
        positions.append(values["ImagePositionPatient"])
        orientations.append(values["ImageOrientationPatient"])
        spacings.append(values["PixelSpacing"])
    for path, orientation, spacing in zip(volume.paths, orientations, spacings):
        _check_orientation(path, orientation, orientations[0], volume.paths[0])
        if (spacing <= 0).any():
            raise ThroughPlaneError(f"{path}: PixelSpacing {_listed(spacing)}: must be positive")
        if np.abs(spacing - spacings[0]).max() > PLANE_TOLERANCE * spacings[0].max():
            raise ThroughPlaneError(f"{path}: PixelSpacing {_listed(spacing)} differs from {volume.paths[0].name}'s "
                                    f"{_listed(spacings[0])}: the slices are not one grid")
    return SeriesPlane(np.asarray(positions), orientations[0], spacings[0])


def _check_orientation(path: Path, orientation: np.ndarray, first: np.ndarray, first_path: Path) -> None:
    row, column = orientation[:3], orientation[3:]
    if (abs(np.linalg.norm(row) - 1) > PLANE_TOLERANCE or abs(np.linalg.norm(column) - 1) > PLANE_TOLERANCE
            or abs(np.dot(row, column)) > PLANE_TOLERANCE):
        raise ThroughPlaneError(f"{path}: ImageOrientationPatient {_listed(orientation)}: not two orthogonal unit "
                                "vectors (the row and column directions)")
    if np.abs(orientation - first).max() > PLANE_TOLERANCE:
        raise ThroughPlaneError(f"{path}: ImageOrientationPatient {_listed(orientation)} differs from "
                                f"{first_path.name}'s {_listed(first)}: the slices are not parallel")


def _listed(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{float(v):g}" for v in values) + "]"


def _dicom_slice_spacing(volume: volumes.Volume, plane: SeriesPlane) -> float:
    """The gap between slice positions along the normal; :class:`ThroughPlaneError` naming the uneven gap."""
    positions = plane.positions @ plane.normal
    gaps = np.diff(positions)
    usual = float(np.median(gaps))
    if usual <= dicom_reading.POSITION_TOLERANCE:
        raise ThroughPlaneError(f"{volume.name}: slices share positions along the normal (several echoes or time "
                                "points in one series?)")
    odd = np.flatnonzero(np.abs(gaps - usual) > max(dicom_reading.POSITION_TOLERANCE, UNEVEN_TOLERANCE * usual))
    if odd.size:
        k = int(odd[0])
        raise ThroughPlaneError(f"{volume.name}: uneven slice spacing: {gaps[k]:g} mm between "
                                f"{volume.paths[k].name} (z = {positions[k]:g} mm) and {volume.paths[k + 1].name} "
                                f"(z = {positions[k + 1]:g} mm), where the usual gap is {usual:g} mm")
    return usual


def _check_on_one_line(volume: volumes.Volume, plane: SeriesPlane) -> None:
    """The writer puts new slice j at IPP_0 + t·(IPP_{N−1} − IPP_0)/(N − 1), t = (j + 0.5)/r − 0.5: every slice's
    position must be on that line, in its plane to 0.1 pixel (a gantry tilt is a line too; the distances along the
    normal are :func:`_dicom_slice_spacing`'s)."""
    positions = plane.positions
    k = np.arange(len(positions))[:, None]
    line = positions[0] + k * (positions[-1] - positions[0]) / (len(positions) - 1)
    off = positions - line
    off -= np.outer(off @ plane.normal, plane.normal)  # what lies in the slice plane
    distance = np.linalg.norm(off, axis=1)
    worst = int(np.argmax(distance))
    if distance[worst] > max(dicom_reading.POSITION_TOLERANCE, 0.1 * plane.pixel_spacing.min()):
        raise ThroughPlaneError(f"{volume.paths[worst]}: ImagePositionPatient {_listed(positions[worst])} is "
                                f"{distance[worst]:.3g} mm off the line through {volume.paths[0].name} and "
                                f"{volume.paths[-1].name}'s positions, in the slice plane: the slices are not one "
                                "grid")


def dicom_thickness(volume: volumes.Volume, slice_spacing: float) -> tuple[float, str]:
    """(T mm, where it came from) from the SliceThickness of every slice of a DICOM series: (``slice_spacing``,
    "assumed ...") when every slice lacks it or has 0 (what some scanners write for "unknown");
    :class:`ThroughPlaneError` naming the files when it differs between slices or is negative."""
    values = [dicom_reading.dicom_number(dataset, "SliceThickness", None, str(path))
              for path, dataset in zip(volume.paths, volume.source)]
    for path, value in zip(volume.paths, values):
        if value is not None and value < 0:
            raise ThroughPlaneError(f"{path}: SliceThickness {value:g} mm is negative; give slice_thickness=MM",
                                    parameter="slice_thickness")

    def said(value: float | None) -> str:
        return "none" if value is None else f"{value:g} mm"

    first = values[0]
    for path, value in zip(volume.paths, values):
        if (value is None) != (first is None) or (value is not None and abs(value - first) > max(
                dicom_reading.POSITION_TOLERANCE, UNEVEN_TOLERANCE * max(value, first))):
            raise ThroughPlaneError(f"{volume.name}: SliceThickness differs between slices: {said(value)} in "
                                    f"{path.name}, {said(first)} in {volume.paths[0].name}; give slice_thickness=MM",
                                    parameter="slice_thickness")
    if first is None:
        return slice_spacing, f"{ASSUMED}: the scan does not say, as the DICOM series has no SliceThickness"
    if first == 0:
        return slice_spacing, f"{ASSUMED}: the scan does not say, as DICOM SliceThickness is 0"
    return float(np.median(values)), "from DICOM SliceThickness"


def choose_scale(geometry: SliceGeometry, name: str, scale: int | None = None) -> int:
    """r: ``scale`` if given, else round(D / d); :class:`ThroughPlaneError` for an isotropic scan or r outside 2..8."""
    if scale is not None:
        if not MIN_SCALE <= scale <= MAX_SCALE:
            raise ThroughPlaneError(f"scale={scale}: must be an integer from {MIN_SCALE} to {MAX_SCALE}",
                                    parameter="scale")
        return scale
    r = geometry.scale
    if r < MIN_SCALE:
        raise ThroughPlaneError(f"{name}: already (nearly) isotropic: slice spacing {geometry.slice_spacing:g} mm, "
                                f"in-plane {geometry.in_plane_spacing:g} mm (ratio {geometry.ratio:.2f}): nothing to "
                                "do")
    if r > MAX_SCALE:
        raise ThroughPlaneError(f"{name}: slice spacing {geometry.slice_spacing:g} mm is {geometry.ratio:.1f} x the "
                                f"in-plane {geometry.in_plane_spacing:g} mm; at most {MAX_SCALE} is supported "
                                f"(give scale={MAX_SCALE} to go that far)", parameter="scale")
    return r


def intensity_for(values: np.ndarray) -> IntensityModel:
    """The data's own range (min to max): nothing is clipped on the way to the network and back."""
    return measured(values, "minmax")


def in_plane_slices(values: np.ndarray, axis: int) -> Iterator[np.ndarray]:
    """Every 2-D in-plane slice of a 3-D array (slice axis ``axis``), as (in-plane axis 1, in-plane axis 2)."""
    for index in range(values.shape[axis]):
        yield np.take(values, index, axis=axis)


def write_result(scan: Scan, values: np.ndarray, r: float, target: Path, description: str) -> None:
    """The through-plane result (``values``: r·N slices along the slice axis; for a fractional ``r`` = D / t, the M
    slices t mm apart of :class:`~medsr_se.io.slice_grid.SliceGrid`, ``r`` its ``scale``) as the scan's kind: a NIfTI
    file ``target`` (:func:`~medsr_se.io.volumes.write_nifti_through_plane`), or for a DICOM series a derived series
    in the folder ``target`` (:func:`~medsr_se.io.dicom_derived.through_plane_series`, SeriesDescription
    ``description``), written whole or not at all."""
    if scan.volume.kind == "nifti":
        volumes.write_nifti_through_plane(scan.volume, values, r, target)
        return
    series = dicom_derived.through_plane_series(scan.volume, values, r, description)
    dicom_derived.write_dicom_series((dataset, target / name) for name, dataset in series)

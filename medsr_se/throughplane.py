"""Through-plane super-resolution of thick-slice CT / MRI, trained on the scan itself (SMORE, Zhao et al., IEEE TMI
2021; issue 25): the Python API behind ``medsr-selfsr``.

A scan with in-plane spacing d and slice spacing D (slice thickness T, the FWHM of the slice profile) has sharp
in-plane slices and blurry sagittal / coronal ones. The in-plane slices are the high-resolution examples:

    r     = round(D / d)                                     the through-plane scale (2..8)
    LR    = every r-th row of (HR * profile along the rows)  profile: Gaussian, FWHM = T / d in-plane pixels,
                                                              or a user kernel (.npy, taps in in-plane pixels)

LR row k samples the blurred HR at row r·k + (r − 1)/2 (half-pixel centres: LR row k covers HR rows r·k ..
r·k + r − 1, the convention of the network's image skip, so its output row r·k + (r − 1)/2 is at input row k).
A gap (T < D) or an overlap (T > D) between slices only changes the profile: the subsampling is D, the blur T (as
ECLARE documents). Both in-plane axes give pairs (a slice and its transpose). The trained 2-D network
(``SEEDSRGenerator(upscale=[r, 1])``) is then applied to every sagittal and every coronal slice, whose height is the
slice axis, and the two results are averaged. The result has r·N slices of spacing D / r; slice j is at input
slice index (j + 0.5) / r − 0.5, so input slice k is output slice r·k + (r − 1)/2.

    from medsr_se import throughplane as tp
    scan = tp.read_scan("scan.nii.gz")                           # values, geometry (spacings, slice axis)
    lr, hr = tp.training_pair(hr_slice, tp.gaussian_profile(scan.geometry.fwhm_pixels), scan.geometry.scale)
    values, geometry = tp.apply_network(scan.values, scan.geometry, net)   # r·N slices, spacing D / r
    values, spacing = tp.super_resolve(array, (0.8, 0.8, 4.0), net)          # any array with its voxel size
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from medsr_se.io import volumes
from medsr_se.io.intensity import IntensityModel, measured

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))  # FWHM of a Gaussian = 2.3548 sigma
PROFILE_SIGMAS = 4.0  # the Gaussian profile is cut at ±4 sigma (weights below 3.4e-4 of the peak)
MIN_SCALE, MAX_SCALE = 2, 8  # r of the anisotropic generator
UNEVEN_TOLERANCE = 0.01  # relative: slice gaps that differ more than 1 % from the usual one are an error
APPLY_BATCH = 4  # sagittal / coronal slices per network call
# What a DICOM export puts beside the slices of a series: the media directory and viewer / report files
NOT_SLICE_NAMES = frozenset({"DICOMDIR", "LOCKFILE", "VERSION", "AUTORUN.INF", "README", "README.TXT", "THUMBS.DB",
                             "DESKTOP.INI"})
NOT_SLICE_SUFFIXES = frozenset({".txt", ".xml", ".json", ".csv", ".html", ".htm", ".pdf", ".ini", ".inf", ".log",
                                ".md", ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".exe", ".dll",
                                ".bat", ".nii", ".npy", ".yml", ".yaml"})  # not .gz / .zip: may hold a slice


class ThroughPlaneError(ValueError):
    """A scan or option that through-plane SR cannot work with; one line naming the file or option."""


@dataclass(frozen=True)
class SliceGeometry:
    """What through-plane SR needs of a scan's grid (mm).

    Attributes:
        axis: the slice axis of the value array (0, 1 or 2).
        in_plane_spacing: the spacing of the two in-plane axes (their mean when they differ slightly).
        slice_spacing: centre-to-centre distance of the slices, D.
        slice_thickness: FWHM of the slice profile, T (= D when the scan does not say).
    """

    axis: int
    in_plane_spacing: float
    slice_spacing: float
    slice_thickness: float

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

    def upscaled(self, scale: int) -> SliceGeometry:
        """The result's geometry: slice spacing and thickness divided by ``scale``."""
        return replace(self, slice_spacing=self.slice_spacing / scale, slice_thickness=self.slice_thickness / scale)


# ------------------------------------------------------------------------------------------------- the slice profile
@dataclass(frozen=True)
class SliceProfile:
    """A 1-D blur along the slice direction, in in-plane pixels: ``weights(offsets)`` gives the (unnormalised)
    weight of the HR rows at the given signed distances (pixels) from the sample position. ``symmetric``: the
    weights at −t and t are equal (a vertical flip of a training pair then commutes with the degradation)."""

    name: str
    radius: float  # weights are zero beyond this distance
    weights: Callable[[np.ndarray], np.ndarray]
    symmetric: bool = True


def gaussian_profile(fwhm: float) -> SliceProfile:
    """exp(−t² / (2σ²)), σ = FWHM / 2.3548, cut at ±4σ."""
    if not np.isfinite(fwhm) or fwhm <= 0:
        raise ThroughPlaneError(f"slice profile FWHM {fwhm!r} pixels: must be a positive number")
    sigma = fwhm / FWHM_PER_SIGMA
    return SliceProfile(f"Gaussian FWHM {fwhm:.3g} px", PROFILE_SIGMAS * sigma,
                        lambda t: np.exp(-0.5 * (np.asarray(t, np.float64) / sigma) ** 2))


def kernel_profile(kernel: np.ndarray, name: str = "kernel") -> SliceProfile:
    """A user kernel: 1-D taps one in-plane pixel apart, centred on the middle of the array ((n − 1) / 2), linearly
    interpolated between taps (a sample between two HR rows, for even r, takes the kernel between its taps)."""
    taps = np.asarray(kernel, np.float64)
    if taps.ndim != 1 or taps.size < 1 or not np.isfinite(taps).all() or (taps < 0).any() or taps.sum() <= 0:
        raise ThroughPlaneError(f"{name}: a slice profile must be a 1-D array of finite, non-negative weights with a "
                                f"positive sum (got shape {taps.shape})")
    positions = np.arange(taps.size) - (taps.size - 1) / 2
    return SliceProfile(f"kernel {name} ({taps.size} taps)", (taps.size - 1) / 2 + 1,
                        lambda t: np.interp(np.asarray(t, np.float64), positions, taps, left=0.0, right=0.0),
                        symmetric=bool(np.allclose(taps, taps[::-1])))


def load_profile(path: str | Path) -> SliceProfile:
    try:
        kernel = np.load(str(path), allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise ThroughPlaneError(f"{path}: cannot read the slice profile as a .npy array ({error})") from error
    return kernel_profile(kernel, str(path))


def blur_rows(image: np.ndarray, profile: SliceProfile, offset: float = 0.0) -> np.ndarray:
    """(H, ...) -> (H, ...): row i of the result is the profile-weighted mean of the rows around position
    i + ``offset`` (weights normalised to sum 1; rows beyond the border repeat the border row)."""
    image = np.asarray(image)
    height = image.shape[0]
    reach = int(math.ceil(profile.radius)) + 1
    taps = np.arange(-reach, reach + 2)  # integer row offsets around floor(i + offset)
    base = math.floor(offset)
    weights = profile.weights(taps + base - offset)
    weights = weights / weights.sum()
    out = np.zeros(image.shape, np.float64)
    rows = np.arange(height)
    for tap, weight in zip(taps, weights):
        if weight:
            out += weight * image[np.clip(rows + base + tap, 0, height - 1)]
    return out.astype(np.float32)


def sample_rows(r: int) -> tuple[int, float]:
    """(first row, offset): LR row k is the blurred HR at first + offset + r·k, first + offset = (r − 1)/2."""
    centre = (r - 1) / 2
    return math.floor(centre), centre - math.floor(centre)


def degrade(image: np.ndarray, profile: SliceProfile, r: int) -> np.ndarray:
    """(r·h, w) HR -> (h, w) LR along the rows: blur with ``profile``, keep every r-th row (module docstring)."""
    if image.shape[0] % r:
        raise ValueError(f"degrade: the height {image.shape[0]} is not a multiple of r = {r}")
    first, offset = sample_rows(r)
    return blur_rows(image, profile, offset)[first::r]


def training_pair(hr: np.ndarray, profile: SliceProfile, r: int) -> tuple[np.ndarray, np.ndarray]:
    """(LR, HR) from an in-plane slice, its height cut to a multiple of r (rows from the top)."""
    hr = np.asarray(hr, np.float32)[: hr.shape[0] // r * r]
    return degrade(hr, profile, r), hr


# ------------------------------------------------------------------------------------------------- reading a scan
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
    DICOM series with uneven slice spacing, fewer than 2 slices, NaN / ±inf voxels unless ``nonfinite`` gives the
    finite value that replaces them (a warning says how many)."""
    path = Path(path)
    if path.is_dir():
        scan = _read_dicom_scan(path)
    elif volumes.is_nifti(path):
        scan = _read_nifti_scan(path, axis, nonfinite)
    elif path.is_file():
        raise ThroughPlaneError(f"{path}: not a volume (give a NIfTI .nii / .nii.gz file or a DICOM series folder; "
                                "a 2-D image has no slices to interpolate between)")
    else:
        raise ThroughPlaneError(f"{path}: no such file or folder")
    if slice_thickness is not None:
        if not np.isfinite(slice_thickness) or slice_thickness <= 0:
            raise ThroughPlaneError(f"--slice-thickness {slice_thickness}: must be a positive number of mm")
        scan.geometry = replace(scan.geometry, slice_thickness=float(slice_thickness))
    if scan.values.shape[scan.geometry.axis] < 2:
        raise ThroughPlaneError(f"{scan.name}: one slice along axis {scan.geometry.axis}: nothing to interpolate "
                                "between")
    return scan


def _read_nifti_scan(path: Path, axis: int | None, nonfinite: float | None = None) -> Scan:
    try:
        volume = volumes.read_nifti(path, 2, nonfinite)  # the slice axis is chosen below
    except volumes.VolumeError as error:
        raise ThroughPlaneError(str(error)) from error
    shape = volume.source.shape
    zooms = [float(z) for z in volume.source.header.get_zooms()[:3]]
    if len(shape) < 3 or min(shape[:3]) < 2:
        raise ThroughPlaneError(f"{path}: a 2-D image ({' x '.join(map(str, shape))}): through-plane SR needs a "
                                "volume of slices")
    if len(shape) > 3 and axis is None:
        raise ThroughPlaneError(f"{path}: a {len(shape)}-D volume ({' x '.join(map(str, shape))}): give the slice "
                                "axis with --axis 0|1|2 (each 3-D volume is then processed)")
    if axis is None:
        axis = int(np.argmax(zooms))
    if axis not in (0, 1, 2):
        raise ThroughPlaneError(f"--axis {axis}: must be 0, 1 or 2")
    volume.axis = axis
    in_plane = [zooms[a] for a in volume.in_plane_axes]
    return Scan(volume, SliceGeometry(axis, _in_plane_spacing(in_plane, str(path)), zooms[axis], zooms[axis]))


def _in_plane_spacing(spacings: list[float], name: str) -> float:
    low, high = min(spacings), max(spacings)
    if low <= 0 or not np.isfinite(high):
        raise ThroughPlaneError(f"{name}: in-plane spacing {spacings} mm: must be positive")
    if high > 1.05 * low:
        warnings.warn(f"{name}: in-plane spacings differ ({low:g} and {high:g} mm); their mean is used for the "
                      "scale and the slice profile", stacklevel=3)
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
        warnings.warn(f"{folder}: skipped {len(skipped)} file(s) that are not slices: {names}", stacklevel=3)
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
        hint += f"; its sub-folder(s) {_names(folders)} may hold the series: give that folder with -i"
    return hint


def _read_dicom_scan(folder: Path) -> Scan:
    files = series_files(folder)
    if not files:
        raise ThroughPlaneError(f"{folder}: no DICOM files (expected the files of one DICOM series)"
                                f"{_where_the_series_may_be(folder)}")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*uneven slice spacing.*")  # an error below, naming the gap
            found = volumes.read_dicom_volumes(files)
    except volumes.VolumeError as error:
        raise ThroughPlaneError(str(error)) from error
    if len(found) != 1:
        raise ThroughPlaneError(f"{folder}: holds {len(found)} DICOM volumes; give a folder with one series")
    volume = found[0]
    if volume.kind != "dicom-series":
        raise ThroughPlaneError(f"{folder}: a multi-frame DICOM file; only a series of single-frame slices is "
                                "supported (convert it to NIfTI first)")
    first = volume.source[0]
    spacing = first.get("PixelSpacing")
    if spacing is None:
        raise ThroughPlaneError(f"{volume.paths[0]}: no PixelSpacing: the in-plane spacing is unknown")
    slice_spacing = _dicom_slice_spacing(volume)
    thickness = float(first.get("SliceThickness") or 0) or slice_spacing
    return Scan(volume, SliceGeometry(0, _in_plane_spacing([float(v) for v in spacing], str(folder)), slice_spacing,
                                      thickness))


def slice_positions(datasets: list) -> np.ndarray | None:
    """Each slice's position along the slice normal (mm), None when a slice lacks position or orientation."""
    positions = []
    for dataset in datasets:
        position, orientation = dataset.get("ImagePositionPatient"), dataset.get("ImageOrientationPatient")
        if position is None or orientation is None:
            return None
        normal = np.cross(np.asarray(orientation[:3], float), np.asarray(orientation[3:], float))
        positions.append(float(np.dot(np.asarray(position, float), normal)))
    return np.asarray(positions)


def _dicom_slice_spacing(volume: volumes.Volume) -> float:
    """The gap between slice positions along the normal; :class:`ThroughPlaneError` naming the uneven gap."""
    positions = slice_positions(volume.source)
    if positions is None:
        spacing = volume.source[0].get("SpacingBetweenSlices")
        if spacing in (None, ""):
            raise ThroughPlaneError(f"{volume.name}: slices without ImagePositionPatient / ImageOrientationPatient "
                                    "and no SpacingBetweenSlices: the slice spacing is unknown")
        return float(spacing)
    gaps = np.diff(positions)
    usual = float(np.median(gaps))
    if usual <= volumes.POSITION_TOLERANCE:
        raise ThroughPlaneError(f"{volume.name}: slices share positions along the normal (several echoes or time "
                                "points in one series?)")
    odd = np.flatnonzero(np.abs(gaps - usual) > max(volumes.POSITION_TOLERANCE, UNEVEN_TOLERANCE * usual))
    if odd.size:
        k = int(odd[0])
        raise ThroughPlaneError(f"{volume.name}: uneven slice spacing: {gaps[k]:g} mm between "
                                f"{volume.paths[k].name} (z = {positions[k]:g} mm) and {volume.paths[k + 1].name} "
                                f"(z = {positions[k + 1]:g} mm), where the usual gap is {usual:g} mm")
    return usual


def choose_scale(geometry: SliceGeometry, name: str, scale: int | None = None) -> int:
    """r: ``scale`` if given, else round(D / d); :class:`ThroughPlaneError` for an isotropic scan or r outside 2..8."""
    if scale is not None:
        if not MIN_SCALE <= scale <= MAX_SCALE:
            raise ThroughPlaneError(f"--scale {scale}: must be an integer from {MIN_SCALE} to {MAX_SCALE}")
        return scale
    r = geometry.scale
    if r < MIN_SCALE:
        raise ThroughPlaneError(f"{name}: already (nearly) isotropic: slice spacing {geometry.slice_spacing:g} mm, "
                                f"in-plane {geometry.in_plane_spacing:g} mm (ratio {geometry.ratio:.2f}): nothing to "
                                "do")
    if r > MAX_SCALE:
        raise ThroughPlaneError(f"{name}: slice spacing {geometry.slice_spacing:g} mm is {geometry.ratio:.1f} x the "
                                f"in-plane {geometry.in_plane_spacing:g} mm; at most {MAX_SCALE} is supported "
                                f"(give --scale {MAX_SCALE} to go that far)")
    return r


# ------------------------------------------------------------------------------------------------- intensities
def intensity_for(values: np.ndarray) -> IntensityModel:
    """The data's own range (min to max): nothing is clipped on the way to the network and back."""
    return measured(values, "minmax")


def in_plane_slices(values: np.ndarray, axis: int) -> Iterator[np.ndarray]:
    """Every 2-D in-plane slice of a 3-D array (slice axis ``axis``), as (in-plane axis 1, in-plane axis 2)."""
    for index in range(values.shape[axis]):
        yield np.take(values, index, axis=axis)


# ------------------------------------------------------------------------------------------------- applying
@torch.no_grad()
def _through_plane_pass(unit: np.ndarray, axis: int, across: int, net: torch.nn.Module, r: int,
                        step: Callable[[], None]) -> np.ndarray:
    """The network on every slice perpendicular to in-plane axis ``across``: each slice has the slice axis as its
    height; the result has r times more voxels along ``axis``."""
    parameter = next(net.parameters())
    moved = np.moveaxis(unit, (across, axis), (0, 1))  # (slices, height = slice axis, width)
    out = np.empty((moved.shape[0], moved.shape[1] * r, moved.shape[2]), np.float32)
    for start in range(0, moved.shape[0], APPLY_BATCH):
        batch = torch.from_numpy(np.ascontiguousarray(moved[start:start + APPLY_BATCH]))[:, None]
        result = net(batch.to(device=parameter.device, dtype=parameter.dtype))
        out[start:start + APPLY_BATCH] = result[:, 0].float().clamp(0, 1).cpu().numpy()
        for _ in range(batch.shape[0]):
            step()
    return np.moveaxis(out, (0, 1), (across, axis))


def apply_network(values: np.ndarray, geometry: SliceGeometry, net: torch.nn.Module,
                  intensity: IntensityModel | None = None,
                  progress: Callable[[int], Callable[[], None]] | None = None) -> tuple[np.ndarray, SliceGeometry]:
    """(values with r·N slices along ``geometry.axis``, the new geometry): the network on every slice across each
    of the two in-plane axes, the two results averaged. ``values``: 3-D, or more (every 3-D volume along the axes
    beyond the third is processed on its own). ``progress(total)`` returns a function called once per slice."""
    r = net.scale_hw[0] if getattr(net, "scale_hw", (1, 1))[1] == 1 else 0
    if r < MIN_SCALE:
        raise ThroughPlaneError("the network is not a through-plane one (SEEDSRGenerator with upscale [r, 1])")
    intensity = intensity or intensity_for(values)
    axis = geometry.axis
    in_plane = [a for a in (0, 1, 2) if a != axis]
    shape = list(values.shape)
    shape[axis] *= r
    result = np.empty(shape, np.float32)
    extra = list(np.ndindex(*values.shape[3:])) or [()]
    step = progress(len(extra) * sum(values.shape[a] for a in in_plane)) if progress else (lambda: None)
    net.eval()
    for index in extra:
        volume = np.clip(intensity.to_unit(values[(...,) + index] if index else values), 0, 1)
        total = sum(_through_plane_pass(volume, axis, across, net, r, step) for across in in_plane)
        result[(...,) + index] = intensity.from_unit(total / len(in_plane)).astype(np.float32)
    return result, geometry.upscaled(r)


def geometry_from_spacing(spacing: tuple[float, float, float], axis: int | None = None,
                          slice_thickness: float | None = None) -> SliceGeometry:
    """The geometry of an array with voxel ``spacing`` (mm, per axis): slice axis ``axis`` (default: the largest
    spacing), thickness = the slice spacing unless given."""
    spacing = tuple(float(v) for v in spacing)
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ThroughPlaneError(f"spacing {spacing}: give three positive voxel sizes (mm)")
    axis = int(np.argmax(spacing)) if axis is None else axis
    in_plane = [spacing[a] for a in (0, 1, 2) if a != axis]
    return SliceGeometry(axis, _in_plane_spacing(in_plane, "spacing"), spacing[axis],
                         float(slice_thickness) if slice_thickness else spacing[axis])


def super_resolve(values: np.ndarray, spacing: tuple[float, float, float], net: torch.nn.Module,
                  axis: int | None = None) -> tuple[np.ndarray, tuple[float, float, float]]:
    """An array with voxel ``spacing`` through a trained through-plane network: (values with r times the slices
    along the slice axis, the new spacing). Input slice k is output slice r·k + (r − 1)/2."""
    geometry = geometry_from_spacing(spacing, axis)
    result, new_geometry = apply_network(np.asarray(values, np.float32), geometry, net)
    new_spacing = [float(v) for v in spacing]
    new_spacing[geometry.axis] = new_geometry.slice_spacing
    return result, (new_spacing[0], new_spacing[1], new_spacing[2])


def output_index_of_input(k: np.ndarray, r: int) -> np.ndarray:
    """Input slice k sits at output slice r·k + (r − 1)/2 (half-pixel centres)."""
    return r * np.asarray(k, np.float64) + (r - 1) / 2

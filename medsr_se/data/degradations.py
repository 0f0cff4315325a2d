"""The degradation that through-plane SR learns to undo: a 1-D slice profile along the rows of an in-plane slice,
then every r-th row (BasicSR keeps its degradations beside its datasets: ``basicsr/data/degradations.py``).

A scan with in-plane spacing d and slice spacing D, slice thickness T (the FWHM of the slice profile):

    LR = every r-th row of (HR * profile along the rows)     profile: Gaussian, FWHM = T / d in-plane pixels,
                                                             or a user kernel (.npy, taps in in-plane pixels)

LR row k samples the blurred HR at row r·k + (r − 1)/2 (half-pixel centres: LR row k covers HR rows r·k ..
r·k + r − 1, the convention of the network's image skip, so its output row r·k + (r − 1)/2 is at input row k).
A gap (T < D) or an overlap (T > D) between slices only changes the profile: the subsampling is D, the blur T.

    profile = gaussian_profile(fwhm_pixels)          or load_profile("kernel.npy")
    lr, hr = training_pair(hr_slice, profile, r)      (H // r, W), (H, W)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medsr_se.io.scans import ThroughPlaneError
from medsr_se.io.volumes import one_line

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))  # FWHM of a Gaussian = 2.3548 sigma
PROFILE_SIGMAS = 4.0  # the Gaussian profile is cut at ±4 sigma (weights below 3.4e-4 of the peak)
MIN_FWHM_PIXELS = 0.1  # a narrower Gaussian profile is this one: sampling (its weights would underflow to 0)
MAX_PROFILE_TAPS = 1025  # in-plane pixels: far beyond any slice (a Gaussian of FWHM 2·8 px is cut at 55 taps)


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
    """exp(−t² / (2σ²)), σ = max(FWHM, 0.1) / 2.3548, cut at ±4σ. A profile narrower than 0.1 pixel is sampling
    (a sample midway between two rows is their mean already at 0.1; narrower, every weight would underflow)."""
    if not np.isfinite(fwhm) or fwhm <= 0:
        raise ThroughPlaneError(f"slice profile FWHM {fwhm!r} pixels: must be a positive number")
    sigma = max(fwhm, MIN_FWHM_PIXELS) / FWHM_PER_SIGMA
    return SliceProfile(f"Gaussian FWHM {fwhm:.3g} px", PROFILE_SIGMAS * sigma,
                        lambda t: np.exp(-0.5 * (np.asarray(t, np.float64) / sigma) ** 2))


def kernel_profile(kernel: np.ndarray, name: str = "kernel") -> SliceProfile:
    """A user kernel: 1-D taps one in-plane pixel apart, centred on the middle of the array ((n − 1) / 2), linearly
    interpolated between taps (a sample between two HR rows, for even r, takes the kernel between its taps); a
    single tap w (no blur) is [0, w, 0], so that such a sample is the two rows' mean. :class:`ThroughPlaneError`
    naming ``name`` for what is not such taps (:func:`check_kernel_layout`), and for weights that are not finite,
    negative, or sum to 0."""
    kernel = np.asarray(kernel)
    check_kernel_layout(kernel.dtype, kernel.shape, name)
    taps = kernel.astype(np.float64)
    size = taps.size
    if size == 1:
        taps = np.pad(taps, 1)
    if not np.isfinite(taps).all():
        raise ThroughPlaneError(f"{name}: the slice profile's weights are not finite (NaN or ±inf)")
    if (taps < 0).any():
        raise ThroughPlaneError(f"{name}: the slice profile has negative weights ({taps.min():g}); give "
                                "non-negative ones")
    if taps.sum() <= 0:
        raise ThroughPlaneError(f"{name}: the slice profile's weights sum to 0; give some positive ones")
    positions = np.arange(taps.size) - (taps.size - 1) / 2
    return SliceProfile(f"kernel {name} ({size} tap{'s' if size > 1 else ''})", (taps.size - 1) / 2 + 1,
                        lambda t: np.interp(np.asarray(t, np.float64), positions, taps, left=0.0, right=0.0),
                        symmetric=bool(np.allclose(taps, taps[::-1])))


def check_kernel_layout(dtype: np.dtype, shape: tuple[int, ...], name: str) -> None:
    """:class:`ThroughPlaneError` naming ``name`` unless ``dtype`` / ``shape`` are those of real 1-D weights: an
    integer or floating dtype (not objects, strings, records, booleans or complex numbers) and 1 to
    :data:`MAX_PROFILE_TAPS` taps."""
    if dtype.hasobject:
        raise ThroughPlaneError(f"{name}: an object array (pickled Python objects), not numbers: a slice profile is "
                                "a 1-D array of numeric weights")
    if dtype.kind == "c":
        raise ThroughPlaneError(f"{name}: complex (dtype {dtype}): a slice profile is real weights")
    if dtype.kind == "b":
        raise ThroughPlaneError(f"{name}: boolean, not numeric weights: a slice profile is a 1-D array of numbers")
    if dtype.kind not in "iuf":
        raise ThroughPlaneError(f"{name}: not numeric (dtype {dtype.str}): a slice profile is a 1-D array of "
                                "numeric weights")
    if len(shape) != 1:
        layout = "a single number" if not shape else f"shape {' x '.join(map(str, shape))}"
        raise ThroughPlaneError(f"{name}: {len(shape)}-D ({layout}): a slice profile is a 1-D array of taps")
    if shape[0] == 0:
        raise ThroughPlaneError(f"{name}: empty (no taps)")
    if shape[0] > MAX_PROFILE_TAPS:
        raise ThroughPlaneError(f"{name}: {shape[0]} taps: a slice profile has at most {MAX_PROFILE_TAPS} (taps "
                                "one in-plane pixel apart)")


def load_profile(path: str | Path) -> SliceProfile:
    """:func:`kernel_profile` of a ``.npy`` file written by ``numpy.save``. Its header is checked first
    (:func:`check_kernel_layout`: a huge kernel is refused before loading); :class:`ThroughPlaneError` of one line
    naming the file for a missing file, a folder, a file that is not a .npy (text, an .npz archive), a damaged or
    truncated one, and what :func:`kernel_profile` refuses."""
    path = Path(path)
    if path.is_dir():
        raise ThroughPlaneError(f"{path}: a folder, not a .npy file (the slice profile)")
    if not path.exists():
        raise ThroughPlaneError(f"{path}: no such file (the slice profile)")
    try:
        file = open(path, "rb")
    except OSError as error:
        raise ThroughPlaneError(f"{path}: cannot read the slice profile ({error.strerror or error})") from error
    with file:
        dtype, shape = _npy_header(file, path)
        check_kernel_layout(dtype, shape, str(path))
        file.seek(0)
        try:
            kernel = np.load(file, allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:
            raise ThroughPlaneError(f"{path}: the .npy data is truncated or damaged "
                                    f"({one_line(error)})") from error
    return kernel_profile(kernel, str(path))


def _npy_header(file, path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    """(dtype, shape) from a .npy header (numpy.lib.format), without reading the data."""
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(file)
    except ValueError as error:
        raise ThroughPlaneError(f"{path}: not a .npy file (no NumPy header; save the slice profile with "
                                "numpy.save)") from error
    readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
    if version not in readers:  # 3.0 (UTF-8 field names): only records use it, which are not weights anyway
        raise ThroughPlaneError(f"{path}: .npy format version {version[0]}.{version[1]}: not a plain numeric array")
    try:
        shape, _, dtype = readers[version](file)
    except (ValueError, EOFError) as error:
        raise ThroughPlaneError(f"{path}: a damaged .npy header ({one_line(error)})") from error
    return dtype, tuple(shape)


def blur_rows(image: np.ndarray, profile: SliceProfile, offset: float = 0.0) -> np.ndarray:
    """(H, ...) -> (H, ...): row i of the result is the profile-weighted mean of the rows around position
    i + ``offset`` (weights normalised to sum 1; rows beyond the border repeat the border row)."""
    image = np.asarray(image)
    height = image.shape[0]
    base = math.floor(offset)
    taps, weights = row_weights(profile, offset)
    out = np.zeros(image.shape, np.float64)
    rows = np.arange(height)
    for tap, weight in zip(taps, weights):
        if weight:
            out += weight * image[np.clip(rows + base + tap, 0, height - 1)]
    return out.astype(np.float32)


def row_weights(profile: SliceProfile, offset: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(taps, weights) of :func:`blur_rows`: row i of the blurred image is Σ weights[k] · row[floor(i + offset) +
    taps[k]], the weights normalised to sum 1."""
    reach = int(math.ceil(profile.radius)) + 1
    taps = np.arange(-reach, reach + 2)  # integer row offsets around floor(i + offset)
    weights = profile.weights(taps + math.floor(offset) - offset)
    return taps, weights / weights.sum()


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

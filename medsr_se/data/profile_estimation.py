"""The slice profile's FWHM estimated from the scan itself, for a scan that does not say its slice thickness: seconds
of NumPy instead of ESPRESO's GAN, by cross-degradation and spectra.

A scan with in-plane spacing d and slices D = r·d apart (r = D / d, not necessarily an integer) samples the anatomy O
along the slice axis z every r in-plane pixels after the slice profile (FWHM f* = T / d pixels), and adds noise n
that the profile does not blur; in-plane it is sharp. Degrade an in-plane axis x of the scan the same way, with a
candidate FWHM f (Gaussian, :func:`~medsr_se.data.degradations.gaussian_profile`; samples every r pixels, r as a
float: :func:`sampling_matrix`):

    scan = S_z B_z(f*) O + n          E_f = S_x B_x(f) scan = S_x B_x(f) S_z B_z(f*) O + S_x B_x(f) n

E_f is sampled every r pixels along x and z, blurred by f along x and by f* along z. Where the anatomy looks the
same along x as along z (statistically: the same power spectrum), the lines of E_f along x and along z have the same
spectrum when f = f*, and only then. (Comparing the scan's own lines along z with E_f's along x instead is biased:
those carry the anatomy blurred by f* along z; measured +28 % to −88 % on isotropic random fields, −11 % to −25 % on
anatomical.nii at 1 mm.) The estimate is the profile relative to the in-plane resolution: an in-plane point spread
of FWHM p gives √(f*² − p²), the blur that training pairs cut from in-plane slices need.

    δ_f(ω) = log(P_x(ω) + N_z(ω)) − log(P_z(ω) + N_x(ω))       averaged over the two in-plane axes as x
    score(f) = mean_ω (δ_f(ω) − mean_ω δ_f)²                      f̂ = argmin, refined by a parabola

- P_x, P_z: Welch power spectra of E_f along x and z: segments of :data:`SEGMENT` (8) samples, :data:`STRIDE` apart,
  each sample's footprint (±r pixels along x) inside the anatomy (voxels above 10 % of the 1st..99th percentile
  range), mean removed, Hann window, |rfft|² averaged; bins 1..4 (DC left out).
- N_x, N_z: the expected spectra of the noise in E_f along the other direction (σ² · window spectrum of the
  noise's covariance: white along z with variance σ²·Σw², correlated along x by the weights W of B_x), added
  crosswise so that both sides carry the same noise (σ: :func:`noise_sigma`, the MAD of the in-plane Haar HH band).
- Gain-free: a constant log ratio (the anatomy has more detail along one direction at every scale, as brains do:
  ±0.15 in log power between axes) is not counted; the blur changes the shape of the spectrum.

Candidates: f = r/4 .. 3r (step r/8; 3r: slices reconstructed overlapping, as CT often is), then steps of r/40
around the best one. 4-D input: its first volume.

Accuracy (``python -m benchmarks.profile_estimation``: thick slices simulated as modelled, with and without 3 %
Rician noise; |error| median / largest):

- MNI152 T1 template (1 mm), r = 4, 6 (and 4.5), slices along each axis: FWHM = r 7 % / 12 %; a gap (0.6 r) 18 % /
  30 % (too small with sagittal slices, too large with axial ones: the template is not alike along its axes);
  overlapping slices (2 r, axial) 2.5 % / 4 %. Today's assumption FWHM = D is 67 % off for the gap, 50 % for 2 r.
- anatomical.nii resampled to 1 mm (65 x 81 x 49), r = 3, 4: FWHM = r 7.5 % / 22 %; a gap 21 % / 58 % (5 of 12 flagged
  not :attr:`~ProfileEstimate.reliable`; at most 35 % off among the others); 2 r 5 % / 18 %.

What training uses (:attr:`ProfileEstimate.used_pixels`): 0.8 f̂ where it says a gap (f̂ ≤ 0.75 r), f̂ at 0.9 .. 1 r,
linear between (:attr:`ProfileEstimate.hedge`); the spacing r where f̂ is up to 1.1 r (taken as touching slices),
back to f̂ at 1.3 r and f̂ above (overlapping slices; :func:`touching_or_overlapping`). With a gap the estimate
errs by up to ±30 % and the two ways of erring cost differently (BENCHMARKS.md section 12, axial slices 6 mm apart
and 3.6 mm thick): a profile 1.27 x too wide lost 0.94 dB, one 0.8 x too narrow 0.06 dB. Without a gap a too-narrow
profile costs too (0.8 x: −0.58 dB), but a too-thick one more (1.12 x: −0.68 dB), and the estimate is up to 12 % too
thick there, so f̂ is used as it is up to r and pulled to r above it.

Limits: the anatomy must look alike along the slice axis and in-plane (its difference is the error above:
``per_axis_pixels`` shows the in-plane part of it, never the through-plane part); a gap is harder than touching
slices (subsampling by r aliases, and the spectrum's shape changes less with f below r); fewer than 8 slices, 8
slice spacings in-plane or 64 segments inside the anatomy are refused, and a tiny volume (anatomical.nii at 2 mm, r = 3)
may give an estimate flagged not reliable, or 23 % off; noise is taken as white in-plane and not blurred by the
profile (a scan interpolated in-plane has correlated noise: not measured); the profile is taken as Gaussian.

    estimate = estimate_fwhm(scan.values, scan.geometry, name=scan.name)
    estimate.fwhm_mm, estimate.describe()     "FWHM 3.1 mm (2.9 .. 3.4 mm from the two in-plane axes)"
    estimate.used_mm                          what training uses: f̂; 0.8 f̂ with a gap; r up to 1.1 r
    scan = estimate_thickness(scan)           the estimate in place of an assumed thickness, said in the log
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from medsr_se.data.degradations import gaussian_profile
from medsr_se.io.scans import Scan, SliceGeometry, ThroughPlaneError

log = logging.getLogger(__name__)
METHOD = "cross-degradation spectra (in-plane axis degraded like the slices; gain-free log-spectral match)"
SEGMENT = 8  # samples per Welch segment, along x and z of E_f (so at least 8 slices)
STRIDE = 4  # samples between segment starts
GRID = (0.25, 3.0, 0.125)  # candidate FWHM / r: first, last, step
REFINE = 0.025  # the fine step (FWHM / r) around the best coarse candidate
FOREGROUND = 0.10  # of the 1st..99th percentile range: the anatomy's mask
MIN_RATIO = 1.5  # D / d below this: the slices are not thick
MIN_SEGMENTS = 64  # per direction and in-plane axis
MAX_LINES = 128  # lines of the untouched in-plane axis used (evenly spaced): seconds on a 512 x 512 x 200 scan
RELIABLE_SPREAD = 0.25  # the two in-plane axes' estimates further apart than this (relative): not reliable
GAP_RATIOS = (0.75, 0.9)  # f̂ / r at or below the first: a gap between the slices; at or above the second: none
GAP_HEDGE = 0.8  # with a gap, the profile used for training is this x f̂ (ProfileEstimate.used_pixels)
TOUCHING_RATIOS = (1.1, 1.3)  # f̂ / r from 1 to the first: the spacing is used (touching slices); linear to f̂ at the
# second, f̂ above it (overlapping slices)


@dataclass(frozen=True)
class ProfileEstimate:
    """The estimated slice profile (Gaussian) of a scan.

    Attributes:
        fwhm_pixels: f̂, in in-plane pixels (the unit of :attr:`SliceGeometry.fwhm_pixels`).
        fwhm_mm: f̂ · d.
        in_plane_spacing: d (mm).
        candidates: the FWHMs tried (pixels), ascending.
        scores: score(f) of each candidate (module docstring; 0 = the same spectral shape along x and z).
        per_axis_pixels: f̂ from each in-plane axis alone (the first and second in-plane axis of the array).
        noise_sigma: σ used for the noise spectra (the scan's units).
        segments: Welch segments used (the fewer of the two directions), summed over the in-plane axes.
        at_edge: f̂ is within one coarse step (r/8) of the ends of the range tried (r/4 .. 3r): the FWHM may be
            beyond it, or the scan may not tell.
        ratio: r, the slice spacing in in-plane pixels.
        method: how it was estimated (:data:`METHOD`).
    """

    fwhm_pixels: float
    fwhm_mm: float
    in_plane_spacing: float
    candidates: tuple[float, ...]
    scores: tuple[float, ...]
    per_axis_pixels: tuple[float, float]
    noise_sigma: float
    segments: int
    at_edge: bool
    ratio: float
    method: str = METHOD

    @property
    def spread(self) -> float:
        """max |f̂_axis − f̂| / f̂ over the two in-plane axes: how much the answer depends on the axis compared."""
        return max(abs(a - self.fwhm_pixels) for a in self.per_axis_pixels) / self.fwhm_pixels

    @property
    def hedge(self) -> float:
        """The factor from f̂ to the profile used for training: :data:`GAP_HEDGE` where f̂ / r says a gap between the
        slices (≤ 0.75), 1 where it says touching slices (0.9 .. 1), linear between; above 1, the factor that pulls
        the profile used to the slice spacing r (up to 1.1 r; back to f̂ at 1.3 r: :func:`touching_or_overlapping`).

        Why: with a gap the thick slices are close to point samples, and the two ways of being wrong cost very
        differently. Measured on the MNI T1 (axial slices 6 mm apart, 3.6 mm thick, BENCHMARKS.md section 12),
        training with 1.27 x the true FWHM lost 0.94 dB against the truth, 0.8 x lost 0.06 dB and 0.65 x 0.09 dB;
        and with a gap the estimate errs by up to ±30 %. Without a gap a too-thin profile costs too (0.8 x: −0.58 dB
        on touching slices) and a too-thick one more (1.12 x: −0.68 dB), while the estimate errs by up to 12 %, so
        there f̂ is used as it is up to r and pulled towards r above it."""
        over_spacing = self.fwhm_pixels / self.ratio
        if over_spacing > 1.0:
            return touching_or_overlapping(over_spacing) / over_spacing
        low, high = GAP_RATIOS
        position = min(max((over_spacing - low) / (high - low), 0.0), 1.0)
        return GAP_HEDGE + (1.0 - GAP_HEDGE) * position

    @property
    def taken_as_touching(self) -> bool:
        """f̂ is above the slice spacing and the profile used is pulled towards it (:func:`touching_or_overlapping`)."""
        return self.fwhm_pixels > self.ratio and self.hedge < 1.0

    @property
    def used_pixels(self) -> float:
        """The FWHM (pixels) that training pairs are made with: :attr:`hedge` x f̂."""
        return self.hedge * self.fwhm_pixels

    @property
    def used_mm(self) -> float:
        return self.used_pixels * self.in_plane_spacing

    @property
    def reliable(self) -> bool:
        """Not at the edge of the candidates, and the in-plane axes agree within :data:`RELIABLE_SPREAD`."""
        return not self.at_edge and self.spread <= RELIABLE_SPREAD

    def describe(self) -> str:
        """``FWHM 3.1 mm (2.9 .. 3.4 mm from the two in-plane axes)``, and why it is not reliable when it is not."""
        low, high = (min(self.per_axis_pixels) * self.in_plane_spacing,
                     max(self.per_axis_pixels) * self.in_plane_spacing)
        text = f"FWHM {self.fwhm_mm:.3g} mm ({low:.3g} .. {high:.3g} mm from the two in-plane axes)"
        if self.at_edge:
            text += (f"; at the edge of the range tried ({self.candidates[0] * self.in_plane_spacing:.3g} .. "
                     f"{self.candidates[-1] * self.in_plane_spacing:.3g} mm): not reliable")
        elif not self.reliable:
            text += "; the in-plane axes disagree: not reliable"
        elif self.taken_as_touching:
            text += (f"; {self.fwhm_pixels / self.ratio:.2f} x the slice spacing, within the estimate's error of "
                     f"touching slices: {self.used_mm:.3g} mm used, as a too-thick profile costs more than a "
                     "too-thin one")
        elif self.hedge < 1.0:
            text += (f"; a gap between the slices (FWHM {self.fwhm_pixels / self.ratio:.2f} x their spacing): "
                     f"{self.used_mm:.3g} mm used, {self.hedge:.2f} x the estimate, as a too-thick profile costs "
                     "more than a too-thin one there")
        return text


def touching_or_overlapping(over_spacing: float) -> float:
    """The profile used for training, in slice spacings, for an estimate of ``over_spacing`` = f̂ / r ≥ 1:

        1                        for 1 ≤ f̂/r ≤ 1.1    taken as touching slices (thickness = spacing)
        1 + 1.5 (f̂/r − 1.1)      for 1.1 < f̂/r < 1.3  back to the estimate, continuously
        f̂/r                      for f̂/r ≥ 1.3        overlapping slices, as estimated

    Why: on touching slices the estimate errs by up to +12 % on a brain MRI (axial slices of the MNI T1 at r = 6,
    anatomical.nii at 1 mm; +23 % on the 2 mm volume), and there a too-thick profile costs more than a too-thin one
    (BENCHMARKS.md section 12: 1.12 x the truth lost 0.68 dB, 0.8 x lost 0.58 dB). Overlapping slices are estimated
    within 9 % (1.2 r) and 4 % (2 r, MNI T1); where slices overlap by less than 1.3 x this rule takes them thinner
    than they are. Measured (BENCHMARKS.md section 12, "Touching slices estimated too thick"): a band up to 1.2 r
    (back at 1.4 r) lost 0.40-0.73 dB on slices 1.2 x their spacing; this narrower one keeps most of its gain on
    touching slices at a smaller cost there."""
    first, second = TOUCHING_RATIOS
    if over_spacing >= second:
        return over_spacing
    return float(np.interp(over_spacing, (first, second), (1.0, second)))  # 1 up to the first


def sampling_matrix(length: int, ratio: float, fwhm: float) -> np.ndarray:
    """(K, length) weights W: sample k of a line of ``length`` pixels is Σ_j W[k, j] line[j], the Gaussian profile
    of FWHM ``fwhm`` pixels (:func:`gaussian_profile`) centred at p_k = (ratio − 1)/2 + ratio·k, normalised to sum 1
    over the pixels inside the line; K = the samples with p_k ≤ length − 1. For an integer ratio r, away from the
    ends, the rows of :func:`~medsr_se.data.degradations.degrade` (the same centres, the same weights); a
    non-integer ratio keeps the scan's slice spacing instead of rounding it."""
    count = int(math.floor((length - 1 - (ratio - 1) / 2) / ratio)) + 1
    centres = (ratio - 1) / 2 + ratio * np.arange(count)
    weights = gaussian_profile(fwhm).weights(np.arange(length)[None, :] - centres[:, None])
    return weights / weights.sum(axis=1, keepdims=True)


def noise_sigma(volume: np.ndarray, mask: np.ndarray) -> float:
    """σ of white noise from the in-plane Haar HH band of (X, Y, N) ``volume`` (axes 0, 1 in-plane), inside
    ``mask``: HH = (v[2i, 2j] − v[2i+1, 2j] − v[2i, 2j+1] + v[2i+1, 2j+1]) / 2 has the noise's σ, and
    σ = median |HH| / 0.6745 (Donoho's MAD; the anatomy's finest in-plane detail counts as noise too)."""
    x, y = volume.shape[0] // 2 * 2, volume.shape[1] // 2 * 2
    v = volume[:x, :y]
    hh = (v[0::2, 0::2] - v[1::2, 0::2] - v[0::2, 1::2] + v[1::2, 1::2]) / 2
    inside = mask[:x:2, :y:2] & mask[1:x:2, 1:y:2]
    return float(np.median(np.abs(hh[inside])) / 0.6745) if inside.any() else 0.0


def estimate_fwhm(values: np.ndarray, geometry: SliceGeometry, *, name: str = "the scan") -> ProfileEstimate:
    """The slice profile's FWHM of a thick-slice scan from its voxels (module docstring): ``values`` (3-D, or the
    first volume of a 4-D one) with slices along ``geometry.axis``, ``geometry.in_plane_spacing`` and
    ``geometry.slice_spacing`` (its slice_thickness is not used). Deterministic. :class:`ThroughPlaneError` of one
    line naming ``name`` when the scan cannot give an estimate: NaN / ±inf voxels, slices not thicker than 1.5
    in-plane pixels, fewer than :data:`SEGMENT` slices or in-plane samples, too little anatomy (a constant or mostly
    empty volume). The same for ``a·values + b`` (a > 0): the spectra's shapes, the mask and σ / a do not change."""
    volume = _first_volume(np.asarray(values), name)
    if not (math.isfinite(geometry.in_plane_spacing) and geometry.in_plane_spacing > 0):
        raise ThroughPlaneError(f"{name}: in-plane spacing {geometry.in_plane_spacing:g} mm: must be positive")
    ratio = geometry.ratio
    if not ratio >= MIN_RATIO:
        raise ThroughPlaneError(f"{name}: slices {geometry.slice_spacing:g} mm apart, {ratio:.3g} in-plane pixels: "
                                f"the slice profile is estimated for slices at least {MIN_RATIO:g} pixels apart")
    volume = np.moveaxis(volume, geometry.axis, -1).astype(np.float32)
    _check_size(volume.shape, ratio, geometry.axis, name)
    mask = anatomy_mask(volume, name)
    sigma = noise_sigma(volume, mask)
    axes = [_InPlaneAxis(volume, mask, ratio), _InPlaneAxis(np.swapaxes(volume, 0, 1), np.swapaxes(mask, 0, 1),
                                                           ratio)]
    for index, axis in enumerate(axes):
        if axis.fewest_segments < MIN_SEGMENTS:
            raise ThroughPlaneError(f"{name}: too little anatomy to estimate the slice profile from "
                                    f"({axis.fewest_segments} line segments of {SEGMENT} samples inside it along "
                                    f"in-plane axis {_array_axis(index, geometry.axis)}, fewer than {MIN_SEGMENTS})")

    deltas = {}  # FWHM (pixels) -> (δ of in-plane axis 1, δ of in-plane axis 2)
    for fwhm in ratio * np.arange(GRID[0], GRID[1] + GRID[2] / 2, GRID[2]):
        deltas[float(fwhm)] = (axes[0].delta(fwhm, sigma), axes[1].delta(fwhm, sigma))
    best = min(deltas, key=lambda f: _score(sum(deltas[f]) / 2))
    steps = round(GRID[2] / REFINE)
    for fwhm in best + ratio * REFINE * np.array([k for k in range(1 - steps, steps) if k]):
        if ratio * GRID[0] < fwhm < ratio * GRID[1]:
            deltas[float(fwhm)] = (axes[0].delta(fwhm, sigma), axes[1].delta(fwhm, sigma))
    candidates = np.array(sorted(deltas))
    scores = np.array([_score(sum(deltas[f]) / 2) for f in candidates])
    per_axis = tuple(_minimum(candidates, np.array([_score(deltas[f][which]) for f in candidates]))
                     for which in range(2))
    fwhm = _minimum(candidates, scores)
    at_edge = not ratio * (GRID[0] + GRID[2]) < fwhm < ratio * (GRID[1] - GRID[2])
    return ProfileEstimate(fwhm, fwhm * geometry.in_plane_spacing, geometry.in_plane_spacing,
                           tuple(float(f) for f in candidates), tuple(float(s) for s in scores), per_axis, sigma,
                           sum(axis.fewest_segments for axis in axes), at_edge, ratio)


class _InPlaneAxis:
    """One in-plane axis as x: the (X, Y, N) volume (x, the other in-plane axis, z), where its degraded samples are
    inside the anatomy, and the Welch segments of E_f along x and z."""

    def __init__(self, volume: np.ndarray, mask: np.ndarray, ratio: float):
        if volume.shape[1] > MAX_LINES:
            keep = np.linspace(0, volume.shape[1] - 1, MAX_LINES).round().astype(int)
            volume, mask = volume[:, keep], mask[:, keep]
        self.shape = volume.shape
        self.ratio = ratio
        self.lines = volume.reshape(volume.shape[0], -1)
        count = sampling_matrix(volume.shape[0], ratio, ratio).shape[0]
        centres = (ratio - 1) / 2 + ratio * np.arange(count)
        footprint = np.abs(np.arange(volume.shape[0])[None, :] - centres[:, None]) <= ratio
        outside = (~mask).reshape(volume.shape[0], -1).astype(np.float32)
        valid = (footprint.astype(np.float32) @ outside) == 0  # beyond the ends of x: the profile is cut there
        valid = valid.reshape(count, volume.shape[1], volume.shape[2])
        self.starts_x = _segment_starts(valid, 0)
        self.starts_z = _segment_starts(valid, 2)
        self.fewest_segments = min(len(self.starts_x[0]), len(self.starts_z[0]))
        self.window = np.hanning(SEGMENT + 2)[1:-1]

    def delta(self, fwhm: float, sigma: float) -> np.ndarray:
        """δ_f(ω), bins 1 .. SEGMENT / 2 (module docstring)."""
        weights = sampling_matrix(self.shape[0], self.ratio, fwhm)
        degraded = (weights.astype(np.float32) @ self.lines).reshape(weights.shape[0], *self.shape[1:])
        noise_x, noise_z = _noise_spectra(weights, sigma, self.window)
        along_x = _welch(degraded, self.starts_x, 0, self.window)
        along_z = _welch(degraded, self.starts_z, 2, self.window)
        tiny = np.finfo(np.float64).tiny  # a flat (noise-free, constant) direction: a huge, finite log ratio
        return (np.log(np.maximum(along_x + noise_z, tiny)) - np.log(np.maximum(along_z + noise_x, tiny)))[1:]


def _first_volume(values: np.ndarray, name: str) -> np.ndarray:
    if values.ndim < 3:
        raise ThroughPlaneError(f"{name}: {values.ndim}-D values: the slice profile is estimated from a volume")
    volume = values[(...,) + (0,) * (values.ndim - 3)]
    if not np.isfinite(volume).all():
        raise ThroughPlaneError(f"{name}: NaN or ±inf voxels: the slice profile is estimated from finite values "
                                "only")
    return volume


def _array_axis(index: int, slice_axis: int) -> int:
    return [a for a in range(3) if a != slice_axis][index]


def _check_size(shape: tuple[int, ...], ratio: float, slice_axis: int, name: str) -> None:
    if shape[2] < SEGMENT:
        raise ThroughPlaneError(f"{name}: {shape[2]} slices along axis {slice_axis}: too few to estimate the slice "
                                f"profile from the scan (it needs at least {SEGMENT})")
    for index in range(2):
        samples = sampling_matrix(shape[index], ratio, ratio).shape[0]
        if samples < SEGMENT:
            raise ThroughPlaneError(f"{name}: in-plane axis {_array_axis(index, slice_axis)} has {shape[index]} "
                                    f"voxels, {samples} slice spacings: too few to estimate the slice profile from "
                                    f"the scan (it needs {SEGMENT})")


def anatomy_mask(volume: np.ndarray, name: str) -> np.ndarray:
    """Voxels above low + 10 % (high − low), low / high the 1st / 99th percentiles (0 for MR background, −1000
    HU for CT air)."""
    low, high = np.percentile(volume, [1, 99])
    if not high > low:
        raise ThroughPlaneError(f"{name}: at least 98 % of the voxels are {low:g}: no anatomy to estimate the slice "
                                "profile from")
    return volume > low + FOREGROUND * (high - low)


def _segment_starts(valid: np.ndarray, axis: int) -> tuple[np.ndarray, ...]:
    """Indices (3 arrays) of the first sample of every segment of SEGMENT valid samples along ``axis``, STRIDE
    apart along it."""
    if valid.shape[axis] < SEGMENT:
        return tuple(np.zeros(0, int) for _ in range(3))
    whole = sliding_window_view(valid, SEGMENT, axis=axis).all(axis=-1)
    cut = [slice(None)] * 3
    cut[axis] = slice(None, None, STRIDE)
    starts = list(np.nonzero(whole[tuple(cut)]))
    starts[axis] = starts[axis] * STRIDE
    return tuple(starts)


def _welch(degraded: np.ndarray, starts: tuple[np.ndarray, ...], axis: int, window: np.ndarray) -> np.ndarray:
    """Mean |rfft(window · (segment − its mean))|² of the segments along ``axis`` starting at ``starts``."""
    index = [s[:, None] for s in starts]
    index[axis] = index[axis] + np.arange(SEGMENT)[None, :]
    segments = degraded[tuple(index)].astype(np.float64)
    segments -= segments.mean(axis=1, keepdims=True)
    return (np.abs(np.fft.rfft(segments * window, axis=1)) ** 2).mean(axis=0)


def _noise_spectra(weights: np.ndarray, sigma: float, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N_x, N_z): the expected Welch spectra (as :func:`_welch` computes them) of white noise σ after the
    degradation ``weights`` along x, along x (covariance σ²·c(|k − k'|), c(l) the median l-th diagonal of W Wᵀ) and
    along z (σ²·c(0) white)."""
    gram = weights @ weights.T
    lags = np.array([np.median(np.diagonal(gram, lag)) if lag < len(gram) else 0.0 for lag in range(SEGMENT)])
    taps = np.arange(SEGMENT)
    along_x = _window_spectrum(sigma ** 2 * lags[np.abs(taps[:, None] - taps[None, :])], window)
    along_z = _window_spectrum(sigma ** 2 * lags[0] * np.eye(SEGMENT), window)
    return along_x, along_z


def _window_spectrum(covariance: np.ndarray, window: np.ndarray) -> np.ndarray:
    """E|rfft(window · (x − mean x))|² for x with ``covariance``: diag(F^H H C' H F), C' = P C P, P = I − 11ᵀ/L."""
    size = len(window)
    centring = np.eye(size) - 1.0 / size
    weighted = window[:, None] * (centring @ covariance @ centring) * window[None, :]
    frequencies = np.arange(size // 2 + 1) * 2 * np.pi / size
    basis = np.exp(-1j * np.outer(frequencies, np.arange(size)))
    return np.real(np.einsum("wk,kl,wl->w", basis, weighted, basis.conj()))


def _score(delta: np.ndarray) -> float:
    return float(np.mean((delta - delta.mean()) ** 2))


def _minimum(candidates: np.ndarray, scores: np.ndarray) -> float:
    """The candidate of the lowest score, moved to the vertex of the parabola through it and its neighbours (when
    it has two and the parabola opens upwards)."""
    best = int(np.argmin(scores))
    if not 0 < best < len(scores) - 1:
        return float(candidates[best])
    x, y = candidates[best - 1:best + 2], scores[best - 1:best + 2]
    curvature, slope, _ = np.polyfit(x - x[1], y, 2)
    if curvature <= 0:
        return float(x[1])
    vertex = x[1] - slope / (2 * curvature)
    return float(np.clip(vertex, x[0], x[2]))


# ------------------------------------------------------------------------------------------- using the estimate
ESTIMATED = "estimated from the scan"  # the start of SliceGeometry.thickness_source when the estimate is used
ASSUMED_TEXT = "the assumption thickness = slice spacing"
TYPICAL_ERROR = ("typically within 12 % for touching slices and 30 % with a gap between them on a brain MRI, "
                 "BENCHMARKS.md section 12")


def with_estimated_thickness(geometry: SliceGeometry, values: np.ndarray, name: str
                             ) -> tuple[SliceGeometry, ProfileEstimate | None, str]:
    """For a scan whose slice thickness is *assumed* (:attr:`SliceGeometry.thickness_assumed`): (the geometry to
    use, the estimate or None, one line saying what was done). A reliable estimate replaces the assumption
    (``thickness_source`` = "estimated from the scan: ..."), hedged to the thinner side where it says a gap between
    the slices or a little above their spacing (:attr:`ProfileEstimate.hedge`; the line says so); an unreliable one,
    or a scan too small to estimate from, keeps the assumption and the line says why."""
    try:
        estimate = estimate_fwhm(values, geometry, name=name)
    except ThroughPlaneError as error:
        return geometry, None, f"{name}: the slice thickness could not be estimated ({error}); kept {ASSUMED_TEXT}"
    if not estimate.reliable:
        return geometry, estimate, (f"{name}: the slice thickness estimated from the scan, {estimate.describe()}; "
                                    f"kept {ASSUMED_TEXT}")
    source = f"{ESTIMATED}: {estimate.describe()}, {TYPICAL_ERROR}"
    used = SliceGeometry(geometry.axis, geometry.in_plane_spacing, geometry.slice_spacing, estimate.used_mm, source)
    return used, estimate, (f"{name}: the slice thickness is not in the scan; estimated from it: {estimate.describe()} "
                            f"({TYPICAL_ERROR}); give the protocol's slice thickness to be sure")


def estimate_thickness(scan: Scan) -> Scan:
    """A scan whose slice thickness is assumed, with the thickness estimated from it when the estimate is reliable
    (:func:`with_estimated_thickness`): a warning says so, as the training pairs rest on it; otherwise the scan
    unchanged, and a note says why."""
    geometry, _, line = with_estimated_thickness(scan.geometry, scan.values, scan.name)
    if geometry is scan.geometry:
        log.info(line)
        return scan
    log.warning(line)
    return replace(scan, geometry=geometry)

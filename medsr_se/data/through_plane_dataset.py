"""``ThroughPlaneVolumeDataset``: training pairs cut from the in-plane slices of the scan(s) to be super-resolved
(self-supervised through-plane SR, :mod:`medsr_se.throughplane`; the degradation: :mod:`medsr_se.data.degradations`).

Each item: one in-plane slice of one volume chosen at random, used as it is or transposed (both in-plane axes
are degraded), a random gt_size x gt_size HR patch of it, and its LR made by blurring the patch's columns with the
slice profile and keeping every r-th row (:func:`medsr_se.data.degradations.degrade`, on the whole column strip so the
blur sees the real neighbours, then cut). Random horizontal flips, and vertical flips when the profile is
symmetric (then a flip commutes with the degradation; an asymmetric user kernel gets none). Nothing is written to
disk.

    lq: (1, gt_size / r, gt_size) float32 in [0, 1]     gt: (1, gt_size, gt_size)

Options (``datasets:train``):
    volumes: NIfTI files / DICOM series folders (one or more)
    scale: r (BasicSR copies the top-level ``scale``)
    gt_size: HR patch side, a multiple of r (default 64)
    axis: the slice axis (default: the axis of largest spacing; needed for 4-D NIfTI)
    slice_thickness: mm, the profile's FWHM (default: the scan's SliceThickness / slice spacing)
    slice_profile: a .npy kernel (taps in in-plane pixels) instead of the Gaussian
    nonfinite: the finite value that replaces NaN / ±inf voxels (default: they are an error)
    use_hflip / use_vflip: random flips (default true)
    samples_per_epoch: the dataset's length (default 1000; patches are random, so this only paces epochs)
    lr_noise: noise matching (:mod:`medsr_se.data.noise_matching`): ``auto`` (estimate the scan's noise σ), σ in
        the scan's units, or 0 / ~ (off, the default here; the shipped recipe's choice is in options/selfsr.yml)
    fwhm_jitter: j in [0, 1): each pair's Gaussian profile has FWHM f·u, u one of :data:`JITTER_STEPS` values evenly
        spread over [1 − j, 1 + j] (0 / ~: f itself, the default), so that the network does not rest on f alone
        where f is an estimate; not with ``slice_profile``
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils import data

from medsr_se.data.degradations import SliceProfile, blur_rows, gaussian_profile, load_profile, sample_rows
from medsr_se.data.noise_matching import top_up_sigma, training_noise_sigma
from medsr_se.io.scans import in_plane_slices, intensity_for, read_scan

DEFAULT_GT_SIZE = 64
DEFAULT_SAMPLES = 1000
JITTER_STEPS = 9  # profiles per volume with fwhm_jitter: f·u for u evenly spread over [1 − j, 1 + j]


def fwhm_jitter(opt: dict) -> float:
    """``datasets:train:fwhm_jitter`` as a fraction in [0, 1) (0 when absent); ValueError naming it otherwise, or
    when it is given with a ``slice_profile`` kernel (a kernel has no FWHM to vary)."""
    value = opt.get("fwhm_jitter") or 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"datasets:train:fwhm_jitter {value!r}: a fraction in [0, 1) (0.25: FWHM ± 25 %)")
    if value and opt.get("slice_profile"):
        raise ValueError("datasets:train:fwhm_jitter with datasets:train:slice_profile: a kernel file has no FWHM "
                         "to vary; give one of them")
    return float(value)


def profiles_for(fwhm_pixels: float, jitter: float) -> tuple[SliceProfile, ...]:
    """The Gaussian profile of FWHM ``fwhm_pixels``, or with ``jitter`` the :data:`JITTER_STEPS` profiles around it."""
    if not jitter:
        return (gaussian_profile(fwhm_pixels),)
    return tuple(gaussian_profile(fwhm_pixels * u) for u in np.linspace(1 - jitter, 1 + jitter, JITTER_STEPS))


class ThroughPlaneVolumeDataset(data.Dataset):
    """Random (LR, HR) patches from the in-plane slices of volumes (module docstring)."""

    def __init__(self, opt: dict) -> None:
        super().__init__()
        self.opt = opt
        self.scale = int(opt["scale"][0] if isinstance(opt["scale"], (list, tuple)) else opt["scale"])
        self.gt_size = int(opt.get("gt_size") or DEFAULT_GT_SIZE)
        if self.gt_size % self.scale:
            raise ValueError(f"datasets:{opt.get('name', 'train')}:gt_size {self.gt_size} is not a multiple of "
                             f"scale {self.scale}")
        paths = opt.get("volumes") or []
        if isinstance(paths, str):
            paths = [paths]
        if not paths:
            raise ValueError("ThroughPlaneVolumeDataset: give datasets:train:volumes (NIfTI files or DICOM folders)")
        profile_file = opt.get("slice_profile")
        jitter = fwhm_jitter(opt)
        self.slices: list[np.ndarray] = []  # in-plane slices in [0, 1]
        self.profiles: list[tuple[SliceProfile, ...]] = []  # the profile(s) of each slice's volume
        self.noise_sigmas: list[float] = []  # σ̂ of each slice's volume, [0, 1] units (0: no noise matching)
        self.top_up: list[tuple[float, ...]] = []  # σ_add of each slice's LR per profile (noise_matching)
        for path in paths:
            scan = read_scan(path, opt.get("axis"), opt.get("slice_thickness"), opt.get("nonfinite"))
            profiles = ((load_profile(profile_file),) if profile_file
                        else profiles_for(scan.geometry.fwhm_pixels, jitter))
            intensity = intensity_for(scan.values)
            unit = np.clip(intensity.to_unit(scan.values), 0, 1)
            for index in list(np.ndindex(*unit.shape[3:])) or [()]:
                sigma = training_noise_sigma(opt.get("lr_noise"), unit[(...,) + index], scan.geometry.axis,
                                             1.0 / (intensity.high - intensity.low), str(path))
                self.noise_sigmas.append(sigma)
                for image in in_plane_slices(unit[(...,) + index], scan.geometry.axis):
                    if min(image.shape) < self.gt_size:
                        raise ValueError(f"{path}: in-plane slices of {image.shape[1]}x{image.shape[0]} are smaller "
                                         f"than gt_size {self.gt_size}; lower datasets:train:gt_size")
                    self.slices.append(np.ascontiguousarray(image, np.float32))
                    self.profiles.append(profiles)
                    self.top_up.append(tuple(top_up_sigma(sigma, profile, self.scale) for profile in profiles))
        self.samples = int(opt.get("samples_per_epoch") or DEFAULT_SAMPLES)

    def __len__(self) -> int:
        return self.samples

    def pair(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One random (LR, HR) patch pair as numpy arrays."""
        index = int(rng.integers(len(self.slices)))
        image = self.slices[index]
        if rng.random() < 0.5:  # the other in-plane axis as the degraded one
            image = image.T
        size, r = self.gt_size, self.scale
        top = int(rng.integers(image.shape[0] - size + 1) // r * r)  # rows aligned: LR rows stay on one grid
        left = int(rng.integers(image.shape[1] - size + 1))
        strip = image[:, left:left + size]
        first, offset = sample_rows(r)
        which = int(rng.integers(len(self.profiles[index]))) if len(self.profiles[index]) > 1 else 0
        profile, top_up = self.profiles[index][which], self.top_up[index][which]
        blurred = blur_rows(strip, profile, offset)
        lr = blurred[top + first:top + size:r]
        hr = strip[top:top + size]
        if self.opt.get("use_hflip", True) and rng.random() < 0.5:
            lr, hr = lr[:, ::-1], hr[:, ::-1]
        if self.opt.get("use_vflip", True) and profile.symmetric and rng.random() < 0.5:
            # flipping the rows reverses the LR grid too: LR row k <-> h − 1 − k, HR row i <-> r·h − 1 − i
            lr, hr = lr[::-1], hr[::-1]
        if top_up > 0:
            lr = lr + rng.normal(0.0, top_up, lr.shape).astype(np.float32)
        return np.ascontiguousarray(lr), np.ascontiguousarray(hr)

    def __getitem__(self, item: int) -> dict:
        # numpy's global state is seeded by BasicSR (manual_seed, and per loader worker): reproducible, and each
        # worker draws its own patches
        lr, hr = self.pair(np.random.default_rng(np.random.randint(0, 2**31 - 1)))
        return {"lq": torch.from_numpy(lr)[None], "gt": torch.from_numpy(hr)[None],
                "lq_path": f"slice-lr-{item}", "gt_path": f"slice-hr-{item}"}

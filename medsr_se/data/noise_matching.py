"""Noise matching of the training pairs (``datasets:train:lr_noise``): the thick slices carry the scan's noise at
full strength, but an LR made from an in-plane slice by the slice profile averages that noise down. A network
trained on such pairs has never seen an input as noisy as the slices it is applied to, and passes their noise
through as if it were anatomy. So each training LR gets independent Gaussian noise that tops its noise up to the
scan's:

    σ̂   = the scan's noise σ (median |HH| / 0.6745 of the in-plane Haar band inside the anatomy,
          :func:`~medsr_se.data.profile_estimation.noise_sigma`), in the training pairs' [0, 1] units
    w   = the profile's weights (:func:`~medsr_se.data.degradations.row_weights`, summing to 1)
    σ_LR = σ̂ · ‖w‖₂                        the noise the blur leaves in an LR row (white noise of σ̂ in the HR)
    σ_add = σ̂ · √(1 − ‖w‖₂²)              so that σ_LR² + σ_add² = σ̂², the noise of a thick slice

The assumption: the scan's noise is white, of one σ inside the anatomy, and the same in the thick slices as in the
in-plane rows the pairs are cut from (true of both, they are the same voxels); σ̂ also counts the anatomy's finest
in-plane detail (a noise-free 1 mm MNI template gives σ̂ ≈ 0.5 % of its range). ``lr_noise: auto`` estimates σ̂,
a number gives it in the scan's own units, 0 switches the matching off.
"""

from __future__ import annotations

import math

import numpy as np

from medsr_se.data.degradations import SliceProfile, row_weights, sample_rows
from medsr_se.data.profile_estimation import anatomy_mask, noise_sigma
from medsr_se.errors import OptionError

AUTO = "auto"
ESTIMATED = "estimated from the scan (the in-plane Haar band inside the anatomy)"
FROM_RECIPE = "from the recipe (datasets:train:lr_noise)"
OFF = "off"


def scan_noise_sigma(unit_volume: np.ndarray, axis: int, name: str = "the scan") -> float:
    """σ̂ of a 3-D ``unit_volume`` (slices along ``axis``) in its own units (module docstring)."""
    volume = np.moveaxis(np.asarray(unit_volume, np.float32), axis, -1)
    low, high = np.percentile(volume, [1, 99])
    if not high > low:  # at least 98 % of the voxels are one value: no noise to speak of (nor anatomy)
        return 0.0
    return noise_sigma(volume, anatomy_mask(volume, name))


def top_up_sigma(sigma: float, profile: SliceProfile, r: int) -> float:
    """σ_add = σ · √(1 − ‖w‖₂²) for the weights ``w`` of LR rows sampled every r-th row (module docstring)."""
    _, weights = row_weights(profile, sample_rows(r)[1])
    return float(sigma * math.sqrt(max(0.0, 1.0 - float(np.sum(weights ** 2)))))


def resolve_for_scan(option: object, values: np.ndarray, axis: int, name: str = "the scan") -> tuple[float, str]:
    """(σ̂ in the scan's units, where it came from) for the recipe's ``lr_noise`` and a scan's ``values`` (3-D, or
    the first volume of a 4-D one): ``auto`` estimates it (:func:`scan_noise_sigma`), a number is the recipe's,
    None / 0 / false are off (0.0). :class:`OptionError` naming ``lr_noise`` for anything else."""
    volume = np.asarray(values)[(...,) + (0,) * (np.ndim(values) - 3)]
    sigma = training_noise_sigma(option, volume, axis, 1.0, name)
    if sigma == 0.0:
        return 0.0, OFF
    if isinstance(option, str):
        return sigma, ESTIMATED
    return sigma, FROM_RECIPE


def training_noise_sigma(option: object, unit_volume: np.ndarray, axis: int, unit_per_value: float,
                         name: str = "the scan") -> float:
    """σ̂ in [0, 1] units from ``datasets:train:lr_noise``: ``auto`` (estimated from ``unit_volume``), a number ≥ 0
    in the scan's units (times ``unit_per_value``), or None / 0 / false (off: 0). :class:`OptionError` naming
    ``lr_noise`` for anything else."""
    if option is None or option is False:
        return 0.0
    if isinstance(option, str) and option.strip().lower() == AUTO:
        return scan_noise_sigma(unit_volume, axis, name)
    if isinstance(option, bool) or not isinstance(option, (int, float)) or not math.isfinite(option) or option < 0:
        raise OptionError(f"lr_noise={option!r}: give auto, 0 (off) or the scan's noise σ in its own units (≥ 0)",
                          parameter="lr_noise")
    return float(option) * unit_per_value

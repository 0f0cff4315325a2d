"""The through-plane result's grid along the slice axis: its spacing t (the exact target, any ratio to the scan's),
its number of slices, where each lies, and the integer r the network runs at before the result is resampled onto it.

The input's N slices of spacing D (centres c_0 .. c_{N−1}) cover the slab [c_0 − D/2, c_{N−1} + D/2]; the result's M
slices of spacing t tile it from its start:

    centre_k = c_0 − D/2 + t/2 + k·t,   k = 0 .. M − 1,   M = ⌊N·D / t · (1 + ε)⌋
    input index u_k = (k + 0.5)·t / D − 0.5             (fractional: input slice i is at c_0 + i·D)

The network runs at r = ⌈D / t⌉ (never fewer samples than asked), except that a ratio within ε = 10⁻⁴ (relative) of
an integer is that integer: 4.0000001 is 4, and so is the ratio of a DICOM series whose decimal positions are rounded
(0.9375 mm gaps written to 5 decimals measure 0.937494 mm: 2.99998 x 0.3125 mm pixels). Its r·N slices lie at
input index (j + 0.5)/r − 0.5, so result slice k is at network index (k + 0.5)·t·r / D − 0.5. For t = D / r
(``--scale r``, or a target that is D / r to within ε) the two grids are one: no resampling, the result is the
network's output as it is (:attr:`SliceGrid.resampled` False).

    grid = choose_grid(scan.geometry, 5, scan.name, target_spacing=0.9)     5 slices 5 mm apart
    grid.network_scale, grid.count, grid.spacing, grid.scale, grid.label      6, 27, 0.9, 5.56, "0.9mm"
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from medsr_se.errors import OptionError
from medsr_se.io.scans import MAX_SCALE, MIN_SCALE, SliceGeometry, ThroughPlaneError, choose_scale

__all__ = ["GRID_TOLERANCE", "SliceGrid", "choose_grid", "integer_ratio"]

GRID_TOLERANCE = 1e-4  # ε, relative: a ratio D / t this close to an integer is that integer


@dataclass(frozen=True)
class SliceGrid:
    """The result's slices along the slice axis (module docstring).

    Attributes:
        input_spacing: D, the scan's slice spacing (mm).
        input_count: N, the scan's slices.
        network_scale: r, the integer the network upscales by.
        spacing: t, the result's slice spacing (mm).
        count: M, the result's slices.
        resampled: whether the network's r·N slices are resampled onto the M (False: t = D / r and M = r·N).
    """

    input_spacing: float
    input_count: int
    network_scale: int
    spacing: float
    count: int
    resampled: bool

    @property
    def scale(self) -> int | float:
        """s = D / t, what the writers divide the slice spacing by: the integer r when not resampled."""
        return self.network_scale if not self.resampled else self.input_spacing / self.spacing

    @property
    def label(self) -> str:
        """The result's name tag: ``x<r>`` when not resampled, else ``<t>mm`` (``0.9mm``)."""
        return f"x{self.network_scale}" if not self.resampled else f"{self.spacing:g}mm"

    def input_indices(self) -> np.ndarray:
        """u_k = (k + 0.5)·t / D − 0.5: each result slice's fractional input slice index, shape (M,)."""
        return (np.arange(self.count) + 0.5) * (self.spacing / self.input_spacing) - 0.5

    def network_indices(self) -> np.ndarray:
        """(k + 0.5)·t·r / D − 0.5: each result slice's fractional index among the network's r·N slices, within
        [0, r·N − 1] (clipped there by at most ε), shape (M,)."""
        indices = (np.arange(self.count) + 0.5) * (self.spacing * self.network_scale / self.input_spacing) - 0.5
        return np.clip(indices, 0, self.network_scale * self.input_count - 1)


def integer_ratio(ratio: float) -> int | None:
    """The integer ``ratio`` is within :data:`GRID_TOLERANCE` (relative) of, else None."""
    nearest = round(ratio)
    return int(nearest) if abs(ratio - nearest) <= GRID_TOLERANCE * ratio else None


def _integer_grid(slice_spacing: float, count: int, r: int) -> SliceGrid:
    return SliceGrid(slice_spacing, count, r, slice_spacing / r, r * count, False)


def choose_grid(geometry: SliceGeometry, count: int, name: str, scale: int | None = None,
                target_spacing: float | None = None) -> SliceGrid:
    """The result's grid for a scan of ``count`` slices (``geometry.slice_spacing`` D apart).

    ``scale`` r alone: t = D / r (:func:`~medsr_se.io.scans.choose_scale` checks r). ``target_spacing`` t (mm):
    r = ⌈D / t⌉ (a ratio within ε of an integer: that integer), refused when t is not a finite number in (0, D) or
    needs r above 8; given with ``scale``, they must agree (t = D / r to within ε). Neither: t = the in-plane
    spacing d, except that an (almost) isotropic scan (round(D / d) < 2) is refused as by
    :func:`~medsr_se.io.scans.choose_scale`. Errors name the parameter (``target_spacing=0: ...``,
    ``parameter="target_spacing"``)."""
    slice_spacing = geometry.slice_spacing
    if target_spacing is not None:
        _check_target(float(target_spacing), slice_spacing)
    if scale is not None:
        r = choose_scale(geometry, name, scale)
        if target_spacing is not None and abs(target_spacing - slice_spacing / r) > GRID_TOLERANCE * target_spacing:
            raise OptionError(f"target_spacing={target_spacing:g} and scale={r} disagree: scale={r} gives "
                              f"{slice_spacing / r:g} mm slices here (slice spacing {slice_spacing:g} mm); give "
                              "one of them", parameter="target_spacing")
        return _integer_grid(slice_spacing, count, r)
    if target_spacing is None:
        if geometry.scale < MIN_SCALE:
            choose_scale(geometry, name)  # the "already (nearly) isotropic" error
        target_spacing = geometry.in_plane_spacing
        said = (f"{name}: slice spacing {slice_spacing:g} mm is {geometry.ratio:.1f} x the in-plane "
                f"{geometry.in_plane_spacing:g} mm")
    else:
        said = f"target_spacing={target_spacing:g}: {slice_spacing / target_spacing:.2f} x finer than the slice spacing"
    t = float(target_spacing)
    ratio = slice_spacing / t
    whole = integer_ratio(ratio)
    r = whole if whole is not None else math.ceil(ratio)
    if r > MAX_SCALE:
        raise ThroughPlaneError(f"{said}; at most {MAX_SCALE} is supported (give target_spacing="
                                f"{slice_spacing / MAX_SCALE:g} or scale={MAX_SCALE} to go that far)",
                                parameter="target_spacing")
    if whole is not None:
        return _integer_grid(slice_spacing, count, r)
    slices = math.floor(count * ratio * (1 + GRID_TOLERANCE))
    return SliceGrid(slice_spacing, count, r, t, slices, True)


def _check_target(target_spacing: float, slice_spacing: float) -> None:
    if not math.isfinite(target_spacing) or target_spacing <= 0:
        raise ThroughPlaneError(f"target_spacing={target_spacing:g}: must be a positive number of mm",
                                parameter="target_spacing")
    if target_spacing >= slice_spacing * (1 - GRID_TOLERANCE):
        raise ThroughPlaneError(f"target_spacing={target_spacing:g}: must be smaller than the slice spacing "
                                f"{slice_spacing:g} mm (through-plane SR makes slices thinner)",
                                parameter="target_spacing")

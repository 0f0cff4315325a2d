"""Applying a trained through-plane network (``SEEDSRGenerator(upscale=[r, 1])``) to a scan: the 2-D network on
every sagittal and every coronal slice (their height is the slice axis), the two results averaged. The result has
r·N slices of spacing D / r; slice j is at input slice index (j + 0.5) / r − 0.5, so input slice k is output slice
r·k + (r − 1)/2.

    values, geometry = apply_network(scan.values, scan.geometry, net)       (r·N slices, spacing D / r)
    values, spacing = super_resolve(array, (0.8, 0.8, 4.0), net)            any array with its voxel size
    net = load_through_plane_model("net_g_latest.pth", r, "auto")           checked: upscale [r, 1], 1 channel
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from medsr_se.errors import CheckpointError
from medsr_se.inference.checkpoint import load_generator
from medsr_se.io.intensity import IntensityModel
from medsr_se.io.scans import MIN_SCALE, SliceGeometry, ThroughPlaneError, _in_plane_spacing, intensity_for

APPLY_BATCH = 4  # sagittal / coronal slices per network call


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
    spacing), thickness = the slice spacing unless given (``thickness_source`` says which)."""
    spacing = tuple(float(v) for v in spacing)
    if len(spacing) != 3 or min(spacing) <= 0:
        raise ThroughPlaneError(f"spacing {spacing}: give three positive voxel sizes (mm)")
    axis = int(np.argmax(spacing)) if axis is None else axis
    in_plane = [spacing[a] for a in (0, 1, 2) if a != axis]
    if slice_thickness:
        return SliceGeometry(axis, _in_plane_spacing(in_plane, "spacing"), spacing[axis], float(slice_thickness),
                             "from slice_thickness")
    return SliceGeometry(axis, _in_plane_spacing(in_plane, "spacing"), spacing[axis], spacing[axis])


def super_resolve(values: np.ndarray, spacing: tuple[float, float, float], net: torch.nn.Module,
                  axis: int | None = None) -> tuple[np.ndarray, tuple[float, float, float]]:
    """An array with voxel ``spacing`` through a trained through-plane network: (values with r times the slices
    along the slice axis, the new spacing). Input slice k is output slice r·k + (r − 1)/2."""
    geometry = geometry_from_spacing(spacing, axis)
    result, new_geometry = apply_network(np.asarray(values, np.float32), geometry, net)
    new_spacing = [float(v) for v in spacing]
    new_spacing[geometry.axis] = new_geometry.slice_spacing
    return result, (new_spacing[0], new_spacing[1], new_spacing[2])


def load_through_plane_model(model: str | Path, r: int, device: str = "auto") -> torch.nn.Module:
    """The through-plane generator in the checkpoint ``model`` for r, on ``device`` (``auto``: a CUDA GPU when
    there is one, else the CPU). :class:`CheckpointError` for one that cannot be: an in-plane (isotropic) model,
    which no r fixes (``parameter="model"``); a through-plane model of another r (``parameter="scale"``: that r
    would apply it); one for other than 1-channel (gray) images (``parameter="model"``)."""
    net = load_generator(str(model), device="cuda" if device != "cpu" and torch.cuda.is_available() else "cpu")
    height, width = getattr(net, "scale_hw", (net.upscale, net.upscale))
    if width != 1:
        factor = f"x{height} on both axes" if height == width else f"x{height} by x{width}"
        raise CheckpointError(f"model={model}: an in-plane model ({factor}); through-plane SR needs a through-plane "
                              "model (upscale [r, 1]) trained by medsr-selfsr, which trains one on the scan when no "
                              "model is given", parameter="model")
    if height != r:
        raise CheckpointError(f"{model}: trained with upscale [{height}, 1], but this scan needs [{r}, 1]; give "
                              f"scale={height} to apply it with r = {height}, or train one on this scan",
                              parameter="scale")
    channels = model_channels(net)
    if channels != (1, 1):
        raise CheckpointError(f"model={model}: a through-plane model for {channels[0]}-channel images; a CT / MRI "
                              "scan is 1-channel (gray): give a 1-channel model trained by medsr-selfsr",
                              parameter="model")
    return net


def model_channels(net: torch.nn.Module) -> tuple[int, int]:
    """(input, output) channels: those of the network's first and last convolution."""
    convolutions = [module for module in net.modules() if isinstance(module, torch.nn.Conv2d)]
    return convolutions[0].in_channels, convolutions[-1].out_channels

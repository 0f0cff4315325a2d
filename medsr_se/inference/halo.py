"""Halo tiles for generators without global pooling (SRCNN, VDSR, EDSR, MSRResNet, RRDBNet, P-GAN, ...).

Such a network's output pixel depends only on the LR pixels within its receptive radius r: an LR tile padded by a
halo of >= r pixels on every side (image borders handled by the network's own zero padding, as in whole-image
inference) gives exactly the whole-image result in its interior. The radius is read off the network
(:func:`receptive_radius`: every convolution's reach, in LR pixels, summed as if they were all in sequence, plus 2
LR pixels for a bicubic upsampling inside the network); it is an upper bound. Very deep networks reach far
(RRDBNet's 23 blocks: hundreds of LR pixels), so the halo is capped at :data:`MAX_HALO`; their far reach carries
almost no weight, and the difference to whole-image inference is then measured, not zero (README, Tiling).
SEEDSRGenerator's SE pooling is global: it is tiled exactly by :mod:`medsr_se.inference.tiling` instead.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from torch import nn

MAX_HALO = 32  # LR pixels: the widest halo chosen by default (a larger tile_pad is used as given)
BICUBIC_REACH = 2  # LR pixels a bicubic upsampling inside the network reads beyond its own pixel
PROBE_SIZE = 16  # LR pixels of the probe input that finds each convolution's resolution


@torch.no_grad()
def receptive_radius(net: nn.Module, channels: int) -> int:
    """Upper bound of the LR receptive radius of ``net`` (module docstring): one forward pass on a small probe,
    recording each convolution's reach ``dilation · (k − 1) / 2`` at its input's resolution, in LR pixels."""
    reach: list[float] = []

    def record(module: nn.Conv2d, inputs: tuple[torch.Tensor, ...], _output) -> None:
        ratio = PROBE_SIZE / inputs[0].shape[-1]  # LR pixels per pixel of this convolution's input
        kernel, dilation = module.kernel_size[-1], module.dilation[-1]
        reach.append(dilation * (kernel - 1) / 2 * ratio)

    hooks = [m.register_forward_hook(record) for m in net.modules() if isinstance(m, nn.Conv2d)]
    parameter = next(net.parameters())
    try:
        net(torch.zeros(1, channels, PROBE_SIZE, PROBE_SIZE, dtype=parameter.dtype, device=parameter.device))
    finally:
        for hook in hooks:
            hook.remove()
    return math.ceil(sum(reach)) + BICUBIC_REACH


def default_halo(net: nn.Module, channels: int) -> int:
    """The halo used unless a wider one is asked for: the receptive radius, at most :data:`MAX_HALO`."""
    cached = getattr(net, "medsr_se_halo", None)
    if cached is None:
        cached = min(receptive_radius(net, channels), MAX_HALO)
        net.medsr_se_halo = cached
    return cached


def tiles(height: int, width: int, tile: int, halo: int) -> Iterator[tuple[slice, slice, slice, slice]]:
    """(padded rows, padded cols, interior rows within the padded tile, same for cols) on the LR grid."""
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            bottom, right = min(top + tile, height), min(left + tile, width)
            p_top, p_left = max(top - halo, 0), max(left - halo, 0)
            p_bottom, p_right = min(bottom + halo, height), min(right + halo, width)
            yield (slice(p_top, p_bottom), slice(p_left, p_right),
                   slice(top - p_top, bottom - p_top), slice(left - p_left, right - p_left))


@torch.no_grad()
def whole_image(net: nn.Module, x: torch.Tensor,
                sink: Callable[[slice, slice, torch.Tensor], None] | None) -> torch.Tensor | None:
    """``net(x)`` in one call (tile 0): returned, or handed whole to ``sink(rows, cols, values)``."""
    out = net(x)
    if sink is None:
        return out
    sink(slice(0, out.shape[-2]), slice(0, out.shape[-1]), out)
    return None


@torch.no_grad()
def halo_forward(net: nn.Module, x: torch.Tensor, tile: int, halo: int | None = None,
                 sink: Callable[[slice, slice, torch.Tensor], None] | None = None) -> torch.Tensor | None:
    """``net(x)`` for (N, C, h, w) computed on LR tiles of ``tile`` pixels with ``halo`` LR pixels of context
    (default :func:`default_halo`); each tile's interior goes to ``sink(rows, cols, values)`` in output
    coordinates, or into the returned (N, C_out, s·h, s·w) tensor when there is no sink."""
    if tile <= 0:
        return whole_image(net, x, sink)
    halo = default_halo(net, x.shape[1]) if halo is None else halo
    scale = net.upscale
    output: list[torch.Tensor] = []
    for rows, cols, inner_rows, inner_cols in tiles(x.shape[-2], x.shape[-1], tile, halo):
        out = net(x[..., rows, cols])
        inner = out[..., inner_rows.start * scale:inner_rows.stop * scale,
                    inner_cols.start * scale:inner_cols.stop * scale]
        out_rows = slice((rows.start + inner_rows.start) * scale, (rows.start + inner_rows.stop) * scale)
        out_cols = slice((cols.start + inner_cols.start) * scale, (cols.start + inner_cols.stop) * scale)
        if sink is not None:
            sink(out_rows, out_cols, inner)
            continue
        if not output:
            output.append(torch.empty(x.shape[0], out.shape[1], x.shape[-2] * scale, x.shape[-1] * scale,
                                      dtype=out.dtype, device=out.device))
        output[0][..., out_rows, out_cols] = inner
    return output[0] if sink is None else None

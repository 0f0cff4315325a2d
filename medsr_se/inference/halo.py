"""Halo tiles for generators without global pooling (SRCNN, VDSR, EDSR, MSRResNet, RRDBNet, P-GAN, ...).

Such a network's output pixel depends only on the LR pixels within its receptive radius r: an LR tile padded by a
halo of >= r pixels on every side (image borders handled by the network's own zero padding, as in whole-image
inference) gives exactly the whole-image result in its interior. The radius is read off the network
(:func:`receptive_radius`: every convolution's reach, in LR pixels, summed as if they were all in sequence, plus 2
LR pixels for a bicubic upsampling inside the network); it is an upper bound. Very deep networks reach far
(RRDBNet's 23 blocks: hundreds of LR pixels), so the halo is capped at :data:`MAX_HALO`; their far reach carries
almost no weight, and the difference to whole-image inference is then measured, not zero (README, Tiling).
SEEDSRGenerator's SE pooling is global: it is tiled exactly by :mod:`medsr_se.inference.tiling` instead. Other
networks that read their whole feature map (channel attention's adaptive pooling: RCAN, HAT, DAT; DAT's channel
self-attention) get the whole image's statistics measured tile by tile, one pass per read
(:mod:`medsr_se.inference.global_reads`), so their tiles are exact too. Reads that cannot be measured so (ATD's
token categories: tokens sorted into groups over the whole image) leave tiles inexact: they are computed with a
warning (logged) that says so.

Windowed attention (BasicSR's SwinIR: :mod:`medsr_se.inference.window`) counts too: a block attends within windows
of w x w pixels, so it reaches w − 1 pixels further, and the bound is the convolutions' reach plus w − 1 per
attention block. Its tiles, halos and probe are multiples of w (of the pixel-unshuffle factor for RRDBNet at
scale 2 / 1: :func:`medsr_se.inference.window.input_multiple`), so that every tile's windows lie where the whole
image's do; a tile with a halo of at least the bound is then exact. Attention weighs far pixels as much as
near ones, so a halo capped below the bound (a deep SwinIR reaches hundreds of pixels) leaves tiles about a grey
level from whole-image inference: :func:`halo_forward` warns then, naming the ``tile_pad`` that makes them exact.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator

import torch
from torch import nn

from medsr_se.inference.global_reads import measured_reads, multipass, unmeasured_reads
from medsr_se.inference.window import attention_span, attention_window, input_multiple, window_padding

MAX_HALO = 32  # LR pixels: the widest halo chosen by default (a larger tile_pad is used as given)
BICUBIC_REACH = 2  # LR pixels a bicubic upsampling inside the network reads beyond its own pixel
PROBE_SIZE = 16  # LR pixels of the probe input that finds each layer's resolution (rounded up: input_multiple)

logger = logging.getLogger(__name__)


def first_convolution(net: nn.Module) -> nn.Conv2d:
    """The convolution a generator's input meets first: its ``conv_first`` (SEEDSR, EDSR, RRDBNet, SwinIR, ...),
    else its first registered one (SRVGGNetCompact's ``body[0]``)."""
    first = getattr(net, "conv_first", None)
    return first if isinstance(first, nn.Conv2d) else next(m for m in net.modules() if isinstance(m, nn.Conv2d))


def round_up(value: int, multiple: int | None) -> int:
    """``value`` rounded up to a multiple of ``multiple`` (unchanged for None)."""
    return -(-value // multiple) * multiple if multiple else value


def _side(tensor: torch.Tensor) -> int:
    """Width of a feature map (N, C, H, W), or of the square map behind tokens (N, H·W, C)."""
    return tensor.shape[-1] if tensor.ndim == 4 else math.isqrt(tensor.shape[1])


@torch.no_grad()
def receptive_radius(net: nn.Module, channels: int) -> int:
    """Upper bound of the LR receptive radius of ``net`` (module docstring): one forward pass on a small square
    probe (a multiple of what its input needs), recording each convolution's reach ``dilation · (k − 1) / 2`` and
    each attention block's ``window − 1`` at its input's resolution, in LR pixels."""
    probe = round_up(PROBE_SIZE, input_multiple(net))
    reach: list[float] = []

    def convolution(module: nn.Conv2d, inputs: tuple[torch.Tensor, ...], _output) -> None:
        ratio = probe / inputs[0].shape[-1]  # LR pixels per pixel of this convolution's input
        reach.append(module.dilation[-1] * (module.kernel_size[-1] - 1) / 2 * ratio)

    def attention(module: nn.Module, inputs: tuple[torch.Tensor, ...], _output) -> None:
        reach.append((attention_span(module) - 1) * probe / _side(inputs[0]))

    hooks = [m.register_forward_hook(convolution) for m in net.modules() if isinstance(m, nn.Conv2d)]
    hooks += [m.register_forward_hook(attention) for m in net.modules() if m is not net and attention_span(m)]
    parameter = next(net.parameters())
    try:
        net(torch.zeros(1, channels, probe, probe, dtype=parameter.dtype, device=parameter.device))
    finally:
        for hook in hooks:
            hook.remove()
    return math.ceil(sum(reach)) + BICUBIC_REACH


def reach(net: nn.Module, channels: int) -> int:
    """:func:`receptive_radius`, computed once per network."""
    cached = getattr(net, "medsr_se_reach", None)
    if cached is None:
        cached = receptive_radius(net, channels)
        net.medsr_se_reach = cached
    return cached


def default_halo(net: nn.Module, channels: int) -> int:
    """The halo used unless a wider one is asked for: the receptive radius, at most :data:`MAX_HALO`, rounded up to
    the multiple the network's input needs (its attention window, its pixel unshuffle:
    :func:`medsr_se.inference.window.input_multiple`)."""
    return round_up(min(reach(net, channels), MAX_HALO), input_multiple(net))


def tile_for(net: nn.Module, tile: int) -> int:
    """The LR tile size used for ``tile``: rounded up to the multiple the network's input needs (if any), so that
    every tile's attention windows (pixel-unshuffle blocks) lie where the whole image's do."""
    return round_up(tile, input_multiple(net))


GLOBAL_POOLING = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)  # RCAN's / RIDNet's channel attention


def pools_globally(net: nn.Module) -> bool:
    """Whether ``net`` reads its whole feature map: adaptive pooling (RCAN's, HAT's channel attention), or a
    network that says so (``sees_whole_image``: ATD's token dictionary and categories): a halo alone cannot make
    its tiles exact (what :mod:`medsr_se.inference.global_reads` measures pass by pass can)."""
    return (getattr(net, "sees_whole_image", False)
            or any(isinstance(module, GLOBAL_POOLING) for module in net.modules()))


def warn_inexact(net: nn.Module, channels: int, halo: int) -> None:
    """One warning (logged) when halo tiles are not exact: for a network that reads its whole image in a way the
    tiles cannot measure (:func:`medsr_se.inference.global_reads.unmeasured_reads`: no halo makes them exact), or
    one with windowed attention whose reach is beyond ``halo``."""
    unmeasured = unmeasured_reads(net)
    if unmeasured:
        logger.warning("%s reads the whole image (%s): each tile reads itself, so tiles differ from whole-image "
                       "inference; tile=0 (no tiles) gives the exact result", type(net).__name__,
                       ", ".join(unmeasured[:2]) + (", ..." if len(unmeasured) > 2 else ""))
        return
    window, radius = attention_window(net), reach(net, channels)
    if window is not None and halo < radius:
        logger.warning("%s has windowed attention (window %d) reaching %d LR pixels, beyond the tiles' halo of %d: "
                       "tiles can differ from whole-image inference by about a grey level; tile_pad=%d makes them "
                       "exact, tile=0 uses none", type(net).__name__, window, radius, halo, round_up(radius, window))


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
    (default :func:`default_halo`; both rounded up to the multiple the input needs, if any; a warning when
    the halo is below the reach of windowed attention: :func:`warn_inexact`), the whole image's statistics
    measured first where the network reads them (:mod:`medsr_se.inference.global_reads`); each tile's interior
    goes to ``sink(rows, cols, values)`` in output coordinates, or into the returned (N, C_out, s·h, s·w) tensor when
    there is no sink."""
    if tile <= 0:
        return whole_image(net, x, sink)
    halo = default_halo(net, x.shape[1]) if halo is None else round_up(halo, input_multiple(net))
    tile = tile_for(net, tile)
    warn_inexact(net, x.shape[1], halo)
    scale = net.upscale
    height, width = x.shape[-2:]
    placed = list(tiles(height, width, tile, halo))
    if len(placed) == 1:  # one tile holds the whole image
        return whole_image(net, x, sink)
    output: list[torch.Tensor] = []

    def emit(index: int, out: torch.Tensor) -> None:
        rows, cols, inner_rows, inner_cols = placed[index]
        inner = out[..., inner_rows.start * scale:inner_rows.stop * scale,
                    inner_cols.start * scale:inner_cols.stop * scale]
        out_rows = slice((rows.start + inner_rows.start) * scale, (rows.start + inner_rows.stop) * scale)
        out_cols = slice((cols.start + inner_cols.start) * scale, (cols.start + inner_cols.stop) * scale)
        if sink is not None:
            sink(out_rows, out_cols, inner)
            return
        if not output:
            output.append(torch.empty(x.shape[0], out.shape[1], height * scale, width * scale,
                                      dtype=out.dtype, device=out.device))
        output[0][..., out_rows, out_cols] = inner

    multiple = input_multiple(net)

    def start_tile(index: int) -> None:
        rows, cols, inner_rows, inner_cols = placed[index]
        edges = (rows.start + inner_rows.stop == height, cols.start + inner_cols.stop == width)  # its interior's
        height_in, width_in = rows.stop - rows.start, cols.stop - cols.start
        pad_rows, pad_cols = window_padding(height_in, width_in, multiple) if multiple else (0, 0)
        reads.start_tile(inner_rows, inner_cols, edges, (height_in + pad_rows, width_in + pad_cols))

    with measured_reads(net) as reads:
        passes = multipass(lambda index: net(x[..., placed[index][0], placed[index][1]]), len(placed), reads,
                           start_tile, emit)
    if passes > 1:
        logger.info("%s reads the whole image %d times (channel attention): each read measured over the %d tiles "
                    "in a pass of its own, %d passes in all", type(net).__name__, passes - 1, len(placed), passes)
    return output[0] if sink is None else None

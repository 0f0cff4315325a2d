"""Exact tiles for networks that read their whole feature map: the whole image's statistics, measured tile by tile.

Some attention networks compute a statistic over every pixel of a feature map, so a tile that computes it from
itself differs from whole-image inference however wide its halo:

- channel attention (HAT's CAB, RCAN's, DAT's adaptive interaction): ``AdaptiveAvgPool2d(1)``, the mean of each
  channel over the image, (N, C, H, W) -> (N, C, 1, 1);
- DAT's channel self-attention: queries and keys normalised over all H·W tokens and their d x d product per head,
  A = softmax(τ · Σ_n q_n k_nᵀ / (‖q‖ ‖k‖ᵀ)), ‖q_c‖² = Σ_n q_c,n².

Each is a sum over pixels of a per-pixel quantity (a *global read*), so it can be measured from tiles exactly:
pass p runs every tile up to read p, reads 1 .. p − 1 given their whole-image values, adds read p's sum over the
tile's own pixels (its interior, not the halo; a tile at the bottom or right edge also counts the rows and columns
the network's window padding adds there, as the whole padded image does), and stops there; the pass after the last
read runs every tile to the end with all the whole-image values and gives the output. With a halo at least the
network's reach, every tile's interior features equal the whole image's, so each sum, and the output, are the
whole-image ones up to the order of float additions. Cost: P reads take P passes through part of the network, about
P / 2 + 1 whole-image forwards in all (one for a network without global reads); memory: one tile's, as before.

Reads this module does not know how to measure (another pooled size, max pooling, ATD's token categories: tokens
sorted into groups over the whole image) leave tiles inexact: :func:`tiles_exactly` says so and
:mod:`medsr_se.inference.halo` warns.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from medsr_se.errors import OptionError

EPS = 1e-12  # torch.nn.functional.normalize's default: a norm below it counts as EPS

RegionSum = Callable[[slice, slice], torch.Tensor]  # (rows, cols) of a feature map -> its sum over them


class ReadMeasured(Exception):
    """Raised by the read being measured after adding the tile's part: the rest of the tile's forward is skipped."""


class WholeImageReads:
    """The whole-image sums of a network's global reads, in the order its forward makes them (module docstring).

    ``known[i]`` is (sum over the whole padded image, pixels summed) of read i; during a pass, the read after the
    known ones is the one being measured (``partial``, ``pixels``).
    """

    def __init__(self) -> None:
        self.known: list[tuple[torch.Tensor, int]] = []
        self.partial: torch.Tensor | None = None
        self.pixels = 0
        self.index = 0
        self.region: tuple[slice, slice] = (slice(0), slice(0))
        self.edges = (False, False)
        self.padded_size = (0, 0)

    def start_tile(self, inner_rows: slice, inner_cols: slice, edges: tuple[bool, bool],
                   padded_size: tuple[int, int]) -> None:
        """A tile's forward begins: its interior (within the tile), whether that interior reaches the image's
        bottom / right edge (then the padding rows / columns after it count too), and the tile's size as the
        network pads it (its feature maps' size)."""
        self.index, self.region, self.edges, self.padded_size = 0, (inner_rows, inner_cols), edges, padded_size

    def read(self, height: int, width: int, region_sum: RegionSum) -> tuple[torch.Tensor, int]:
        """(whole-image sum, pixels) of the next read of a feature map of ``height`` x ``width``: its known value,
        or, for the read being measured, the tile's part added (``region_sum`` of its interior) and
        :class:`ReadMeasured` raised; an OptionError naming ``tile`` for a map that is not on the tile's LR grid."""
        index = self.index
        self.index += 1
        if index < len(self.known):
            return self.known[index]
        if (height, width) != self.padded_size:
            raise OptionError(f"tile: the network reads a whole {height} x {width} feature map in a tile of "
                              f"{self.padded_size[0]} x {self.padded_size[1]} LR pixels: only reads on the LR grid "
                              "can be measured over tiles; tile=0 gives the exact result", parameter="tile")
        rows, cols = self.region
        rows = slice(rows.start, height if self.edges[0] else rows.stop)
        cols = slice(cols.start, width if self.edges[1] else cols.stop)
        part = region_sum(rows, cols)
        part = part.float() if part.device.type == "mps" else part.double()  # MPS has no float64
        self.partial = part if self.partial is None else self.partial + part
        self.pixels += (rows.stop - rows.start) * (cols.stop - cols.start)
        raise ReadMeasured

    def finish_pass(self) -> None:
        """The read measured in this pass is complete: it joins the known ones."""
        self.known.append((self.partial, self.pixels))
        self.partial, self.pixels = None, 0


def _mean_pool(reads: WholeImageReads) -> Callable:
    """A forward hook for ``AdaptiveAvgPool2d(1)``: its output replaced by the whole image's channel means."""

    def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        features = inputs[0]
        total, pixels = reads.read(*features.shape[-2:],
                                   lambda rows, cols: features[..., rows, cols].sum((-2, -1), keepdim=True))
        return (total / pixels).to(output.dtype)

    return hook


def _is_mean_pool(module: nn.Module) -> bool:
    return isinstance(module, nn.AdaptiveAvgPool2d) and module.output_size in (1, (1, 1))


def _is_dat_channel_attention(module: nn.Module) -> bool:
    """spandrel's DAT ``Adaptive_Channel_Attention`` (matched by name: spandrel is imported only to build DAT)."""
    kind = type(module)
    return kind.__name__ == "Adaptive_Channel_Attention" and kind.__module__.startswith("spandrel.")


def dat_channel_attention(module: nn.Module, reads: WholeImageReads, x: torch.Tensor, height: int,
                          width: int) -> torch.Tensor:
    """DAT's adaptive channel self-attention on tokens x (N, H·W, C) with the whole image's d x d attention per
    head: q, k, v (N, heads, d, H·W) from ``module.qkv``; A = softmax(τ · G / (‖q‖ ‖k‖ᵀ)) with G = Σ_n q_n k_nᵀ,
    ‖q_c‖² = Σ_n q_c,n², ‖k_c‖² likewise, summed over the whole image (one read); then, as the module itself does,
    the attention output A v gated by the depth-wise convolution branch of v and the reverse (its channel gate's
    pooling: a read of its own), projected. On a whole image it is the module's own forward."""
    batch, tokens, channels = x.shape
    heads = module.num_heads
    depth = channels // heads
    q, k, v = module.qkv(x).reshape(batch, tokens, 3, heads, depth).permute(2, 0, 3, 4, 1)

    def statistics(rows: slice, cols: slice) -> torch.Tensor:
        def region(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(batch, heads, depth, height, width)[..., rows, cols].reshape(batch, heads, depth, -1)

        q_part, k_part = region(q), region(k)
        return torch.cat([(q_part @ k_part.transpose(-2, -1)).flatten(2), q_part.square().sum(-1),
                          k_part.square().sum(-1)], dim=-1)  # (N, heads, d² + 2d)

    total, _ = reads.read(height, width, statistics)
    gram, q_squares, k_squares = total.split([depth * depth, depth, depth], dim=-1)
    norms = q_squares.sqrt().clamp_min(EPS)[..., :, None] * k_squares.sqrt().clamp_min(EPS)[..., None, :]
    attention = (gram.reshape(batch, heads, depth, depth) / norms).to(x.dtype) * module.temperature
    attention = module.attn_drop(attention.softmax(dim=-1))
    attended = (attention @ v).permute(0, 3, 1, 2).reshape(batch, tokens, channels)
    convolved = module.dwconv(v.reshape(batch, channels, height, width))
    channel_gate = module.channel_interaction(attended.transpose(-2, -1).reshape(batch, channels, height, width))
    spatial_gate = module.spatial_interaction(convolved).permute(0, 2, 3, 1).reshape(batch, tokens, 1)
    attended = attended * torch.sigmoid(spatial_gate)
    convolved = (convolved * torch.sigmoid(channel_gate)).permute(0, 2, 3, 1).reshape(batch, tokens, channels)
    return module.proj_drop(module.proj(attended + convolved))


def unmeasured_reads(net: nn.Module) -> list[str]:
    """What makes ``net``'s tiles inexact whatever the halo: the whole-image reads this module cannot measure
    (``sees_whole_image``: ATD's dictionary and categories; adaptive pooling to another size, adaptive max pooling),
    by name; empty when every global read is measured (or there is none)."""
    if getattr(net, "sees_whole_image", False):
        return [f"{type(net).__name__}'s token dictionary and categories"]
    return [f"{name} ({type(module).__name__})" for name, module in net.named_modules()
            if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)) and not _is_mean_pool(module)]


def read_count(net: nn.Module) -> int:
    """How many global reads one forward of ``net`` makes, each a measuring pass when it is tiled: its mean pools
    and, for each DAT channel self-attention, its q·kᵀ sums (its gate's pool is among the pools)."""
    return sum(1 for module in net.modules() if _is_mean_pool(module) or _is_dat_channel_attention(module))


def tiles_exactly(net: nn.Module) -> bool:
    """Whether halo tiles of ``net`` can equal its whole-image result (given a halo of its reach)."""
    return not unmeasured_reads(net)


@contextmanager
def measured_reads(net: nn.Module) -> Iterator[WholeImageReads]:
    """``net`` with every global read going through one :class:`WholeImageReads` (hooks on its mean pools, DAT's
    channel self-attention's forward replaced by :func:`dat_channel_attention`), restored on exit."""
    reads = WholeImageReads()
    hooks = [module.register_forward_hook(_mean_pool(reads)) for module in net.modules() if _is_mean_pool(module)]
    replaced = [module for module in net.modules() if _is_dat_channel_attention(module)]
    for module in replaced:
        module.forward = types.MethodType(
            lambda self, x, height, width: dat_channel_attention(self, reads, x, height, width), module)
    try:
        yield reads
    finally:
        for hook in hooks:
            hook.remove()
        for module in replaced:
            del module.forward  # the class's own forward again


def multipass(run_tile: Callable[[int], torch.Tensor], count: int, reads: WholeImageReads,
              start_tile: Callable[[int], None], emit: Callable[[int, torch.Tensor], None]) -> int:
    """The passes of the module docstring over ``count`` tiles: ``start_tile(i)`` then ``run_tile(i)`` for every
    tile, until a pass runs every tile to the end, whose outputs go to ``emit(i, out)``; the passes made.
    :class:`~medsr_se.errors.OptionError` naming ``tile`` when tiles disagree on their reads (a network whose reads
    depend on the tile)."""
    passes = 0
    while True:
        passes += 1
        finished: set[bool] = set()
        for index in range(count):
            start_tile(index)
            try:
                out = run_tile(index)
            except ReadMeasured:
                finished.add(False)
            else:
                finished.add(True)
                if finished == {True}:
                    emit(index, out)
            if len(finished) > 1:
                raise OptionError("tile: the network's tiles made different whole-image reads: their statistics "
                                  "cannot be measured over tiles; tile=0 gives the exact result", parameter="tile")
        if True in finished:
            return passes
        reads.finish_pass()


"""Transformer SR baselines from spandrel (MIT; the ``transformers`` extra: ``pip install -e ".[transformers]"``).

``HATSR`` (HAT, Chen et al., CVPR 2023), ``DATSR`` (DAT, Chen et al., ICCV 2023), ``DRCTSR`` (DRCT, Hsu et al.,
CVPRW 2024) and ``ATDSR`` (ATD, Zhang et al., CVPR 2024) take BasicSR-style options (``num_in_ch``, ``upscale``,
``embed_dim``, ``depths``, ...) and build spandrel's implementation of the network, imported only then: the object
built *is* spandrel's module (its class is a subclass of both, :func:`spandrel_backed`), so its state dict has the
authors' keys and their published weights load as they are. Every option defaults to the published x4 network
(the authors' x4 option files, ``img_size`` 64); licences and counts: docs/baselines.md.

All four share one layout, for an LR input x (N, C, h, w), scale s, width D = ``embed_dim``:

    f   = conv_first((x − mean) · img_range)                             (N, D, h, w)
    f   = f + conv_after_body(LN(residual groups of attention blocks (f)))  the architecture's own trunk
    f   = LReLU(conv_D->64(f))                                             (N, 64, h, w)
    f   = PixelShuffle2(conv_64->256(f))   x log2(s)                       (N, 64, s·h, s·w)
    out = conv_last(f) / img_range + mean                                  (N, C, s·h, s·w)

(x3: one conv 64 -> 576 + PixelShuffle(3)); ``mean`` is DIV2K's RGB mean for 3 channels, 0 for any other count;
``img_range`` is 1. The input is padded at the bottom and right by reflection to a multiple of ``window_size`` and
the output cropped back (what HAT's and DRCT's own test code does; ATD pads by edge-repeating symmetry itself, DAT
by zeros inside each attention: with the input already a multiple neither applies), so the network takes any size
its padding allows and the loaded network of :mod:`medsr_se.inference.window` (which pads the same way) gives its
own forward. ``window_size``: the side of the attention windows (DAT: the least common multiple of ``split_size``,
the period of its 8 x 32 / 32 x 8 windows).

x8 / x16: the published networks are x2 / x3 / x4, but their upsampler (SwinIR's ``Upsample``) already builds one
conv + PixelShuffle(2) stage per factor 2, so x8 / x16 are one / two more such stages, as ``LargeScaleMSRResNet``
adds to SRResNet: + 147,712 parameters (9·64·256 + 256) per factor 2 beyond x4; an x4 network's weights load into
an x8 one with ``strict: false`` (``upsample.4`` is new).

Parameters at the defaults (x4, 3 channels): HAT 20,772,507; DAT 14,802,051; DRCT 14,139,579; ATD 20,260,929.
Tiling: DRCT's halo tiles equal the whole image; HAT and DAT read the whole image (channel attention), which the
tiles measure pass by pass (:mod:`medsr_se.inference.global_reads`), so theirs do too; ATD's token dictionary and
category attention read every token of the image, so its tiles cannot (docs/baselines.md).
"""

from __future__ import annotations

import importlib
import math
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from medsr_se.errors import OptionError

UPSCALES = (2, 3, 4, 8, 16)  # the upsampler's x2^k stages and its x3 stage
INSTALL = 'pip install spandrel (Python >= 3.10), or in the clone: pip install -e ".[transformers]"'
PUBLISHED_DEPTHS = (6, 6, 6, 6, 6, 6)  # depths and num_heads of all four x4 networks: 6 groups of 6 blocks, 6 heads

_BACKED: dict[tuple[type, type], type] = {}


def spandrel_backed(wrapper: type, architecture: type) -> type:
    """The class of a built network: ``wrapper`` (our registered class: its name, options, padding forward) in
    front of spandrel's ``architecture`` (its modules, weights and forward), made once per pair."""
    key = (wrapper, architecture)
    if key not in _BACKED:
        _BACKED[key] = type(wrapper.__name__, (wrapper, architecture),
                            {"__module__": wrapper.__module__, "__qualname__": wrapper.__qualname__,
                             "__doc__": wrapper.__doc__})
    return _BACKED[key]


class SpandrelSR(nn.Module):
    """What the four share: checking the options, importing spandrel, building its network into ``self``, and the
    reflection padding to ``window_size`` (module docstring)."""

    spandrel_name: ClassVar[str]  # spandrel.architectures.<name>.<name>
    window_size: int
    upscale: int

    def _build(self, num_in_ch: int, num_out_ch: int, upscale: int, **options) -> None:
        name = type(self).__name__
        if num_out_ch != num_in_ch:
            raise OptionError(f"num_out_ch={num_out_ch}: {name} gives as many channels as it takes (num_in_ch="
                              f"{num_in_ch})", parameter="num_out_ch")
        if upscale not in UPSCALES:
            raise OptionError(f"upscale={upscale}: {name} builds x2, x3, x4, x8 and x16", parameter="upscale")
        try:
            module = importlib.import_module(f"spandrel.architectures.{self.spandrel_name}")
        except ImportError as error:
            raise OptionError(f"type={name} is built by spandrel, which cannot be imported ({error}): {INSTALL}",
                              parameter="type") from error
        architecture = getattr(module, self.spandrel_name)
        if not isinstance(self, architecture):  # built through the registered class, not the backed one
            object.__setattr__(self, "__class__", spandrel_backed(type(self), architecture))
        architecture.__init__(self, in_chans=num_in_ch, upscale=upscale, upsampler="pixelshuffle",
                              img_range=1.0, resi_connection="1conv", **options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, s·H, s·W): reflected to multiples of ``window_size`` at the bottom and right,
        spandrel's forward, cropped back."""
        height, width = x.shape[-2:]
        rows, cols = (-height) % self.window_size, (-width) % self.window_size
        out = super().forward(F.pad(x, (0, cols, 0, rows), mode="reflect"))
        return out[..., :height * self.upscale, :width * self.upscale]


class HATSR(SpandrelSR):
    """HAT, Hybrid Attention Transformer (Chen et al., "Activating More Pixels in Image Super-Resolution
    Transformer", CVPR 2023): residual groups of hybrid attention blocks (window self-attention of
    ``window_size``² tokens with a shift every other block, in parallel with a channel-attention convolution block
    weighted ``conv_scale``: squeeze ``embed_dim / compress_ratio``, pooling ``/ squeeze_factor``), each group
    ending in overlapping cross-attention (keys from windows ``1 + overlap_ratio`` times as wide)."""

    spandrel_name = "HAT"

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, upscale: int = 4, img_size: int = 64,
                 window_size: int = 16, embed_dim: int = 180, depths: tuple[int, ...] = PUBLISHED_DEPTHS,
                 num_heads: tuple[int, ...] = PUBLISHED_DEPTHS, mlp_ratio: float = 2.0, compress_ratio: int = 3,
                 squeeze_factor: int = 30, conv_scale: float = 0.01, overlap_ratio: float = 0.5,
                 drop_path_rate: float = 0.1) -> None:
        self._build(num_in_ch, num_out_ch, upscale, img_size=img_size, window_size=window_size,
                    embed_dim=embed_dim, depths=list(depths), num_heads=list(num_heads), mlp_ratio=mlp_ratio,
                    compress_ratio=compress_ratio, squeeze_factor=squeeze_factor, conv_scale=conv_scale,
                    overlap_ratio=overlap_ratio, drop_path_rate=drop_path_rate)


class DATSR(SpandrelSR):
    """DAT, Dual Aggregation Transformer (Chen et al., ICCV 2023): residual groups whose blocks alternate spatial
    self-attention in rectangular windows (``split_size`` = (8, 32): half the heads in 8 x 32 windows, half in
    32 x 8) and channel self-attention over the whole image (``embed_dim / num_heads`` channels a head), each with
    a depth-wise convolution branch and the adaptive interaction between the two (global pooling);
    feed-forward ``expansion_factor`` times as wide, gated by a depth-wise convolution."""

    spandrel_name = "DAT"

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, upscale: int = 4, img_size: int = 64,
                 split_size: tuple[int, int] = (8, 32), embed_dim: int = 180,
                 depths: tuple[int, ...] = PUBLISHED_DEPTHS, num_heads: tuple[int, ...] = PUBLISHED_DEPTHS,
                 expansion_factor: float = 4.0, drop_path_rate: float = 0.1) -> None:
        self._build(num_in_ch, num_out_ch, upscale, img_size=img_size, split_size=list(split_size),
                    embed_dim=embed_dim, depth=list(depths), num_heads=list(num_heads),
                    expansion_factor=expansion_factor, drop_path_rate=drop_path_rate)
        self.window_size = math.lcm(*split_size)


class DRCTSR(SpandrelSR):
    """DRCT, Dense-residual-connected Transformer (Hsu, Lee & Chou, "DRCT: Saving Image Super-Resolution away
    from Information Bottleneck", CVPRW 2024): ``len(depths)`` residual groups of five Swin blocks each (window
    ``window_size``, shift every other block; the entries of ``depths`` only spread the stochastic depth),
    densely connected: block i reads the group input and the ``gc``-channel outputs (1 x 1 convolutions) of the
    blocks before it. No global pooling."""

    spandrel_name = "DRCT"

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, upscale: int = 4, img_size: int = 64,
                 window_size: int = 16, embed_dim: int = 180, depths: tuple[int, ...] = PUBLISHED_DEPTHS,
                 num_heads: tuple[int, ...] = PUBLISHED_DEPTHS, mlp_ratio: float = 2.0, gc: int = 32,
                 drop_path_rate: float = 0.1) -> None:
        self._build(num_in_ch, num_out_ch, upscale, img_size=img_size, window_size=window_size,
                    embed_dim=embed_dim, depths=list(depths), num_heads=list(num_heads), mlp_ratio=mlp_ratio,
                    gc=gc, drop_path_rate=drop_path_rate)


class ATDSR(SpandrelSR):
    """ATD, Adaptive Token Dictionary (Zhang et al., "Transcending the Limit of Local Window: Advanced
    Super-Resolution Transformer with Adaptive Token Dictionary", CVPR 2024): each block adds to window
    self-attention (``window_size``) a cross-attention to a learned dictionary of ``num_tokens`` tokens (in
    ``reducted_dim`` dimensions, refined from the image's tokens layer by layer) and a self-attention within
    categories of ``category_size`` tokens grouped by their closest dictionary entry over the whole image; its
    feed-forward has a ``convffn_kernel_size`` depth-wise convolution."""

    spandrel_name = "ATD"
    sees_whole_image = True  # the dictionary and the categories: no halo makes tiles exact (inference.halo)

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, upscale: int = 4, img_size: int = 64,
                 window_size: int = 16, embed_dim: int = 210, depths: tuple[int, ...] = PUBLISHED_DEPTHS,
                 num_heads: tuple[int, ...] = PUBLISHED_DEPTHS, mlp_ratio: float = 2.0, category_size: int = 256,
                 num_tokens: int = 128, reducted_dim: int = 20, convffn_kernel_size: int = 5) -> None:
        self._build(num_in_ch, num_out_ch, upscale, img_size=img_size, window_size=window_size,
                    embed_dim=embed_dim, depths=list(depths), num_heads=list(num_heads), mlp_ratio=mlp_ratio,
                    category_size=category_size, num_tokens=num_tokens, reducted_dim=reducted_dim,
                    convffn_kernel_size=convffn_kernel_size)


TRANSFORMER_ARCHS = (HATSR, DATSR, DRCTSR, ATDSR)

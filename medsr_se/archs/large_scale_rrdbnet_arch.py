"""``LargeScaleRRDBNet``: BasicSR's ``RRDBNet`` (ESRGAN, Wang et al., ECCVW 2018) at x8 and x16.

BasicSR's RRDBNet always upsamples twice (nearest x2 + conv + LeakyReLU, twice): given ``scale: 8`` or ``16`` it
builds and silently returns a x4 output. ESRGAN itself is a x4 network; for the seed's x8 / x16 comparison this
subclass adds one more nearest x2 + 3×3 conv + LeakyReLU(0.2) stage per factor 2 beyond x4 and keeps everything
else (RRDB trunk, layer names) from BasicSR, so an x4 RRDBNet's weights load into its trunk (``strict: false``).

Layout, for an LR input (N, C, h, w) and scale s = 2^k, k = 3 or 4:

    f   = conv_first(x)                                                     (N, F, h, w)
    f   = f + conv_body(RRDB x num_block (f))                               BasicSR's trunk
    f   = LReLU(conv(nearest_x2(f)))   x k   conv_up1, conv_up2, conv_up_extra.0 ..   (N, F, s*h, s*w)
    out = conv_last(LReLU(conv_hr(f)))                                      (N, C_out, s*h, s*w)

Parameters: those of ``RRDBNet(scale=4)`` + (k − 2)·(9·F² + F).
"""

from __future__ import annotations

import math

import torch
from basicsr.archs.rrdbnet_arch import RRDBNet
from torch import nn
from torch.nn import functional as F

SCALES = (8, 16)


class LargeScaleRRDBNet(RRDBNet):
    """RRDBNet with log2(scale) upsampling stages (module docstring); ``scale`` 8 or 16."""

    def __init__(self, num_in_ch: int, num_out_ch: int, scale: int = 8, num_feat: int = 64, num_block: int = 23,
                 num_grow_ch: int = 32) -> None:
        if scale not in SCALES:
            raise ValueError(f"LargeScaleRRDBNet: scale must be 8 or 16 (BasicSR's RRDBNet does 1, 2 and 4), got "
                             f"{scale!r}")
        super().__init__(num_in_ch, num_out_ch, scale=4, num_feat=num_feat, num_block=num_block,
                         num_grow_ch=num_grow_ch)
        self.scale = scale
        extra_stages = int(math.log2(scale)) - 2
        self.conv_up_extra = nn.ModuleList(nn.Conv2d(num_feat, num_feat, 3, 1, 1) for _ in range(extra_stages))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        for conv in (self.conv_up1, self.conv_up2, *self.conv_up_extra):
            feat = self.lrelu(conv(F.interpolate(feat, scale_factor=2, mode="nearest")))
        return self.conv_last(self.lrelu(self.conv_hr(feat)))

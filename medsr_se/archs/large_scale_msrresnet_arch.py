"""``LargeScaleMSRResNet``: BasicSR's ``MSRResNet`` (SRResNet, Ledig et al., CVPR 2017) at x8 and x16.

BasicSR's MSRResNet builds x2, x3 and x4 only: given ``upscale: 8`` it builds no upsampling stage and its forward
fails on the image skip. SRResNet itself upsamples with one conv + PixelShuffle(2) stage per factor 2, so for the
seed's x8 / x16 comparison this subclass adds one more such stage (conv F -> 4F, PixelShuffle(2), LeakyReLU(0.1))
per factor 2 beyond x4 and keeps everything else from BasicSR (trunk, layer names, initialisation, the bilinear
image skip), so an x4 MSRResNet's weights load into it (``strict: false``).

Layout, for an LR input x (N, C, h, w) and scale s = 2^k, k = 3 or 4:

    f   = LReLU(conv_first(x))                                              (N, F, h, w)
    f   = body(f)                                                           16 residual blocks without BN
    f   = LReLU(PixelShuffle2(conv(f)))   x k    upconv1, upconv2, upconv_extra.0 ..   (N, F, s*h, s*w)
    out = conv_last(LReLU(conv_hr(f))) + bilinear_s(x)                      (N, C_out, s*h, s*w)

Parameters: those of ``MSRResNet(upscale=4)`` + (k − 2)·(36·F² + 4·F).
"""

from __future__ import annotations

import math

import torch
from basicsr.archs.arch_util import default_init_weights
from basicsr.archs.srresnet_arch import MSRResNet
from torch import nn
from torch.nn import functional as F

SCALES = (8, 16)
INIT_SCALE = 0.1  # BasicSR's MSRResNet initialises its convolutions with default_init_weights(..., 0.1)


class LargeScaleMSRResNet(MSRResNet):
    """MSRResNet with log2(upscale) PixelShuffle(2) stages (module docstring); ``upscale`` 8 or 16."""

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_block: int = 16,
                 upscale: int = 8) -> None:
        if upscale not in SCALES:
            raise ValueError(f"LargeScaleMSRResNet: upscale must be 8 or 16 (BasicSR's MSRResNet does 2, 3 and 4), "
                             f"got {upscale!r}")
        super().__init__(num_in_ch, num_out_ch, num_feat=num_feat, num_block=num_block, upscale=4)
        self.upscale = upscale
        extra_stages = int(math.log2(upscale)) - 2
        self.upconv_extra = nn.ModuleList(nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1) for _ in range(extra_stages))
        default_init_weights(list(self.upconv_extra), INIT_SCALE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.body(self.lrelu(self.conv_first(x)))
        for conv in (self.upconv1, self.upconv2, *self.upconv_extra):
            feat = self.lrelu(self.pixel_shuffle(conv(feat)))
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        return out + F.interpolate(x, scale_factor=self.upscale, mode="bilinear", align_corners=False)

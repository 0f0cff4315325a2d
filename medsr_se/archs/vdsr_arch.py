"""``VDSR``: Kim, Lee & Lee, "Accurate Image Super-Resolution Using Very Deep Convolutional Networks" (CVPR 2016):
D = 20 3×3 convolutions of 64 filters with ReLU, and a global residual on the bicubic-upsampled input.

Layout, for an LR input (N, C, h, w) and scale s:

    y   = bicubic_s(x)                                              (N, C, s*h, s*w)
    t   = ReLU(conv3x3(y))                 C -> 64                  layer 1
    t   = ReLU(conv3x3(t))  x (D - 2)      64 -> 64                 layers 2 .. D-1
    out = y + conv3x3(t)                   64 -> C                  layer D, the residual            (N, C, s*h, s*w)

Parameters: (9·C·F + F) + (D − 2)·(9·F² + F) + (9·F·C + C); 665,921 for C = 1, F = 64, D = 20 (the paper's
"about 665 k"). As in the paper the convolutions are zero-padded so every layer keeps the HR size; the upsampling
is torch's bicubic (a = -0.75) inside the network, so VDSR trains on the same LR patches as every other method.
"""

from __future__ import annotations

import torch
from torch import nn

from medsr_se.archs.seedsr_arch import bicubic_upsample, conv3x3

PAPER_DEPTH = 20


class VDSR(nn.Module):
    """Kim et al.'s VDSR (module docstring). ``num_layer``: D, every convolution counted (20 in the paper)."""

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, upscale: int = 4, num_feat: int = 64,
                 num_layer: int = PAPER_DEPTH) -> None:
        super().__init__()
        if upscale < 1:
            raise ValueError(f"VDSR: upscale must be a positive integer, got {upscale!r}")
        if num_layer < 2:
            raise ValueError(f"VDSR: num_layer counts the first and last convolutions too (>= 2), got {num_layer}")
        if num_in_ch != num_out_ch:
            raise ValueError(f"VDSR: the global residual needs num_in_ch == num_out_ch (got {num_in_ch}, "
                             f"{num_out_ch})")
        self.upscale = upscale
        self.conv_first = conv3x3(num_in_ch, num_feat)
        self.body = nn.ModuleList(conv3x3(num_feat, num_feat) for _ in range(num_layer - 2))
        self.conv_last = conv3x3(num_feat, num_out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) -> (N, C, s*h, s*w)."""
        y = bicubic_upsample(x, self.upscale)
        t = torch.relu(self.conv_first(y))
        for conv in self.body:
            t = torch.relu(conv(t))
        return y + self.conv_last(t)

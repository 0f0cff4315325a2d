"""``SRCNN``: Dong, Loy, He & Tang, "Image Super-Resolution Using Deep Convolutional Networks" (ECCV 2014 /
TPAMI 2016), the 9-1-5 network with 64 / 32 filters, on the bicubic-upsampled input.

Layout, for an LR input (N, C, h, w) and scale s:

    y  = bicubic_s(x)                                     (N, C, s*h, s*w)   upsampling inside the network
    f1 = ReLU(conv9x9(y))       C  -> n1 = 64             patch extraction
    f2 = ReLU(conv1x1(f1))      64 -> n2 = 32             non-linear mapping
    out = conv5x5(f2)           32 -> C                   reconstruction      (N, C, s*h, s*w)

Parameters: 81·C·n1 + n1 + n1·n2 + n2 + 25·n2·C + C (8,129 for C = 1: the paper's 8,032 weights plus 97 biases).
Differences from the paper, both so that every method trains on the same LR patches and is scored on the same
pixels: the bicubic upsampling is torch's (a = -0.75) inside the network rather than MATLAB's before it, and the
convolutions are zero-padded ("same") so the output has the full HR size (the paper's valid convolutions shrink it
by 12 pixels).
"""

from __future__ import annotations

import torch
from torch import nn

from medsr_se.archs.seedsr_arch import bicubic_upsample


class SRCNN(nn.Module):
    """Dong et al.'s SRCNN (module docstring). ``upscale``: any integer >= 1; ``num_feat`` / ``num_feat2``: n1, n2."""

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, upscale: int = 4, num_feat: int = 64,
                 num_feat2: int = 32) -> None:
        super().__init__()
        if upscale < 1:
            raise ValueError(f"SRCNN: upscale must be a positive integer, got {upscale!r}")
        self.upscale = upscale
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, kernel_size=9, padding=4)
        self.conv_mid = nn.Conv2d(num_feat, num_feat2, kernel_size=1)
        self.conv_last = nn.Conv2d(num_feat2, num_out_ch, kernel_size=5, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, h, w) -> (N, C_out, s*h, s*w)."""
        y = bicubic_upsample(x, self.upscale)
        return self.conv_last(torch.relu(self.conv_mid(torch.relu(self.conv_first(y)))))

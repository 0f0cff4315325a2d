"""``FusionSEDiscriminator``: improved-SE discriminator with multi-level feature fusion (the paper's D).

For an image batch (N, C_in, H, W), H and W >= 16 (patches of 64 and more are the intended use):

    f0  = LeakyReLU(conv3x3(x))                                   (N, F, H, W)
    f_i = SE(LeakyReLU(conv3x3(f_{i-1}, stride_i)))  i = 1..8     strides 2,1,2,1,2,1,2,1;
                                                                  widths F,F,2F,2F,4F,4F,8F,8F
    fused = LeakyReLU(conv1x1(concat(pool(f_6), f_7, f_8)))       (N, 8F, H/16, W/16)
            pool = adaptive average pooling of f_6 (H/8) onto the size of f_8
    score = conv1x1(LeakyReLU(conv1x1(GAP(fused))))               (N, 1)   one logit per image

The output is a logit; the relativistic loss applies the sigmoid (BCE with logits).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from medsr_se.archs.improved_se import SE_KINDS, build_se

MIN_SIZE = 16  # four stride-2 blocks


class ConvSEBlock(nn.Module):
    """SE(LeakyReLU(conv3x3(x, stride))): (N, C_in, H, W) -> (N, C_out, H/stride, W/stride)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, reduction: int, se: str = "improved") -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1)
        self.se = build_se(se, out_ch, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(F.leaky_relu(self.conv(x), 0.2))


class FusionSEDiscriminator(nn.Module):
    """The paper's discriminator (module docstring).

    Args:
        num_in_ch: image channels.
        num_feat: base width F.
        reduction: SE reduction ratio.
        se: 'improved' (the paper's), 'plain' (the original SE) or 'none' (identity), for every block.
    """

    WIDTH_MULTIPLIERS = (1, 1, 2, 2, 4, 4, 8, 8)
    STRIDES = (2, 1, 2, 1, 2, 1, 2, 1)

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, reduction: int = 16, se: str = "improved") -> None:
        super().__init__()
        if se not in SE_KINDS:
            raise ValueError(f"FusionSEDiscriminator: se must be one of {sorted(SE_KINDS)}, got {se!r}")
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, kernel_size=3, padding=1)
        widths = [num_feat * m for m in self.WIDTH_MULTIPLIERS]
        in_widths = [num_feat, *widths[:-1]]
        self.blocks = nn.ModuleList(
            ConvSEBlock(c_in, c_out, stride, reduction, se)
            for c_in, c_out, stride in zip(in_widths, widths, self.STRIDES))
        self.fuse = nn.Conv2d(sum(widths[-3:]), widths[-1], kernel_size=1)
        self.head_hidden = nn.Conv2d(widths[-1], widths[-1] // 2, kernel_size=1)
        self.head_out = nn.Conv2d(widths[-1] // 2, 1, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, H, W) -> logits (N, 1)."""
        if x.shape[-2] < MIN_SIZE or x.shape[-1] < MIN_SIZE:
            raise ValueError(f"FusionSEDiscriminator needs patches of at least {MIN_SIZE}x{MIN_SIZE}, "
                             f"got {tuple(x.shape[-2:])} (use gt_size >= 64)")
        feat = F.leaky_relu(self.conv_first(x), 0.2)
        levels = []
        for block in self.blocks:
            feat = block(feat)
            levels.append(feat)
        target_size = levels[-1].shape[-2:]
        aligned = [F.adaptive_avg_pool2d(level, target_size) for level in levels[-3:]]
        fused = F.leaky_relu(self.fuse(torch.cat(aligned, dim=1)), 0.2)
        pooled = fused.mean(dim=(2, 3), keepdim=True)
        logits = self.head_out(F.leaky_relu(self.head_hidden(pooled), 0.2))
        return logits.flatten(1)

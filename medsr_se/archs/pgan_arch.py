"""``PGANGenerator``: a progressive ×2-stage generator after Mahapatra, Bozorgtabar & Garnavi, "Image
super-resolution using progressive generative adversarial networks for medical image analysis" (Computerized
Medical Imaging and Graphics 71, 2019; MICCAI 2017 for retinal images), implemented from that public description.

Layout, for an LR input (N, C, h, w) and scale s = 2^S (S stages, F features, B residual blocks per stage):

    f_0   = conv3x3(x)                                              (N, F, h, w)
    stage k = 1 .. S:
      g_k = conv3x3(ResBlock_B(... ResBlock_1(f_{k-1}))) + f_{k-1}  (N, F, 2^(k-1) h, 2^(k-1) w)
            ResBlock(t) = t + conv3x3(ReLU(conv3x3(t)))
      f_k = ReLU(PixelShuffle2(conv3x3(g_k)))      F -> 4F -> F     (N, F, 2^k h, 2^k w)
      o_k = conv3x3(f_k) + bicubic_2(o_{k-1}),  o_0 = x             (N, C, 2^k h, 2^k w)   the stage's image
    out = o_S

Every stage doubles the resolution and emits its own image (``forward_stages`` returns o_1 .. o_S), as in the
paper, where each stage's output is judged by its own discriminator and refined by the next stage.
Parameters: (9·C·F + F) + S·[B·2·(9·F² + F) + (9·F² + F) + (36·F² + 4F) + (9·F·C + C)].

What is approximated, and why:

- the paper's per-stage blocks are not given layer by layer; each stage here is SRGAN/EDSR-like residual blocks
  without batch norm (the layout of every other generator in this comparison) ending in a pixel-shuffle ×2;
- each stage predicts a correction on top of the bicubic ×2 of the previous stage's image (a Laplacian-pyramid
  form), so that stage k's output is a complete image at scale 2^k;
- training (``options/baselines/pgan_x*.yml``) uses BasicSR's ``SRGANModel`` with one discriminator on the final
  output and the whole network trained at once, not the paper's stage-by-stage schedule with one discriminator
  per stage, and without its saliency-map and triplet losses (which need the paper's saliency model, not public).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from medsr_se.archs.seedsr_arch import SUPPORTED_SCALES, bicubic_upsample, conv3x3


class ResBlock(nn.Module):
    """t + conv3x3(ReLU(conv3x3(t))): (N, F, h, w) -> (N, F, h, w)."""

    def __init__(self, num_feat: int) -> None:
        super().__init__()
        self.conv1 = conv3x3(num_feat, num_feat)
        self.conv2 = conv3x3(num_feat, num_feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(torch.relu(self.conv1(x)))


class ProgressiveStage(nn.Module):
    """One ×2 stage: features (N, F, h, w) -> (features (N, F, 2h, 2w), image correction (N, C, 2h, 2w))."""

    def __init__(self, num_feat: int, num_block: int, num_out_ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*[ResBlock(num_feat) for _ in range(num_block)])
        self.conv_after_body = conv3x3(num_feat, num_feat)
        self.up_conv = conv3x3(num_feat, 4 * num_feat)
        self.shuffle = nn.PixelShuffle(2)
        self.to_image = conv3x3(num_feat, num_out_ch)

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.conv_after_body(self.body(feat)) + feat
        feat = torch.relu(self.shuffle(self.up_conv(feat)))
        return feat, self.to_image(feat)


class PGANGenerator(nn.Module):
    """The progressive generator (module docstring). ``upscale``: 2, 4, 8 or 16 (one stage per ×2);
    ``num_block``: residual blocks per stage."""

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_block: int = 4,
                 upscale: int = 4) -> None:
        super().__init__()
        if upscale not in SUPPORTED_SCALES:
            raise ValueError(f"PGANGenerator: upscale must be one of {SUPPORTED_SCALES}, got {upscale!r}")
        if num_in_ch != num_out_ch:
            raise ValueError(f"PGANGenerator: each stage refines the previous image, so num_in_ch == num_out_ch "
                             f"(got {num_in_ch}, {num_out_ch})")
        self.upscale = upscale
        self.conv_first = conv3x3(num_in_ch, num_feat)
        self.stages = nn.ModuleList(ProgressiveStage(num_feat, num_block, num_out_ch)
                                    for _ in range(int(math.log2(upscale))))

    def forward_stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, C, h, w) -> [o_1 (N, C, 2h, 2w), ..., o_S (N, C, s*h, s*w)]."""
        feat, image, outputs = self.conv_first(x), x, []
        for stage in self.stages:
            feat, correction = stage(feat)
            image = correction + bicubic_upsample(image, 2)
            outputs.append(image)
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) -> (N, C, s*h, s*w): the last stage's image."""
        return self.forward_stages(x)[-1]

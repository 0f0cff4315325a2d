"""``FusionSEDiscriminator``: improved-SE discriminator with multi-level feature fusion (the paper's D).

For an image batch (N, C_in, H, W), H and W >= 16 (patches of 64 and more are the intended use):

    f0  = LeakyReLU(conv3x3(x))                                   (N, F, H, W)
    f_i = SE(LeakyReLU(BN(conv3x3(f_{i-1}, stride_i))))  i = 1..8  strides 2,1,2,1,2,1,2,1;
                                                                  widths F,F,2F,2F,4F,4F,8F,8F
    fused = LeakyReLU(conv1x1(concat(pool(f_6), f_7, f_8)))       (N, 8F, H/16, W/16)
            pool = adaptive average pooling of f_6 (H/8) onto the size of f_8
    score = conv1x1(LeakyReLU(conv1x1(GAP(fused))))               (N, 1)   one logit per image

The output is a logit; the relativistic loss applies the sigmoid (BCE with logits).

**Normalisation.** The slides list conv + LeakyReLU + SE per block and say nothing of normalisation; Bing et al.
build their D on SRGAN's (Ledig et al. 2017), whose blocks are conv-BN-LeakyReLU (no BN after the first conv), and
so are ESRGAN's and BasicSR's ``VGGStyleDiscriminator``. That is what the blocks do here: BatchNorm2d after every
strided/unstrided block convolution (which then has no bias), default PyTorch initialisation as in BasicSR's D. The
earlier layout without BN did not learn: with default initialisation the activations shrank about 30x through the
eight blocks, the global average pool removed what was left and the logit was 0.0907 ± 1e-5 for any input, so no
GAN run trained against it (BENCHMARKS.md, section 9, has the separation-vs-iterations measurement of both).

**Batch statistics.** In training mode BN normalises with the statistics of the batch it is given, so D must see
the same kind of batch in every training pass: :class:`~medsr_se.models.relativistic_gan_model.RelativisticGANModel`
always passes ``cat[HR, SR]`` (half real, half generated), for D's update and for the generator's term. Its
running statistics are only used in ``eval()`` mode (nothing in training uses them). States saved by the old layout
(medsr-se 0.1.x: block convolutions with bias, no BN) are refused with the reason (:class:`OutdatedDiscriminatorState`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from medsr_se.archs.improved_se import SE_KINDS, build_se
from medsr_se.utils.options import OptionError

MIN_SIZE = 16  # four stride-2 blocks
NEGATIVE_SLOPE = 0.2  # LeakyReLU, as SRGAN / ESRGAN


class OutdatedDiscriminatorState(OptionError):
    """A state dict of the 0.1.x FusionSEDiscriminator (no BN), which cannot be loaded into this one."""


class ConvSEBlock(nn.Module):
    """SE(LeakyReLU(BN(conv3x3(x, stride)))): (N, C_in, H, W) -> (N, C_out, H/stride, W/stride)."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, reduction: int, se: str = "improved") -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(out_ch)
        self.se = build_se(se, out_ch, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se(F.leaky_relu(self.norm(self.conv(x)), NEGATIVE_SLOPE))


def is_outdated_state(state: Mapping[str, torch.Tensor]) -> bool:
    """True for a 0.1.x state: its block convolutions have a bias and it has no BN parameters."""
    return "blocks.0.conv.bias" in state and "blocks.0.norm.weight" not in state


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
        feat = F.leaky_relu(self.conv_first(x), NEGATIVE_SLOPE)
        levels = []
        for block in self.blocks:
            feat = block(feat)
            levels.append(feat)
        target_size = levels[-1].shape[-2:]
        aligned = [F.adaptive_avg_pool2d(level, target_size) for level in levels[-3:]]
        fused = F.leaky_relu(self.fuse(torch.cat(aligned, dim=1)), NEGATIVE_SLOPE)
        pooled = fused.mean(dim=(2, 3), keepdim=True)
        logits = self.head_out(F.leaky_relu(self.head_hidden(pooled), NEGATIVE_SLOPE))
        return logits.flatten(1)

    def load_state_dict(self, state_dict: Mapping[str, torch.Tensor], strict: bool = True, assign: bool = False):
        """``nn.Module.load_state_dict``, refusing a 0.1.x state (whatever ``strict`` says) with the reason."""
        if is_outdated_state(state_dict):
            raise OutdatedDiscriminatorState(
                "network_d: this FusionSEDiscriminator state was saved by medsr-se 0.1.x, whose discriminator had no "
                "normalisation and did not learn (its logit did not depend on its input), so it cannot be loaded "
                "into today's (BN after each block convolution): start D afresh (path:pretrain_network_d: ~); the "
                "generator's weights (net_g_*.pth) are unaffected")
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

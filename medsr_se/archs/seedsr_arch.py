"""``SEEDSRGenerator``: EDSR without batch norm, with improved SE blocks (the paper's generator).

Layout, for an LR input of shape (N, C_in, h, w) and scale s in {2, 4, 8, 16}:

    head  = SE(conv3x3(x))                                        (N, F, h, w)
    body  = conv3x3(ResBlock_B(... ResBlock_1(head)))  + head     (N, F, h, w)   global residual skip
            ResBlock(t) = t + res_scale * SE(conv3x3(ReLU(conv3x3(t))))
    up    = log2(s) x [conv3x3 (F -> 4F), PixelShuffle(2), SE]    (N, F, s*h, s*w)
    out   = conv3x3(up)                                           (N, C_out, s*h, s*w)

With ``img_residual=True`` (off by default: the paper's layout) a bicubic upsampling of the input is added to
``out`` and the last convolution starts at zero, so the untrained generator returns exactly that bicubic image and
training only has to learn the correction (see ``bicubic_upsample``). The skip uses torch's bicubic (cubic
convolution a = -0.75), close to but not identical with the MATLAB kernel (a = -0.5) of the bicubic baseline.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from medsr_se.archs.improved_se import SE_KINDS, build_se

SUPPORTED_SCALES = (2, 4, 8, 16)
IMG_RESIDUAL_KEY = "img_residual_marker"


def conv3x3(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=1, padding=1)


def bicubic_upsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic upsampling by ``scale`` (torch's cubic convolution, a = -0.75, half-pixel centres)."""
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


class ResBlockSE(nn.Module):
    """t + res_scale · SE(conv(ReLU(conv(t)))), shapes (N, F, h, w) -> (N, F, h, w)."""

    def __init__(self, num_feat: int, res_scale: float, reduction: int, se: str = "improved") -> None:
        super().__init__()
        self.conv1 = conv3x3(num_feat, num_feat)
        self.conv2 = conv3x3(num_feat, num_feat)
        self.se = build_se(se, num_feat, reduction)
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.se(self.conv2(torch.relu(self.conv1(x))))


class UpsampleSE(nn.Module):
    """conv (F -> 4F), PixelShuffle(2), SE: (N, F, h, w) -> (N, F, 2h, 2w)."""

    def __init__(self, num_feat: int, reduction: int, se: str = "improved") -> None:
        super().__init__()
        self.conv = conv3x3(num_feat, 4 * num_feat)
        self.shuffle = nn.PixelShuffle(2)
        self.se = build_se(se, num_feat, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se.forward_in_place(self.shuffle(self.conv(x)))  # the shuffled map is fresh: rescale in place


class SEEDSRGenerator(nn.Module):
    """The paper's generator (module docstring).

    Args:
        num_in_ch / num_out_ch: image channels (3 for fundus RGB, 1 for CT/MRI slices).
        num_feat: feature width F.
        num_block: number of residual blocks (16 in the paper).
        upscale: 2, 4, 8 or 16.
        res_scale: residual scaling inside each block (EDSR's 0.1 for wide nets; 1 for 64 features).
        reduction: SE reduction ratio.
        img_residual: add a bicubic upsampling of the input to the output (off = the paper's layout).
        se: 'improved' (the paper's SE), 'plain' (the original SE) or 'none' (identity): the ablation switch of
            :mod:`medsr_se.archs.improved_se`, applied to every SE of the network.
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_block: int = 16,
                 upscale: int = 4, res_scale: float = 1.0, reduction: int = 16, img_residual: bool = False,
                 se: str = "improved") -> None:
        super().__init__()
        if se not in SE_KINDS:
            raise ValueError(f"SEEDSRGenerator: se must be one of {sorted(SE_KINDS)}, got {se!r}")
        if upscale not in SUPPORTED_SCALES:
            raise ValueError(f"SEEDSRGenerator: upscale must be one of {SUPPORTED_SCALES}, got {upscale!r}")
        if img_residual and num_in_ch != num_out_ch:
            raise ValueError("SEEDSRGenerator: img_residual needs num_in_ch == num_out_ch "
                             f"(got {num_in_ch} and {num_out_ch})")
        self.upscale = upscale
        self.img_residual = img_residual
        self.conv_first = conv3x3(num_in_ch, num_feat)
        self.se_kind = se
        self.se_first = build_se(se, num_feat, reduction)
        self.body = nn.Sequential(*[ResBlockSE(num_feat, res_scale, reduction, se) for _ in range(num_block)])
        self.conv_after_body = conv3x3(num_feat, num_feat)
        self.upsample = nn.Sequential(*[UpsampleSE(num_feat, reduction, se) for _ in range(int(math.log2(upscale)))])
        self.conv_last = conv3x3(num_feat, num_out_ch)
        if img_residual:  # untrained generator == bicubic
            nn.init.zeros_(self.conv_last.weight)
            nn.init.zeros_(self.conv_last.bias)
            # marks checkpoints of this layout (the skip itself has no parameters); off = the paper's exact keys
            self.register_buffer(IMG_RESIDUAL_KEY, torch.ones(()))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """As nn.Module's, with a clear error when the checkpoint's img_residual layout differs from this one."""
        saved_with_skip = IMG_RESIDUAL_KEY in state_dict
        if strict and saved_with_skip != self.img_residual:
            raise ValueError(
                f"checkpoint was trained with img_residual={saved_with_skip} but this SEEDSRGenerator has "
                f"img_residual={self.img_residual}: set network_g:img_residual: {str(saved_with_skip).lower()}")
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C_in, h, w) -> (N, C_out, upscale*h, upscale*w)."""
        head = self.se_first(self.conv_first(x))
        features = self.conv_after_body(self.body(head)) + head
        out = self.conv_last(self.upsample(features))
        if self.img_residual:
            out = out + bicubic_upsample(x, self.upscale)
        return out

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

Anisotropic upscaling (through-plane SR of thick-slice CT/MRI): ``upscale: [r, 1]`` with r = 2..8
enlarges the height only, (N, C_in, h, w) -> (N, C_out, r*h, w). r is staged by its prime factors, in ascending
order (r = 2 -> [2], 4 -> [2, 2], 6 -> [2, 3], 8 -> [2, 2, 2], 3, 5 and 7 -> one stage of r); each stage is

    up_f  = SE(PixelShuffle1D_f(conv3x3(F -> f*F)))               (N, F, f*h, w)
            PixelShuffle1D_f: (N, f*F, h, w) -> (N, F, f*h, w), channel c*f + i -> row f*y + i of channel c

and the image skip is 1-D cubic convolution along the height only (``cubic_upsample_height``: torch's bicubic,
a = -0.75, half-pixel centres, border rows repeated, with a width scale of 1, which leaves every column as is).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from medsr_se.archs.improved_se import SE_KINDS, build_se

SUPPORTED_SCALES = (2, 4, 8, 16)
ANISOTROPIC_SCALES = range(2, 9)  # r of upscale: [r, 1]
IMG_RESIDUAL_KEY = "img_residual_marker"


def conv3x3(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=1, padding=1)


def bicubic_upsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic upsampling by ``scale`` (torch's cubic convolution, a = -0.75, half-pixel centres)."""
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)


def cubic_upsample_height(x: torch.Tensor, scale: int) -> torch.Tensor:
    """(N, C, h, w) -> (N, C, scale*h, w): 1-D cubic convolution (a = -0.75, half-pixel centres) along the height."""
    return F.interpolate(x, scale_factor=(float(scale), 1.0), mode="bicubic", align_corners=False)


def scale_hw(upscale: int | list[int] | tuple[int, int]) -> tuple[int, int]:
    """(height scale, width scale) of an ``upscale`` option: 4 -> (4, 4), [3, 1] -> (3, 1); ValueError otherwise."""
    if isinstance(upscale, (list, tuple)):
        values = tuple(upscale)
        if (len(values) != 2 or values[1] != 1 or not all(isinstance(v, int) for v in values)
                or values[0] not in ANISOTROPIC_SCALES):
            raise ValueError(f"SEEDSRGenerator: an anisotropic upscale must be [r, 1] with r in 2..8 (the height "
                             f"grows, the width stays), got {list(values)}")
        return values[0], 1
    if upscale not in SUPPORTED_SCALES:
        raise ValueError(f"SEEDSRGenerator: upscale must be one of {SUPPORTED_SCALES} or [r, 1], got {upscale!r}")
    return upscale, upscale


def stage_factors(upscale: int | list[int] | tuple[int, int]) -> list[tuple[int, int]]:
    """(height, width) factor of every upsampling stage: 8 -> [(2, 2)] * 3; [6, 1] -> [(2, 1), (3, 1)]."""
    height, width = scale_hw(upscale)
    if width == height:
        return [(2, 2)] * int(math.log2(height))
    factors, rest, prime = [], height, 2
    while rest > 1:
        while rest % prime == 0:
            factors.append((prime, 1))
            rest //= prime
        prime += 1
    return factors


def pixel_shuffle_height(x: torch.Tensor, factor: int) -> torch.Tensor:
    """(N, factor*C, h, w) -> (N, C, factor*h, w): input channel c*factor + i becomes row factor*y + i of c."""
    n, channels, height, width = x.shape
    x = x.reshape(n, channels // factor, factor, height, width).permute(0, 1, 3, 2, 4)
    return x.reshape(n, channels // factor, height * factor, width)


class PixelShuffleHeight(nn.Module):
    """The 1-D pixel shuffle as a module (:func:`pixel_shuffle_height`)."""

    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_shuffle_height(x, self.factor)

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


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
    """conv (F -> 4F), PixelShuffle(2), SE: (N, F, h, w) -> (N, F, 2h, 2w); with ``factor=(f, 1)``:
    conv (F -> f·F), 1-D pixel shuffle along the height, SE: (N, F, h, w) -> (N, F, f·h, w)."""

    def __init__(self, num_feat: int, reduction: int, se: str = "improved", factor: tuple[int, int] = (2, 2)) -> None:
        super().__init__()
        self.factor = factor
        self.conv = conv3x3(num_feat, factor[0] * factor[1] * num_feat)
        if factor == (2, 2):
            self.shuffle = nn.PixelShuffle(2)
        else:
            self.shuffle = PixelShuffleHeight(factor[0])
        self.se = build_se(se, num_feat, reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.se.forward_in_place(self.shuffle(self.conv(x)))  # the shuffled map is fresh: rescale in place


class SEEDSRGenerator(nn.Module):
    """The paper's generator (module docstring).

    Args:
        num_in_ch / num_out_ch: image channels (3 for fundus RGB, 1 for CT/MRI slices).
        num_feat: feature width F.
        num_block: number of residual blocks (16 in the paper).
        upscale: 2, 4, 8 or 16 (both axes), or [r, 1] with r = 2..8 (the height only; module docstring).
        res_scale: residual scaling inside each block (EDSR's 0.1 for wide nets; 1 for 64 features).
        reduction: SE reduction ratio.
        img_residual: add a bicubic upsampling of the input to the output (off = the paper's layout).
        se: 'improved' (the paper's SE), 'plain' (the original SE) or 'none' (identity): the ablation switch of
            :mod:`medsr_se.archs.improved_se`, applied to every SE of the network.
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_block: int = 16,
                 upscale: int | list[int] = 4, res_scale: float = 1.0, reduction: int = 16, img_residual: bool = False,
                 se: str = "improved") -> None:
        super().__init__()
        if se not in SE_KINDS:
            raise ValueError(f"SEEDSRGenerator: se must be one of {sorted(SE_KINDS)}, got {se!r}")
        self.scale_hw = scale_hw(upscale)  # (height scale, width scale); ValueError for an unsupported upscale
        if img_residual and num_in_ch != num_out_ch:
            raise ValueError("SEEDSRGenerator: img_residual needs num_in_ch == num_out_ch "
                             f"(got {num_in_ch} and {num_out_ch})")
        self.upscale = list(upscale) if isinstance(upscale, (list, tuple)) else upscale
        self.img_residual = img_residual
        self.conv_first = conv3x3(num_in_ch, num_feat)
        self.se_kind = se
        self.se_first = build_se(se, num_feat, reduction)
        self.body = nn.Sequential(*[ResBlockSE(num_feat, res_scale, reduction, se) for _ in range(num_block)])
        self.conv_after_body = conv3x3(num_feat, num_feat)
        self.upsample = nn.Sequential(*[UpsampleSE(num_feat, reduction, se, factor)
                                        for factor in stage_factors(upscale)])
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
        """(N, C_in, h, w) -> (N, C_out, upscale*h, upscale*w), or (N, C_out, r*h, w) for upscale [r, 1]."""
        head = self.se_first(self.conv_first(x))
        features = self.conv_after_body(self.body(head)) + head
        out = self.conv_last(self.upsample(features))
        if self.img_residual:
            out = out + image_skip(x, self.scale_hw)
        return out


def image_skip(x: torch.Tensor, scale: tuple[int, int]) -> torch.Tensor:
    """The image-level skip: bicubic by s for (s, s), 1-D cubic along the height for (r, 1)."""
    return bicubic_upsample(x, scale[0]) if scale[0] == scale[1] else cubic_upsample_height(x, scale[0])

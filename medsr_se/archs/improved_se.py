"""Improved squeeze-and-excitation block (Bing et al., IEEE Access 2019; slides "Improved SE"), and the two
controls of the ablation study (``se: plain | none``).

For a feature map x of shape (N, C, H, W):

    y   = mean_{H,W} x                                   (N, C, 1, 1)   squeeze
    s   = 2 * [0.8 * sigmoid(W2 ReLU(W1 y)) + 0.2 * sigmoid(y)]   (N, C, 1, 1)   s in (0, 2)
    out = s * x                                          (N, C, H, W)   channel-wise rescaling

W1 (C -> C/r) and W2 (C/r -> C) are 1x1 convolutions with bias, r the reduction ratio (16 by default). Plain SE
uses only sigmoid(W2 ReLU(W1 y)) in (0, 1) and can only shrink features; the identity-like sigmoid(y) term and
the factor 2 let the block keep or amplify a channel, so deep stacks of SE blocks do not fade.

The networks take ``se: improved | plain | none`` (:func:`build_se`), so the paper's claim can be tested on one code
path: ``plain`` is Hu et al.'s original SE, s = σ(W2 δ(W1 y)) in (0, 1), with the same W1/W2 (same parameters,
same state-dict keys); ``none`` is the identity (s = 1, no parameters).

Implementation note (speed and memory only, same values): the squeeze is a sum times 1/(H·W), whose backward is a
broadcast view instead of a full-size tensor; ``ChannelScale`` computes ds as one batched dot product per channel
instead of materialising dL/dout ⊙ x; and ``forward_in_place`` (used by the generator's upsampling stages, whose
input is a fresh PixelShuffle output) rescales x in its own memory and keeps only the output for backward. At x16
the upsampling stages run SE on 64-channel maps of up to 512×512 per image, where full-size temporaries were most
of the block's cost (BENCHMARKS.md, table 1).
"""

from __future__ import annotations

import torch
from torch import nn

from medsr_se.utils.precision import accumulation_dtype


def spatial_mean(x: torch.Tensor) -> torch.Tensor:
    """y = mean_{H,W} x, (N, C, H, W) -> (N, C, 1, 1), as a sum times 1/(H·W) (cheaper backward, see above).

    The sum accumulates in float32 at least (float64 stays float64): in float16 a 512² map of 0.5 already sums to
    131,072 > 65,504 (inf), and bfloat16's 8-bit mantissa would round the sum coarsely.
    """
    return x.sum(dim=(2, 3), keepdim=True, dtype=accumulation_dtype(x.dtype)) * (1.0 / (x.shape[2] * x.shape[3]))


def channel_dots(grad_out: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """<grad_out[n, c], features[n, c]> over H, W for (N, C, H, W) inputs -> (N, C, 1, 1): one batched dot product
    per channel, without materialising grad_out ⊙ features."""
    rows = features.shape[0] * features.shape[1]
    dots = torch.bmm(grad_out.reshape(rows, 1, -1), features.reshape(rows, -1, 1))
    return dots.view(features.shape[0], features.shape[1], 1, 1)


class ChannelScale(torch.autograd.Function):
    """out = x ⊙ s for x (N, C, H, W) and s (N, C, 1, 1), with a lean backward:

        dL/dx = dL/dout ⊙ s            dL/ds = channel_dots(dL/dout, x)
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, scale)
        return x * scale

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x, scale = ctx.saved_tensors
        grad_x = grad_out * scale if ctx.needs_input_grad[0] else None
        grad_scale = channel_dots(grad_out, x) if ctx.needs_input_grad[1] else None
        return grad_x, grad_scale


class ChannelScaleInPlace(torch.autograd.Function):
    """x ⊙= s in x's own memory, keeping only out = x ⊙ s and s for backward:

        dL/dx = dL/dout ⊙ s            dL/ds = channel_dots(dL/dout, out) / s

    s > 0 always (s in (0, 2)); it is clamped to the smallest normal float before dividing, so a scale that
    underflowed to 0 gives a zero gradient instead of a NaN.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        x.mul_(scale)
        ctx.mark_dirty(x)
        ctx.save_for_backward(x, scale)
        return x  # x itself (not mul_'s return value), which torch.compile's fullgraph tracing requires

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        out, scale = ctx.saved_tensors
        grad_x = grad_out * scale if ctx.needs_input_grad[0] else None
        grad_scale = None
        if ctx.needs_input_grad[1]:
            grad_scale = channel_dots(grad_out, out) / scale.clamp_min(torch.finfo(scale.dtype).tiny)
        return grad_x, grad_scale


def autograd_records(x: torch.Tensor, scale: torch.Tensor) -> bool:
    """True while training (a graph is being built through x or s); inference and ONNX export take the plain ops."""
    return torch.is_grad_enabled() and (x.requires_grad or scale.requires_grad)


class ImprovedSE(nn.Module):
    """s = 2·[k_se·σ(W2 δ(W1 y)) + k_id·σ(y)], out = s ⊙ x (see the module docstring).

    Args:
        num_feat: channels C of the input.
        reduction: reduction ratio r of the bottleneck (hidden width max(1, C // r)).
        k_se: weight of the learned excitation (0.8 in the paper).
        k_id: weight of the squeeze-only term σ(y) (0.2 in the paper).
    """

    def __init__(self, num_feat: int, reduction: int = 16, k_se: float = 0.8, k_id: float = 0.2) -> None:
        super().__init__()
        hidden = max(1, num_feat // reduction)
        self.fc1 = nn.Conv2d(num_feat, hidden, kernel_size=1)  # W1
        self.fc2 = nn.Conv2d(hidden, num_feat, kernel_size=1)  # W2
        self.k_se = k_se
        self.k_id = k_id

    def channel_scale(self, pooled: torch.Tensor) -> torch.Tensor:
        """s (N, C, 1, 1) in (0, 2) from the squeezed descriptor y (N, C, 1, 1); float32 unless the weights are of
        lower precision (a ``.half()`` model) and no autocast decides."""
        excitation = torch.sigmoid(self.fc2(torch.relu(self.fc1(pooled.to(self.fc1.weight.dtype)))))
        return 2.0 * (self.k_se * excitation + self.k_id * torch.sigmoid(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """out = s ⊙ x, s from y = mean_{H,W} x (tiled inference applies :meth:`channel_scale` of whole-image
        statistics itself: :mod:`medsr_se.inference.tiling`).

        s is cast to x's dtype before the product (under autocast x may be float16/bfloat16 while s is float32):
        the output keeps x's dtype and both backward products see one dtype."""
        scale = self.channel_scale(spatial_mean(x)).to(x.dtype)
        return ChannelScale.apply(x, scale) if autograd_records(x, scale) else x * scale

    def forward_in_place(self, x: torch.Tensor) -> torch.Tensor:
        """``forward`` that overwrites x with the result: only for an x that nothing else reads afterwards (e.g. a
        fresh PixelShuffle output). Saves one full-size tensor in forward and in what autograd keeps."""
        scale = self.channel_scale(spatial_mean(x)).to(x.dtype)
        return ChannelScaleInPlace.apply(x, scale) if autograd_records(x, scale) else x.mul_(scale)


class PlainSE(ImprovedSE):
    """Hu et al.'s original SE: s = σ(W2 δ(W1 y)) in (0, 1), out = s ⊙ x (the ablation's ``se: plain``).

    Same parameters and state-dict keys as :class:`ImprovedSE`; only the channel scale differs."""

    def channel_scale(self, pooled: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(pooled.to(self.fc1.weight.dtype)))))


class NoSE(nn.Module):
    """The identity in SE's place (the ablation's ``se: none``): s = 1, out = x, no parameters."""

    def channel_scale(self, pooled: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def forward_in_place(self, x: torch.Tensor) -> torch.Tensor:
        return x


SE_KINDS = {"improved": ImprovedSE, "plain": PlainSE, "none": NoSE}


def build_se(kind: str, num_feat: int, reduction: int) -> nn.Module:
    """The SE block named by ``kind`` ('improved', 'plain' or 'none') for ``num_feat`` channels."""
    if kind not in SE_KINDS:
        raise ValueError(f"se must be one of {sorted(SE_KINDS)}, got {kind!r}")
    return NoSE() if kind == "none" else SE_KINDS[kind](num_feat, reduction)

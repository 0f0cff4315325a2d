"""Model size and cost for the comparison table: parameters and GFLOPs per output megapixel.

FLOPs count multiply-adds as two operations, for every ``nn.Conv2d`` (2 · k_h · k_w · C_in / groups · C_out per
output pixel, + 1 per output value for the bias) and ``nn.Linear`` layer, measured with forward hooks on one
probe input and divided by its output megapixels, plus the products of two activations that attention computes
(queries · keysᵀ and weights · values: ``bmm`` / ``baddbmm`` / scaled-dot-product attention, counted by torch's
``FlopCounterMode`` on the same forward pass): 4 · w² · D FLOPs per token of a block with windows of w² tokens and
width D, which the layers' hooks cannot see. Element-wise work (activations, softmax, norms, SE scaling, pixel
shuffle, interpolation) is not counted: it is small beside the products of every network compared here.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

PROBE_LR = 32  # LR pixels of the square probe image
ACTIVATION_PRODUCTS = ("aten.bmm", "aten.baddbmm", "aten._scaled_dot_product")  # op names (prefixes): attention


def parameter_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _layer_flops(module: nn.Module, output: torch.Tensor) -> float:
    if isinstance(module, nn.Conv2d):
        per_value = 2 * module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        return float(output.numel() * (per_value + (module.bias is not None)))
    if isinstance(module, nn.Linear):
        return float(output.numel() * (2 * module.in_features + (module.bias is not None)))
    return 0.0


@torch.no_grad()
def gflops_per_megapixel(net: nn.Module, channels: int) -> float:
    """GFLOPs of one forward pass per output megapixel (module docstring), on a PROBE_LR² input."""
    total = [0.0]
    hooks = [m.register_forward_hook(lambda module, _inputs, output: total.__setitem__(
        0, total[0] + _layer_flops(module, output))) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    parameter = next(net.parameters())
    try:
        with FlopCounterMode(display=False) as counter:
            out = net(torch.zeros(1, channels, PROBE_LR, PROBE_LR, dtype=parameter.dtype, device=parameter.device))
    finally:
        for hook in hooks:
            hook.remove()
    megapixels = out.shape[-2] * out.shape[-1] / 1e6
    return (total[0] + attention_flops(counter)) / 1e9 / megapixels


def attention_flops(counter: FlopCounterMode) -> float:
    """FLOPs of the activation-by-activation products (attention) that ``counter`` saw (module docstring)."""
    counts = counter.get_flop_counts().get("Global", {})
    return float(sum(flops for op, flops in counts.items() if str(op).startswith(ACTIVATION_PRODUCTS)))

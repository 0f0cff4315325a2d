"""Generators that take only sizes of some multiple (BasicSR's SwinIR, RRDBNet at scale 2 / 1), on any image size.

Windowed attention (SwinIR) splits its feature map into windows of ``w x w`` pixels (``window_partition``), so it
only takes inputs whose height and width are multiples of ``w``; BasicSR's RRDBNet at scale 2 (1) first folds
2 x 2 (4 x 4) pixels into channels (``pixel_unshuffle``), so it needs multiples of 2 (4). SwinIR's own test code
(BasicSR's ``SwinIRModel.test``, the original ``SwinIR.check_image_size``) and Real-ESRGAN's ``RealESRGANer``
(``mod_scale``) pad the LR input at the bottom and right by reflection to the next multiple ``m`` and crop the
output back; :func:`any_size` gives a loaded network that behaviour in its own ``forward``:

    y = crop(net(reflect_pad(x, (0, (-W) mod m, 0, (-H) mod m))), s·H, s·W)        x: (N, C, H, W)

so every caller (``upscale``, the tiles, ``medsr-evaluate``'s measurements, the ONNX graph of ``medsr-export``)
sees one network that takes any size. Reflection needs each padding to be shorter than its side
(:func:`check_size` refuses smaller images in one line).

The window ``w`` is read off the network: the least common multiple of the integer ``window_size`` of the network
and its modules (BasicSR's ``SwinTransformerBlock``; a block built with ``img_size`` <= ``window_size`` uses a
smaller window, which is the one that counts); ``m`` is the least common multiple of ``w`` and the unshuffle factor.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from medsr_se.errors import DataError

WINDOW_ATTRIBUTE = "window_size"
UNSHUFFLE = {2: 2, 1: 4}  # RRDBNet's pixel_unshuffle factor per scale (Real-ESRGAN's mod_scale)


def own_window(module: nn.Module) -> int | None:
    """The module's own integer ``window_size`` (> 1), else None (BasicSR's ``WindowAttention`` holds a tuple: its
    block holds the integer)."""
    window = getattr(module, WINDOW_ATTRIBUTE, None)
    return window if isinstance(window, int) and not isinstance(window, bool) and window > 1 else None


def attention_span(module: nn.Module) -> int | None:
    """The side of the windows a block attends within, for its reach: its own ``window_size``
    (:func:`own_window`), or for DAT's adaptive spatial attention (windows of ``split_size`` S1 x S2 in one
    branch, S2 x S1 in the other) the longer side; None for other modules."""
    window = own_window(module)
    if window is not None:
        return window
    split = getattr(module, "split_size", None)
    return max(split) if split is not None and hasattr(module, "attns") else None


def attention_window(net: nn.Module) -> int | None:
    """The side ``w`` of the attention windows (module docstring): the least common multiple of the windows of
    ``net`` and its sub-modules; None for a network without windowed attention."""
    windows = [window for module in net.modules() if (window := own_window(module)) is not None]
    return math.lcm(*windows) if windows else None


def unshuffle_factor(net: nn.Module) -> int | None:
    """The pixel-unshuffle factor of BasicSR's RRDBNet (and its subclasses) at scale 2 or 1, else None."""
    from basicsr.archs.rrdbnet_arch import RRDBNet

    return UNSHUFFLE.get(net.scale) if isinstance(net, RRDBNet) else None


def input_multiple(net: nn.Module) -> int | None:
    """The multiple ``m`` that the network's input height and width must have (module docstring); None for any."""
    factors = [factor for factor in (attention_window(net), unshuffle_factor(net)) if factor]
    return math.lcm(*factors) if factors else None


def multiple_reason(net: nn.Module) -> str:
    """Why the network takes multiples of :func:`input_multiple` only, for messages."""
    reasons = [f"attention windows of {window} pixels" for window in [attention_window(net)] if window]
    reasons += [f"a {factor} x {factor} pixel unshuffle" for factor in [unshuffle_factor(net)] if factor]
    return " and ".join(reasons)


def window_padding(height: int, width: int, multiple: int) -> tuple[int, int]:
    """(rows, cols) of reflection padding that bring height x width to multiples of ``multiple``."""
    return (-height) % multiple, (-width) % multiple


def check_size(height: int, width: int, multiple: int, name: str = "the network") -> None:
    """DataError (a ValueError; one line) when reflection cannot pad height x width to multiples of ``multiple``:
    it mirrors the last rows / columns, so each padding must be shorter than its side."""
    rows, cols = window_padding(height, width, multiple)
    if rows >= height or cols >= width:
        smallest = next(side for side in range(1, multiple + 1) if (-side) % multiple < side)
        raise DataError(f"{width}x{height} pixels is too small for {name}: it takes multiples of {multiple} pixels "
                        f"and pads an image to them by reflection, which needs each side to be at least {smallest} "
                        "pixels")


class SizePadding:
    """Mixin put in front of a network's class by :func:`any_size`: its ``forward`` pads the input by reflection to
    multiples of ``medsr_se_multiple`` and crops the output back (module docstring)."""

    medsr_se_multiple: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        rows, cols = window_padding(height, width, self.medsr_se_multiple)
        if not torch.jit.is_tracing():  # traced sizes (ONNX export) are tensors; the export checks its own size
            check_size(height, width, self.medsr_se_multiple, type(self).__name__)
        padded = F.pad(x, (0, cols, 0, rows), mode="reflect")
        out = super().forward(padded)
        scale_h, scale_w = out.shape[-2] // padded.shape[-2], out.shape[-1] // padded.shape[-1]
        return out[..., :height * scale_h, :width * scale_w]


_PADDED_CLASSES: dict[type, type] = {}


def any_size(net: nn.Module) -> nn.Module:
    """``net`` itself, its class extended by :class:`SizePadding` when it takes only multiples of some size, so that
    it takes inputs of any size (module docstring). The class keeps its name, its state dict its keys, and
    ``isinstance`` still holds; ``net.medsr_se_multiple`` is the multiple. Other networks are returned unchanged."""
    multiple = input_multiple(net)
    if multiple is None or isinstance(net, SizePadding):
        return net
    base = type(net)
    if base not in _PADDED_CLASSES:
        _PADDED_CLASSES[base] = type(base.__name__, (SizePadding, base),
                                     {"__module__": base.__module__, "__qualname__": base.__qualname__,
                                      "__doc__": base.__doc__})
    net.__class__ = _PADDED_CLASSES[base]
    net.medsr_se_multiple = multiple
    return net

"""One rule for reduced-precision tensors: reductions and losses run in float32 at least (float64 stays float64)."""

from __future__ import annotations

import torch


def accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for float16 / bfloat16 / float32, float64 for float64."""
    return torch.promote_types(dtype, torch.float32)


def at_least_float32(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in float32 if it is of lower precision (an autocast output), else unchanged."""
    return tensor.to(accumulation_dtype(tensor.dtype))

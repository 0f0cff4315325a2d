"""``train: precision: fp32 | bf16 | fp16`` for our BasicSR models (BasicSR itself trains in fp32 only).

    precision   forward passes of G, D and the VGG        losses, optimizer state, EMA, saved weights
    fp32        float32 (BasicSR's behaviour, default)   float32
    bf16        torch.autocast(bfloat16), CPU or CUDA    float32
    fp16        torch.autocast(float16), CUDA only        float32, with a dynamic gradient scaler

Autocast runs the convolutions and matrix products in reduced precision and keeps reductions in float32; the SE
squeeze accumulates in float32 itself (:func:`medsr_se.archs.improved_se.spatial_mean`). Losses are computed from
float32 copies of the outputs. The fp16 gradient scaler's state is stored in the training state (``grad_scaler``)
and restored on resume, so a resumed fp16 run continues exactly. Validation always runs in float32, so validation
metrics are those of float32 inference, whatever the training precision. fp16 on a CPU is refused (use bf16).
"""

from __future__ import annotations

import contextlib

import torch

from medsr_se.utils.options import OptionError

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class MixedPrecisionMixin:
    """Put before the BasicSR model class in the bases: the precision is set up first thing in BasicSR's
    ``init_training_settings`` (before its optimizers and losses), without the model calling anything."""

    precision: str = "fp32"
    autocast_dtype: torch.dtype | None = None
    grad_scaler: torch.amp.GradScaler | None = None

    def init_training_settings(self) -> None:
        self.init_precision()
        super().init_training_settings()

    def init_precision(self) -> None:
        name = self.opt["train"].get("precision", "fp32")
        if name not in AUTOCAST_DTYPES:
            raise OptionError(f"train:precision must be one of {', '.join(AUTOCAST_DTYPES)}, got {name!r}")
        if name == "fp16" and self.device.type != "cuda":
            raise OptionError("train:precision fp16 needs a CUDA GPU; on a CPU use bf16")
        self.precision, self.autocast_dtype = name, AUTOCAST_DTYPES[name]
        self.grad_scaler = torch.amp.GradScaler(self.device.type, enabled=name == "fp16")

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward-pass context of the training precision (a no-op in fp32)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def backward(self, loss: torch.Tensor) -> None:
        """loss.backward(), scaled in fp16."""
        (self.grad_scaler.scale(loss) if self.grad_scaler is not None else loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """optimizer.step(), unscaled and skipped on non-finite gradients in fp16."""
        if self.grad_scaler is not None:
            self.grad_scaler.step(optimizer)
        else:
            optimizer.step()

    def end_of_steps(self) -> None:
        """Once per iteration, after every optimizer step: the fp16 scaler adapts its scale."""
        if self.grad_scaler is not None:
            self.grad_scaler.update()

    def extra_training_state(self) -> dict:
        scaler = self.grad_scaler
        return {"grad_scaler": scaler.state_dict()} if scaler is not None and scaler.is_enabled() else {}

    def resume_training(self, resume_state: dict) -> None:
        super().resume_training(resume_state)
        if self.grad_scaler is not None and "grad_scaler" in resume_state:
            self.grad_scaler.load_state_dict(resume_state["grad_scaler"])

"""Per-iteration overhead of BasicSR's models, removed without changing what is computed.

- **Losses read only when logged.** BasicSR's ``reduce_loss_dict`` calls ``.item()`` on every logged term every
  iteration (a host-device synchronisation each on a GPU), although the loop reads them only every
  ``logger:print_freq`` iterations. Here the step keeps the detached loss tensors and
  :meth:`LeanLoopMixin.get_current_log` reduces them when the loop asks (every rank asks at the same iteration,
  so the distributed reduction stays collective).
- **One EMA update.** ``ema = decay·ema + (1 − decay)·param`` for all parameters in one ``torch._foreach_lerp_``
  instead of ~300 small kernels.
- **Fused Adam on CUDA** (``fused=True`` unless the option file says otherwise).
- **Optional compilation** (``train:compile: true``): the training forward passes of G and D go through
  ``torch.compile`` of the same modules (saving, EMA and validation use the modules themselves). Whether it pays
  depends on the machine: BENCHMARKS.md has the measurement; it is off by default.

(Milestones given as fractions of ``total_iter`` change what is computed: :mod:`medsr_se.models.schedule`.)
"""

from __future__ import annotations

from collections import OrderedDict

import torch


class LeanLoopMixin:
    """Put before the BasicSR model class in the bases; the step calls :meth:`remember_losses`."""

    _pending_losses: OrderedDict | None = None
    _compiled: dict | None = None

    def training_forward(self, name: str) -> torch.nn.Module:
        """``self.<name>`` (``net_g`` / ``net_d``), compiled once when ``train:compile`` is on."""
        if not self.opt["train"].get("compile", False):
            return getattr(self, name)
        if self._compiled is None:
            self._compiled = {}
        if name not in self._compiled:
            self._compiled[name] = torch.compile(getattr(self, name))
        return self._compiled[name]

    def remember_losses(self, loss_dict: OrderedDict) -> None:
        self._pending_losses = OrderedDict((name, value.detach()) for name, value in loss_dict.items())

    def get_current_log(self) -> dict:
        if self._pending_losses is not None:
            self.log_dict = self.reduce_loss_dict(self._pending_losses)
            self._pending_losses = None
        return self.log_dict

    def model_ema(self, decay: float = 0.999) -> None:
        net_g = self.get_bare_model(self.net_g)
        ema = [param.data for param in self.net_g_ema.parameters()]
        current = [param.data.to(target.dtype) for param, target in zip(net_g.parameters(), ema)]
        torch._foreach_lerp_(ema, current, 1.0 - decay)

    def get_optimizer(self, optim_type: str, params, lr: float, **kwargs):
        if optim_type == "Adam" and self.device.type == "cuda":
            kwargs.setdefault("fused", True)
        return super().get_optimizer(optim_type, params, lr, **kwargs)

"""``SEEDSRModel``: BasicSR's ``SRModel`` (pixel / perceptual losses) for the PSNR-oriented stage of the recipe
(``options/pretrain_x*.yml``: the generator alone, trained with L1), with ``train:precision``
(:mod:`medsr_se.models.mixed_precision`), milestones as fractions (:mod:`medsr_se.models.schedule`), losses read
only when logged (:mod:`medsr_se.models.lean_loop`), crash-safe checkpoints (:mod:`medsr_se.models.atomic_save`)
and each iteration announced to observers outside the loop (:mod:`medsr_se.models.iteration_observers`).
Every other option is ``SRModel``'s.

The step, for a batch of LR ``lq`` and HR ``gt``: sr = G(lq) (in the training precision); L = L_pix(sr, gt) +
L_percep(sr, gt) from float32 ``sr`` (each term as configured in ``pixel_opt`` / ``perceptual_opt``); one Adam step;
EMA.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from basicsr.models.sr_model import SRModel

from medsr_se.models.atomic_save import AtomicSaveMixin
from medsr_se.models.iteration_observers import IterationObserversMixin
from medsr_se.models.lean_loop import LeanLoopMixin
from medsr_se.models.mixed_precision import MixedPrecisionMixin
from medsr_se.models.schedule import FractionalMilestonesMixin
from medsr_se.utils.precision import at_least_float32


class SEEDSRModel(AtomicSaveMixin, MixedPrecisionMixin, FractionalMilestonesMixin, LeanLoopMixin,
                  IterationObserversMixin, SRModel):
    """BasicSR's ``SRModel`` with ``train:precision``, fractional milestones, lean logging and atomic checkpoints
    (module docstring); the mixins set themselves up inside ``init_training_settings``."""

    def optimize_parameters(self, current_iter: int) -> None:
        self.optimizer_g.zero_grad()
        with self.autocast():
            self.output = self.training_forward("net_g")(self.lq)
        sr = at_least_float32(self.output)
        loss_dict: OrderedDict[str, torch.Tensor] = OrderedDict()
        terms = []
        if self.cri_pix:
            loss_dict["l_pix"] = self.cri_pix(sr, self.gt)
            terms.append(loss_dict["l_pix"])
        if self.cri_perceptual:
            with self.autocast():
                l_percep, l_style = self.cri_perceptual(sr, self.gt)
            for name, term in (("l_percep", l_percep), ("l_style", l_style)):
                if term is not None:
                    loss_dict[name] = at_least_float32(term)
                    terms.append(loss_dict[name])
        self.backward(sum(terms))
        self.step(self.optimizer_g)
        self.end_of_steps()
        self.remember_losses(loss_dict)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

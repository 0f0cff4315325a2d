"""``RelativisticGANModel``: the paper's GAN training step inside BasicSR's SRGAN machinery.

Everything except the step itself is BasicSR's ``SRGANModel``: networks from ``network_g`` / ``network_d``,
pretrained and resume paths, EMA (``ema_decay``), ``net_d_iters`` / ``net_d_init_iters``, optimizers (``optim_g``,
``optim_d``), schedulers, validation, saving. The step, for a batch of LR ``lq`` and HR ``gt``:

    sr = G(lq)
    discriminator (every iteration; gradients now, its update last)
        [d_hr, d_sr] = D(cat[gt, sr.detach()])    one pass over both halves (D has no batch statistics)
        L_D = ½ BCE(d_hr − mean d_sr, 1) + ½ BCE(d_sr − mean d_hr, 0)
    generator     (when current_iter % net_d_iters == 0 and current_iter > net_d_init_iters)
        L_G = FusionLoss(sr, gt, D(sr), d_hr.detach())    VGG + L1 + RaGAN + MSE (``train.fusion_opt``), D frozen
    optimizer steps: G, then D

This is the usual alternating step (G updated against a fixed D, then D on the same sr) with one pass of D over
the HR images fewer: D's weights do not change until both gradients are computed, so the D(gt) logits of the
discriminator pass are exactly those the generator's relativistic term needs.

Logged: every weighted generator term, ``l_d_real``, ``l_d_fake`` and the mean logits ``out_d_real``,
``out_d_fake``. Checkpoints are written atomically (:class:`medsr_se.models.atomic_save.AtomicSaveMixin`).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from basicsr.losses import build_loss
from basicsr.models.srgan_model import SRGANModel

from medsr_se.losses.fusion_loss import relativistic_d_loss
from medsr_se.models.atomic_save import AtomicSaveMixin


class RelativisticGANModel(AtomicSaveMixin, SRGANModel):
    """See the module docstring. Options: ``train.fusion_opt`` (type FusionLoss), plus SRGANModel's own."""

    def init_training_settings(self) -> None:
        train_opt = self.opt["train"]
        if not train_opt.get("fusion_opt"):
            raise ValueError("RelativisticGANModel needs train:fusion_opt (e.g. {type: FusionLoss})")
        super().init_training_settings()
        self.cri_fusion = build_loss(train_opt["fusion_opt"]).to(self.device)

    def _set_d_trainable(self, trainable: bool) -> None:
        for param in self.net_d.parameters():
            param.requires_grad = trainable

    def optimize_parameters(self, current_iter: int) -> None:
        loss_dict: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.output = self.net_g(self.lq)

        self._set_d_trainable(True)
        self.optimizer_d.zero_grad()
        logits = self.net_d(torch.cat([self.gt, self.output.detach()], dim=0))
        d_hr, d_sr = logits.split(self.gt.shape[0], dim=0)
        l_d_real, l_d_fake = relativistic_d_loss(d_sr, d_hr)
        (l_d_real + l_d_fake).backward()

        if current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters:
            self._set_d_trainable(False)  # D is fixed for the generator's update (and gets no gradient from it)
            self.optimizer_g.zero_grad()
            l_g_total, terms = self.cri_fusion(self.output, self.gt, self.net_d(self.output), d_hr.detach())
            l_g_total.backward()
            self.optimizer_g.step()
            self._set_d_trainable(True)
            loss_dict.update(terms)
        self.optimizer_d.step()
        loss_dict["l_d_real"] = l_d_real
        loss_dict["l_d_fake"] = l_d_fake
        loss_dict["out_d_real"] = d_hr.detach().mean()
        loss_dict["out_d_fake"] = d_sr.detach().mean()

        self.log_dict = self.reduce_loss_dict(loss_dict)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

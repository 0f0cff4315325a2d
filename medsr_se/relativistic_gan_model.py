"""``RelativisticGANModel``: the paper's GAN training step inside BasicSR's SRGAN machinery.

Everything except the step itself is BasicSR's ``SRGANModel``: networks from ``network_g`` / ``network_d``,
pretrained and resume paths, EMA (``ema_decay``), ``net_d_iters`` / ``net_d_init_iters``, optimizers (``optim_g``,
``optim_d``), schedulers, validation, saving. The step, for a batch of LR ``lq`` and HR ``gt``:

    sr = G(lq);  [d_hr, d_sr] = D(cat[gt, sr])      one discriminator pass over both halves (D has no batch
                                                    statistics), shared by both updates
    generator     (when current_iter % net_d_iters == 0 and current_iter > net_d_init_iters)
        L_G = FusionLoss(sr, gt, d_sr, d_hr.detach())   VGG + L1 + RaGAN + MSE (``train.fusion_opt``)
        gradients of L_G for G's parameters only
    discriminator (every iteration)
        L_D = ½ BCE(d_hr − mean d_sr, 1) + ½ BCE(d_sr − mean d_hr, 0)
        gradients of L_D for D's parameters only

This is the usual alternating step (G updated with D fixed, then D on the same sr) computed from one pass: D's
weights do not change between the two updates, so D(gt) and D(sr) are the same for both, and each backward is
restricted to its own network (``backward(inputs=...)``), so no gradient leaks across. Without the generator
update (``net_d_init_iters``) D sees sr detached.

Logged: every weighted generator term, ``l_d_real``, ``l_d_fake`` and the mean logits ``out_d_real``,
``out_d_fake``. Checkpoints are written atomically (:class:`medsr_se.checkpoint.AtomicSaveMixin`).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from basicsr.losses import build_loss
from basicsr.models.sr_model import SRModel
from basicsr.models.srgan_model import SRGANModel

from medsr_se.checkpoint import AtomicSaveMixin
from medsr_se.fusion_loss import relativistic_d_loss


class RelativisticGANModel(AtomicSaveMixin, SRGANModel):
    """See the module docstring. Options: ``train.fusion_opt`` (type FusionLoss), plus SRGANModel's own."""

    def init_training_settings(self) -> None:
        train_opt = self.opt["train"]
        if not train_opt.get("fusion_opt"):
            raise ValueError("RelativisticGANModel needs train:fusion_opt (e.g. {type: FusionLoss})")
        super().init_training_settings()
        self.cri_fusion = build_loss(train_opt["fusion_opt"]).to(self.device)

    def optimize_parameters(self, current_iter: int) -> None:
        loss_dict: OrderedDict[str, torch.Tensor] = OrderedDict()
        update_g = current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters
        for param in self.net_d.parameters():  # BasicSR's SRGANModel may have left them frozen
            param.requires_grad = True
        self.optimizer_g.zero_grad()
        self.optimizer_d.zero_grad()

        self.output = self.net_g(self.lq)
        sr = self.output if update_g else self.output.detach()
        logits = self.net_d(torch.cat([self.gt, sr], dim=0))
        d_hr, d_sr = logits.split(self.gt.shape[0], dim=0)
        l_d_real, l_d_fake = relativistic_d_loss(d_sr, d_hr)
        if update_g:
            l_g_total, terms = self.cri_fusion(self.output, self.gt, d_sr, d_hr.detach())
            loss_dict.update(terms)
        # D's backward keeps the shared graph for G's; G's backward, which walks all of it, then frees it
        (l_d_real + l_d_fake).backward(inputs=list(self.net_d.parameters()), retain_graph=update_g)
        if update_g:
            l_g_total.backward(inputs=list(self.net_g.parameters()))
            self.optimizer_g.step()
        self.optimizer_d.step()
        loss_dict["l_d_real"] = l_d_real
        loss_dict["l_d_fake"] = l_d_fake
        loss_dict["out_d_real"] = d_hr.detach().mean()
        loss_dict["out_d_fake"] = d_sr.detach().mean()

        self.log_dict = self.reduce_loss_dict(loss_dict)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)


class SEEDSRModel(AtomicSaveMixin, SRModel):
    """BasicSR's ``SRModel`` (pixel / perceptual losses, for the PSNR-oriented stage) with atomic checkpoints."""

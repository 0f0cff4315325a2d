"""``RelativisticGANModel``: the paper's GAN training step inside BasicSR's SRGAN machinery.

Everything except the step itself is BasicSR's ``SRGANModel``: networks from ``network_g`` / ``network_d``,
pretrained and resume paths, EMA (``ema_decay``), ``net_d_iters`` / ``net_d_init_iters``, optimizers (``optim_g``,
``optim_d``), schedulers, validation, saving. The step, for a batch of LR ``lq`` and HR ``gt``:

    sr = G(lq)
    discriminator (every iteration; gradients now, its update last)
        [d_hr, d_sr] = D(cat[gt, sr.detach()])    one pass over both halves
        L_D = ½ BCE(d_hr − mean d_sr, 1) + ½ BCE(d_sr − mean d_hr, 0)
    generator     (when current_iter % net_d_iters == 0 and current_iter > net_d_init_iters)
        [d_hr', d_sr'] = D(cat[gt, sr])           D frozen; the same batch as D's own pass
        L_G = FusionLoss(sr, gt, d_sr', d_hr'.detach())    VGG + L1 + RaGAN + MSE (``train.fusion_opt``)
    optimizer steps: G, then D

This is the usual alternating step (G updated against a fixed D, then D on the same sr). D always sees a batch of
half HR, half SR: the discriminator normalises with batch statistics (BN,
:mod:`medsr_se.archs.fusion_discriminator_arch`), so its logits for SR depend on the batch they are in, and the
generator must be judged on the kind of batch D learns from (a pass over SR alone would normalise SR by SR's own
statistics, which hides exactly the difference D measures). D's weights do not change until both gradients are
computed, so d_hr' equals d_hr.

The forward passes run in ``train:precision`` (:mod:`medsr_se.models.mixed_precision`); the losses are computed
from float32 copies. BasicSR's own ``pixel_opt`` / ``perceptual_opt`` / ``gan_opt`` are not used by this model
and are refused (set the weights in ``fusion_opt``). Logged: every weighted generator term, ``l_d_real``,
``l_d_fake``, the mean logits ``out_d_real``, ``out_d_fake`` and the learning check's ``d_separation`` and
``d_pairs_ranked`` (:mod:`medsr_se.models.discriminator_watch`: one warning when D stays at chance for
``train:warn_d_chance_iters`` iterations), read only at ``print_freq`` (:mod:`medsr_se.models.lean_loop`).
Checkpoints are written atomically (:mod:`medsr_se.models.atomic_save`).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from basicsr.losses import build_loss
from basicsr.models.srgan_model import SRGANModel
from basicsr.utils import get_root_logger

from medsr_se.losses.fusion_loss import relativistic_d_loss
from medsr_se.models.atomic_save import AtomicSaveMixin
from medsr_se.models.discriminator_watch import DEFAULT_PATIENCE, DiscriminatorWatch, separation
from medsr_se.models.iteration_observers import IterationObserversMixin
from medsr_se.models.lean_loop import LeanLoopMixin
from medsr_se.models.mixed_precision import MixedPrecisionMixin
from medsr_se.models.schedule import FractionalMilestonesMixin
from medsr_se.utils.options import OptionError
from medsr_se.utils.precision import at_least_float32

BASICSR_LOSS_OPTIONS = ("pixel_opt", "perceptual_opt", "gan_opt")


class RelativisticGANModel(AtomicSaveMixin, MixedPrecisionMixin, FractionalMilestonesMixin, LeanLoopMixin,
                           IterationObserversMixin, SRGANModel):
    """See the module docstring. Options: ``train.fusion_opt`` (type FusionLoss), ``train.precision``, plus
    SRGANModel's own."""

    def init_training_settings(self) -> None:
        train_opt = self.opt["train"]
        if not train_opt.get("fusion_opt"):
            raise OptionError("RelativisticGANModel needs train:fusion_opt (e.g. {type: FusionLoss})")
        unused = [f"train:{key}" for key in BASICSR_LOSS_OPTIONS if train_opt.get(key)]
        if unused:
            raise OptionError(f"{', '.join(unused)}: not used by RelativisticGANModel (its loss is train:fusion_opt,"
                              " where every term's weight is set); remove them")
        super().init_training_settings()  # precision and milestones first (the mixins), then SRGANModel's
        self.cri_fusion = build_loss(train_opt["fusion_opt"]).to(self.device)
        self.d_watch = DiscriminatorWatch(train_opt.get("warn_d_chance_iters", DEFAULT_PATIENCE))
        self.current_iter = 0

    def _set_d_trainable(self, trainable: bool) -> None:
        for param in self.net_d.parameters():
            param.requires_grad = trainable

    def optimize_parameters(self, current_iter: int) -> None:
        loss_dict: OrderedDict[str, torch.Tensor] = OrderedDict()
        with self.autocast():
            self.output = self.training_forward("net_g")(self.lq)
        sr = at_least_float32(self.output)

        self._set_d_trainable(True)
        self.optimizer_d.zero_grad()
        with self.autocast():
            logits = self.training_forward("net_d")(torch.cat([self.gt, sr.detach()], dim=0))
        d_hr, d_sr = at_least_float32(logits).split(self.gt.shape[0], dim=0)
        l_d_real, l_d_fake = relativistic_d_loss(d_sr, d_hr)
        self.backward(l_d_real + l_d_fake)

        if current_iter % self.net_d_iters == 0 and current_iter > self.net_d_init_iters:
            self._set_d_trainable(False)  # D is fixed for the generator's update (and gets no gradient from it)
            self.optimizer_g.zero_grad()
            with self.autocast():
                logits_for_g = self.training_forward("net_d")(torch.cat([self.gt, self.output], dim=0))
                d_hr_for_g, d_sr_for_g = at_least_float32(logits_for_g).split(self.gt.shape[0], dim=0)
                l_g_total, terms = self.cri_fusion(sr, self.gt, d_sr_for_g, d_hr_for_g.detach())
            self.backward(l_g_total)
            self.step(self.optimizer_g)
            self._set_d_trainable(True)
            loss_dict.update(terms)
        self.step(self.optimizer_d)
        self.end_of_steps()
        loss_dict["l_d_real"] = l_d_real
        loss_dict["l_d_fake"] = l_d_fake
        loss_dict["out_d_real"] = d_hr.detach().mean()
        loss_dict["out_d_fake"] = d_sr.detach().mean()
        loss_dict["d_separation"], loss_dict["d_pairs_ranked"] = separation(d_hr, d_sr)
        self.d_watch.observe(loss_dict["d_pairs_ranked"], current_iter)
        self.current_iter = current_iter

        self.remember_losses(loss_dict)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def get_current_log(self) -> dict:
        """The logged terms; also the discriminator check of :mod:`medsr_se.models.discriminator_watch`."""
        log = super().get_current_log()
        message = self.d_watch.review(self.current_iter)
        if message:
            get_root_logger().warning(message)
        return log

"""Fusion loss of the paper and the relativistic average GAN (RaGAN) terms it uses.

Generator objective, for SR output ``sr`` and ground truth ``hr`` (N, C, H, W) in [0, 1] and discriminator logits
``d_sr = D(sr)``, ``d_hr = D(hr)`` of shape (N, 1):

    L = w_vgg·L_VGG + w_l1·L1 + w_gan·L_RaGAN + w_mse·L_MSE,   defaults 1, 1, 0.005, 0.5

    L_VGG   = sum_l  layer_weight_l · mean|phi_l(sr) - phi_l(hr)|          (phi: frozen VGG19 features)
    L1      = mean|sr - hr|,   L_MSE = mean (sr - hr)^2
    L_RaGAN = ½ [BCE(d_sr - mean d_hr, 1) + BCE(d_hr - mean d_sr, 0)]       (ESRGAN's generator term)

The discriminator minimises the mirrored term, ½ [BCE(d_hr - mean d_sr, 1) + BCE(d_sr - mean d_hr, 0)], with the
means detached (:func:`relativistic_d_loss`). BCE is ``binary_cross_entropy_with_logits``: the networks return
logits and the sigmoid lives only here.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torch.nn import functional as F

from medsr_se.losses.vgg_features import VGGFeatures
from medsr_se.utils.precision import at_least_float32


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def relativistic_g_loss(d_sr: torch.Tensor, d_hr: torch.Tensor) -> torch.Tensor:
    """½ [BCE(d_sr − mean d_hr, 1) + BCE(d_hr − mean d_sr, 0)]; pass d_hr detached."""
    return 0.5 * (_bce(d_sr - d_hr.mean(), 1.0) + _bce(d_hr - d_sr.mean(), 0.0))


def relativistic_d_loss(d_sr: torch.Tensor, d_hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(real term, fake term) = (½ BCE(d_hr − mean d_sr, 1), ½ BCE(d_sr − mean d_hr, 0)), means detached."""
    real = 0.5 * _bce(d_hr - d_sr.detach().mean(), 1.0)
    fake = 0.5 * _bce(d_sr - d_hr.detach().mean(), 0.0)
    return real, fake


class FusionLoss(nn.Module):
    """L = w_vgg·L_VGG + w_l1·L1 + w_gan·L_RaGAN + w_mse·L_MSE (module docstring).

    Args:
        vgg_weight, l1_weight, gan_weight, mse_weight: the term weights (1, 1, 0.005, 0.5 in the paper).
            A weight of 0 drops the term (vgg_weight 0 builds no VGG at all).
        vgg_layers: VGG layer -> weight, BasicSR's layer names (default ``{'conv5_4': 1.0}`` as ESRGAN).
        vgg_type: ``vgg19`` (default) or ``vgg16``.
        vgg_weights_path: local ImageNet weights; None searches the usual places; ``'random'`` = untrained VGG.
        use_input_norm: normalise inputs with ImageNet statistics before the VGG.
    """

    def __init__(self, vgg_weight: float = 1.0, l1_weight: float = 1.0, gan_weight: float = 0.005,
                 mse_weight: float = 0.5, vgg_layers: dict[str, float] | None = None, vgg_type: str = "vgg19",
                 vgg_weights_path: str | None = None, use_input_norm: bool = True) -> None:
        super().__init__()
        self.vgg_weight = vgg_weight
        self.l1_weight = l1_weight
        self.gan_weight = gan_weight
        self.mse_weight = mse_weight
        self.vgg_layers = dict(vgg_layers or {"conv5_4": 1.0})
        self.vgg = (VGGFeatures(list(self.vgg_layers), vgg_type, vgg_weights_path, use_input_norm)
                    if vgg_weight > 0 else None)

    def perceptual(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """sum_l layer_weight_l · mean|phi_l(sr) − phi_l(hr)|; the HR branch runs without autograd."""
        sr_features = self.vgg(sr)
        with torch.no_grad():
            hr_features = self.vgg(hr)
        # the features may be of reduced precision (autocast); their distance is taken in float32
        return sum(weight * F.l1_loss(at_least_float32(sr_features[name]), at_least_float32(hr_features[name]))
                   for name, weight in self.vgg_layers.items())

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, d_sr: torch.Tensor | None = None,
                d_hr: torch.Tensor | None = None) -> tuple[torch.Tensor, OrderedDict[str, torch.Tensor]]:
        """Total loss and the weighted terms (``l_g_vgg``, ``l_g_l1``, ``l_g_gan``, ``l_g_mse``) for logging.

        The RaGAN term needs both logits; without them (a pixel-only warm-up) it is left out.
        """
        terms: OrderedDict[str, torch.Tensor] = OrderedDict()
        if self.vgg is not None:
            terms["l_g_vgg"] = self.vgg_weight * self.perceptual(sr, hr)
        if self.l1_weight > 0:
            terms["l_g_l1"] = self.l1_weight * F.l1_loss(sr, hr)
        if self.gan_weight > 0 and d_sr is not None and d_hr is not None:
            terms["l_g_gan"] = self.gan_weight * relativistic_g_loss(d_sr, d_hr)
        if self.mse_weight > 0:
            terms["l_g_mse"] = self.mse_weight * F.mse_loss(sr, hr)
        if not terms:
            raise ValueError("FusionLoss: every term has weight 0")
        total = sum(terms.values())
        terms["l_g_total"] = total
        return total, terms

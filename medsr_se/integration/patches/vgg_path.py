"""BasicSR's ``VGGFeatureExtractor`` looks for ``experiments/pretrained_models/vgg19-dcbb9e9d.pth`` relative to the
working directory and otherwise downloads (fails offline). When that file is missing but torch's hub cache holds the
same file, BasicSR is pointed at it."""

from __future__ import annotations

from os import path as osp


def needed() -> bool:
    """BasicSR's path is missing but a local copy exists elsewhere (else there is nothing to point BasicSR at)."""
    from basicsr.archs import vgg_arch

    from medsr_se.losses.vgg_features import find_vgg_weights

    return not osp.isfile(vgg_arch.VGG_PRETRAIN_PATH) and find_vgg_weights("vgg19") is not None


def apply() -> None:
    from basicsr.archs import vgg_arch

    from medsr_se.losses.vgg_features import find_vgg_weights

    vgg_arch.VGG_PRETRAIN_PATH = find_vgg_weights("vgg19")

"""VGG feature extractor for the perceptual term, loading ImageNet weights from a local file only.

BasicSR's ``VGGFeatureExtractor`` downloads the weights when ``experiments/pretrained_models`` lacks them, which
fails offline and on clusters without internet. Here the weights are looked up, in order, at:

1. the path given in the options (``vgg_weights_path``),
2. torch's hub cache, ``<torch.hub.get_dir()>/checkpoints/<file>`` (where torchvision puts downloads),
3. BasicSR's ``experiments/pretrained_models/<file>`` under the working directory,

and a missing file is a ``FileNotFoundError`` that says where to put it. A randomly initialised VGG is built only
when the options say ``vgg_weights_path: random`` (tests and demos), never silently.

Input: images in [0, 1], shape (N, C, H, W) with C = 3, or C = 1 (grayscale is repeated to three channels).
Output: dict layer name -> feature map, layer names as in BasicSR (``conv5_4``, ``relu4_4``, ...).
"""

from __future__ import annotations

import os
from os import path as osp

import torch
from basicsr.archs.vgg_arch import NAMES
from torch import nn
from torchvision.models import vgg as tv_vgg

from medsr_se.errors import MedSRError

RANDOM_WEIGHTS = "random"
WEIGHT_FILES = {"vgg19": "vgg19-dcbb9e9d.pth", "vgg16": "vgg16-397923af.pth"}
LAYER_CONFIGS = {"vgg19": "E", "vgg16": "D"}  # torchvision's names for the two layouts
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def candidate_paths(vgg_type: str) -> list[str]:
    """Where a local copy of torchvision's ImageNet weights for ``vgg_type`` is looked for (in order)."""
    file_name = WEIGHT_FILES[vgg_type]
    return [osp.join(torch.hub.get_dir(), "checkpoints", file_name),
            osp.join(os.getcwd(), "experiments", "pretrained_models", file_name)]


class MissingVGGWeights(MedSRError, FileNotFoundError):
    """No local VGG weights file where the options or the usual places say (the message names them)."""


def find_vgg_weights(vgg_type: str = "vgg19") -> str | None:
    return next((path for path in candidate_paths(vgg_type) if osp.isfile(path)), None)


def resolve_vgg_weights(vgg_type: str, weights_path: str | None) -> str | None:
    """The weights file to load, or None for an explicitly random VGG; MissingVGGWeights when none is found."""
    if vgg_type not in WEIGHT_FILES:
        raise ValueError(f"vgg_type must be one of {sorted(WEIGHT_FILES)}, got {vgg_type!r}")
    if weights_path == RANDOM_WEIGHTS:
        return None
    if weights_path is not None:
        weights_path = osp.expanduser(weights_path)
        if not osp.isfile(weights_path):
            raise MissingVGGWeights(f"vgg_weights_path: no file at {weights_path}")
        return weights_path
    found = find_vgg_weights(vgg_type)
    if found is None:
        places = "\n  ".join(candidate_paths(vgg_type))
        raise MissingVGGWeights(
            f"ImageNet weights for {vgg_type} ({WEIGHT_FILES[vgg_type]}) were not found and cannot be downloaded "
            f"here. Put the file at one of\n  {places}\nor set vgg_weights_path in the loss options; "
            f"vgg_weights_path: {RANDOM_WEIGHTS} builds an untrained VGG (for tests only).")
    return found


class VGGFeatures(nn.Module):
    """Frozen VGG features up to the deepest requested layer (see the module docstring)."""

    def __init__(self, layer_names: list[str], vgg_type: str = "vgg19", weights_path: str | None = None,
                 use_input_norm: bool = True) -> None:
        super().__init__()
        resolved = resolve_vgg_weights(vgg_type, weights_path)
        self.weights_file = resolved
        names = NAMES[vgg_type]
        unknown = [name for name in layer_names if name not in names]
        if unknown:
            raise ValueError(f"unknown {vgg_type} layer(s) {unknown}; valid names: {names}")
        # the convolutional part only: the classifier (120M parameters) is never used
        features = tv_vgg.make_layers(tv_vgg.cfgs[LAYER_CONFIGS[vgg_type]], batch_norm=False)
        if resolved is not None:
            state = torch.load(resolved, map_location="cpu", weights_only=True)
            features.load_state_dict({key[len("features."):]: value for key, value in state.items()
                                      if key.startswith("features.")})
        last = max(names.index(name) for name in layer_names)
        self.layer_names = list(layer_names)
        self.features = nn.Sequential(*list(features.children())[: last + 1])
        self.names = names[: last + 1]
        # torchvision's ReLUs work in place: a requested conv output followed by one would be returned after ReLU
        layers = list(self.features)
        self.overwritten = {name for index, name in enumerate(self.names[:-1])
                            if name in self.layer_names and getattr(layers[index + 1], "inplace", False)}
        self.use_input_norm = use_input_norm
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatures:  # always frozen, always in eval mode
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        features = {}
        for name, layer in zip(self.names, self.features):
            x = layer(x)
            if name in self.layer_names:
                features[name] = x.clone() if name in self.overwritten else x
        return features

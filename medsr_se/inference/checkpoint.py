"""Reading a trained generator from a BasicSR network checkpoint (``net_g_*.pth``): any architecture of BasicSR's
ARCH_REGISTRY (ours included).

A BasicSR ``net_g_*.pth`` holds ``params`` (and ``params_ema`` when EMA was on). Checkpoints written with the plugin
loaded also hold ``medsr_se_network_g``, the ``network_g`` options the generator was built from: every constructor
argument, ``res_scale`` included, which cannot be read off the weights. Without it the options come from the option
file the user gives (``--opt``); for a SEEDSRGenerator without either (checkpoints of earlier versions) the
architecture is read off the tensors themselves (channels, width, depth, scale, SE reduction, image skip, SE present
or not) and ``res_scale`` is assumed 1.0; ``se: plain`` has the same tensors as ``se: improved`` and is only known
from the stored options.
Writing checkpoints is the models' business (:mod:`medsr_se.models.atomic_save`).
"""

from __future__ import annotations

import math
import pickle
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from os import path as osp

import torch

from medsr_se.archs.seedsr_arch import IMG_RESIDUAL_KEY, SEEDSRGenerator
from medsr_se.io.intensity import IntensityModel

# What our models add to a BasicSR net_g checkpoint (written by :mod:`medsr_se.models.atomic_save`)
NETWORK_OPTIONS_KEY = "medsr_se_network_g"  # the network_g options the generator was built from
DATA_KEY = "medsr_se_data"  # the training data record: modality, intensity model, dataset folder

# What torch.load(weights_only=True) raises for a file that is not a whole torch checkpoint (probed on truncated,
# empty, bit-flipped, plain-text, non-torch zip and arbitrary-pickle files, zip and legacy formats). Anything else
# (a TypeError from a wrong call, say) is a programming error and surfaces as itself.
TORCH_LOAD_ERRORS = (OSError, EOFError, RuntimeError, pickle.UnpicklingError, UnicodeDecodeError, struct.error,
                     IndexError, KeyError, AssertionError)


class CheckpointError(ValueError):
    """A file that is not a usable generator checkpoint (or not the one asked for); the message names it."""


@dataclass(frozen=True)
class TrainingData:
    """What a checkpoint of our models records about its training set (:data:`DATA_KEY`, written by
    :func:`medsr_se.models.atomic_save.training_data_record` from the prepared dataset's ``manifest.json``).
    Every field is None for a checkpoint without the record (other BasicSR models, earlier versions)."""

    modality: str | None = None  # DICOM modality of the training volumes ('CT', 'MR'); None for photographs
    intensity: dict | None = None  # the training set's IntensityModel.to_dict()
    dataset: str | None = None  # folder of the prepared dataset

    @classmethod
    def from_checkpoint(cls, saved: object) -> TrainingData:
        """The record of a loaded checkpoint dict; empty fields where it is absent or not a record."""
        record = saved.get(DATA_KEY) if isinstance(saved, dict) else None
        if not isinstance(record, dict):
            return cls()
        intensity = record.get("intensity")
        return cls(modality=record.get("modality"), intensity=intensity if isinstance(intensity, dict) else None,
                   dataset=record.get("dataset"))

    def intensity_model(self) -> IntensityModel | None:
        """The recorded intensity model; None when none was recorded or only the stored type's full range
        (``kind: dtype``, which inference derives from each input itself)."""
        if not self.intensity or self.intensity.get("kind") == "dtype":
            return None
        return IntensityModel.from_dict(self.intensity)


def read_checkpoint(path: str) -> object:
    """``torch.load`` of ``path`` onto the CPU, weights only; FileNotFoundError when it is not a file,
    CheckpointError naming it when torch cannot read it (:data:`TORCH_LOAD_ERRORS`)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except TORCH_LOAD_ERRORS as error:
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        raise CheckpointError(f"{path}: cannot be read as a torch checkpoint ({reason})") from error


def load_training_data(path: str) -> TrainingData:
    """What the checkpoint ``path`` records about its training set (:class:`TrainingData`)."""
    return TrainingData.from_checkpoint(read_checkpoint(path))


def generator_config(state: dict[str, torch.Tensor]) -> dict:
    """SEEDSRGenerator keyword arguments that reproduce the layout of ``state``."""
    try:
        conv_first, conv_last = state["conv_first.weight"], state["conv_last.weight"]
        state["conv_after_body.weight"], state["upsample.0.conv.weight"]  # noqa: B018  (RRDBNet, EDSR lack them)
        num_feat = conv_first.shape[0]
        has_se = "se_first.fc1.weight" in state
        return {
            "num_in_ch": conv_first.shape[1], "num_out_ch": conv_last.shape[0], "num_feat": num_feat,
            "num_block": len({m.group(1) for key in state if (m := re.match(r"body\.(\d+)\.", key))}),
            "upscale": upscale_of(state, num_feat),
            "reduction": num_feat // state["se_first.fc1.weight"].shape[0] if has_se else 16,
            "img_residual": IMG_RESIDUAL_KEY in state,
            "se": "improved" if has_se else "none",
        }
    except KeyError as error:
        raise CheckpointError(f"not a SEEDSRGenerator state dict (missing {error})") from error


def upscale_of(state: dict[str, torch.Tensor], num_feat: int) -> int | list[int]:
    """The ``upscale`` of a state dict, from its upsampling convolutions: 4F outputs = an isotropic x2 stage,
    f·F with f prime = a stage of f along the height (``upscale: [r, 1]``, r the product of the stages)."""
    stages = sorted({int(m.group(1)) for key in state if (m := re.match(r"upsample\.(\d+)\.conv\.weight", key))})
    factors = [state[f"upsample.{index}.conv.weight"].shape[0] // num_feat for index in stages]
    if all(factor == 4 for factor in factors):
        return 2 ** len(factors)
    return [math.prod(factors), 1]


SEEDSR_TYPE = "SEEDSRGenerator"
SCALE_KEYS = ("upscale", "scale")  # what BasicSR's generators call their scale (EDSR / MSRResNet, RRDBNet)


def network_options(saved, options: Mapping | None) -> dict | None:
    """The ``network_g`` options to build the checkpoint's generator from: those stored in it, else ``options``
    (its option file's ``network_g``, or the whole option file), else None."""
    stored = saved.get(NETWORK_OPTIONS_KEY) if isinstance(saved, dict) else None
    if isinstance(stored, Mapping):
        return dict(stored)
    if options is not None:
        options = options.get("network_g", options)
        return dict(options) if isinstance(options, Mapping) else None
    return None


def network_option_file(path: str | None) -> dict | None:
    """The ``network_g`` of an option file (``--opt``: a path or a recipe name), None for None; an error naming the
    file when it cannot be read or has no ``network_g``."""
    if path is None:
        return None
    from medsr_se.utils.options import load_recipe

    options = load_recipe(path)
    network = options.get("network_g") if isinstance(options, Mapping) else None
    if not isinstance(network, Mapping) or "type" not in network:
        raise CheckpointError(f"--opt {path}: has no network_g with a type (give the option file the checkpoint "
                              "was trained with)")
    return dict(network)


def without_type(options: Mapping) -> dict:
    return {key: value for key, value in options.items() if key != "type"}


def network_scale(options: Mapping) -> int | None:
    """The scale in a ``network_g`` (``upscale`` or ``scale``), None when it names none."""
    return next((options[key] for key in SCALE_KEYS if key in options), None)


def build_basicsr_generator(path: str, network: dict, state: dict[str, torch.Tensor],
                            expected: Mapping) -> torch.nn.Module:
    """Any generator of BasicSR's ARCH_REGISTRY (ours included) from ``network`` (``type`` + keyword arguments),
    its weights loaded strictly; errors name the file."""
    from basicsr.archs import build_network
    from basicsr.utils.registry import ARCH_REGISTRY

    kind = network["type"]
    if kind not in ARCH_REGISTRY:
        raise CheckpointError(f"{path}: its network_g type {kind!r} is not a registered BasicSR architecture")
    scale = network_scale(network)
    if scale is None:
        raise CheckpointError(f"{path}: its network_g ({kind}) names no upscale / scale")
    for key, value in expected.items():
        recorded = scale if key == "upscale" else network.get(key)
        if value is not None and recorded != value:
            raise CheckpointError(f"{path}: trained with {key}={recorded}, but {key}={value} was asked for")
    try:
        net = build_network(dict(network))
        net.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError, KeyError) as error:
        raise CheckpointError(f"{path}: its weights do not fit {kind}({without_type(network)}) "
                              f"({state_dict_mismatch(error)})") from error
    net.upscale = scale
    net.scale_hw = (scale, scale)
    return net


LAYOUT_KEYS = ("num_in_ch", "num_out_ch", "num_feat", "num_block", "upscale", "img_residual")


def check_recorded_layout(path: str, config: dict, state: dict[str, torch.Tensor]) -> None:
    """The network options recorded with a checkpoint against the layout its weights have: one line naming the
    first disagreement (a recorded upscale=4 with the weights of an x2 network, say)."""
    try:
        weights = generator_config(state)
    except CheckpointError:
        return  # load_state_dict says what is missing
    for key in LAYOUT_KEYS:
        if key in config and config[key] != weights[key]:
            raise CheckpointError(f"{path}: its recorded network_g says {key}={config[key]}, but its weights are "
                                  f"those of {key}={weights[key]}; the checkpoint is inconsistent (re-save it from "
                                  "the training run)")


def state_dict_mismatch(error: Exception) -> str:
    """torch's multi-line load_state_dict text in one line: the counts and the first key of each kind."""
    text = str(error)
    parts = []
    for label in ("Missing key(s)", "Unexpected key(s)", "size mismatch"):
        found = re.findall(r'"([^"]+)"', text.split(label, 1)[1].split("\n", 1)[0]) if label in text else []
        if label == "size mismatch":
            found = re.findall(r"size mismatch for ([^:]+):", text)
        if found:
            parts.append(f"{len(found)} {label.lower()}, e.g. {found[0]}")
    return "; ".join(parts) or " ".join(text.split())


def load_generator(path: str, param_key: str = "params_ema", device: str | torch.device = "cpu",
                   options: Mapping | None = None, **expected) -> torch.nn.Module:
    """The generator in ``path`` (``params_ema`` if present, else ``params``), in eval mode.

    Any BasicSR generator loads: it is built from the ``network_g`` options stored in the checkpoint (every
    checkpoint our models write, and those of BasicSR's own models trained with the plugin loaded), else from
    ``options`` (the ``network_g`` of the option file it was trained with: ``--opt`` of the commands), else, for a
    SEEDSRGenerator only, from the layout of its weights. ``net.upscale`` is its scale whatever the architecture
    calls it (RRDBNet: ``scale``; EDSR: ``upscale``), ``net.scale_hw`` its (height, width) factors.

    What the checkpoint records about its training set: :func:`load_training_data`.

    ``expected`` (e.g. ``upscale=4``) is checked against the checkpoint, with an error naming the file.
    """
    saved = read_checkpoint(path)
    if isinstance(saved, dict) and param_key not in saved and "params" in saved:
        param_key = "params"
    state = saved.get(param_key, saved) if isinstance(saved, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a BasicSR network checkpoint")
    network = network_options(saved, options)
    if network is not None and network.get("type", SEEDSR_TYPE) != SEEDSR_TYPE:
        net = build_basicsr_generator(path, network, state, expected)
        return net.eval().to(device)
    try:
        config = without_type(network) if network is not None else generator_config(state)
    except CheckpointError as error:
        hint = "" if isinstance(saved, dict) and NETWORK_OPTIONS_KEY in saved else (
            "; if it is another BasicSR generator, give the option file it was trained with (--opt options.yml)")
        raise CheckpointError(f"{path}: {error}{hint}") from error
    for key, value in expected.items():
        if value is not None and config.get(key) != value:
            through_plane = isinstance(config.get("upscale"), (list, tuple)) and key == "upscale"
            raise CheckpointError(f"{path}: trained with {key}={config.get(key)}, but {key}={value} was asked for"
                                  + (" (a through-plane model: medsr-selfsr --model takes it)" if through_plane
                                     else ""))
    check_recorded_layout(path, config, state)
    try:
        net = SEEDSRGenerator(**config)
        net.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: its weights do not fit SEEDSRGenerator({config}) "
                              f"({state_dict_mismatch(error)})") from error
    return net.eval().to(device)

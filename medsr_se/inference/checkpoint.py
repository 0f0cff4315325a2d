"""Reading a trained ``SEEDSRGenerator`` from a BasicSR network checkpoint (``net_g_*.pth``).

A BasicSR ``net_g_*.pth`` holds ``params`` (and ``params_ema`` when EMA was on). Checkpoints written by our models
also hold ``medsr_se_network_g``, the ``network_g`` options the generator was built from: every constructor
argument, ``res_scale`` included, which cannot be read off the weights. Without it (checkpoints of earlier
versions, or written by other BasicSR models) the architecture is read off the tensors themselves (channels,
width, depth, scale, SE reduction, image skip, SE present or not) and ``res_scale`` is assumed 1.0; ``se: plain`` has
the same tensors as ``se: improved`` and is only known from the stored options.
Writing checkpoints is the models' business (:mod:`medsr_se.models.atomic_save`).
"""

from __future__ import annotations

import re
from os import path as osp

import torch

from medsr_se.archs.seedsr_arch import IMG_RESIDUAL_KEY, SEEDSRGenerator

# What our models add to a BasicSR net_g checkpoint (written by :mod:`medsr_se.models.atomic_save`)
NETWORK_OPTIONS_KEY = "medsr_se_network_g"  # the network_g options the generator was built from
DATA_KEY = "medsr_se_data"  # the training data record: modality, intensity model, dataset folder


class CheckpointError(ValueError):
    """A file that is not a SEEDSRGenerator checkpoint; the message names it."""


def generator_config(state: dict[str, torch.Tensor]) -> dict:
    """SEEDSRGenerator keyword arguments that reproduce the layout of ``state``."""
    try:
        conv_first, conv_last = state["conv_first.weight"], state["conv_last.weight"]
        num_feat = conv_first.shape[0]
        has_se = "se_first.fc1.weight" in state
        return {
            "num_in_ch": conv_first.shape[1], "num_out_ch": conv_last.shape[0], "num_feat": num_feat,
            "num_block": len({m.group(1) for key in state if (m := re.match(r"body\.(\d+)\.", key))}),
            "upscale": 2 ** len({m.group(1) for key in state if (m := re.match(r"upsample\.(\d+)\.", key))}),
            "reduction": num_feat // state["se_first.fc1.weight"].shape[0] if has_se else 16,
            "img_residual": IMG_RESIDUAL_KEY in state,
            "se": "improved" if has_se else "none",
        }
    except KeyError as error:
        raise CheckpointError(f"not a SEEDSRGenerator state dict (missing {error})") from error


def stored_config(saved: dict) -> dict | None:
    """SEEDSRGenerator keyword arguments stored with the checkpoint by our models (None when absent)."""
    options = saved.get(NETWORK_OPTIONS_KEY) if isinstance(saved, dict) else None
    if not isinstance(options, dict):
        return None
    if options.get("type", "SEEDSRGenerator") != "SEEDSRGenerator":
        raise CheckpointError(f"network_g is a {options.get('type')}, not a SEEDSRGenerator")
    return {key: value for key, value in options.items() if key != "type"}


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
                   **expected) -> SEEDSRGenerator:
    """The generator in ``path`` (``params_ema`` if present, else ``params``), in eval mode.

    ``net.training_data`` holds what the checkpoint records about its training set (modality, intensity model;
    {} for checkpoints without the record).

    ``expected`` (e.g. ``upscale=4``) is checked against the checkpoint, with an error naming the file.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a file that is not a checkpoint
        raise CheckpointError(f"{path}: cannot be read as a torch checkpoint ({error})") from error
    if isinstance(saved, dict) and param_key not in saved and "params" in saved:
        param_key = "params"
    state = saved.get(param_key, saved) if isinstance(saved, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a BasicSR network checkpoint")
    try:
        config = stored_config(saved) or generator_config(state)
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from error
    for key, value in expected.items():
        if value is not None and config.get(key) != value:
            raise CheckpointError(f"{path}: trained with {key}={config.get(key)}, but {key}={value} was asked for")
    check_recorded_layout(path, config, state)
    try:
        net = SEEDSRGenerator(**config)
        net.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: its weights do not fit SEEDSRGenerator({config}) "
                              f"({state_dict_mismatch(error)})") from error
    record = saved.get(DATA_KEY) if isinstance(saved, dict) else None
    net.training_data = record if isinstance(record, dict) else {}
    return net.eval().to(device)

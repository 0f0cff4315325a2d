"""Loading a trained ``SEEDSRGenerator`` from a BasicSR checkpoint and super-resolving numpy images with it.

A BasicSR ``net_g_*.pth`` holds ``params`` (and ``params_ema`` when EMA was on). The architecture is read off the
tensors themselves (channels, width, depth, scale, SE reduction, image skip), so no option file is needed.
"""

from __future__ import annotations

import re
from os import path as osp

import numpy as np
import torch

from medsr_se.seedsr_arch import IMG_RESIDUAL_KEY, SEEDSRGenerator


class CheckpointError(ValueError):
    """A file that is not a SEEDSRGenerator checkpoint; the message names it."""


def generator_config(state: dict[str, torch.Tensor]) -> dict:
    """SEEDSRGenerator keyword arguments that reproduce the layout of ``state``."""
    try:
        conv_first, conv_last = state["conv_first.weight"], state["conv_last.weight"]
        num_feat = conv_first.shape[0]
        return {
            "num_in_ch": conv_first.shape[1], "num_out_ch": conv_last.shape[0], "num_feat": num_feat,
            "num_block": len({m.group(1) for key in state if (m := re.match(r"body\.(\d+)\.", key))}),
            "upscale": 2 ** len({m.group(1) for key in state if (m := re.match(r"upsample\.(\d+)\.", key))}),
            "reduction": num_feat // state["se_first.fc1.weight"].shape[0],
            "img_residual": IMG_RESIDUAL_KEY in state,
        }
    except KeyError as error:
        raise CheckpointError(f"not a SEEDSRGenerator state dict (missing {error})") from error


def load_generator(path: str, param_key: str = "params_ema", device: str | torch.device = "cpu",
                   **expected) -> SEEDSRGenerator:
    """The generator in ``path`` (``params_ema`` if present, else ``params``), in eval mode.

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
        config = generator_config(state)
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from error
    for key, value in expected.items():
        if value is not None and config.get(key) != value:
            raise CheckpointError(f"{path}: trained with {key}={config.get(key)}, but {key}={value} was asked for")
    net = SEEDSRGenerator(**config)
    try:
        net.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: does not match SEEDSRGenerator({config}): {error}") from error
    return net.eval().to(device)


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W) or (H, W, C) BGR uint8/uint16 -> (1, C, H, W) RGB float in [0, 1]."""
    peak = float(np.iinfo(image.dtype).max)
    array = image.astype(np.float32) / peak
    if array.ndim == 2:
        array = array[:, :, None]
    elif array.shape[2] == 3:
        array = array[:, :, ::-1]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).unsqueeze(0)


def tensor_to_image(tensor: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    """Inverse of :func:`image_to_tensor`, rounded and clipped to ``dtype``."""
    array = tensor.squeeze(0).detach().float().cpu().clamp_(0, 1).numpy().transpose(1, 2, 0)
    if array.shape[2] == 3:
        array = array[:, :, ::-1]
    elif array.shape[2] == 1:
        array = array[:, :, 0]
    peak = float(np.iinfo(dtype).max)
    return np.round(array * peak).astype(dtype)


@torch.no_grad()
def upscale(image: np.ndarray, model: SEEDSRGenerator, tile: int = 0, tile_pad: int = 4) -> np.ndarray:
    """Super-resolve one image; dtype (uint8 / uint16) and channel count are kept.

    ``tile`` > 0 processes LR tiles of that size with :func:`medsr_se.tiling.tiled_forward`, which gives the
    whole-image result with far less memory. A gray image through a 3-channel model is converted and back.
    """
    from medsr_se.tiling import tiled_forward

    parameter = next(model.parameters())
    model_channels = model.conv_first.in_channels
    pixels = image[:, :, :3] if image.ndim == 3 and image.shape[2] == 4 else image
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if channels == 1 and model_channels == 3:
        pixels = np.repeat(pixels.reshape(*pixels.shape[:2], 1), 3, axis=2)
    elif channels != model_channels:
        raise ValueError(f"the model takes {model_channels}-channel images, this one has {channels} channels")
    lr = image_to_tensor(pixels).to(device=parameter.device, dtype=parameter.dtype)
    scale = model.upscale
    shape = (pixels.shape[0] * scale, pixels.shape[1] * scale) + pixels.shape[2:]
    output = np.empty(shape, image.dtype)  # tiles are quantised straight into it

    def write_tile(rows: slice, cols: slice, values: torch.Tensor) -> None:
        output[rows, cols] = tensor_to_image(values, image.dtype)

    tiled_forward(model, lr, tile, tile_pad, sink=write_tile)
    if channels == 1 and model_channels == 3:
        output = np.round(output.astype(np.float64).mean(axis=2)).astype(image.dtype)
    return output

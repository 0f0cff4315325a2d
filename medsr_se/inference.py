"""The Python API of inference: super-resolving numpy images with a trained ``SEEDSRGenerator``.

    from medsr_se.inference import load_generator, upscale
    net = load_generator("experiments/SEEDSR_GAN_x4/models/net_g_latest.pth")
    sr = upscale(image, net, tile=128)

``load_generator`` (re-exported from :mod:`medsr_se.checkpoint`) reads the architecture off the checkpoint;
``upscale`` keeps the image's dtype and channel count and can tile (:mod:`medsr_se.archs.seedsr_tiling`).
"""

from __future__ import annotations

import numpy as np
import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.checkpoint import CheckpointError, load_generator

__all__ = ["CheckpointError", "image_to_tensor", "load_generator", "tensor_to_image", "upscale"]


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

    ``tile`` > 0 processes LR tiles of that size with
    :func:`medsr_se.archs.seedsr_tiling.tiled_forward`, which gives the whole-image result with far less memory.
    A gray image through a 3-channel model is converted and back.
    """
    from medsr_se.archs.seedsr_tiling import tiled_forward

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

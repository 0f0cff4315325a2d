"""The Python API of inference: super-resolving numpy images with a trained ``SEEDSRGenerator``.

    from medsr_se.inference import load_generator, upscale
    net = load_generator("experiments/SEEDSR_GAN_x4/models/net_g_latest.pth")
    sr = upscale(image, net, tile=128)

``load_generator`` (re-exported from :mod:`medsr_se.checkpoint`) reads the architecture off the checkpoint;
``upscale`` keeps the image's dtype and channel count and can tile (:mod:`medsr_se.archs.seedsr_tiling`).
"""

from __future__ import annotations

import os

import numpy as np
import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.bicubic import matlab_bicubic
from medsr_se.checkpoint import CheckpointError, load_generator

__all__ = ["CheckpointError", "image_to_tensor", "load_generator", "plan_tile", "tensor_to_image", "upscale"]

GIB = float(1 << 30)
AUTO_TILE = 128  # LR tile size chosen when a whole image would not fit (the measured setting of BENCHMARKS.md)


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
    """Inverse of :func:`image_to_tensor`, rounded and clipped to ``dtype``. The arithmetic runs where the tensor
    is (on a GPU only the integer pixels cross to the host; round-half-to-even like numpy)."""
    peak = float(np.iinfo(dtype).max)
    integer = torch.uint8 if np.dtype(dtype) == np.uint8 else torch.int32
    pixels = torch.round(tensor.squeeze(0).detach().float().clamp(0, 1) * peak).to(integer)
    array = pixels.cpu().numpy().transpose(1, 2, 0)
    if array.shape[2] == 3:
        array = array[:, :, ::-1]
    elif array.shape[2] == 1:
        array = array[:, :, 0]
    return array.astype(dtype)


@torch.no_grad()
def upscale(image: np.ndarray, model: SEEDSRGenerator, tile: int = 0, tile_pad: int = 4) -> np.ndarray:
    """Super-resolve one image; dtype (uint8 / uint16) and channel count are kept.

    ``tile`` > 0 processes LR tiles of that size with
    :func:`medsr_se.archs.seedsr_tiling.tiled_forward`, which gives the whole-image result with far less memory.
    A gray image through a 3-channel model is converted and back. 16-bit images on CUDA are computed without TF32.
    A 4-channel (BGRA) image keeps its alpha: the
    colour goes through the network, the alpha channel is resized with MATLAB-style bicubic, as image tools do.
    """
    if image.ndim == 3 and image.shape[2] == 4:
        colour = upscale(np.ascontiguousarray(image[:, :, :3]), model, tile, tile_pad)
        return np.dstack([colour, matlab_bicubic(np.ascontiguousarray(image[:, :, 3]), model.upscale)])
    from medsr_se.archs.seedsr_tiling import tiled_forward

    parameter = next(model.parameters())
    model_channels = model.conv_first.in_channels
    pixels = image
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

    # TF32 convolutions (cuDNN's default on Ampere and newer) keep 10 mantissa bits: too few for 16-bit outputs
    full_precision = image.dtype == np.uint16 and parameter.device.type == "cuda"
    with torch.backends.cudnn.flags(enabled=torch.backends.cudnn.enabled, allow_tf32=not full_precision):
        tiled_forward(model, lr, tile, tile_pad, sink=write_tile)
    if channels == 1 and model_channels == 3:
        output = np.round(output.astype(np.float64).mean(axis=2)).astype(image.dtype)
    return output


def estimated_bytes(model: SEEDSRGenerator, height: int, width: int, tile: int) -> int:
    """Rough peak memory (bytes) of inference on an LR image of height x width, whole (tile 0) or tiled.

    Whole: three LR-resolution feature maps plus the last upsampling stage's conv output and its shuffle, each
    num_feat x (s·h) x (s·w) floats. Tiled (:mod:`medsr_se.archs.seedsr_tiling`): the three LR maps plus one tile
    at output resolution.
    """
    features, scale, item = model.conv_first.out_channels, model.upscale, next(model.parameters()).element_size()
    lr_maps = 3 * features * height * width * item
    if tile <= 0:
        return lr_maps + 2 * features * scale * scale * height * width * item
    tile_pixels = scale * (min(tile, height) + 8) * scale * (min(tile, width) + 8)
    return lr_maps + 3 * features * tile_pixels * item


def memory_budget(device: str | torch.device) -> int:
    """Bytes inference may use: 80 % of the free GPU memory, or 70 % of the memory Linux reports available."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(0.8 * torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as handle:
            available = next(int(line.split()[1]) * 1024 for line in handle if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    return int(0.7 * available)


def plan_tile(model: SEEDSRGenerator, height: int, width: int, tile: int, budget: int) -> int:
    """The tile size to use: ``tile`` if given; 0 (whole image) when that fits ``budget``; else :data:`AUTO_TILE`.
    ValueError when even tiled inference would not fit (the message says how much it needs)."""
    if tile < 0:
        raise ValueError(f"--tile must be 0 (whole image) or a positive size, got {tile}")
    if tile == 0 and estimated_bytes(model, height, width, 0) <= budget:
        return 0
    chosen = tile or AUTO_TILE
    needed = estimated_bytes(model, height, width, chosen)
    if needed > budget:
        raise ValueError(f"{width}x{height} needs about {needed / GIB:.1f} GiB even tiled, more than the "
                         f"{budget / GIB:.1f} GiB available: cut the image into parts first")
    return chosen

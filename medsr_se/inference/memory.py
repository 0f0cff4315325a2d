"""Memory planning for inference: whole image when it fits the device's budget, else tiles of :data:`AUTO_TILE`."""

from __future__ import annotations

import os

import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.errors import DataError, OptionError
from medsr_se.inference.halo import first_convolution
from medsr_se.inference.tiling import MIN_TILE_PAD
from medsr_se.inference.window import own_window

GIB = float(1 << 30)
AUTO_TILE = 128  # LR tile size chosen when a whole image would not fit (the measured setting of BENCHMARKS.md)
GPU_BUDGET_FRACTION = 0.8  # of the free GPU memory (the rest: the CUDA context, allocator slack, other processes)
RAM_BUDGET_FRACTION = 0.7  # of the memory Linux reports available (the rest: the process itself, page cache)


def estimated_bytes(model: SEEDSRGenerator, height: int, width: int, tile: int,
                    tile_pad: int = MIN_TILE_PAD) -> int:
    """Rough peak memory (bytes) of inference on an LR image of height x width, whole (tile 0) or tiled.

    Whole: three LR-resolution feature maps plus the last upsampling stage's conv output and its shuffle, each
    num_feat x (s·h) x (s·w) floats. Tiled (:mod:`medsr_se.inference.tiling`): the three LR maps plus three maps
    of one tile at output resolution, the tile with its halo of ``tile_pad`` LR pixels on each side:
    num_feat x s·(t + 2·tile_pad) x s·(t + 2·tile_pad) (s per axis: a through-plane [r, 1] network has (r, 1)).
    num_feat is the first convolution's width. A windowed-attention network (SwinIR) adds, per LR pixel of the
    whole image, its attention scores and their softmax (2 · heads · window² floats) and its query / key / value
    and MLP maps ((3 + mlp_ratio) · dim floats): :func:`attention_floats`.
    """
    features, item = first_convolution(model).out_channels, next(model.parameters()).element_size()
    height_scale, width_scale = getattr(model, "scale_hw", (model.upscale, model.upscale))  # [r, 1]: (r, 1)
    lr_maps = (3 * features + attention_floats(model)) * height * width * item
    if tile <= 0:
        return lr_maps + 2 * features * height_scale * width_scale * height * width * item
    tile_height = height_scale * (min(tile, height) + 2 * tile_pad)
    tile_pixels = tile_height * width_scale * (min(tile, width) + 2 * tile_pad)
    return lr_maps + 3 * features * tile_pixels * item


def attention_floats(model: torch.nn.Module) -> int:
    """Floats per LR pixel that a windowed-attention block holds at once (0 without one): 2 · heads · window²
    (scores, softmax) + (3 + mlp_ratio) · dim (query / key / value, MLP), the largest over the blocks that name
    their ``num_heads``, ``dim`` and ``mlp_ratio`` (BasicSR's SwinTransformerBlock)."""
    sizes = [2 * block.num_heads * window ** 2 + int((3 + block.mlp_ratio) * block.dim) for block in model.modules()
             if (window := own_window(block)) and all(hasattr(block, key) for key in ("num_heads", "dim", "mlp_ratio"))]
    return max(sizes, default=0)


def memory_budget(device: str | torch.device) -> int:
    """Bytes inference may use: 80 % of the free GPU memory, or 70 % of the memory Linux reports available."""
    device = torch.device(device)
    if device.type == "cuda":
        return int(GPU_BUDGET_FRACTION * torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as handle:
            available = next(int(line.split()[1]) * 1024 for line in handle if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    return int(RAM_BUDGET_FRACTION * available)


def plan_tile(model: SEEDSRGenerator, height: int, width: int, tile: int, budget: int,
              tile_pad: int = MIN_TILE_PAD) -> int:
    """The tile size to use: ``tile`` if given; 0 (whole image) when that fits ``budget``; else :data:`AUTO_TILE`,
    each tile with a halo of ``tile_pad`` LR pixels. An OptionError naming ``tile=`` for a negative one; a
    DataError when even tiled inference would not fit (the message says how much it needs)."""
    if tile < 0:
        raise OptionError(f"tile={tile}: must be 0 (whole image) or a positive size", parameter="tile")
    if tile == 0 and estimated_bytes(model, height, width, 0) <= budget:
        return 0
    chosen = tile or AUTO_TILE
    needed = estimated_bytes(model, height, width, chosen, tile_pad)
    if needed > budget:
        raise DataError(f"{width}x{height} needs about {needed / GIB:.1f} GiB even tiled, more than the "
                        f"{budget / GIB:.1f} GiB available: cut the image into parts first")
    return chosen

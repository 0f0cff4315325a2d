"""Memory planning for inference: whole image when it fits the device's budget, else tiles of :data:`AUTO_TILE`."""

from __future__ import annotations

import os

import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.errors import DataError, OptionError
from medsr_se.inference.global_reads import tiles_exactly, unmeasured_reads
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

    Whole: three LR-resolution feature maps of the first convolution's width F, and the larger of what the trunk's
    attention blocks hold (:func:`attention_floats`: A floats per LR pixel, 0 for a network without attention) and
    the last upsampling stage's conv output and its shuffle, each T x (s·h) x (s·w) floats, T the width entering
    the last convolution (:func:`output_width`): the blocks' maps are freed before the upsampling starts, so

        bytes = [3·F·h·w + max(A·h·w, 2·T·s_h·s_w·h·w)] · item

    Tiled, SEEDSRGenerator (:mod:`medsr_se.inference.tiling`): the three LR maps of the whole image plus three maps
    of one tile at output resolution, the tile with its halo of ``tile_pad`` LR pixels on each side:
    T x s·(t + 2·tile_pad) x s·(t + 2·tile_pad) (s per axis: a through-plane [r, 1] network has (r, 1)); here
    F = T = num_feat and A = 0. Any other network is tiled by :mod:`medsr_se.inference.halo`: each tile with its
    halo goes through the whole network alone, so the estimate is the whole-image one of that tile plus the input
    and the float output image (C·(1 + s_h·s_w)·h·w floats). The factor between the whole-image estimate and the
    peak measured on CPU: tests/inference/test_attention_memory.py.
    """
    features, item = first_convolution(model).out_channels, next(model.parameters()).element_size()
    height_scale, width_scale = getattr(model, "scale_hw", (model.upscale, model.upscale))  # [r, 1]: (r, 1)
    tail = output_width(model)
    if tile <= 0:
        widest = max(attention_floats(model), 2 * tail * height_scale * width_scale)
        return (3 * features + widest) * height * width * item
    tile_rows, tile_cols = min(tile, height) + 2 * tile_pad, min(tile, width) + 2 * tile_pad
    if not isinstance(model, SEEDSRGenerator):  # halo tiles (medsr_se.inference.tiling.tiled_forward)
        images = first_convolution(model).in_channels * (1 + height_scale * width_scale) * height * width * item
        return images + estimated_bytes(model, tile_rows, tile_cols, 0)
    tile_pixels = height_scale * tile_rows * width_scale * tile_cols
    return (3 * features * height * width + 3 * tail * tile_pixels) * item


def output_width(model: torch.nn.Module) -> int:
    """Channels entering the network's last convolution (``conv_last``, else the last one registered): the width of
    its maps at output resolution (num_feat for SEEDSR, EDSR, RRDBNet; 64 for SwinIR, HAT, DAT, DRCT, ATD, whose
    trunk is wider: ``embed_dim``)."""
    last = getattr(model, "conv_last", None)
    if not isinstance(last, torch.nn.Conv2d):
        last = [module for module in model.modules() if isinstance(module, torch.nn.Conv2d)][-1]
    return last.in_channels


def attention_floats(model: torch.nn.Module) -> int:
    """Floats per LR pixel that the most demanding block of a transformer holds at once beyond the trunk's maps
    (0 without one): the largest :func:`block_floats` over the network's modules."""
    return max((block_floats(module) for module in model.modules()), default=0)


def block_floats(module: torch.nn.Module) -> int:
    """Floats per LR pixel that ``module`` holds at its peak when it is an attention block (its attention scores
    and their softmax, two copies of heads x keys per query, plus its own dim-wide maps), or a feed-forward
    network (``fc1``: its input's norm, the residual and the output, 3·dim, plus the hidden layer before and after
    its activation, 2·hidden); 0 for any other module. Recognised by their attributes (spandrel is not imported),
    with heads h, width D (``dim``), window w:

    - a shifted-window block (BasicSR's and DRCT's ``SwinTransformerBlock``, HAT's ``HAB``): 2·h·w² scores,
      w² of shift mask, 7·D of maps (norm, shifted copy, windows, query / key / value, scaled query; HAB + D: its
      convolution branch)
    - HAT's overlapping cross-attention (``OCAB``): keys from windows of ow = w + ⌊overlap_ratio·w⌋ pixels, so
      2·h·ow² scores, (1 + overlap_ratio)² = (ow / w)² times as many scores as its own windows, and its unfolded
      keys and values held twice (2·2·(ow / w)²·D) beside 8·D
    - DAT's adaptive spatial attention (``split_size`` S1 x S2 rectangles): two branches of h / 2 heads and D / 2
      channels, one after the other, so h·S1·S2 scores, S1·S2 of shift mask, 21 / 2·D of maps (query / key / value
      unpadded, padded and rolled, the convolution branch's value, the windows of one branch)
    - ATD's layer: category attention within groups of ``category_size`` c tokens (2·h·c scores; 11·D of maps:
      query / key / value, sorted and padded, the dictionary attention's output), then window attention (2·h·w²
      scores; 13·D: query / key / value shifted and in windows, the two earlier outputs), the larger of the two,
      with the shift mask (w²) and the similarity to its ``num_tokens`` m dictionary entries held throughout
    """
    if isinstance(hidden := getattr(getattr(module, "fc1", None), "out_features", None), int):
        return 3 * module.fc1.in_features + 2 * hidden
    heads, dim = getattr(module, "num_heads", None), getattr(module, "dim", None)
    if not (isinstance(heads, int) and isinstance(dim, int)):
        return 0
    window = own_window(module)
    if isinstance(overlap := getattr(module, "overlap_win_size", None), int) and window:
        return 2 * heads * overlap ** 2 + 8 * dim + (4 * overlap ** 2 * dim) // window ** 2
    if (split := getattr(module, "split_size", None)) is not None and hasattr(module, "attns"):
        tokens = split[0] * split[1]
        return heads * tokens + tokens + (21 * dim) // 2
    if isinstance(category := getattr(getattr(module, "attn_aca", None), "category_size", None), int) and window:
        phases = max(2 * heads * category + 11 * dim, 2 * heads * window ** 2 + 13 * dim)
        return phases + window ** 2 + module.num_tokens
    if window and hasattr(module, "mlp_ratio"):
        return 2 * heads * window ** 2 + window ** 2 + (8 if hasattr(module, "conv_block") else 7) * dim
    return 0


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
    DataError when even tiled inference would not fit (the message says how much it needs), or when the whole image
    does not fit and the network's tiles cannot equal it (ATD: :func:`medsr_se.inference.global_reads.tiles_exactly`;
    an explicit ``tile`` is used, with a warning)."""
    if tile < 0:
        raise OptionError(f"tile={tile}: must be 0 (whole image) or a positive size", parameter="tile")
    if tile == 0:
        whole = estimated_bytes(model, height, width, 0)
        if whole <= budget:
            return 0
        if not tiles_exactly(model):
            raise DataError(f"{width}x{height} needs about {whole / GIB:.1f} GiB whole, more than the "
                            f"{budget / GIB:.1f} GiB available, and {type(model).__name__}'s tiles cannot equal "
                            f"whole-image inference ({'; '.join(unmeasured_reads(model))}): give tile=N to accept "
                            "tiles that differ from it, or run where more memory is free", parameter="tile")
    chosen = tile or AUTO_TILE
    needed = estimated_bytes(model, height, width, chosen, tile_pad)
    if needed > budget:
        raise DataError(f"{width}x{height} needs about {needed / GIB:.1f} GiB even tiled, more than the "
                        f"{budget / GIB:.1f} GiB available: cut the image into parts first")
    return chosen

"""Tiled ``SEEDSRGenerator`` inference that gives the whole-image answer with bounded memory.

Every improved SE block pools over the *whole* feature map, so naive tiles (each with its own pooling) drift from
whole-image inference. Here the statistics always come from the whole image:

1. LR-resolution part (head, residual blocks, global skip) on the whole LR image: its feature maps have s² times
   fewer pixels than the output, and their SE blocks pool exactly as in ``forward``.
2. For each upsampling stage k = 1..log2(s): one tiled pass over the body features computes the stage's
   conv + PixelShuffle output tile by tile (earlier stages use their already known statistics) and accumulates
   its channel sums; their mean is the stage's SE statistic.
3. A last tiled pass runs all stages with the known statistics, the final conv and the bicubic image skip.

Tiles are taken on the LR grid with a halo of ``tile_pad`` LR pixels (>= 4 makes every tile's interior exact:
each upsampling conv reaches 1 pixel at its own resolution, the bicubic skip 2 LR pixels); image borders are
handled as in whole-image inference. An anisotropic network (``upscale: [r, 1]``) is tiled the same way, its
stages and output growing along the height only (``net.scale_hw``, each stage's ``factor``).
Peak memory: a few LR-resolution feature maps (num_feat x h x w floats) plus one tile at output resolution,
instead of num_feat x (s·h) x (s·w) for whole-image inference.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from medsr_se.archs.improved_se import spatial_mean
from medsr_se.archs.seedsr_arch import SEEDSRGenerator, image_skip
from medsr_se.errors import OptionError
from medsr_se.inference.halo import default_halo, halo_forward, tiles, whole_image  # tiles: one LR tiling for both

MIN_TILE_PAD = 4


def _scale_in_place(se, feat: torch.Tensor, pooled: torch.Tensor | None = None) -> torch.Tensor:
    """SE in feat's own memory; statistics accumulate in float32 (:func:`spatial_mean`)."""
    pooled = spatial_mean(feat) if pooled is None else pooled
    return feat.mul_(se.channel_scale(pooled).to(feat.dtype))


def _block_residual(block, feat: torch.Tensor, strip: int) -> torch.Tensor:
    """conv2(ReLU(conv1(feat))) of a residual block, computed in row strips (2-row halo: exact)."""
    height = feat.shape[-2]
    residual = torch.empty_like(feat)
    for top in range(0, height, strip):
        bottom = min(top + strip, height)
        halo_top, halo_bottom = max(top - 2, 0), min(bottom + 2, height)
        part = block.conv2(block.conv1(feat[..., halo_top:halo_bottom, :]).relu_())
        residual[..., top:bottom, :] = part[..., top - halo_top:bottom - halo_top, :]
    return residual


@torch.no_grad()
def lr_features(net: SEEDSRGenerator, x: torch.Tensor, strip: int | None = None) -> torch.Tensor:
    """(N, C, h, w) -> body features (N, F, h, w): ``forward`` before the upsampling stages. In place and in row
    strips where possible, so that at most three LR-resolution feature maps exist at once. Strips are 64 rows on
    a CPU (cache-sized) and 512 on a GPU (fewer, larger convolutions keep it busy)."""
    strip = strip or (512 if x.device.type == "cuda" else 64)
    head = _scale_in_place(net.se_first, net.conv_first(x))
    feat = head.clone()
    for block in net.body:
        residual = _scale_in_place(block.se, _block_residual(block, feat, strip))
        feat.add_(residual, alpha=block.res_scale)
        del residual
    return net.conv_after_body(feat).add_(head)


def _upsample_tile(net: SEEDSRGenerator, feat: torch.Tensor, stats: list[torch.Tensor], stages: int) -> torch.Tensor:
    """Run ``stages`` upsampling stages on a feature tile; stages < len(stats) apply SE with known statistics,
    the stage ``len(stats)`` (if reached) is returned before its SE."""
    for index in range(stages):
        stage = net.upsample[index]
        feat = stage.shuffle(stage.conv(feat))
        if index < len(stats):
            _scale_in_place(stage.se, feat, stats[index])  # SE with whole-image statistics
    return feat


@torch.no_grad()
def tiled_forward(net: SEEDSRGenerator, x: torch.Tensor, tile: int, tile_pad: int = MIN_TILE_PAD,
                  sink: Callable[[slice, slice, torch.Tensor], None] | None = None) -> torch.Tensor | None:
    """Same result as ``net(x)`` (module docstring), for one or more images (N, C, h, w).
    Any other generator (no global pooling) goes to :func:`medsr_se.inference.halo.halo_forward`, its halo the
    wider of ``tile_pad`` and its receptive radius (capped: :data:`medsr_se.inference.halo.MAX_HALO`).

    With ``sink``, each finished output tile is handed to ``sink(rows, cols, tile)`` (output coordinates) instead
    of being stored in a float output tensor, and None is returned: e.g. to quantise straight into an image.
    A SEEDSRGenerator's ``tile_pad`` below :data:`MIN_TILE_PAD` is an OptionError naming ``tile_pad=``.
    """
    if tile <= 0:
        return whole_image(net, x, sink)
    if not isinstance(net, SEEDSRGenerator):  # no global pooling: halo tiles (medsr_se.inference.halo)
        return halo_forward(net, x, tile, max(tile_pad, default_halo(net, x.shape[1])), sink)
    if tile_pad < MIN_TILE_PAD:
        raise OptionError(f"tile_pad={tile_pad}: must be at least {MIN_TILE_PAD} LR pixels for an exact result",
                          parameter="tile_pad")
    features = lr_features(net, x)
    stats = stage_statistics(net, features, tile, tile_pad)
    output = None
    if sink is None:
        scale_h, scale_w = net.scale_hw
        output = torch.empty(x.shape[0], net.conv_last.out_channels, x.shape[-2] * scale_h, x.shape[-1] * scale_w,
                             dtype=x.dtype, device=x.device)

        def sink(rows: slice, cols: slice, values: torch.Tensor) -> None:
            output[..., rows, cols] = values

    emit_tiles(net, x, features, stats, tile, tile_pad, sink)
    return output


def stage_statistics(net: SEEDSRGenerator, features: torch.Tensor, tile: int, tile_pad: int) -> list[torch.Tensor]:
    """Whole-image SE statistics (N, F, 1, 1), float32, of every upsampling stage: stage k's conv + shuffle output
    is computed tile by tile (earlier stages applying their known statistics) and its interiors summed."""
    height, width = features.shape[-2:]
    stats: list[torch.Tensor] = []
    factor_h = factor_w = 1
    for stage in range(1, len(net.upsample) + 1):
        factor_h, factor_w = factor_h * net.upsample[stage - 1].factor[0], factor_w * net.upsample[stage - 1].factor[1]
        # running totals in float32 whatever the network's precision (float16 sums overflow past 65,504)
        total = torch.zeros(features.shape[0], features.shape[1], 1, 1, dtype=torch.float32, device=features.device)
        for rows, cols, inner_rows, inner_cols in tiles(height, width, tile, tile_pad):
            out = _upsample_tile(net, features[..., rows, cols], stats, stage)
            interior = out[..., inner_rows.start * factor_h:inner_rows.stop * factor_h,
                           inner_cols.start * factor_w:inner_cols.stop * factor_w]
            total += interior.sum(dim=(2, 3), keepdim=True, dtype=torch.float32)
        stats.append(total / (height * factor_h * width * factor_w))
    return stats


def emit_tiles(net: SEEDSRGenerator, x: torch.Tensor, features: torch.Tensor, stats: list[torch.Tensor], tile: int,
               tile_pad: int, sink: Callable[[slice, slice, torch.Tensor], None]) -> None:
    """The final pass: every stage with its known statistics, conv_last and the bicubic skip, tile by tile; each
    tile's interior goes to ``sink(rows, cols, values)`` in output coordinates."""
    scale_h, scale_w = net.scale_hw
    for rows, cols, inner_rows, inner_cols in tiles(x.shape[-2], x.shape[-1], tile, tile_pad):
        out = net.conv_last(_upsample_tile(net, features[..., rows, cols], stats, len(net.upsample)))
        if net.img_residual:
            out = out + image_skip(x[..., rows, cols], net.scale_hw)
        inner = out[..., inner_rows.start * scale_h:inner_rows.stop * scale_h,
                    inner_cols.start * scale_w:inner_cols.stop * scale_w]
        sink(slice((rows.start + inner_rows.start) * scale_h, (rows.start + inner_rows.stop) * scale_h),
             slice((cols.start + inner_cols.start) * scale_w, (cols.start + inner_cols.stop) * scale_w), inner)

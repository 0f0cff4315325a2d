"""Tiled inference statistics in reduced precision."""

from __future__ import annotations

import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.inference.tiling import lr_features, stage_statistics


def test_fp16_stage_statistics_accumulate_in_float32():
    """A 2x stage output of 128² with values ~4: channel sums ~65,000+ overflow float16; the totals must not."""
    torch.manual_seed(0)
    net = SEEDSRGenerator(num_feat=4, num_block=1, upscale=2).eval()
    with torch.no_grad():
        net.upsample[0].conv.weight.zero_()
        net.upsample[0].conv.bias.fill_(4.0)
    half = SEEDSRGenerator(num_feat=4, num_block=1, upscale=2).eval()
    half.load_state_dict(net.state_dict())
    half = half.half()
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        reference = stage_statistics(net, lr_features(net, x), tile=16, tile_pad=4)
        stats = stage_statistics(half, lr_features(half, x.half()), tile=16, tile_pad=4)
    assert stats[0].dtype == torch.float32 and torch.isfinite(stats[0]).all()
    torch.testing.assert_close(stats[0], reference[0], atol=1e-2, rtol=1e-3)

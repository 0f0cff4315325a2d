"""Tiled inference gives the whole-image answer (SE statistics of the whole image), also in reduced precision."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator, bicubic_upsample
from medsr_se.errors import OptionError
from medsr_se.inference import upscale
from medsr_se.inference.tiling import lr_features, stage_statistics, tiled_forward
from tests.helpers import trained_looking


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


def as_bgr8(tensor: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) RGB in [0, 1] -> (H, W, 3) BGR uint8, rounded like the outputs of ``upscale``."""
    return np.round(tensor.clamp(0, 1)[0].permute(1, 2, 0).numpy()[:, :, ::-1] * 255).astype(np.uint8)


@pytest.mark.parametrize("scale,skip,tile", [(2, True, 8), (4, True, 8), (4, True, 13), (8, False, 8), (16, True, 8)])
def test_tiled_equals_whole_image_to_one_grey_level(retina, scale, skip, tile):
    """Every parameter is off its initial value (an untrained skip model is bicubic and hides tiling errors); the
    image is an odd-sized crop of the fundus photograph, so tiles are cut at the right and bottom borders too."""
    net = trained_looking(SEEDSRGenerator(num_feat=16, num_block=2, upscale=scale, img_residual=skip), scale)
    image = np.ascontiguousarray(retina[400:423, 500:531, ::-1])  # 23 x 31, BGR uint8
    whole = upscale(image, net).astype(int)
    tiled = upscale(image, net, tile=tile, tile_pad=4).astype(int)
    assert whole.shape == (23 * scale, 31 * scale, 3)
    assert np.abs(tiled - whole).max() <= 1
    # the oracle is sensitive: the network is far from bicubic, and per-tile SE pooling would move it by > 1 level
    x = torch.from_numpy(np.ascontiguousarray(image[:, :, ::-1])).permute(2, 0, 1)[None].float() / 255
    assert np.abs(whole - as_bgr8(bicubic_upsample(x, scale))).mean() > 3
    with torch.no_grad():
        naive = torch.cat([net(x[..., :16]), net(x[..., 16:])], dim=-1)
    assert np.abs(as_bgr8(naive).astype(int) - whole).max() > 1


def test_tiled_forward_is_float_exact_for_a_batch():
    net = trained_looking(SEEDSRGenerator(num_feat=16, num_block=2, upscale=4, img_residual=True), 1)
    x = torch.rand(2, 3, 23, 31)
    with torch.no_grad():
        whole = net(x)
    torch.testing.assert_close(tiled_forward(net, x, tile=8, tile_pad=4), whole, atol=1e-5, rtol=0)


def test_a_halo_below_the_minimum_is_refused():
    net = trained_looking(SEEDSRGenerator(num_feat=8, num_block=1, upscale=2))
    with pytest.raises(OptionError, match=r"^tile_pad=3: must be at least 4 LR pixels for an exact result$") as raised:
        tiled_forward(net, torch.rand(1, 3, 16, 16), tile=8, tile_pad=3)
    assert raised.value.parameter == "tile_pad" and isinstance(raised.value, ValueError)

"""The baseline generators (SRCNN, VDSR, P-GAN): output shapes at every scale and channel count, and parameter
counts written out from the papers' layouts, independently of the modules."""

from __future__ import annotations

import pytest
import torch
from basicsr.utils.registry import ARCH_REGISTRY

import medsr_se  # noqa: F401  (registers the archs)
from medsr_se.archs.pgan_arch import PGANGenerator
from medsr_se.archs.srcnn_arch import SRCNN
from medsr_se.archs.vdsr_arch import VDSR

SCALES = (2, 4, 8, 16)


def conv(k: int, c_in: int, c_out: int) -> int:
    """Weights and biases of a k x k convolution."""
    return k * k * c_in * c_out + c_out


def params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def srcnn_count(c: int, n1: int = 64, n2: int = 32) -> int:
    """Dong et al. 2016, section 3: f1 = 9, f2 = 1, f3 = 5."""
    return conv(9, c, n1) + conv(1, n1, n2) + conv(5, n2, c)


def vdsr_count(c: int, f: int = 64, depth: int = 20) -> int:
    """Kim et al. 2016: first c -> 64, 18 of 64 -> 64, last 64 -> c, all 3x3."""
    return conv(3, c, f) + (depth - 2) * conv(3, f, f) + conv(3, f, c)


def pgan_count(c: int, f: int, blocks: int, scale: int) -> int:
    stages = scale.bit_length() - 1
    per_stage = blocks * 2 * conv(3, f, f) + conv(3, f, f) + conv(3, f, 4 * f) + conv(3, f, c)
    return conv(3, c, f) + stages * per_stage


def test_paper_parameter_counts() -> None:
    """SRCNN's 9-1-5 network has 8,032 weights for one channel (Dong et al. 2016, table 1 context: 8,032
    parameters without biases); VDSR is 'about 665 k'."""
    assert srcnn_count(1) - (64 + 32 + 1) == 8032
    assert params(SRCNN(1, 1)) == srcnn_count(1)
    assert params(VDSR(1, 1)) == vdsr_count(1) == 665_921


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("scale", SCALES)
def test_shapes_and_counts(scale: int, channels: int) -> None:
    x = torch.rand(2, channels, 5, 6)
    nets = {
        "srcnn": (SRCNN(channels, channels, upscale=scale), srcnn_count(channels)),
        "vdsr": (VDSR(channels, channels, upscale=scale, num_feat=8, num_layer=5), vdsr_count(channels, 8, 5)),
        "pgan": (PGANGenerator(channels, channels, num_feat=8, num_block=1, upscale=scale),
                 pgan_count(channels, 8, 1, scale)),
    }
    for name, (net, expected) in nets.items():
        with torch.no_grad():
            out = net(x)
        assert out.shape == (2, channels, 5 * scale, 6 * scale), name
        assert params(net) == expected, name


def test_pgan_stages_are_images_at_each_scale() -> None:
    net = PGANGenerator(3, 3, num_feat=8, num_block=1, upscale=8)
    x = torch.rand(1, 3, 4, 4)
    with torch.no_grad():
        stages = net.forward_stages(x)
        assert [s.shape[-1] for s in stages] == [8, 16, 32]
        assert torch.equal(stages[-1], net(x))
        # each stage refines the bicubic x2 of the previous image: with its image head zeroed, a stage passes
        # the bicubic of its input image through unchanged
        for stage in net.stages:
            torch.nn.init.zeros_(stage.to_image.weight)
            torch.nn.init.zeros_(stage.to_image.bias)
        expected = torch.nn.functional.interpolate(x, scale_factor=8, mode="bicubic", align_corners=False)
        one_by_one = x
        for _ in range(3):
            one_by_one = torch.nn.functional.interpolate(one_by_one, scale_factor=2, mode="bicubic",
                                                         align_corners=False)
        assert torch.allclose(net(x), one_by_one) and net(x).shape == expected.shape


def test_registered_and_built_from_options() -> None:
    from basicsr.archs import build_network

    for name in ("SRCNN", "VDSR", "PGANGenerator"):
        assert name in ARCH_REGISTRY
    net = build_network({"type": "VDSR", "num_in_ch": 1, "num_out_ch": 1, "upscale": 2})
    assert isinstance(net, VDSR) and params(net) == vdsr_count(1)


def test_vdsr_untrained_residual_is_bicubic() -> None:
    """VDSR's global skip: with the last layer zeroed the output is exactly torch's bicubic of the input."""
    net = VDSR(1, 1, upscale=4, num_feat=8, num_layer=3)
    torch.nn.init.zeros_(net.conv_last.weight)
    torch.nn.init.zeros_(net.conv_last.bias)
    x = torch.rand(1, 1, 6, 7)
    with torch.no_grad():
        assert torch.equal(net(x), torch.nn.functional.interpolate(x, scale_factor=4, mode="bicubic",
                                                                   align_corners=False))


@pytest.mark.parametrize("bad", [dict(upscale=3), dict(num_in_ch=3, num_out_ch=1)])
def test_pgan_bad_options(bad: dict) -> None:
    with pytest.raises(ValueError, match="PGANGenerator"):
        PGANGenerator(**bad)


@pytest.mark.parametrize("scale", [8, 16])
@pytest.mark.parametrize("channels", [1, 3])
def test_large_scale_rrdbnet(scale: int, channels: int) -> None:
    """ESRGAN at x8 / x16: output scale x the input, parameters = BasicSR's x4 RRDBNet + one 3x3 conv per extra x2
    stage (counted from BasicSR's own module), and an x4 RRDBNet's weights load into it with only the extra
    stages missing."""
    from basicsr.archs.rrdbnet_arch import RRDBNet

    from medsr_se.archs.large_scale_rrdbnet_arch import LargeScaleRRDBNet

    f, blocks, grow = 8, 2, 4
    net = LargeScaleRRDBNet(channels, channels, scale=scale, num_feat=f, num_block=blocks, num_grow_ch=grow)
    x4 = RRDBNet(channels, channels, scale=4, num_feat=f, num_block=blocks, num_grow_ch=grow)
    extra_stages = {8: 1, 16: 2}[scale]
    assert params(net) == params(x4) + extra_stages * conv(3, f, f)
    with torch.no_grad():
        assert tuple(net(torch.rand(2, channels, 5, 7)).shape) == (2, channels, 5 * scale, 7 * scale)
    result = net.load_state_dict(x4.state_dict(), strict=False)
    assert not result.unexpected_keys and len(result.missing_keys) == 2 * extra_stages
    assert "LargeScaleRRDBNet" in ARCH_REGISTRY


@pytest.mark.parametrize("scale", [2, 4, 32])
def test_large_scale_rrdbnet_refuses_other_scales(scale: int) -> None:
    from medsr_se.archs.large_scale_rrdbnet_arch import LargeScaleRRDBNet

    with pytest.raises(ValueError, match="scale must be 8 or 16"):
        LargeScaleRRDBNet(3, 3, scale=scale)


@pytest.mark.parametrize("scale", [8, 16])
@pytest.mark.parametrize("channels", [1, 3])
def test_large_scale_msrresnet(scale: int, channels: int) -> None:
    """SRResNet at x8 / x16: output scale x the input (odd sizes too), parameters = BasicSR's x4 MSRResNet + one
    3x3 conv F -> 4F per extra x2 stage, an x4 MSRResNet's weights load with only the extra stages missing, and with
    the last conv zeroed the output is the bilinear image skip (BasicSR's x4 MSRResNet has the same skip)."""
    from basicsr.archs.srresnet_arch import MSRResNet

    from medsr_se.archs.large_scale_msrresnet_arch import LargeScaleMSRResNet

    f, blocks = 8, 2
    net = LargeScaleMSRResNet(channels, channels, num_feat=f, num_block=blocks, upscale=scale)
    x4 = MSRResNet(channels, channels, num_feat=f, num_block=blocks, upscale=4)
    extra_stages = {8: 1, 16: 2}[scale]
    assert params(net) == params(x4) + extra_stages * conv(3, f, 4 * f)
    x = torch.rand(2, channels, 5, 7)
    with torch.no_grad():
        assert tuple(net(x).shape) == (2, channels, 5 * scale, 7 * scale)
    result = net.load_state_dict(x4.state_dict(), strict=False)
    assert not result.unexpected_keys and len(result.missing_keys) == 2 * extra_stages
    torch.nn.init.zeros_(net.conv_last.weight)
    torch.nn.init.zeros_(net.conv_last.bias)
    with torch.no_grad():
        skip = torch.nn.functional.interpolate(x, size=(5 * scale, 7 * scale), mode="bilinear", align_corners=False)
        assert torch.allclose(net(x), skip, atol=1e-6)
    assert "LargeScaleMSRResNet" in ARCH_REGISTRY


@pytest.mark.parametrize("scale", [2, 4, 32])
def test_large_scale_msrresnet_refuses_other_scales(scale: int) -> None:
    from medsr_se.archs.large_scale_msrresnet_arch import LargeScaleMSRResNet

    with pytest.raises(ValueError, match="upscale must be 8 or 16"):
        LargeScaleMSRResNet(3, 3, upscale=scale)

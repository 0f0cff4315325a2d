import pytest
import torch
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY
from mmengine.registry import MODELS as MMENGINE_MODELS

from medsr_se.archs.fusion_discriminator_arch import FusionSEDiscriminator
from medsr_se.archs.seedsr_arch import SEEDSRGenerator


@pytest.mark.parametrize("scale", [2, 4, 8, 16])
@pytest.mark.parametrize("channels", [1, 3])
def test_generator_shapes_every_scale(scale, channels):
    net = SEEDSRGenerator(num_in_ch=channels, num_out_ch=channels, num_feat=8, num_block=2, upscale=scale)
    out = net(torch.rand(2, channels, 7, 11))  # odd sizes
    assert out.shape == (2, channels, 7 * scale, 11 * scale)
    assert len(net.upsample) == {2: 1, 4: 2, 8: 3, 16: 4}[scale]


def test_generator_paper_layout():
    net = SEEDSRGenerator()
    assert len(net.body) == 16 and net.body[0].conv1.out_channels == 64
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    # global residual skip: with a zero body, features equal the head features
    with torch.no_grad():
        for p in net.conv_after_body.parameters():
            p.zero_()
    x = torch.rand(1, 3, 8, 8)
    head = net.se_first(net.conv_first(x))
    torch.testing.assert_close(net.conv_after_body(net.body(head)) + head, head)


def test_generator_rejects_unsupported_scale():
    with pytest.raises(ValueError, match="upscale must be one of"):
        SEEDSRGenerator(upscale=3)


@pytest.mark.parametrize("size", [(64, 64), (96, 128), (256, 256)])
def test_discriminator_one_logit_per_image(size):
    net = FusionSEDiscriminator(num_feat=8)
    out = net(torch.rand(3, 3, *size))
    assert out.shape == (3, 1)
    assert out.requires_grad  # logits, not detached probabilities


def test_discriminator_fuses_last_three_levels_and_returns_logits():
    net = FusionSEDiscriminator(num_feat=8)
    assert len(net.blocks) == 8
    assert net.fuse.in_channels == 32 + 64 + 64
    with torch.no_grad():
        net.head_out.bias.fill_(50.0)
    assert net(torch.rand(1, 3, 64, 64)).item() > 1  # not squashed by a sigmoid


def test_discriminator_small_patch_error_is_clear():
    with pytest.raises(ValueError, match="gt_size"):
        FusionSEDiscriminator(num_feat=8)(torch.rand(1, 3, 8, 8))


def test_one_channel_discriminator():
    assert FusionSEDiscriminator(num_in_ch=1, num_feat=8)(torch.rand(2, 1, 64, 64)).shape == (2, 1)


def test_registered_in_basicsr_and_mmengine():
    assert ARCH_REGISTRY.get("SEEDSRGenerator") is SEEDSRGenerator
    assert ARCH_REGISTRY.get("FusionSEDiscriminator") is FusionSEDiscriminator
    g = build_network({"type": "SEEDSRGenerator", "upscale": 8, "num_feat": 8, "num_block": 1})
    assert isinstance(g, SEEDSRGenerator) and g.upscale == 8
    mm = MMENGINE_MODELS.build({"type": "medsr_se.FusionSEDiscriminator", "num_feat": 8})
    assert isinstance(mm, FusionSEDiscriminator)


def test_import_twice_and_reload_do_not_fail():
    import importlib

    import medsr_se

    importlib.reload(medsr_se)
    importlib.reload(medsr_se)
    assert ARCH_REGISTRY.get("SEEDSRGenerator").__name__ == "SEEDSRGenerator"

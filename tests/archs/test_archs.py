import pytest
import torch
import torch.nn.functional as F
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


def improved_se_reference(se: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The paper's improved SE written out: y = mean_{H,W} x, s = 2 (0.8 σ(W2 δ(W1 y)) + 0.2 σ(y)), out = s ⊙ x."""
    y = x.mean(dim=(2, 3), keepdim=True)
    hidden = torch.relu(F.conv2d(y, se.fc1.weight, se.fc1.bias))
    excitation = torch.sigmoid(F.conv2d(hidden, se.fc2.weight, se.fc2.bias))
    return 2 * (0.8 * excitation + 0.2 * torch.sigmoid(y)) * x


def test_generator_paper_layout():
    """``forward`` of the default generator (64 features, 16 blocks, x4, no image skip) runs the paper's layout:
    head conv + SE, 16 residual SE blocks, the global skip, two conv + PixelShuffle + SE stages, the last conv.
    Each step is recomputed from its recorded input with plain torch ops (hooks), not with the module itself."""
    torch.manual_seed(0)
    net = SEEDSRGenerator().eval()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    calls = []
    watched = {"conv_first": net.conv_first, "se_first": net.se_first, "conv_after_body": net.conv_after_body,
               "conv_last": net.conv_last, **{f"body.{i}": b for i, b in enumerate(net.body)},
               **{f"upsample.{i}": u for i, u in enumerate(net.upsample)}}
    for name, module in watched.items():
        module.register_forward_hook(
            lambda m, args, out, name=name: calls.append((name, args[0].detach().clone(), out.detach().clone())))
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        out = net(x)
    assert out.shape == (1, 3, 32, 32)
    assert [name for name, _, _ in calls] == (["conv_first", "se_first"] + [f"body.{i}" for i in range(16)]
                                              + ["conv_after_body", "upsample.0", "upsample.1", "conv_last"])
    record = {name: (inp, output) for name, inp, output in calls}
    close = dict(atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(record["conv_first"][1], F.conv2d(x, net.conv_first.weight, net.conv_first.bias,
                                                                 padding=1), **close)
    head = record["se_first"][1]
    torch.testing.assert_close(head, improved_se_reference(net.se_first, record["conv_first"][1]), **close)
    feat = head
    for index, block in enumerate(net.body):  # x + SE(conv2(ReLU(conv1(x)))), 64 channels, LR size
        inp, output = record[f"body.{index}"]
        torch.testing.assert_close(inp, feat)
        residual = F.conv2d(torch.relu(F.conv2d(inp, block.conv1.weight, block.conv1.bias, padding=1)),
                            block.conv2.weight, block.conv2.bias, padding=1)
        assert residual.shape == (1, 64, 8, 8)
        torch.testing.assert_close(output, inp + improved_se_reference(block.se, residual), **close)
        feat = output
    torch.testing.assert_close(record["conv_after_body"][0], feat)
    torch.testing.assert_close(record["upsample.0"][0], record["conv_after_body"][1] + head, **close)  # global skip
    for index, size in ((0, 16), (1, 32)):  # conv F -> 4F, PixelShuffle(2), SE
        inp, output = record[f"upsample.{index}"]
        stage = net.upsample[index]
        shuffled = F.pixel_shuffle(F.conv2d(inp, stage.conv.weight, stage.conv.bias, padding=1), 2)
        assert shuffled.shape == (1, 64, size, size)
        torch.testing.assert_close(output, improved_se_reference(stage.se, shuffled), **close)
    torch.testing.assert_close(record["conv_last"][0], record["upsample.1"][1])
    torch.testing.assert_close(out, record["conv_last"][1])  # the output is the last conv's: no image skip


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

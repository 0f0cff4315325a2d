"""``se: improved | plain | none`` (the ablation switch) on the generator and the discriminator."""

import pytest
import torch

from medsr_se.archs.fusion_discriminator_arch import FusionSEDiscriminator
from medsr_se.archs.improved_se import ImprovedSE, NoSE, PlainSE, build_se
from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.inference.checkpoint import NETWORK_OPTIONS_KEY, load_generator
from medsr_se.inference.tiling import tiled_forward


def test_plain_se_is_the_original_sigmoid_gate():
    torch.manual_seed(0)
    se = PlainSE(16, 4).double()
    x = torch.randn(2, 16, 5, 7, dtype=torch.float64)
    y = x.mean(dim=(2, 3), keepdim=True)
    expected = torch.sigmoid(se.fc2(torch.relu(se.fc1(y))))
    torch.testing.assert_close(se(x), expected * x)
    assert 0 < expected.min() and expected.max() < 1  # plain SE can only shrink a channel


def test_plain_and_improved_share_parameters_and_differ_in_output():
    torch.manual_seed(0)
    improved, plain = ImprovedSE(16, 4), PlainSE(16, 4)
    plain.load_state_dict(improved.state_dict())
    x = torch.randn(1, 16, 4, 4)
    assert not torch.allclose(improved(x), plain(x))


def test_none_is_the_identity_without_parameters():
    se = build_se("none", 16, 4)
    x = torch.randn(1, 16, 4, 4)
    assert isinstance(se, NoSE) and se(x) is x and se.forward_in_place(x) is x
    assert not list(se.parameters())


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="se must be one of"):
        SEEDSRGenerator(num_feat=8, num_block=1, se="strong")
    with pytest.raises(ValueError, match="se must be one of"):
        FusionSEDiscriminator(num_feat=4, se="Plain")


@pytest.mark.parametrize("kind", ["improved", "plain", "none"])
def test_every_kind_trains_and_tiles_exactly(kind):
    torch.manual_seed(0)
    net = SEEDSRGenerator(num_feat=8, num_block=2, upscale=4, reduction=2, se=kind)
    x = torch.rand(1, 3, 12, 12)
    net(x).mean().backward()
    assert all(p.grad is not None for p in net.parameters())
    with torch.no_grad():
        torch.testing.assert_close(tiled_forward(net.eval(), x, tile=8, tile_pad=4), net(x), atol=1e-5, rtol=1e-4)
    discriminator = FusionSEDiscriminator(num_feat=4, reduction=2, se=kind)
    assert discriminator(torch.rand(2, 3, 32, 32)).shape == (2, 1)


def test_plain_and_none_layouts_come_back_from_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    for kind in ("plain", "none"):
        net = SEEDSRGenerator(num_feat=8, num_block=2, upscale=2, reduction=2, se=kind)
        path = tmp_path / f"{kind}.pth"
        options = {"type": "SEEDSRGenerator", "num_feat": 8, "num_block": 2, "upscale": 2, "reduction": 2, "se": kind}
        torch.save({"params": net.state_dict(), NETWORK_OPTIONS_KEY: options}, path)
        assert load_generator(str(path)).se_kind == kind
    # without stored options, a network without SE tensors is recognised as se: none
    torch.save({"params": net.state_dict()}, tmp_path / "bare.pth")
    loaded = load_generator(str(tmp_path / "bare.pth"))
    assert loaded.se_kind == "none"
    x = torch.rand(1, 3, 6, 6)
    torch.testing.assert_close(loaded(x), net.eval()(x))

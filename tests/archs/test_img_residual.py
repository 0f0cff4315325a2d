import pytest
import torch
from torch.nn import functional as F

from medsr_se.archs.seedsr_arch import SEEDSRGenerator


@pytest.mark.parametrize("scale", [2, 4, 8, 16])
@pytest.mark.parametrize("channels", [1, 3])
def test_untrained_generator_returns_bicubic(scale, channels):
    torch.manual_seed(scale)
    net = SEEDSRGenerator(channels, channels, num_feat=8, num_block=2, upscale=scale, img_residual=True)
    x = torch.rand(2, channels, 9, 7)
    expected = F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False)
    torch.testing.assert_close(net(x), expected, atol=1e-5, rtol=0)


def test_skip_off_has_the_papers_parameters():
    plain, skip = SEEDSRGenerator(), SEEDSRGenerator(img_residual=True)
    plain_keys = list(plain.state_dict())
    assert not any("marker" in key for key in plain_keys)
    assert [k for k in skip.state_dict() if k != "img_residual_marker"] == plain_keys
    assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in skip.parameters())
    # the paper's layout: 2 + 16*2 + 1 + log2(4) + 1 convolutions, 1 + 16 + 2 SE blocks
    assert sum(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) for m in plain.modules()) == 2 + 32 + 2 + 1
    assert plain.conv_last.weight.abs().sum() > 0


def test_checkpoints_load_into_matching_layout_only():
    for flag in (False, True):
        source = SEEDSRGenerator(num_feat=8, num_block=1, img_residual=flag)
        target = SEEDSRGenerator(num_feat=8, num_block=1, img_residual=flag)
        target.load_state_dict(source.state_dict())
        torch.testing.assert_close(target.conv_first.weight, source.conv_first.weight)
        other = SEEDSRGenerator(num_feat=8, num_block=1, img_residual=not flag)
        with pytest.raises(ValueError, match=f"img_residual={flag} but .*img_residual: {str(flag).lower()}"):
            other.load_state_dict(source.state_dict())


def test_skip_needs_matching_channels():
    with pytest.raises(ValueError, match="num_in_ch == num_out_ch"):
        SEEDSRGenerator(num_in_ch=1, num_out_ch=3, img_residual=True)

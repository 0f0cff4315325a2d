import pytest
import torch

from medsr_se.archs.improved_se import ImprovedSE


def reference_scale(se: ImprovedSE, x: torch.Tensor) -> torch.Tensor:
    """s = 2·[0.8·σ(W2 δ(W1 y)) + 0.2·σ(y)], computed by hand from the block's own weights."""
    y = x.mean(dim=(2, 3))  # (N, C)
    w1, b1 = se.fc1.weight[:, :, 0, 0], se.fc1.bias
    w2, b2 = se.fc2.weight[:, :, 0, 0], se.fc2.bias
    hidden = torch.clamp(y @ w1.T + b1, min=0)
    excitation = 1 / (1 + torch.exp(-(hidden @ w2.T + b2)))
    return 2 * (0.8 * excitation + 0.2 / (1 + torch.exp(-y)))


@pytest.mark.parametrize("channels,reduction", [(64, 16), (32, 4), (3, 16)])
def test_matches_formula(channels, reduction):
    torch.manual_seed(0)
    se = ImprovedSE(channels, reduction).double()
    x = torch.randn(3, channels, 7, 5, dtype=torch.float64) * 3
    expected = x * reference_scale(se, x)[:, :, None, None]
    torch.testing.assert_close(se(x), expected, atol=1e-6, rtol=0)
    assert se.fc1.out_channels == max(1, channels // reduction)


def test_scale_lies_in_open_interval_and_can_amplify():
    torch.manual_seed(1)
    se = ImprovedSE(16, 4)
    s = se.channel_scale(torch.randn(8, 16, 1, 1) * 10)
    assert s.min() > 0 and s.max() < 2
    # plain SE is bounded by 1; this block reaches above 1 for a strongly positive channel
    with torch.no_grad():
        se.fc2.bias.fill_(10.0)
    assert se.channel_scale(torch.full((1, 16, 1, 1), 5.0)).min() > 1.5


def test_gradient_reaches_both_projections():
    se = ImprovedSE(16, 4)
    se(torch.randn(2, 16, 8, 8)).square().sum().backward()
    assert se.fc1.weight.grad.abs().sum() > 0
    assert se.fc2.weight.grad.abs().sum() > 0


def test_channel_scale_gradients_match_autograd_of_the_product():
    """The lean backward of ChannelScale is exact: gradcheck, and equal to autograd's x * s."""
    from medsr_se.archs.improved_se import ChannelScale

    torch.manual_seed(2)
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    scale = torch.rand(2, 3, 1, 1, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(ChannelScale.apply, (x, scale))
    grad_out = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    lean = torch.autograd.grad(ChannelScale.apply(x, scale), (x, scale), grad_out)
    plain = torch.autograd.grad(x * scale, (x, scale), grad_out)
    for got, expected in zip(lean, plain):
        torch.testing.assert_close(got, expected)


def test_block_gradients_equal_the_plain_formula():
    """Training through ImprovedSE (sum-based squeeze, ChannelScale) gives the gradients of x * s(mean x)."""
    torch.manual_seed(3)
    se = ImprovedSE(16, 4).double()
    x = torch.randn(2, 16, 6, 6, dtype=torch.float64, requires_grad=True)
    params = [x, *se.parameters()]
    got = torch.autograd.grad(se(x).square().sum(), params)
    expected = torch.autograd.grad((x * se.channel_scale(x.mean(dim=(2, 3), keepdim=True))).square().sum(), params)
    for got_grad, expected_grad in zip(got, expected):
        torch.testing.assert_close(got_grad, expected_grad)


def test_in_place_forward_equals_forward_with_the_same_gradients():
    """forward_in_place (ChannelScaleInPlace: grad of s from the output / s) is exact, values and gradients."""
    from medsr_se.archs.improved_se import ChannelScaleInPlace

    torch.manual_seed(4)
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    scale = torch.rand(2, 3, 1, 1, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t, s: ChannelScaleInPlace.apply(t.clone(), s),
                                    (x.clone().requires_grad_(), scale))
    se = ImprovedSE(16, 4).double()
    features = torch.randn(2, 16, 6, 6, dtype=torch.float64, requires_grad=True)
    params = [features, *se.parameters()]
    expected_out = se(features)
    expected = torch.autograd.grad(expected_out.square().sum(), params)
    out = se.forward_in_place(features * 1.0)  # a fresh tensor, as the PixelShuffle output in the generator
    torch.testing.assert_close(out, expected_out)
    for got_grad, expected_grad in zip(torch.autograd.grad(out.square().sum(), params), expected):
        torch.testing.assert_close(got_grad, expected_grad)
    plain = torch.randn(1, 16, 3, 3)
    with torch.no_grad():
        reference = se.float()(plain)
        assert se.forward_in_place(plain) is plain  # no autograd: plain in-place product
    torch.testing.assert_close(plain, reference)

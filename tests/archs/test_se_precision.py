"""The SE blocks in reduced precision and under torch.compile (CPU-checkable parts of the CUDA path)."""

from __future__ import annotations

import pytest
import torch

from medsr_se.archs.fusion_discriminator_arch import FusionSEDiscriminator
from medsr_se.archs.improved_se import ImprovedSE, spatial_mean
from medsr_se.archs.seedsr_arch import SEEDSRGenerator


def test_fp16_squeeze_of_a_512_map_is_finite_and_matches_fp32():
    x = torch.full((1, 4, 512, 512), 0.5, dtype=torch.float16)
    pooled = spatial_mean(x)
    assert torch.isfinite(pooled).all()
    torch.testing.assert_close(pooled.float(), torch.full((1, 4, 1, 1), 0.5), atol=1e-3, rtol=0)
    se = ImprovedSE(4, 2).half()
    out = se(x)
    reference = ImprovedSE(4, 2)
    reference.load_state_dict({k: v.float() for k, v in se.state_dict().items()})
    assert out.dtype == torch.float16 and torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), reference(x.float()), atol=2e-3, rtol=2e-3)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_reduced_precision_features_through_float32_weights(dtype):
    """What CUDA autocast produces: float32 SE weights and a half-precision feature map; the output keeps the
    feature dtype and the backward runs (no 'expected scalar type' mismatch)."""
    torch.manual_seed(0)
    se = ImprovedSE(8, 2)
    x = torch.randn(2, 8, 12, 12).to(dtype).requires_grad_()
    out = se(x)
    assert out.dtype == dtype
    out.float().square().sum().backward()
    assert x.grad.dtype == dtype and torch.isfinite(x.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in se.parameters())
    fresh = x.detach().clone().requires_grad_()
    in_place = se.forward_in_place(fresh * 1)
    assert in_place.dtype == dtype
    in_place.float().sum().backward()
    assert torch.isfinite(fresh.grad).all()


def test_generator_and_discriminator_under_cpu_bf16_autocast_are_finite():
    torch.manual_seed(0)
    net_g, net_d = SEEDSRGenerator(num_feat=8, num_block=2, upscale=4), FusionSEDiscriminator(num_feat=8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        sr = net_g(torch.rand(2, 3, 16, 16))
        logits = net_d(sr)
    logits.float().sum().backward()
    assert torch.isfinite(sr).all() and torch.isfinite(logits).all()
    assert all(torch.isfinite(p.grad).all() for p in net_g.parameters() if p.grad is not None)


@pytest.mark.slow
def test_compile_fullgraph_equals_eager_values_and_gradients():
    torch.manual_seed(0)
    net = SEEDSRGenerator(num_feat=8, num_block=1, upscale=4, img_residual=True)
    with torch.no_grad():
        net.conv_last.weight.normal_(0, 0.05)
    compiled = torch.compile(net, backend="aot_eager", fullgraph=True)
    x = torch.rand(2, 3, 8, 8)
    eager_out = net(x)
    eager_grads = torch.autograd.grad(eager_out.square().sum(), list(net.parameters()))
    compiled_out = compiled(x)
    compiled_grads = torch.autograd.grad(compiled_out.square().sum(), list(net.parameters()))
    torch.testing.assert_close(compiled_out, eager_out)
    for got, expected in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(got, expected)

"""The comparison table's new columns: LR consistency (its sense), NIQE (BasicSR's), parameters and GFLOPs
(written out from the layers, independently of the counting hooks)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from basicsr.metrics import calculate_niqe

from medsr_se.archs.srcnn_arch import SRCNN
from medsr_se.evaluation.table import niqe_score
from medsr_se.metrics.complexity import gflops_per_megapixel, parameter_count
from medsr_se.metrics.lr_consistency import lr_psnr, rounding_limit
from medsr_se.utils.bicubic import matlab_bicubic

SCALE = 4


@pytest.fixture(scope="module")
def fundus_pair(retina):
    hr = np.ascontiguousarray(retina[400:656, 400:656, ::-1])  # 256 x 256 BGR of the disc and vessels
    return hr, matlab_bicubic(hr, 1 / SCALE)


def test_hr_scores_at_the_rounding_limit(fundus_pair):
    """LR was made from HR by the same resize and rounded: what is left is uniform rounding noise, variance 1/12
    grey level², i.e. 10·log10(12·255²) = 58.92 dB."""
    hr, lr = fundus_pair
    assert rounding_limit(np.uint8) == pytest.approx(10 * np.log10(12 * 255.0**2))
    assert lr_psnr(hr, lr, SCALE) == pytest.approx(58.92, abs=0.3)
    sixteen = hr.astype(np.uint16) * 257
    assert lr_psnr(sixteen, matlab_bicubic(sixteen, 1 / SCALE), SCALE) == pytest.approx(
        10 * np.log10(12 * 65535.0**2), abs=0.3)


def test_bicubic_blur_and_noise_score_lower(fundus_pair):
    hr, lr = fundus_pair
    exact = lr_psnr(hr, lr, SCALE)
    bicubic = lr_psnr(matlab_bicubic(lr, SCALE), lr, SCALE)
    blurred = lr_psnr(cv2.GaussianBlur(hr, (0, 0), 3.0), lr, SCALE)
    assert bicubic < exact - 5 and blurred < exact - 5
    rng = np.random.default_rng(0)
    noisy = [lr_psnr(np.clip(hr + rng.normal(0, sigma, hr.shape), 0, 255).astype(np.uint8), lr, SCALE)
             for sigma in (2, 4, 8, 16, 32)]
    assert all(a > b for a, b in zip([exact, *noisy], noisy)), noisy


def test_lr_consistency_needs_matching_shapes(fundus_pair):
    hr, lr = fundus_pair
    with pytest.raises(ValueError, match="is not 4 x LR"):
        lr_psnr(hr[:-4], lr, SCALE)


def test_niqe_is_basicsrs_and_has_its_sense(retina):
    image = np.ascontiguousarray(retina[350:650, 350:650, ::-1])
    assert niqe_score(image, SCALE) == pytest.approx(calculate_niqe(image, SCALE, input_order="HWC", convert_to="y"))
    assert niqe_score(cv2.GaussianBlur(image, (0, 0), 2.0), SCALE) > niqe_score(image, SCALE)  # blur: less natural
    assert np.isnan(niqe_score(image[:150, :150], SCALE))  # one 96-px block: no covariance
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    assert np.isfinite(niqe_score(gray, SCALE)) and np.isfinite(niqe_score(gray.astype(np.uint16) * 257, SCALE))


@pytest.mark.parametrize("channels", [1, 3])
def test_srcnn_parameters_and_flops(channels):
    """SRCNN runs at the output resolution: per output pixel 2·(81·C·64 + 64·32 + 25·32·C) multiply-adds as FLOPs
    plus one per bias; per megapixel that is the same number in MFLOPs."""
    net = SRCNN(channels, channels, upscale=SCALE)
    weights = 81 * channels * 64 + 64 * 32 + 25 * 32 * channels
    biases = 64 + 32 + channels
    assert parameter_count(net) == weights + biases
    assert gflops_per_megapixel(net, channels) == pytest.approx((2 * weights + biases) * 1e6 / 1e9)


def test_flops_count_the_attention_products():
    """A windowed-attention network (BasicSR's SwinIR) does, besides its layers, queries · keysᵀ and weights ·
    values: 2 · w² · D FLOPs each per token and block (w² tokens a window, width D), which layer hooks cannot see.
    The oracle: the same network's count with its attention disabled is lower by exactly that, computed by hand."""
    from basicsr.archs.swinir_arch import SwinIR

    from medsr_se.metrics.complexity import PROBE_LR

    window, width, blocks = 8, 16, 2
    net = SwinIR(upscale=SCALE, in_chans=3, img_size=PROBE_LR, window_size=window, img_range=1.0, depths=[blocks],
                 embed_dim=width, num_heads=[2], mlp_ratio=2.0, upsampler="pixelshuffle", resi_connection="1conv")
    tokens, megapixels = PROBE_LR ** 2, (PROBE_LR * SCALE) ** 2 / 1e6
    attention = blocks * 2 * (2 * tokens * window ** 2 * width)  # two products per block
    layers_only = gflops_per_megapixel(net, 3) - attention / 1e9 / megapixels
    for layer in net.modules():  # the same network, its attention products replaced by nothing
        if type(layer).__name__ == "WindowAttention":
            layer.forward = lambda x, mask=None, layer=layer: layer.proj(layer.qkv(x)[..., :layer.dim])
    assert gflops_per_megapixel(net, 3) == pytest.approx(layers_only, rel=1e-9)

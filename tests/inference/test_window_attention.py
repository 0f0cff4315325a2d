"""BasicSR's SwinIR (windowed attention) in load_generator / upscale / the tiles (issue 31, defect 5): any image
size through reflection padding to the window, checked against BasicSR's network on numpy's reflection (the oracle,
tests/inference/swinir.py); tiles against the whole-image forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsr_se.errors import DataError
from medsr_se.inference import load_generator, upscale
from medsr_se.inference.checkpoint import NETWORK_OPTIONS_KEY
from medsr_se.inference.halo import MAX_HALO, halo_forward, receptive_radius
from medsr_se.inference.tiling import tiled_forward
from tests.helpers import measured_reach
from tests.inference.swinir import padded_forward, reference, reference_image, save_swinir, swinir_options
from tests.logged import logs_no_warning, logs_warning

HALO_LOGGER = "medsr_se.inference.halo"


def rand(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("window,upscale_,upsampler", [(8, 2, "pixelshuffle"), (7, 3, "pixelshuffledirect"),
                                                       (8, 4, "nearest+conv"), (4, 2, "pixelshuffle")])
@pytest.mark.parametrize("size", [(37, 29), (7, 9), (5, 6)])
def test_any_size_equals_basicsr_on_the_reflected_image(tmp_path, window, upscale_, upsampler, size):
    """37 x 29 (SwinIR refused it: window_partition's RuntimeError), 7 x 9, and sides below the window."""
    height, width = size
    if min(size) <= window // 2:
        pytest.skip("too small to reflect: refused (test_too_small_is_one_line)")
    options = swinir_options(window, upscale=upscale_, upsampler=upsampler)
    path = save_swinir(tmp_path / "swinir.pth", options)
    net = load_generator(str(path))
    image = (rand(height, width, 3).numpy() * 255).astype(np.uint8)
    np.testing.assert_array_equal(upscale(image, net), reference_image(reference(path, options), image, window))
    assert type(net).__name__ == "SwinIR" and net.upscale == upscale_


def test_too_small_is_one_line(tmp_path):
    net = load_generator(str(save_swinir(tmp_path / "s.pth", swinir_options(8))))
    with pytest.raises(DataError, match=r"^3x1 pixels is too small for SwinIR: it takes multiples of 8 pixels .* "
                                        r"at least 5 pixels"):
        upscale(np.zeros((1, 3, 3), np.uint8), net)
    assert upscale(np.zeros((5, 5, 3), np.uint8), net).shape == (10, 10, 3)  # a side of 5 reflects to 8


def test_the_state_dict_and_the_class_stay_basicsr_s(tmp_path):
    """The padding lives in the loaded network's forward: its state dict keeps BasicSR's keys, and it is still a
    SwinIR (a copy too)."""
    import copy

    from basicsr.archs.swinir_arch import SwinIR

    options = swinir_options(8)
    path = save_swinir(tmp_path / "s.pth", options)
    net = load_generator(str(path))
    assert isinstance(net, SwinIR) and isinstance(copy.deepcopy(net), SwinIR)
    assert net.state_dict().keys() == reference(path, options).state_dict().keys()


@pytest.mark.parametrize("window", [8, 7])
def test_shallow_tiles_equal_the_whole_image(tmp_path, window, caplog):
    """One RSTB of two blocks: the bound (convolutions + window − 1 per block) is below MAX_HALO, so its tiles
    (tile 16 and tile 4, below the window, both rounded up to it) equal the whole-image forward; a halo narrower
    than the reach does not (the comparison can fail)."""
    options = swinir_options(window)
    net = load_generator(str(save_swinir(tmp_path / "s.pth", options)))
    radius = receptive_radius(net, 3)
    assert measured_reach(net, 2, 64) <= radius <= MAX_HALO
    x = rand(1, 3, 83, 70)
    with torch.no_grad():
        whole = net(x)
        with logs_no_warning(caplog):  # an exact tiling warns about nothing
            for tile in (16, 4):
                assert torch.allclose(tiled_forward(net, x, tile=tile), whole, atol=1e-5, rtol=0)
        with logs_warning(caplog, HALO_LOGGER, f"beyond the tiles' halo of {window}"):
            narrow = halo_forward(net, x, tile=16, halo=window)
    assert (narrow - whole).abs().max() > 1e-4


def test_deep_tiles_warn_and_a_wide_halo_makes_them_exact(tmp_path, caplog):
    """Three RSTBs reach beyond MAX_HALO: tiling warns once, naming the tile_pad that makes it exact (the parameter,
    ``tile_pad=N``: it named the command's --tile-pad); with it the tiles equal the whole image."""
    net = load_generator(str(save_swinir(tmp_path / "s.pth", swinir_options(8, depths=(2, 2, 2)))))
    radius = receptive_radius(net, 3)
    assert radius > MAX_HALO
    x = rand(1, 3, 90, 75)
    with torch.no_grad():
        whole = net(x)
        wide = -(-radius // 8) * 8  # the oracle: the reach rounded up to the window
        with logs_warning(caplog, HALO_LOGGER, r"windowed attention \(window 8\) reaching .*; "
                          f"tile_pad={wide} makes them exact, tile=0 uses none$") as caught:
            tiled_forward(net, x, tile=16)
        assert len(caught) == 1 and "--" not in caught[0]
        with logs_no_warning(caplog):
            assert torch.allclose(tiled_forward(net, x, tile=16, tile_pad=wide), whole, atol=1e-5, rtol=0)


def test_the_padded_forward_is_basicsr_s_on_a_batch(tmp_path):
    options = swinir_options(8)
    path = save_swinir(tmp_path / "s.pth", options)
    x = rand(2, 3, 19, 26)
    with torch.no_grad():
        torch.testing.assert_close(load_generator(str(path))(x), padded_forward(reference(path, options), x, 8),
                                   atol=1e-6, rtol=0)


def test_a_globally_pooling_network_that_tiles_cannot_measure_warns_when_tiled(tmp_path, caplog):
    """RCAN's channel attention with max pooling in place of its mean (a read over the whole image that is not a
    sum, so the tiles cannot measure it: tests/inference/test_global_reads.py has the mean's exact tiles): halo
    tiles differ from the whole image, and say so."""
    from tests.inference.test_any_generator import built

    net = built({"type": "RCAN", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 16, "num_group": 1, "num_block": 2,
                 "squeeze_factor": 4, "upscale": 2})
    for module in net.modules():
        if isinstance(module, torch.nn.Sequential) and isinstance(module[0], torch.nn.AdaptiveAvgPool2d):
            module[0] = torch.nn.AdaptiveMaxPool2d(1)
    net.upscale = 2
    x = rand(1, 3, 61, 53)
    with torch.no_grad():
        with logs_warning(caplog, HALO_LOGGER, r"^RCAN reads the whole image \(.*AdaptiveMaxPool2d.*\): each tile "
                          r"reads itself, .* tile=0 \(no tiles\) gives the exact result$"):
            tiled = tiled_forward(net, x, tile=16)
        assert (tiled - net(x)).abs().max() > 1e-4


@pytest.mark.parametrize("scale,multiple", [(2, 2), (1, 4)])
def test_rrdbnet_at_scale_2_and_1_takes_any_size(tmp_path, scale, multiple):
    """Probed: BasicSR's RRDBNet at scale 2 (1) folds 2 x 2 (4 x 4) pixels into channels before its first
    convolution; upscale took those 12 (48) channels for the model's and refused every image. Now: 3 channels, any
    size (padded like Real-ESRGAN's mod_scale), tiles equal to the whole image."""
    from tests.inference.test_any_generator import built

    options = {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_block": 1, "num_grow_ch": 4,
               "scale": scale}
    net = built(options)
    torch.save({"params": net.state_dict(), NETWORK_OPTIONS_KEY: options}, tmp_path / "r.pth")
    loaded = load_generator(str(tmp_path / "r.pth"))
    image = (rand(37, 29, 3).numpy() * 255).astype(np.uint8)
    np.testing.assert_array_equal(upscale(image, loaded), reference_image(net, image, multiple))
    x = rand(1, 3, 37, 29)
    with torch.no_grad():
        assert torch.allclose(tiled_forward(loaded, x, tile=7), padded_forward(net, x, multiple), atol=1e-5, rtol=0)

"""Exact tiles for networks that read their whole image (issue 34, item 3): HAT's and RCAN's channel attention
(adaptive mean pooling), DAT's channel self-attention (queries and keys normalised over all tokens, their d x d
product) and its adaptive interaction. The oracle is the network's own whole-image forward (spandrel's, BasicSR's);
the deliberate break is the old tiling (each tile its own statistics), which must differ from it. ATD's token
categories cannot be measured tile by tile: automatic tiling refuses, an explicit tile warns."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from medsr_se.errors import DataError, OptionError
from medsr_se.inference import global_reads, halo, upscale
from medsr_se.inference.global_reads import ReadMeasured, WholeImageReads, multipass, tiles_exactly
from medsr_se.inference.halo import halo_forward, receptive_radius, round_up
from medsr_se.inference.memory import AUTO_TILE, estimated_bytes, plan_tile
from medsr_se.inference.tiling import tiled_forward
from tests.archs.transformers import WINDOW, tiny_options
from tests.inference.swinir import built
from tests.logged import logs_no_warning, logs_warning

HALO_LOGGER = "medsr_se.inference.halo"


def rand(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def uneven(height: int, width: int) -> torch.Tensor:
    """A random image whose tiles differ in their statistics (a dark left part, a bright bottom), so that a tile's
    own channel means are not the whole image's."""
    x = rand(1, 3, height, width)
    x[..., :, : width // 2] *= 0.1
    x[..., 2 * height // 3:, :] = 0.7 + 0.3 * x[..., 2 * height // 3:, :]
    return x


def exact_halo(net: torch.nn.Module, channels: int) -> int:
    """A halo of at least the network's reach (a multiple of its window)."""
    return round_up(receptive_radius(net, channels), WINDOW)


@contextlib.contextmanager
def per_tile_statistics():
    """The old tiling, as a deliberate break: nothing measured, each tile pools (and normalises) over itself."""
    @contextlib.contextmanager
    def nothing(_net):
        yield WholeImageReads()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(halo, "measured_reads", nothing)
        yield


def networks() -> dict[str, torch.nn.Module]:
    """Tiny HAT (its channel attention weighted 1, not 0.01, so that a wrong pooled mean shows), DAT (a spatial
    and a channel block) and BasicSR's RCAN."""
    rcan = built({"type": "RCAN", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 16, "num_group": 1, "num_block": 2,
                  "squeeze_factor": 4, "upscale": 2})
    rcan.upscale = 2
    return {"HATSR": built({**tiny_options("HATSR"), "conv_scale": 1.0}), "DATSR": built(tiny_options("DATSR")),
            "RCAN": rcan}


@pytest.mark.parametrize("name", ["HATSR", "DATSR", "RCAN"])
def test_tiles_of_networks_that_read_the_whole_image_equal_it(name, caplog):
    """Before: each tile pooled (DAT: normalised) over itself, 2e-4 to 5e-3 off; now the whole image's statistics,
    measured tile by tile, give the whole-image result within float rounding, without a warning. The image is not
    a multiple of the window, so the bottom and right tiles count the rows the network's padding adds."""
    net = networks()[name]
    assert tiles_exactly(net)
    x = uneven(45, 38)
    pad = exact_halo(net, 3)
    with torch.no_grad():
        whole = net(x)
        with logs_no_warning(caplog, HALO_LOGGER):
            tiled = tiled_forward(net, x, tile=16, tile_pad=pad)
        torch.testing.assert_close(tiled, whole, atol=5e-6, rtol=0)  # measured: 2e-7 to 6e-7
        with per_tile_statistics():
            old = tiled_forward(net, x, tile=16, tile_pad=pad)
    assert (old - whole).abs().max() > 1e-4  # measured: 2e-4 (HAT), 1e-3 (DAT), 5e-3 (RCAN)


def test_a_sink_gets_the_exact_tiles_once_each():
    """The measuring passes hand nothing to the sink: each output tile arrives once, from the last pass."""
    net = networks()["DATSR"]
    x = uneven(33, 30)
    written = torch.zeros(1, 3, 66, 60)
    counts = torch.zeros(66, 60)

    def sink(rows: slice, cols: slice, values: torch.Tensor) -> None:
        written[..., rows, cols] = values
        counts[rows, cols] += 1

    with torch.no_grad():
        assert halo_forward(net, x, tile=8, halo=exact_halo(net, 3), sink=sink) is None
        torch.testing.assert_close(written, net(x), atol=2e-5, rtol=0)
    assert torch.equal(counts, torch.ones(66, 60))


def test_dat_channel_attention_on_a_whole_image_is_the_modules_own():
    """The replaced forward of DAT's channel self-attention, its two reads measured on one whole-image "tile", is
    spandrel's own forward (restored once the tiles are done)."""
    net = networks()["DATSR"]
    module = next(m for m in net.modules() if type(m).__name__ == "Adaptive_Channel_Attention")
    height, width = 8, 12
    tokens = rand(2, height * width, 32)
    outputs = []
    with torch.no_grad():
        with global_reads.measured_reads(net) as reads:
            passes = multipass(lambda index: module(tokens, height, width), 1, reads,
                               lambda index: reads.start_tile(slice(0, height), slice(0, width), (True, True),
                                                              (height, width)),
                               lambda index, out: outputs.append(out))
        assert "forward" not in vars(module)
        torch.testing.assert_close(outputs[0], module(tokens, height, width), atol=1e-5, rtol=0)
    assert passes == 3 and len(reads.known) == 2  # the attention's sums, then its channel gate's pooling


def test_the_pass_count_follows_the_reads(caplog):
    """HAT's tiny network has 2 channel attentions: 2 measuring passes and the last one, said in the log."""
    net = networks()["HATSR"]
    x = rand(1, 3, 24, 24)
    with torch.no_grad(), caplog.at_level("INFO", HALO_LOGGER):
        halo_forward(net, x, tile=8, halo=exact_halo(net, 3))
    assert "reads the whole image 2 times" in caplog.text and "3 passes in all" in caplog.text


def test_a_read_off_the_lr_grid_is_refused():
    reads = WholeImageReads()
    reads.start_tile(slice(4, 12), slice(4, 12), (False, False), (16, 16))
    with pytest.raises(OptionError, match=r"^tile: the network reads a whole 32 x 32 feature map in a tile of 16 x 16"):
        reads.read(32, 32, lambda rows, cols: torch.zeros(1))


def test_tiles_that_disagree_on_their_reads_are_refused():
    reads = WholeImageReads()

    def run(index: int) -> torch.Tensor:
        if index == 0:
            raise ReadMeasured
        return torch.zeros(1)

    with pytest.raises(OptionError, match="tiles made different whole-image reads"):
        multipass(run, 2, reads, lambda index: None, lambda index, out: None)


def test_atd_is_not_tiled_automatically_and_warns_when_asked(caplog):
    """ATD sorts tokens into categories over the whole image: tiles cannot be exact. Where the whole image does not
    fit, the planner refuses instead of tiling silently; an explicit tile is used, with the warning."""
    net = built(tiny_options("ATDSR"))
    assert not tiles_exactly(net)
    with pytest.raises(DataError, match=r"^64x48 needs about .* GiB whole, .* ATDSR's tiles cannot equal whole-image "
                                        r"inference \(ATDSR's token dictionary and categories\): give tile=N"):
        plan_tile(net, 48, 64, 0, budget=1)
    assert plan_tile(net, 48, 64, 16, budget=2**40) == 16
    with torch.no_grad(), logs_warning(caplog, HALO_LOGGER, r"^ATDSR reads the whole image \(ATDSR's token "
                                                            r"dictionary and categories\)"):
        halo_forward(net, rand(1, 3, 24, 24), tile=8, halo=8)


def test_hat_is_still_tiled_automatically_when_the_whole_image_does_not_fit():
    net = networks()["HATSR"]
    assert plan_tile(net, 48, 64, 0, budget=2**40) == 0
    tiled = estimated_bytes(net, 2400, 3200, AUTO_TILE, 4)
    assert tiled < estimated_bytes(net, 2400, 3200, 0)
    assert plan_tile(net, 2400, 3200, 0, budget=tiled + 1) == AUTO_TILE


def test_progress_counts_the_measuring_passes_too():
    """The progress bar of a tiled HAT counts every tile forward of its 3 passes, and ends where it said."""
    net = networks()["HATSR"]
    image = (uneven(24, 24)[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    seen = {"totals": [], "steps": 0}

    def progress(total: int):
        seen["totals"].append(total)

        def step() -> None:
            seen["steps"] += 1

        return step

    result = upscale(image, net, tile=8, tile_pad=exact_halo(net, 3), progress=progress)
    assert seen["totals"] == [9 * 3] and seen["steps"] == 9 * 3
    difference = np.abs(result.astype(int) - upscale(image, net).astype(int))
    assert difference.max() <= 1  # and the tiles are the whole image's (a 1e-7 difference may round either way)


def test_dat_reach_counts_its_rectangular_windows():
    """DAT's spatial attention holds ``split_size`` (windows of S1 x S2 and S2 x S1), not ``window_size``: its
    reach was left out of the halo bound, so a halo of that bound was not exact for DAT. Now each spatial block adds
    its longer side − 1: the tiny DAT (one spatial block) with 2 x 16 windows reaches 12 LR pixels further than with
    2 x 4 (the convolutions are the same)."""
    narrow = built(tiny_options("DATSR"))
    wide = built({**tiny_options("DATSR"), "split_size": [2, 16]})
    assert receptive_radius(wide, 3) - receptive_radius(narrow, 3) == 16 - 4

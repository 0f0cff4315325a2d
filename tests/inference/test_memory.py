"""The memory planner (issue 23, point 4): it receives --tile-pad instead of assuming 4, and its budget fractions
are named."""

from __future__ import annotations

import io

import pytest

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.cli import infer
from medsr_se.errors import DataError, OptionError
from medsr_se.inference import memory, upscale_jobs


def net(features: int = 8, scale: int = 4) -> SEEDSRGenerator:
    return SEEDSRGenerator(3, 3, num_feat=features, num_block=1, upscale=scale)


@pytest.mark.parametrize("tile_pad", [4, 10, 32])
def test_the_tile_halo_is_the_given_tile_pad(tile_pad):
    """Tiled: three F-channel float32 maps at LR size plus three of one padded tile at output size."""
    model, height, width, tile = net(), 300, 200, 64
    halo_side = 4 * (tile + 2 * tile_pad)  # output pixels along one side of a padded tile (scale 4)
    expected = 3 * 8 * height * width * 4 + 3 * 8 * halo_side * halo_side * 4
    assert memory.estimated_bytes(model, height, width, tile, tile_pad) == expected


def test_a_wide_halo_that_does_not_fit_is_refused_before_any_work():
    model = net(features=64)
    fits = memory.estimated_bytes(model, 1000, 1000, 128, memory.MIN_TILE_PAD)
    assert memory.plan_tile(model, 1000, 1000, 128, fits, tile_pad=4) == 128
    with pytest.raises(DataError, match="even tiled"):
        memory.plan_tile(model, 1000, 1000, 128, fits, tile_pad=64)


def test_a_negative_tile_names_the_parameter():
    """It said "--tile must be 0 ...", a flag a Python caller does not have: now ``tile=-1``, error.parameter."""
    with pytest.raises(OptionError, match=r"^tile=-1: must be 0 \(whole image\) or a positive size$") as raised:
        memory.plan_tile(net(), 100, 100, -1, 1 << 40)
    assert raised.value.parameter == "tile" and isinstance(raised.value, ValueError)


def test_infer_plans_with_its_tile_pad(monkeypatch, tmp_path, retina):
    """medsr-infer hands --tile-pad to the planner (seen by the planner itself, not by the result)."""
    import cv2
    import torch

    seen = []

    def recording_plan(model, height, width, tile, budget, tile_pad=None):
        seen.append(tile_pad)
        return tile

    torch.save({"params": net(features=8, scale=2).state_dict()}, tmp_path / "m.pth")
    cv2.imwrite(str(tmp_path / "a.png"), retina[:40, :40])
    monkeypatch.setattr(upscale_jobs, "plan_tile", recording_plan)  # what medsr-infer's jobs call
    assert infer.main(["-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--model",
                       str(tmp_path / "m.pth"), "--tile", "16", "--tile-pad", "9", "-q"]) == 0
    assert seen and set(seen) == {9}  # the check before any work and the work itself


def test_budget_fractions(monkeypatch):
    meminfo = "MemTotal:       1000000 kB\nMemAvailable:    500000 kB\n"
    monkeypatch.setattr(memory, "open", lambda *args, **kwargs: io.StringIO(meminfo), raising=False)
    assert memory.memory_budget("cpu") == int(memory.RAM_BUDGET_FRACTION * 500000 * 1024)
    assert memory.RAM_BUDGET_FRACTION == 0.7 and memory.GPU_BUDGET_FRACTION == 0.8


def test_a_through_plane_network_is_planned_per_axis():
    """upscale [4, 1] scales the height only: its estimate (whole and tiled) equals the formula with (4, 1)
    written out, and is below the isotropic x4 one (it was a TypeError: the list multiplied by itself)."""
    through_plane = SEEDSRGenerator(1, 1, num_feat=8, num_block=1, upscale=[4, 1])
    isotropic = SEEDSRGenerator(1, 1, num_feat=8, num_block=1, upscale=4)
    features, item = 8, 4
    assert memory.estimated_bytes(through_plane, 30, 20, 0) == (3 * features * 30 * 20
                                                                + 2 * features * 4 * 30 * 20) * item
    assert memory.estimated_bytes(through_plane, 30, 20, 16, tile_pad=2) == (
        3 * features * 30 * 20 + 3 * features * (4 * (16 + 4)) * (16 + 4)) * item
    assert memory.estimated_bytes(through_plane, 30, 20, 0) < memory.estimated_bytes(isotropic, 30, 20, 0)

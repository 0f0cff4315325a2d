"""medsr_se.inference.through_plane.load_through_plane_model: a checkpoint that cannot be applied through-plane is
a CheckpointError naming the parameter it is about (the command shows it under its flag: tests/cli/test_selfsr.py).
Oracle: the networks saved here."""

from __future__ import annotations

import pytest
import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.errors import CheckpointError, for_command
from medsr_se.inference.through_plane import load_through_plane_model, model_channels

FLAGS = {"model": "--model", "scale": "--scale"}


def saved(path, upscale, channels: int = 1):
    torch.manual_seed(0)
    net = SEEDSRGenerator(channels, channels, num_feat=8, num_block=1, upscale=upscale, img_residual=True)
    torch.save({"params": net.state_dict()}, path)
    return path


def test_a_through_plane_model_of_r_loads_on_the_cpu(tmp_path):
    net = load_through_plane_model(saved(tmp_path / "g3.pth", [3, 1]), 3, "cpu")
    assert net.scale_hw == (3, 1) and model_channels(net) == (1, 1)
    assert next(net.parameters()).device.type == "cpu"


@pytest.mark.parametrize("upscale,channels,parameter,says", [
    (4, 1, "model", "an in-plane model (x4 on both axes)"),
    ([4, 1], 1, "scale", "trained with upscale [4, 1], but this scan needs [3, 1]; give scale=4"),
    ([3, 1], 3, "model", "a through-plane model for 3-channel images"),
])
def test_a_model_that_does_not_fit_names_the_parameter(tmp_path, upscale, channels, parameter, says):
    path = saved(tmp_path / "g.pth", upscale, channels)
    with pytest.raises(CheckpointError) as raised:
        load_through_plane_model(path, 3, "cpu")
    message = str(raised.value)
    assert raised.value.parameter == parameter and says in message and str(path) in message, message
    assert "--" not in message and "\n" not in message
    shown = for_command(raised.value, FLAGS)
    assert (shown.startswith(f"--model {path}: ") if parameter == "model" else "give --scale 4" in shown), shown

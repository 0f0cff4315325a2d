"""Any BasicSR generator in load_generator / upscale: built from stored or given network_g options, and halo
tiles (no global pooling) equal to whole-image inference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from basicsr.archs import build_network

import medsr_se  # noqa: F401  (registers the archs and the compat fixes)
from medsr_se.inference import CheckpointError, load_generator, upscale
from medsr_se.inference.checkpoint import NETWORK_OPTIONS_KEY
from medsr_se.inference.halo import MAX_HALO, halo_forward, receptive_radius
from medsr_se.inference.tiling import tiled_forward
from medsr_se.utils.options import dump_yaml
from tests.helpers import measured_reach, trained_looking

TINY = {
    "EDSR": {"type": "EDSR", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_block": 2, "upscale": 4},
    "MSRResNet": {"type": "MSRResNet", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_block": 2, "upscale": 4},
    "RRDBNet": {"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_block": 1, "num_grow_ch": 4,
                "scale": 4},
    "SRCNN": {"type": "SRCNN", "num_in_ch": 3, "num_out_ch": 3, "upscale": 4, "num_feat": 8, "num_feat2": 4},
    "VDSR": {"type": "VDSR", "num_in_ch": 3, "num_out_ch": 3, "upscale": 4, "num_feat": 8, "num_layer": 5},
    "PGANGenerator": {"type": "PGANGenerator", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_block": 1,
                      "upscale": 4},
}


def built(options: dict, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return trained_looking(build_network(dict(options)), seed)


@pytest.mark.parametrize("name", sorted(TINY))
def test_halo_tiles_equal_the_whole_image(name: str) -> None:
    net = built(TINY[name])
    net.upscale = 4
    radius = receptive_radius(net, 3)
    assert measured_reach(net, 4, 41) <= radius < MAX_HALO  # the bound holds: the default halo is exact here
    x = torch.rand(1, 3, 37, 29, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        whole = net(x)
        tiled = tiled_forward(net, x, tile=12)  # dispatches to the halo tiles
        assert torch.allclose(tiled, whole, atol=1e-5, rtol=0)
        narrow = halo_forward(net, x, tile=12, halo=1)  # a halo narrower than the reach is not exact
    assert (narrow - whole).abs().max() > 1e-3


def save(tmp_path, name: str, net: torch.nn.Module, options: dict | None) -> str:
    saved = {"params": net.state_dict()}
    if options is not None:
        saved[NETWORK_OPTIONS_KEY] = options
    torch.save(saved, tmp_path / name)
    return str(tmp_path / name)


def test_stored_or_given_options_build_the_same_network(tmp_path, retina) -> None:
    options = TINY["RRDBNet"]
    net = built(options)
    lr = np.ascontiguousarray(retina[600:640, 600:648, ::-1])
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(lr[:, :, ::-1].transpose(2, 0, 1))).float().div(255).unsqueeze(0)
        expected = torch.round(net(x).clamp(0, 1) * 255).squeeze(0).numpy().transpose(1, 2, 0)[:, :, ::-1]
    stored = load_generator(save(tmp_path, "stored.pth", net, options))
    assert type(stored).__name__ == "RRDBNet" and stored.upscale == 4
    np.testing.assert_array_equal(upscale(lr, stored), expected.astype(np.uint8))
    bare = save(tmp_path, "bare.pth", net, None)
    with pytest.raises(CheckpointError, match=r"bare\.pth: .*give the option file it was trained with "
                                              r"\(options=FILE\)$") as raised:
        load_generator(bare)
    assert raised.value.parameter == "options" and "--opt" not in str(raised.value)  # the parameter, not a flag
    option_file = tmp_path / "rrdbnet.yml"
    dump_yaml({"network_g": options}, option_file)
    for given_file in (option_file, str(option_file)):  # what the advice says: options=FILE
        np.testing.assert_array_equal(upscale(lr, load_generator(bare, options=given_file)), expected.astype(np.uint8))
    given = load_generator(bare, options={"network_g": options})
    np.testing.assert_array_equal(upscale(lr, given, tile=16), expected.astype(np.uint8))
    with pytest.raises(CheckpointError, match="the network_g given says upscale=4, but upscale=8"):
        load_generator(bare, options=options, upscale=8)
    with pytest.raises(CheckpointError, match=r"bare\.pth: its weights do not fit EDSR"):
        load_generator(bare, options=TINY["EDSR"])
    with pytest.raises(CheckpointError, match="'NoSuchNet' is not a registered"):
        load_generator(save(tmp_path, "odd.pth", net, {**options, "type": "NoSuchNet"}))

"""HATSR, DATSR, DRCTSR and ATDSR (spandrel's HAT, DAT, DRCT, ATD in BasicSR's registry): registered without
spandrel being imported, spandrel's own network with its own weights' keys (the oracle: spandrel's class built
here from its own arguments, on the input reflected by numpy), output shapes at every scale, odd sizes and 1 / 3
channels, the parameter counts the authors published, checkpoints through load_generator, and halo tiles."""

from __future__ import annotations

import copy
import functools
import sys
from unittest import mock

import numpy as np
import pytest
import torch
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY

import medsr_se  # noqa: F401  (registers the archs)
from medsr_se.archs.transformer_archs import ATDSR, DATSR, DRCTSR, HATSR
from medsr_se.errors import OptionError
from medsr_se.inference import load_generator
from medsr_se.inference.checkpoint import NETWORK_OPTIONS_KEY, constructor_defaults, plain
from medsr_se.inference.halo import MAX_HALO, halo_forward, pools_globally, receptive_radius
from medsr_se.inference.tiling import tiled_forward
from medsr_se.utils.options import load_recipe, recipe_path
from tests.archs.transformers import TYPES, WINDOW, spandrel_network, tiny_options
from tests.helpers import measured_reach, run_python
from tests.inference.swinir import built, padded_forward

# the parameter counts the authors published for their x4 networks (3 channels), and where
PUBLISHED = {
    HATSR: (20.8e6, 0.05e6),  # XPixelGroup/HAT README, "Benchmark results on SRx4": HAT 20.8 M
    DATSR: (14.80e6, 0.005e6),  # zhengchen1999/DAT README, results table: DAT 14.80 M
    DRCTSR: (14_139_579, 0),  # ming053l/DRCT parameter_size.ipynb: "Params: 14139579" (README: 14.13 M)
    ATDSR: (20.3e6, 0.05e6),  # LabShuHangGU/Adaptive-Token-Dictionary figures/classical.png, x4: ATD 20.3 M
}
UPSAMPLE_STAGE = 9 * 64 * 256 + 256  # one more conv 64 -> 256 (3 x 3) + PixelShuffle(2) per factor 2 beyond x4


def rand(*shape: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def parameters(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_registered_with_published_defaults():
    """``import medsr_se`` registers the four names (spandrel is imported only to build one: the subprocess test
    below); the constructor defaults that load_generator reads are the published x4 networks'."""
    for kind in TYPES:
        assert kind in ARCH_REGISTRY
        defaults = constructor_defaults(kind)
        assert defaults["num_in_ch"] == defaults["num_out_ch"] == 3 and defaults["upscale"] == 4
        assert defaults["depths"] == defaults["num_heads"] == (6,) * 6


@pytest.mark.parametrize("kind", TYPES)
@pytest.mark.parametrize("channels,scale", [(1, 2), (3, 4), (1, 8), (3, 16)])
def test_shapes_at_every_scale_on_odd_sizes(kind, channels, scale):
    net = built(tiny_options(kind, scale, channels))
    with torch.no_grad():
        out = net(rand(1, channels, 13, 11))
    assert out.shape == (1, channels, 13 * scale, 11 * scale)
    assert type(net).__name__ == kind and net.window_size == WINDOW and net.upscale == scale


@pytest.mark.parametrize("kind,channels", [("HATSR", 1), ("DATSR", 3), ("DRCTSR", 1), ("ATDSR", 3)])
def test_it_is_spandrels_network_with_its_keys(kind, channels):
    """Our weights load strictly into spandrel's own class (so the authors' published weights load into ours);
    its forward on the input reflected by numpy to the window multiple, cropped back, is ours on any size."""
    net = built(tiny_options(kind, 2, channels))
    reference = spandrel_network(kind, 2, channels)
    reference.load_state_dict(net.state_dict(), strict=True)
    x = rand(1, channels, 13, 10)
    with torch.no_grad():
        torch.testing.assert_close(net(x), padded_forward(reference, x, WINDOW), atol=1e-6, rtol=0)
        assert torch.equal(net(x[..., :12, :8]), reference(x[..., :12, :8]))  # a multiple: no padding at all


@pytest.mark.parametrize("kind", TYPES)
def test_x8_and_x16_add_one_upsampling_stage_per_factor_2(kind):
    """x8 / x16: the networks' own upsampler with one / two more conv + PixelShuffle(2) stages, so an x4
    network's weights load into an x8 one with strict=False (only upsample.4 is new)."""
    nets = {scale: built(tiny_options(kind, scale)) for scale in (4, 8, 16)}
    assert parameters(nets[8]) - parameters(nets[4]) == UPSAMPLE_STAGE
    assert parameters(nets[16]) - parameters(nets[4]) == 2 * UPSAMPLE_STAGE
    missing, unexpected = nets[8].load_state_dict(nets[4].state_dict(), strict=False)
    assert sorted(missing) == ["upsample.4.bias", "upsample.4.weight"] and not unexpected


@pytest.mark.parametrize("kind", PUBLISHED)
def test_published_parameter_counts(kind):
    """The defaults are the published x4 networks (counted on the meta device, initialisation skipped)."""
    linspace = functools.partial(torch.linspace, device="cpu")  # the drop-path rates are read with .item()
    with torch.device("meta"), mock.patch.object(torch, "linspace", linspace), \
            mock.patch.object(torch.nn.Module, "apply", lambda module, fn: module):
        net = kind()
    published, rounding = PUBLISHED[kind]
    assert abs(parameters(net) - published) <= rounding, parameters(net)


@pytest.mark.parametrize("kind", TYPES)
def test_checkpoint_loads_and_equals_the_networks_own_forward(kind, tmp_path):
    options = tiny_options(kind, 2, 3 if kind in ("HATSR", "DRCTSR") else 1)
    net = built(options)
    torch.save({"params": net.state_dict(), NETWORK_OPTIONS_KEY: options}, tmp_path / "net_g.pth")
    loaded = load_generator(str(tmp_path / "net_g.pth"), upscale=2)
    assert type(loaded).__name__ == kind and isinstance(loaded, ARCH_REGISTRY.get(kind))
    assert loaded.medsr_se_multiple == WINDOW
    x = rand(1, options["num_in_ch"], 19, 14)
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))
        assert torch.equal(copy.deepcopy(loaded)(x), net(x))


def test_drct_tiles_equal_the_whole_image(tmp_path):
    """DRCT has no global pooling: its reach is the convolutions' plus window − 1 per Swin block (the measured
    reach is within it), so tiles with that halo equal the whole-image forward; a narrower halo does not."""
    options = tiny_options("DRCTSR")
    torch.save({"params": built(options).state_dict(), NETWORK_OPTIONS_KEY: options}, tmp_path / "d.pth")
    net = load_generator(str(tmp_path / "d.pth"))
    radius = receptive_radius(net, 3)
    assert measured_reach(net, 2, 40) <= radius <= MAX_HALO and not pools_globally(net)
    x = rand(1, 3, 53, 42)
    with torch.no_grad():
        whole = net(x)
        torch.testing.assert_close(tiled_forward(net, x, tile=16), whole, atol=1e-5, rtol=0)
        narrow = halo_forward(net, x, tile=16, halo=WINDOW)
    assert (narrow - whole).abs().max() > 1e-4


@pytest.mark.parametrize("kind", ["HATSR", "DATSR", "ATDSR"])
def test_hat_dat_atd_read_the_whole_image(kind):
    """HAT's and DAT's channel attention pool over the whole image, ATD's token dictionary and categories read
    every token: one changed LR pixel moves the output as far as the image goes, so no halo makes tiles exact
    (HAT and DAT are recognised by their global pooling, ATD by its ``sees_whole_image``); the tiles measure HAT's
    and DAT's reads over the whole image (tests/inference/test_global_reads.py), ATD's they cannot."""
    net = built(tiny_options(kind))
    assert measured_reach(net, 2, 32) >= 16
    assert pools_globally(net)


@pytest.mark.parametrize("kind", TYPES)
def test_recipes_are_the_published_networks_at_every_scale(kind):
    """baselines/<method>_x4 / _x8 / _x16 resolve by name and build the published network (the defaults, counted
    above) at their scale; the data, budget and metrics: tests/utils/test_baseline_recipes.py."""
    published = constructor_defaults(kind)
    for scale in (4, 8, 16):
        name = f"baselines/{kind.removesuffix('SR').lower()}_x{scale}"
        assert recipe_path(name).name == f"{name.split('/')[1]}.yml"
        network = load_recipe(name)["network_g"]
        assert network["type"] == kind and network["upscale"] == scale
        for key, value in network.items():
            assert key in ("type", "upscale") or value == plain(published[key]), key


def test_missing_spandrel_is_one_option_error(monkeypatch):
    for name in ["spandrel", *(name for name in sys.modules if name.startswith("spandrel."))]:
        monkeypatch.setitem(sys.modules, name, None)  # import spandrel... raises ImportError
    with pytest.raises(OptionError, match=r"^type=HATSR is built by spandrel, which cannot be imported .*pip install "
                                          r"spandrel \(Python >= 3.10\), or .*pip install -e \"\.\[transformers\]\""):
        build_network(tiny_options("HATSR"))


@pytest.mark.parametrize("change,match", [({"num_out_ch": 1}, r"^num_out_ch=1: DRCTSR gives as many channels"),
                                          ({"upscale": 5}, r"^upscale=5: DRCTSR builds x2, x3, x4, x8 and x16")])
def test_bad_options_are_named(change, match):
    with pytest.raises(OptionError, match=match) as caught:
        build_network({**tiny_options("DRCTSR"), **change})
    assert caught.value.parameter == next(iter(change))


@pytest.mark.slow
def test_import_medsr_se_leaves_spandrel_unimported(tmp_path):
    code = ("import sys, medsr_se\nfrom basicsr.utils.registry import ARCH_REGISTRY\n"
            "print('spandrel' in sys.modules, all(k in ARCH_REGISTRY for k in ('HATSR', 'DATSR', 'DRCTSR', "
            "'ATDSR')))")
    run = run_python(["-c", code], cwd=tmp_path)
    assert run.stdout.split() == ["False", "True"], run.stderr


@pytest.mark.slow
def test_each_recipe_trains_two_iterations_and_its_checkpoint_infers(retina, tmp_path):
    """baselines/{hat,dat,drct,atd}_x4 with tiny trunks, 2 iterations through ``python -m medsr_se.train`` (each run
    in this process: tests.helpers.run_in_process); each net_g_latest.pth gives, in medsr-infer, the network built
    from the option file (the oracle)."""
    import cv2

    from medsr_se.cli import infer as infer_cli
    from medsr_se.utils.options import load_yaml
    from tests.cli.test_basicsr_checkpoints import reference, reference_image, tiny
    from tests.helpers import run_in_process, write_options, write_pairs

    pairs = {"train": write_pairs(retina, tmp_path / "train", 4, 64, 4, seed=1),
             "val": write_pairs(retina, tmp_path / "val", 1, 64, 4, seed=2)}
    runs = {}
    for kind in TYPES:
        method = kind.removesuffix("SR").lower()
        options = tiny(f"baselines/{method}_x4", f"{method}_tiny", pairs)
        assert options["network_g"]["type"] == kind
        options["network_g"] = tiny_options(kind, 4)
        options["train"].update(total_iter=2)
        options["logger"]["save_checkpoint_freq"] = 2
        runs[method] = write_options(options, tmp_path / f"{method}.yml")
        assert run_in_process("medsr_se.train", ["-opt", str(runs[method])], tmp_path) == 0, method
    image = pairs["val"] / "LR_x4" / "img000.png"
    for method, path in runs.items():
        checkpoint = tmp_path / "experiments" / f"{method}_tiny" / "models" / "net_g_latest.pth"
        assert torch.load(checkpoint, weights_only=True)[NETWORK_OPTIONS_KEY] == load_yaml(path)["network_g"]
        out = tmp_path / "sr" / method
        assert infer_cli.main(["-i", str(image), "-o", str(out), "--model", str(checkpoint), "-q"]) == 0
        lr = cv2.imread(str(image))
        expected = reference_image(reference(path, checkpoint), lr)
        np.testing.assert_array_equal(cv2.imread(str(out / "img000.png")), expected)

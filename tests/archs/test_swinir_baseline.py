"""BasicSR's own SwinIR as a baseline: baselines/swinir_x4 / _x8 / _x16 are the authors' classical-SR network at the
parameter count they published, its x8 / x16 are more x2 stages of its own upsampler, and a tiny version of the
recipe trains through ``python -m medsr_se.train`` and infers odd sizes in medsr-infer (oracle: BasicSR's network
built from the option file, on the input reflected by numpy; tests/inference/swinir.py)."""

from __future__ import annotations

import functools
import math
from unittest import mock

import numpy as np
import pytest
import torch
from basicsr.archs.swinir_arch import SwinIR

import medsr_se  # noqa: F401
from medsr_se.utils.options import load_recipe, recipe_path

# BasicSR's options/train/SwinIR/train_SwinIR_SRx4_scratch.yml (the authors' classical-SR x4 network, SwinIR-M)
AUTHORS = {"type": "SwinIR", "in_chans": 3, "img_size": 48, "window_size": 8, "img_range": 1.0,
           "depths": [6] * 6, "embed_dim": 180, "num_heads": [6] * 6, "mlp_ratio": 2, "upsampler": "pixelshuffle",
           "resi_connection": "1conv"}
# JingyunLiang/SwinIR README, "comparison between SwinIR and ... RCAN (classical image SR, X4)": #Params 11.9M
PUBLISHED_X4 = (11.9e6, 0.05e6)
UPSAMPLE_STAGE = 9 * 64 * 256 + 256  # one conv 64 -> 256 (3 x 3) + PixelShuffle(2) per factor 2
SCALES = (4, 8, 16)


def counted(network: dict) -> torch.nn.Module:
    """BasicSR's SwinIR of ``network`` on the meta device (no memory, initialisation skipped)."""
    options = {key: value for key, value in network.items() if key != "type"}
    linspace = functools.partial(torch.linspace, device="cpu")  # the drop-path rates are read with .item()
    with torch.device("meta"), mock.patch.object(torch, "linspace", linspace), \
            mock.patch.object(torch.nn.Module, "apply", lambda module, fn: module):
        return SwinIR(**options)


@pytest.mark.parametrize("scale", SCALES)
def test_recipes_are_the_authors_network_and_training(scale):
    name = f"baselines/swinir_x{scale}"
    assert recipe_path(name).name == f"swinir_x{scale}.yml"
    recipe = load_recipe(name)
    assert recipe["model_type"] == "SwinIRModel"  # BasicSR's: validation pads to the window
    assert dict(recipe["network_g"]) == {**AUTHORS, "upscale": scale}
    train = recipe["train"]
    assert train["ema_decay"] == 0.999 and train["pixel_opt"]["type"] == "L1Loss"
    assert {key: train["optim_g"][key] for key in ("type", "lr", "betas")} == {"type": "Adam", "lr": 2e-4,
                                                                               "betas": [0.9, 0.99]}
    lr_patch = recipe["datasets"]["train"]["gt_size"] // scale  # BasicSR's SwinIR does not pad in training
    assert lr_patch % AUTHORS["window_size"] == 0


def test_published_parameter_count_and_the_x8_x16_stages():
    """x4: 11,900,199 parameters, the published 11.9 M (11,752,487 is the x2 network's). BasicSR's ``Upsample``
    builds one conv + PixelShuffle(2) per factor 2 (SwinIR's own does the same), so x8 and x16 have one and two
    stages more than x4, and nothing else changes."""
    nets = {scale: counted(load_recipe(f"baselines/swinir_x{scale}")["network_g"]) for scale in SCALES}
    counts = {scale: sum(p.numel() for p in net.parameters()) for scale, net in nets.items()}
    published, rounding = PUBLISHED_X4
    assert abs(counts[4] - published) <= rounding, counts[4]
    for scale, net in nets.items():
        shuffles = [module.upscale_factor for module in net.upsample if isinstance(module, torch.nn.PixelShuffle)]
        assert shuffles == [2] * int(math.log2(scale))
        assert counts[scale] == counts[4] + (len(shuffles) - 2) * UPSAMPLE_STAGE
    assert sum(p.numel() for p in counted({**AUTHORS, "upscale": 2}).parameters()) == 11_752_487


@pytest.mark.slow
def test_the_recipe_trains_two_iterations_and_infers_odd_sizes(retina, tmp_path):
    """baselines/swinir_x4 with a tiny trunk, 2 iterations through ``python -m medsr_se.train`` (in this process:
    tests.helpers.run_in_process), validated on a 15 x 15 LR image (SwinIRModel pads it to the window: SRModel
    would end in window_partition's error); net_g_latest.pth carries the recipe's network_g and gives, in
    medsr-infer, on a 13 x 11 LR image, the network built from the option file."""
    import cv2

    from medsr_se.cli import infer as infer_cli
    from medsr_se.inference.checkpoint import NETWORK_OPTIONS_KEY
    from medsr_se.utils.options import load_yaml
    from tests.cli.test_basicsr_checkpoints import reference, tiny
    from tests.helpers import run_in_process, write_options, write_pairs
    from tests.inference.swinir import reference_image

    pairs = {"train": write_pairs(retina, tmp_path / "train", 4, 64, 4, seed=1),
             "val": write_pairs(retina, tmp_path / "val", 1, 60, 4, seed=2)}
    options = tiny("baselines/swinir_x4", "swinir_tiny", pairs)
    assert options["model_type"] == "SwinIRModel"
    options["network_g"].update(embed_dim=12, depths=[2], num_heads=[2])
    options["train"].update(total_iter=2)
    options["logger"]["save_checkpoint_freq"] = 2
    options["val"]["val_freq"] = 2
    path = write_options(options, tmp_path / "swinir.yml")
    assert run_in_process("medsr_se.train", ["-opt", str(path)], tmp_path) == 0
    log = next((tmp_path / "experiments" / "swinir_tiny").glob("train_*.log")).read_text()
    assert "Validation STARE_test" in log and "# psnr:" in log
    checkpoint = tmp_path / "experiments" / "swinir_tiny" / "models" / "net_g_latest.pth"
    assert torch.load(checkpoint, weights_only=True)[NETWORK_OPTIONS_KEY] == load_yaml(path)["network_g"]
    lr = np.ascontiguousarray(cv2.imread(str(pairs["val"] / "LR_x4" / "img000.png"))[:13, :11])
    cv2.imwrite(str(tmp_path / "odd.png"), lr)
    assert infer_cli.main(["-i", str(tmp_path / "odd.png"), "-o", str(tmp_path / "sr"), "--model", str(checkpoint),
                           "-q"]) == 0
    expected = reference_image(reference(path, checkpoint), lr, AUTHORS["window_size"])
    result = cv2.imread(str(tmp_path / "sr" / "odd.png"))
    assert result.shape == (52, 44, 3)
    np.testing.assert_array_equal(result, expected)

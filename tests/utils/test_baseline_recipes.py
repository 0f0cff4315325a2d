"""The baseline recipes of options/baselines/: each loads, names a registered model and builds its networks, and
keeps the data, split, patches, augmentation, budget and validation metrics of options/x{scale}.yml."""

from __future__ import annotations

import pytest
import torch
from basicsr.archs import build_network
from basicsr.utils.registry import MODEL_REGISTRY

import medsr_se  # noqa: F401
from medsr_se.inference.window import any_size
from medsr_se.utils.options import load_recipe, recipe_names, recipe_path
from tests.archs.transformers import TINY

BASELINES = [name for name in recipe_names() if name.startswith("baselines/")]
METHODS = {"srcnn", "vdsr", "edsr", "srresnet", "srgan", "esrgan", "pgan"}
TRANSFORMERS = {"hat", "dat", "drct", "atd", "swinir"}  # spandrel's HATSR, ... and BasicSR's own SwinIR
NARROW = {**TINY, "SwinIR": {"embed_dim": 12, "depths": [1], "num_heads": [2]}}  # transformers: a tiny trunk


def test_every_method_is_shipped():
    assert {name.split("/")[1].rsplit("_x", 1)[0] for name in BASELINES} == METHODS | TRANSFORMERS
    for method in METHODS | TRANSFORMERS:  # srresnet / srgan at x8, x16: LargeScaleMSRResNet
        assert {f"baselines/{method}_x{s}" for s in (4, 8, 16)} <= set(BASELINES)
    for spelling in ("baselines/edsr_x4", "baselines/edsr_x4.yml"):
        assert recipe_path(spelling).parts[-2:] == ("baselines", "edsr_x4.yml")


@pytest.mark.parametrize("name", BASELINES)
def test_recipe_matches_the_seed_recipe(name):
    opt = load_recipe(name)
    scale = int(name.rsplit("_x", 1)[1])
    seed = load_recipe(f"x{scale}")
    assert opt["model_type"] in MODEL_REGISTRY and opt["scale"] == scale
    assert opt["datasets"] == seed["datasets"]  # same data, split, patch size, augmentation, batch
    assert opt["val"] == seed["val"]  # same validation metrics (FOV, vessel F1)
    train = opt["train"]
    assert train["total_iter"] == seed["train"]["total_iter"]
    assert train["scheduler"]["milestones"] == [round(f * train["total_iter"]) for f in
                                                seed["train"]["scheduler"]["milestones"]]
    network = opt["network_g"]
    assert network.get("upscale", network.get("scale")) == scale
    narrow = NARROW.get(network["type"], {"num_feat": 4})
    net = build_network(dict(network, **narrow))  # the type exists and takes these arguments (narrowed: fast)
    channels = network.get("num_in_ch", network.get("in_chans"))  # SwinIR: in_chans (it gives as many out)
    lr = torch.rand(2, channels, 6, 5)  # 2: DAT's batch norm after global pooling needs two in training
    with torch.no_grad():  # the network upscales by the recipe's scale (BasicSR's RRDBNet at scale 8 gives x4)
        # any_size: SwinIR takes multiples of its window only (its SwinIRModel pads in validation)
        assert tuple(any_size(net)(lr).shape) == (2, network.get("num_out_ch", channels), 6 * scale, 5 * scale)
    if "network_d" in opt:
        d = dict(opt["network_d"], num_feat=4)
        if d["type"] == "VGGStyleDiscriminator":
            assert d["input_size"] == opt["datasets"]["train"]["gt_size"]
        build_network(d)

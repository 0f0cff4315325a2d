"""Options of the training path: VGG features, unused BasicSR losses, recipes' crops / workers / milestones, gloo on
CPU runs, train:compile."""

from __future__ import annotations

import pytest
import torch
from basicsr.models import build_model

from medsr_se.losses.vgg_features import VGGFeatures
from medsr_se.utils.options import OptionError, load_recipe
from tests.helpers import build_tiny_model, in_process_options, write_options

BATCH = {"lq": torch.rand(2, 3, 16, 16), "gt": torch.rand(2, 3, 64, 64)}


@pytest.mark.slow
def test_vgg_conv_features_are_the_layers_own_output(tmp_path):
    from basicsr.archs import vgg_arch
    from torchvision.models import vgg19

    torch.manual_seed(0)
    torch.save(vgg19(weights=None).state_dict(), tmp_path / "vgg19.pth")  # random weights, torchvision's layout
    ours = VGGFeatures(["conv2_2", "relu2_2"], weights_path=str(tmp_path / "vgg19.pth"))
    vgg_arch.VGG_PRETRAIN_PATH = str(tmp_path / "vgg19.pth")
    theirs = vgg_arch.VGGFeatureExtractor(["conv2_2", "relu2_2"], vgg_type="vgg19", use_input_norm=True)
    x = torch.rand(1, 3, 32, 32)
    got, expected = ours(x), theirs(x)
    assert expected["conv2_2"].min() < 0  # a conv output has negatives; after ReLU it would not
    for name in ("conv2_2", "relu2_2"):
        torch.testing.assert_close(got[name], expected[name])


def test_the_tests_tiny_model_computes_vgg_features_up_to_conv2_2_only(pairs_x4, tmp_path):
    """tests.helpers' tiny GAN (every test training but the recipes' and the demo's) asks for the random VGG's
    conv2_2 alone; merged into the recipe's {conv5_4: 1} it ran all 16 VGG19 convolutions in every step."""
    vgg = build_tiny_model(pairs_x4, tmp_path).cri_fusion.vgg
    assert vgg.layer_names == ["conv2_2"] and vgg.names[-1] == "conv2_2"
    assert sum(isinstance(layer, torch.nn.Conv2d) for layer in vgg.features) == 4


def test_unused_basicsr_loss_options_are_an_error_naming_them(pairs_x4, tmp_path):
    with pytest.raises(OptionError, match=r"train:pixel_opt, train:gan_opt: not used by RelativisticGANModel"):
        build_tiny_model(pairs_x4, tmp_path, pixel_opt={"type": "L1Loss", "loss_weight": 1.0},
                         gan_opt={"type": "GANLoss", "gan_type": "vanilla", "loss_weight": 0.005})


def test_x16_recipe_crops_inside_its_sub_images():
    from medsr_se.cli.prepare import build_parser

    crop = build_parser().parse_args(["x"]).crop_size
    for recipe in ("x16", "pretrain_x16"):
        gt_size = load_recipe(recipe)["datasets"]["train"]["gt_size"]
        assert gt_size < crop and gt_size % 16 == 0 and crop % 16 == 0


def test_milestones_given_as_fractions_follow_total_iter(pairs_x4, tmp_path):
    opt = in_process_options(pairs_x4, tmp_path / "schedule", "schedule", total_iter=40)
    opt["train"]["scheduler"]["milestones"] = [0.5, 0.75]
    model = build_model(opt)
    assert all(sorted(scheduler.milestones) == [20, 30] for scheduler in model.schedulers)
    assert load_recipe("x4")["train"]["scheduler"]["milestones"] == [0.5, 0.75]


def test_recipes_keep_their_workers_across_epochs():
    for recipe in ("x4", "x8", "x16", "x4_gray", "pretrain_x4"):
        train = load_recipe(recipe)["datasets"]["train"]
        assert train["persistent_workers"] is True and train["pin_memory"] is True


def test_a_cpu_run_on_a_gpu_host_uses_gloo(tmp_path, monkeypatch):
    import torch.distributed as dist
    from basicsr.utils import dist_util

    path = write_options({"name": "x", "num_gpu": 0}, tmp_path / "cpu.yml")
    monkeypatch.setattr("sys.argv", ["train", "-opt", str(path), "--launcher", "pytorch"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    chosen = {}
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kwargs: chosen.setdefault("backend", backend))
    dist_util._init_dist_pytorch("nccl")
    assert chosen["backend"] == "gloo"


@pytest.mark.slow
def test_compile_option_trains_the_same_modules(pairs_x4, tmp_path, monkeypatch):
    compiled_names = []
    real_compile = torch.compile

    def eager_compile(module, **kwargs):  # the option's wiring, without inductor's minutes on two cores
        compiled_names.append(type(module).__name__)
        return real_compile(module, backend="aot_eager", **kwargs)

    monkeypatch.setattr(torch, "compile", eager_compile)
    torch.manual_seed(0)
    model = build_tiny_model(pairs_x4, tmp_path, compile=True)
    before = [p.detach().clone() for p in model.net_g.parameters()]
    model.feed_data(BATCH)
    model.optimize_parameters(1)
    assert sorted(compiled_names) == ["FusionSEDiscriminator", "SEEDSRGenerator"]
    assert any(not torch.equal(b, p) for b, p in zip(before, model.net_g.parameters()))
    assert all(torch.isfinite(torch.tensor(v)) for v in model.get_current_log().values())

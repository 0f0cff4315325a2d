import re
import subprocess

import pytest
import torch
import yaml
from torchvision.models import vgg as tv_vgg

from medsr_se.cli import demo
from medsr_se.losses.vgg_features import WEIGHT_FILES

pytestmark = pytest.mark.slow  # trainings / subprocess pipelines (the fast loop: pytest -m "not slow")


def random_vgg19_in_the_hub_cache(torch_home) -> None:
    """A torchvision VGG19 with random weights where torch's hub cache keeps downloads, under the file name of the
    ImageNet weights (``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth``). Only ``features.*`` is saved: the
    perceptual term never loads the 120M-parameter classifier (medsr_se/losses/vgg_features.py)."""
    torch.manual_seed(0)
    features = tv_vgg.make_layers(tv_vgg.cfgs["E"])  # what vgg19(weights=None).features is
    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save({f"features.{key}": value for key, value in features.state_dict().items()},
               folder / WEIGHT_FILES["vgg19"])


def test_demo_runs_end_to_end_on_a_tiny_budget(tmp_path, capsys, monkeypatch):
    """With VGG weights in the hub cache, the demo trains with the perceptual term (the recipe's conv5_4)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # read by this process and the training process
    random_vgg19_in_the_hub_cache(tmp_path / "torch")
    assert demo.main(["--workdir", str(tmp_path / "d"), "--iters", "3"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "perceptual term is switched off" not in captured.err
    options = yaml.safe_load((tmp_path / "d" / "demo_x4.yml").read_text())
    assert options["train"]["fusion_opt"]["vgg_weight"] == 1.0
    assert re.search(r"l_g_vgg [-\d.e]+", out)  # the perceptual term was computed and logged
    assert re.search(r"\| x4 \| bicubic \| 2 \| [\d.]+", out) and re.search(r"\| x4 \| SEEDSR-GAN \| 2 \|", out)
    # a short summary instead of BasicSR's ~350 lines, which go to a log file
    assert len(out.splitlines()) < 25 and "Network" not in out and "-1 day" not in out
    assert re.search(r"3 iterations; last losses: l_\w+ [-\d.e]+", out) and "validation retina_heldout/psnr" in out
    assert re.search(r"discriminator: d_pairs_ranked [\d.]+, d_separation [-\d.e]+", out)
    assert "Network" in (tmp_path / "d" / "train_output.log").read_text()
    assert (tmp_path / "d" / "results" / "curves.png").stat().st_size > 0
    assert len(list((tmp_path / "d" / "results" / "sheets").glob("x4_*.png"))) == 2
    assert (tmp_path / "d" / "experiments" / "demo_x4" / "models" / "net_g_latest.pth").exists()


def test_tiles_lie_inside_the_field_of_view(tmp_path):
    names = demo.write_tiles(tmp_path)
    assert set(demo.TEST_TILES) <= set(names) and "tile_0_0" not in names


def test_without_vgg_weights_the_perceptual_term_is_switched_off_and_said(tmp_path, capsys, monkeypatch):
    """A fresh machine (no weights found): a note, and the option file the training reads has vgg_weight 0. The
    training itself is the end-to-end test's; here it is stopped at once."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path)  # no experiments/pretrained_models here either
    ran = []
    monkeypatch.setattr(demo.subprocess, "run",
                        lambda command, **kwargs: ran.append(command) or subprocess.CompletedProcess(command, 1))
    (tmp_path / "w").mkdir()
    assert demo.train(tmp_path / "w", tmp_path / "data", 3, demo.Console()) is None
    assert "perceptual term is switched off" in capsys.readouterr().err
    assert ran and yaml.safe_load((tmp_path / "w" / "demo_x4.yml").read_text())["train"]["fusion_opt"][
        "vgg_weight"] == 0.0

"""Option files, FOV metrics and the evaluation command."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.archs import build_network
from basicsr.losses import build_loss
from basicsr.metrics import calculate_psnr, calculate_ssim
from basicsr.utils.options import ordered_yaml

from medsr_se import evaluation as evaluate_module
from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.cli import evaluate as evaluate_cli
from medsr_se.metrics.fov_metrics import calculate_psnr_fov, calculate_ssim_fov, fov_mask
from medsr_se.utils.bicubic import matlab_bicubic
from tests.helpers import REPO_ROOT, run_in_process

OPTION_FILES = sorted((REPO_ROOT / "options").glob("*.yml"))


def load_options(path: Path) -> dict:
    with path.open() as handle:
        return yaml.load(handle, Loader=ordered_yaml()[0])


def train_option_file(option_file: str, name: str, iters: int, cwd: Path, overrides: list[str]) -> str:
    """``python -m medsr_se.train`` on one of the shipped option files, shrunk by --force_yml, run in this process
    (tests.helpers.run_in_process) in ``cwd``; the log text."""
    shrink = [f"name={name}", "num_gpu=0", f"train:total_iter={iters}", f"val:val_freq={iters}",
              f"logger:save_checkpoint_freq={iters}", "logger:use_tb_logger=false",
              "datasets:train:batch_size_per_gpu=2", "datasets:train:num_worker_per_gpu=0", "network_d:num_feat=8",
              "train:fusion_opt:vgg_weights_path=random", *overrides]
    status = run_in_process("medsr_se.train", ["-opt", str(REPO_ROOT / "options" / option_file), "--force_yml",
                                               *shrink], cwd)
    assert status == 0, f"medsr_se.train -opt {option_file}: exit status {status}"
    return next((cwd / "experiments" / name).glob("train_*.log")).read_text()


def test_option_files_exist():
    names = {p.name for p in OPTION_FILES}
    for scale in (4, 8, 16):
        assert {f"x{scale}.yml", f"pretrain_x{scale}.yml", f"test_x{scale}.yml"} <= names


@pytest.mark.parametrize("path", OPTION_FILES, ids=lambda p: p.name)
def test_option_file_builds_its_networks_and_losses(path):
    opt = load_options(path)
    scale = opt["scale"]
    generator = build_network({**opt["network_g"], "num_block": 1})
    channels = opt["network_g"]["num_in_ch"]
    assert generator.upscale in (scale, [scale, 1])  # [r, 1]: the through-plane recipe (selfsr.yml)
    assert generator(torch.rand(1, channels, 8, 8)).shape[-2:] == tuple(8 * s for s in generator.scale_hw)
    if "network_d" in opt:
        assert build_network(opt["network_d"])(torch.rand(2, channels, 64, 64)).shape == (2, 1)
    train = opt.get("train", {})
    if "fusion_opt" in train:
        fusion = dict(train["fusion_opt"], vgg_weights_path="random")
        loss = build_loss(fusion)
        assert (loss.vgg_weight, loss.l1_weight, loss.gan_weight, loss.mse_weight) == (1.0, 1.0, 0.005, 0.5)
        for optim in ("optim_g", "optim_d"):
            assert train[optim] == {"type": "Adam", "lr": 1e-4, "betas": [0.9, 0.999], "eps": 1e-8}
        assert opt["model_type"] == "RelativisticGANModel"
        assert opt["datasets"]["train"]["batch_size_per_gpu"] == 16
        assert opt["datasets"]["train"]["use_rot"] and opt["datasets"]["train"]["use_hflip"]
        assert opt["datasets"]["train"]["gt_size"] // scale >= 24
    for metric in (opt.get("val") or {}).get("metrics", {}).values():  # selfsr.yml has no validation set
        assert metric["crop_border"] == scale


@pytest.mark.slow
def test_x4_recipe_trains_on_prepared_data(prepared, tmp_path):
    root, _ = prepared
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "STARE").symlink_to(root)
    log = train_option_file("x4.yml", "recipe_x4", 4, tmp_path,
                            ["network_g:num_feat=16", "network_g:num_block=2", "logger:print_freq=2"])
    for metric in ("psnr", "ssim", "psnr_y", "psnr_fov", "ssim_fov"):
        assert re.search(rf"# {metric}: [\d.]+", log), metric
    assert (tmp_path / "experiments" / "recipe_x4" / "models" / "net_g_4.pth").exists()


def test_fov_metric_ignores_the_border(retina):
    hr = np.ascontiguousarray(retina[::4, ::4, ::-1])
    rng = np.random.default_rng(0)
    sr = np.clip(hr.astype(int) + rng.integers(-6, 7, hr.shape), 0, 255).astype(np.uint8)
    mask = fov_mask(hr)
    assert 0.6 < mask.mean() < 0.9 and not mask[0, 0] and mask[hr.shape[0] // 2, hr.shape[1] // 2]
    other_border = sr.copy()
    other_border[~mask] = rng.integers(0, 255, (int((~mask).sum()), 3))
    assert calculate_psnr_fov(sr, hr, 4) == calculate_psnr_fov(other_border, hr, 4)
    assert calculate_psnr(sr, hr, 4) != calculate_psnr(other_border, hr, 4)
    assert calculate_ssim_fov(sr, hr, 4) == pytest.approx(calculate_ssim_fov(other_border, hr, 4), abs=1e-9)
    assert calculate_ssim(sr, hr, 4) != calculate_ssim(other_border, hr, 4)


def test_fov_metrics_equal_basicsr_when_mask_is_everything(retina):
    hr = np.ascontiguousarray(retina[500:700, 520:720, ::-1])  # inside the field of view
    sr = cv2.GaussianBlur(hr, (5, 5), 1.0)
    assert fov_mask(hr).all()
    assert calculate_psnr_fov(sr, hr, 4) == pytest.approx(calculate_psnr(sr, hr, 4), abs=1e-9)
    assert calculate_ssim_fov(sr, hr, 4) == pytest.approx(calculate_ssim(sr, hr, 4), abs=1e-9)
    assert calculate_psnr_fov(sr, hr, 4, test_y_channel=True) == pytest.approx(
        calculate_psnr(sr, hr, 4, test_y_channel=True), abs=1e-9)


def test_fov_metrics_are_registered():
    from basicsr.metrics import calculate_metric

    hr = np.full((64, 64, 3), 120, np.uint8)
    value = calculate_metric({"img": hr, "img2": hr}, {"type": "calculate_ssim_fov", "crop_border": 4})
    assert value == pytest.approx(1.0)


@pytest.mark.slow
def test_evaluation_bicubic_equals_basicsr_and_model_rows(prepared, tmp_path):
    root, manifest = prepared
    torch.manual_seed(0)
    generator = SEEDSRGenerator(num_feat=8, num_block=1, upscale=4, img_residual=True)
    checkpoint = tmp_path / "net_g.pth"
    torch.save({"params": generator.state_dict(), "params_ema": generator.state_dict()}, checkpoint)
    summary = evaluate_module.evaluate(root, {4: str(checkpoint)}, tmp_path / "eval", scales=[4, 8], niqe=False)
    by_key = {(row["scale"], row["method"]): row for row in summary}
    assert set(by_key) == {(4, "bicubic"), (4, "SEEDSR-GAN"), (8, "bicubic")}
    expected = []
    for stem in manifest["split"]["test"]:
        hr = cv2.imread(str(root / "test" / "HR" / f"{stem}.png"))
        lr = cv2.imread(str(root / "test" / "LR_x4" / f"{stem}.png"))
        expected.append(calculate_psnr(matlab_bicubic(lr, 4), hr, 4))
    assert by_key[(4, "bicubic")]["psnr"] == pytest.approx(np.mean(expected), abs=1e-9)
    # the untrained image-skip generator is torch-bicubic: close to, not equal to, MATLAB bicubic
    assert abs(by_key[(4, "SEEDSR-GAN")]["psnr"] - by_key[(4, "bicubic")]["psnr"]) < 1.0
    table = (tmp_path / "eval" / "table.md").read_text()
    assert "| x4 | bicubic | 2 |" in table and "40.03 / 0.9512" in table
    with (tmp_path / "eval" / "per_image.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 2 * 3
    sheets = sorted((tmp_path / "eval" / "sheets").glob("x4_*.png"))
    assert len(sheets) == 2 and cv2.imread(str(sheets[0])).shape[1] == 4 * 688


def test_evaluate_cli_errors(prepared, tmp_path, capsys):
    root, _ = prepared
    assert evaluate_cli.main(["--data", str(root), "--model", "x4=" + str(tmp_path / "missing.pth"),
                                 "-o", str(tmp_path / "e")]) == 2
    assert "missing.pth" in capsys.readouterr().err
    wrong = tmp_path / "x8.pth"
    torch.save({"params": SEEDSRGenerator(num_feat=8, num_block=1, upscale=8).state_dict()}, wrong)
    assert evaluate_cli.main(["--data", str(root), "--model", f"x4={wrong}", "-o", str(tmp_path / "e")]) == 2
    assert "upscale=8" in capsys.readouterr().err


@pytest.mark.slow
def test_gray_16_bit_recipe_trains(retina, tmp_path):
    """1-channel 16-bit slices: prepared with --gray --keep-depth, read at full depth, trained by BasicSR's loop."""
    from basicsr.data import build_dataset

    from medsr_se.prepare import Params, prepare

    slices = tmp_path / "slices"
    slices.mkdir()
    gray = cv2.cvtColor(retina, cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257 + 3  # not a multiple of 257
    for index in range(5):
        cv2.imwrite(str(slices / f"slice{index}.png"), gray[300 + 60 * index:556 + 60 * index, 400:656])
    prepare(slices, tmp_path / "datasets" / "CT", Params((4,), 128, 64, gray=True, keep_depth=True), n_test=1,
            workers=1, progress=False)
    dataset = build_dataset({"name": "ct", "type": "PairedMedicalImageDataset", "phase": "train", "scale": 4,
                             "dataroot_gt": str(tmp_path / "datasets" / "CT" / "train" / "HR.lmdb"),
                             "dataroot_lq": str(tmp_path / "datasets" / "CT" / "train" / "LR_x4.lmdb"),
                             "io_backend": {"type": "lmdb"}, "gt_size": 64, "use_hflip": True, "use_rot": True})
    sample = dataset[0]
    assert sample["gt"].shape == (1, 64, 64) and sample["lq"].shape == (1, 16, 16)
    levels = sample["gt"].flatten() * 65535
    assert torch.allclose(levels, levels.round(), atol=1e-2) and (levels.round() % 257 != 0).any()  # 16-bit kept
    del dataset  # closes its LMDB environments: the training below opens them again in this process

    log = train_option_file("x4_gray.yml", "gray_x4", 3, tmp_path,
                            ["datasets:train:gt_size=64", "network_g:num_feat=8", "network_g:num_block=1",
                             "logger:print_freq=1"])
    assert re.search(r"Validation CT_test\s+# psnr: [\d.]+", log)
    saved = torch.load(tmp_path / "experiments" / "gray_x4" / "models" / "net_g_3.pth", weights_only=True)
    assert saved["params"]["conv_first.weight"].shape[1] == 1

"""Shared test helpers: tiny paired data cut from scikit-image's real fundus photograph, tiny option files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

import medsr_se  # noqa: F401  (compat + registration for every test)
from medsr_se.bicubic import matlab_bicubic
from medsr_se.data.prepare_stare import Params
from medsr_se.data.stare_like import stare_like_images, write_stare_tar

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def retina() -> np.ndarray:
    """scikit-image's fundus photograph, RGB uint8 (1411 x 1411 x 3)."""
    from skimage import data

    return data.retina()


def write_pairs(retina: np.ndarray, root: Path, count: int, hr_size: int, scale: int, seed: int = 0) -> Path:
    """``root/HR/*.png`` and ``root/LR_x{scale}/*.png`` cut from the fundus photo's field of view."""
    rng = np.random.default_rng(seed)
    hr_dir, lr_dir = root / "HR", root / f"LR_x{scale}"
    hr_dir.mkdir(parents=True, exist_ok=True)
    lr_dir.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        top, left = rng.integers(300, 1100 - hr_size, size=2)
        hr = np.ascontiguousarray(retina[top:top + hr_size, left:left + hr_size, ::-1])  # BGR like cv2
        cv2.imwrite(str(hr_dir / f"img{index:03d}.png"), hr)
        cv2.imwrite(str(lr_dir / f"img{index:03d}.png"), matlab_bicubic(hr, 1 / scale))
    return root


@pytest.fixture(scope="session")
def pairs_x4(retina, tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("pairs_x4")
    return {"train": write_pairs(retina, base / "train", 6, 96, 4, seed=1),
            "val": write_pairs(retina, base / "val", 2, 64, 4, seed=2)}


def tiny_gan_options(pairs: dict[str, Path], name: str, total_iter: int, scale: int = 4,
                     checkpoint_every: int = 10, val_every: int = 10) -> dict:
    """A complete BasicSR training option dict for the GAN model with tiny networks (CPU, seconds)."""
    return {
        "name": name, "model_type": "RelativisticGANModel", "scale": scale, "num_gpu": 0, "manual_seed": 0,
        "datasets": {
            "train": {"name": "retina_train", "type": "PairedImageDataset",
                      "dataroot_gt": str(pairs["train"] / "HR"), "dataroot_lq": str(pairs["train"] / f"LR_x{scale}"),
                      "io_backend": {"type": "disk"}, "gt_size": 64, "use_hflip": True, "use_rot": True,
                      "num_worker_per_gpu": 0, "batch_size_per_gpu": 2, "dataset_enlarge_ratio": 1},
            "val": {"name": "retina_val", "type": "PairedImageDataset",
                    "dataroot_gt": str(pairs["val"] / "HR"), "dataroot_lq": str(pairs["val"] / f"LR_x{scale}"),
                    "io_backend": {"type": "disk"}},
        },
        "network_g": {"type": "SEEDSRGenerator", "num_feat": 8, "num_block": 2, "upscale": scale},
        "network_d": {"type": "FusionSEDiscriminator", "num_feat": 8},
        "path": {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None},
        "train": {
            "ema_decay": 0.9,
            "optim_g": {"type": "Adam", "lr": 1e-4, "betas": [0.9, 0.999], "eps": 1e-8},
            "optim_d": {"type": "Adam", "lr": 1e-4, "betas": [0.9, 0.999], "eps": 1e-8},
            "scheduler": {"type": "MultiStepLR", "milestones": [total_iter * 10], "gamma": 0.5},
            "total_iter": total_iter, "warmup_iter": -1,
            "fusion_opt": {"type": "FusionLoss", "vgg_layers": {"conv2_2": 1.0}, "vgg_weights_path": "random"},
            "net_d_iters": 1, "net_d_init_iters": 0,
        },
        "val": {"val_freq": val_every, "save_img": False,
                "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": scale, "test_y_channel": False},
                            "ssim": {"type": "calculate_ssim", "crop_border": scale, "test_y_channel": False}}},
        "logger": {"print_freq": 5, "save_checkpoint_freq": checkpoint_every, "use_tb_logger": False,
                   "wandb": {"project": None, "resume_id": None}},
        "dist_params": {"backend": "nccl", "port": 29500},
    }


def write_options(options: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(options, sort_keys=False))
    return path


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH", ""), str(REPO_ROOT)]))
    return env


def run_python(args: list[str], cwd: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=subprocess_env(**env), capture_output=True,
                          text=True, timeout=timeout)


STARE_PARAMS = Params(scales=(4, 8, 16), crop_size=256, step=192, gray=False, keep_depth=False)


@pytest.fixture(scope="session")
def stare_images(retina):
    return stare_like_images(retina, 6)


@pytest.fixture(scope="session")
def prepared(stare_images, tmp_path_factory):
    """(root, manifest) of a STARE-shaped tar (6 images, one README) prepared for x4/x8/x16, 2 test images."""
    from medsr_se.data.prepare_stare import prepare

    base = tmp_path_factory.mktemp("stare")
    archive = write_stare_tar(stare_images, base / "stare.tar", extra={"README.txt": b"STARE"})
    output = base / "STARE"
    manifest = prepare(archive, output, STARE_PARAMS, n_test=2, workers=2, progress=False)
    return output, manifest

"""Helpers shared by the tests (an importable module: ``from tests.helpers import ...``; fixtures are in conftest).

Tiny paired data cut from scikit-image's real fundus photograph, and tiny option files derived from the shipped
recipes (``options/x4.yml``) by overriding only what a test on two CPU cores must change.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

import medsr_se  # noqa: F401  (compat + registration for every test)
from medsr_se.prepare.prepare_stare import Params
from medsr_se.utils.bicubic import matlab_bicubic
from medsr_se.utils.options import derive, dump_yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
STARE_PARAMS = Params(scales=(4, 8, 16), crop_size=256, step=192, gray=False, keep_depth=False)


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


def tiny_gan_options(pairs: dict[str, Path], name: str, total_iter: int, scale: int = 4,
                     checkpoint_every: int = 10, val_every: int = 10) -> dict:
    """``options/x4.yml`` shrunk for CPU seconds: tiny networks, disk data of ``pairs``, a random VGG, short
    schedule; everything else (losses, optimizers, EMA, model class) is the recipe's."""
    metric = {"crop_border": scale, "test_y_channel": False}
    options = derive("x4", {
        "name": name, "scale": scale, "num_gpu": 0,
        "datasets": {
            "train": {"name": "retina_train", "dataroot_gt": str(pairs["train"] / "HR"),
                      "dataroot_lq": str(pairs["train"] / f"LR_x{scale}"), "io_backend": {"type": "disk"},
                      "gt_size": 64, "num_worker_per_gpu": 0, "persistent_workers": False,
                      "batch_size_per_gpu": 2},
            "val": {"name": "retina_val", "dataroot_gt": str(pairs["val"] / "HR"),
                    "dataroot_lq": str(pairs["val"] / f"LR_x{scale}")},
        },
        "network_g": {"num_feat": 8, "num_block": 2, "upscale": scale, "img_residual": False},
        "network_d": {"num_feat": 8},
        "train": {"ema_decay": 0.9, "total_iter": total_iter,
                  "scheduler": {"milestones": [total_iter * 10]},
                  "fusion_opt": {"vgg_layers": {"conv2_2": 1.0}, "vgg_weights_path": "random"}},
        "val": {"val_freq": val_every},
        "logger": {"print_freq": 5, "save_checkpoint_freq": checkpoint_every, "use_tb_logger": False},
    })
    options["val"]["metrics"] = {"psnr": {"type": "calculate_psnr", **metric},
                                 "ssim": {"type": "calculate_ssim", **metric}}
    return options


def write_options(options: dict, path: Path) -> Path:
    return dump_yaml(options, path)


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH", ""), str(REPO_ROOT)]))
    return env


def run_python(args: list[str], cwd: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=subprocess_env(**env), capture_output=True,
                          text=True, timeout=timeout)

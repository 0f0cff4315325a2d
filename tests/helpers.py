"""Helpers shared by the tests (an importable module: ``from tests.helpers import ...``; fixtures are in conftest).

Tiny paired data cut from scikit-image's real fundus photograph, and tiny option files derived from the shipped
recipes (``options/x4.yml``) by overriding only what a test on two CPU cores must change.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

import medsr_se  # noqa: F401  (compat + registration for every test)
from medsr_se.prepare import Params
from medsr_se.utils.bicubic import matlab_bicubic
from medsr_se.utils.options import derive, dump_yaml, for_in_process_model

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


def trained_looking(net: torch.nn.Module, seed: int = 0, spread: float = 0.3) -> torch.nn.Module:
    """``net`` in eval mode with every parameter moved off its initial value (convolutions, biases, the SE layers,
    the last convolution that ``img_residual`` starts at zero): w += N(0, (spread / sqrt(fan_in))²), biases
    += N(0, 0.05²). An untrained skip model returns the bicubic image exactly and would hide tiling or SE errors;
    with spread 0.3 a 16-feature x4 generator ends ~10 grey levels away from bicubic on average and per-tile SE
    pooling moves its output by tens of levels, while no output saturates."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in net.parameters():
            std = spread / parameter[0].numel() ** 0.5 if parameter.ndim > 1 else 0.05
            parameter.add_(torch.randn(parameter.shape, generator=generator) * std)
    return net.eval()


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
    # replaced, not merged: merged into the recipe's {conv5_4: 1} the perceptual term ran all 16 VGG19 convolutions
    options["train"]["fusion_opt"]["vgg_layers"] = {"conv2_2": 1.0}
    return options


def in_process_options(pairs: dict[str, Path], root: Path, name: str = "unit", total_iter: int = 10, scale: int = 4,
                       **train_overrides) -> dict:
    """:func:`tiny_gan_options` with ``train_overrides`` made ready for ``basicsr.models.build_model`` in this
    process (what ``parse_options`` adds; every output path under ``root``; the library's
    :func:`~medsr_se.utils.options.for_in_process_model`)."""
    options = tiny_gan_options(pairs, name, total_iter=total_iter, scale=scale)
    options["train"].update(train_overrides)
    return for_in_process_model(options, root)


def build_tiny_model(pairs: dict[str, Path], tmp_path: Path, **train_overrides):
    """The tiny RelativisticGANModel of :func:`in_process_options`, its outputs under
    ``tmp_path/experiments/unit`` (``models/``, ``training_states/``)."""
    from basicsr.models import build_model

    return build_model(in_process_options(pairs, tmp_path / "experiments" / "unit", **train_overrides))


def saved_root(tmp_path: Path) -> Path:
    """The output folder of :func:`build_tiny_model` with the two folders BasicSR's ``save`` writes into."""
    root = tmp_path / "experiments" / "unit"
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "training_states").mkdir(exist_ok=True)
    return root


def resume_options(root: Path, auto_resume: bool = True, resume_state: str | None = None, num_gpu: int = 0) -> dict:
    """What ``compat.load_resume_state`` reads of the options, for an experiment folder ``root`` (``models/``,
    ``training_states/``; created by :func:`write_checkpoint`)."""
    return {"auto_resume": auto_resume, "num_gpu": num_gpu, "network_g": {}, "network_d": {},
            "path": {"training_states": str(root / "training_states"), "models": str(root / "models"),
                     "resume_state": resume_state}}


def write_checkpoint(root: Path, iteration: int, state_bytes: bytes | None = None, **state: object) -> Path:
    """A published checkpoint of ``iteration`` under ``root``: ``models/net_[gd]_<it>.pth`` and
    ``training_states/<it>.state`` (a minimal BasicSR state plus ``state``, or the raw ``state_bytes``)."""
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "training_states").mkdir(exist_ok=True)
    for label in ("net_g", "net_d"):
        torch.save({"params": {}}, root / "models" / f"{label}_{iteration}.pth")
    path = root / "training_states" / f"{iteration}.state"
    if state_bytes is None:
        torch.save({"iter": iteration, "epoch": 0, "optimizers": [], "schedulers": [], **state}, path)
    else:
        path.write_bytes(state_bytes)
    return path


def write_options(options: dict, path: Path) -> Path:
    return dump_yaml(options, path)


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH", ""), str(REPO_ROOT)]))
    return env


def run_python(args: list[str], cwd: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=subprocess_env(**env), capture_output=True,
                          text=True, timeout=timeout)


def run_in_process(module: str, arguments: list[str], cwd: Path) -> int:
    """``python -m <module> <arguments>`` in ``cwd``, run in this process: ``<module>.main()`` (``medsr_se.train``
    or ``medsr_se.test``: BasicSR's pipeline behind our ``parse_options`` wrapper, its checks and one-line errors)
    with ``sys.argv`` and the working directory set as the command would have them; its exit status. What the
    command prints goes to this process's stdout / stderr (``capsys``). It saves the interpreter start of a
    subprocess (torch, torchvision and basicsr: ~6 CPU-seconds); the suite keeps one subprocess test per entry
    point. BasicSR sets its ``basicsr`` logger up once per process, so it is reset before and after: each run logs
    into its own experiment's file, and no handler outlives the run."""
    import importlib

    from medsr_se.integration.experiment_state import forget_basicsr_logger

    command = importlib.import_module(module)
    saved_argv, saved_cwd = sys.argv[:], Path.cwd()
    root = logging.getLogger()
    saved_root = root.level, list(root.handlers)  # BasicSR's logging.basicConfig adds one on this stderr
    sys.argv[:] = [module, *arguments]
    os.chdir(cwd)
    forget_basicsr_logger()
    try:
        command.main()
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else int(stop.code is not None)
    finally:
        forget_basicsr_logger()
        root.setLevel(saved_root[0])
        root.handlers[:] = saved_root[1]
        os.chdir(saved_cwd)
        sys.argv[:] = saved_argv
    raise AssertionError(f"{module}.main() returned instead of exiting with a status")


def measured_reach(net: torch.nn.Module, scale: int, size: int) -> int:
    """The oracle of a halo bound: one LR pixel changed in the middle of a (seeded) random size x size input; how
    far, in LR pixels, the output changes at all."""
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    y = x.clone()
    y[..., size // 2, size // 2] += 0.5
    with torch.no_grad():
        changed = (net(x) - net(y)).abs().amax(dim=(0, 1)) > 0
    rows, cols = torch.nonzero(changed, as_tuple=True)
    centre = (size // 2 + 0.5) * scale
    furthest = max(float((rows.float() + 0.5 - centre).abs().max()), float((cols.float() + 0.5 - centre).abs().max()))
    return int(np.ceil(furthest / scale))

"""``medsr-demo``: the whole pipeline in a few minutes on a CPU, with nothing downloaded.

1. cuts scikit-image's real fundus photograph (``skimage.data.retina()``, 1411 x 1411) into 16 tiles and keeps
   those inside the field of view; held-out tiles form the test split;
2. prepares them with the STARE preparation code (MATLAB-bicubic x4 LR, LMDB + PNG folders);
3. trains a scaled-down x4 recipe (``RelativisticGANModel``: SEEDSRGenerator with the bicubic image skip,
   FusionSEDiscriminator, FusionLoss) through BasicSR's own loop, ``python -m medsr_se.train``;
4. evaluates it against bicubic with ``medsr-evaluate`` and prints the table; comparison sheets are PNGs.

VGG19 ImageNet weights are used when found locally (see README); otherwise the perceptual term is switched off,
with a message saying so: a random VGG is never used silently.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from medsr_se.evaluation import evaluate, markdown_table
from medsr_se.losses.vgg_features import find_vgg_weights
from medsr_se.metrics.fov_metrics import fov_mask
from medsr_se.options import derive, dump_yaml
from medsr_se.prepare.prepare_stare import Params, prepare

TILE = 352  # 1408 / 4, a multiple of 16
TEST_TILES = ("tile_1_1", "tile_2_2")


def write_tiles(folder: Path, min_fov: float = 0.6) -> list[str]:
    """Tiles of the fundus photograph that lie mostly inside its field of view, as BGR PNGs."""
    from skimage import data

    photo = np.ascontiguousarray(data.retina()[:, :, ::-1])
    mask = fov_mask(photo)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for row in range(4):
        for col in range(4):
            window = (slice(row * TILE, (row + 1) * TILE), slice(col * TILE, (col + 1) * TILE))
            if mask[window].mean() >= min_fov:
                name = f"tile_{row}_{col}"
                cv2.imwrite(str(folder / f"{name}.png"), photo[window])
                names.append(name)
    return names


def demo_options(data: Path, total_iter: int, use_vgg: bool) -> dict:
    """``options/x4.yml`` scaled down for a CPU: narrower and shallower networks, small patches, the held-out tiles
    as validation, a short schedule. Losses, their weights, Adam's betas/eps and the model class are the recipe's."""
    metric = {"crop_border": 4, "test_y_channel": False}
    options = derive("x4", {
        "name": "demo_x4",
        "datasets": {
            "train": {"name": "retina_train", "dataroot_gt": str(data / "train" / "HR.lmdb"),
                      "dataroot_lq": str(data / "train" / "LR_x4.lmdb"), "gt_size": 96, "num_worker_per_gpu": 1,
                      "batch_size_per_gpu": 8, "dataset_enlarge_ratio": 50},
            "val": {"name": "retina_heldout", "dataroot_gt": str(data / "test" / "HR"),
                    "dataroot_lq": str(data / "test" / "LR_x4")},
        },
        "network_g": {"num_feat": 32, "num_block": 6},
        "network_d": {"num_feat": 16},
        "train": {"ema_decay": 0.99, "optim_g": {"lr": 2e-4}, "optim_d": {"lr": 2e-4}, "total_iter": total_iter,
                  "scheduler": {"milestones": [int(total_iter * 0.8)]},
                  "fusion_opt": {"vgg_weight": 1.0 if use_vgg else 0.0}},
        "val": {"val_freq": total_iter},
        "logger": {"print_freq": max(1, total_iter // 20), "save_checkpoint_freq": total_iter,
                   "use_tb_logger": False},
    })
    options["val"]["metrics"] = {"psnr": {"type": "calculate_psnr", **metric},
                                 "psnr_fov": {"type": "calculate_psnr_fov", **metric}}
    return options


def prepare_tiles(workdir: Path) -> Path:
    """Steps 1 and 2: tiles of the photograph, prepared like STARE; the dataset root."""
    print("[1/4] cutting scikit-image's fundus photograph into tiles", flush=True)
    names = write_tiles(workdir / "source")
    test_list = [name for name in TEST_TILES if name in names]
    print(f"      {len(names)} tiles inside the field of view; held out for testing: {', '.join(test_list)}")
    print("[2/4] preparing paired data (MATLAB-bicubic x4, BasicSR LMDB)", flush=True)
    data = workdir / "datasets" / "RETINA"
    prepare(workdir / "source", data, Params((4,), 128, 64, False, False), test_list=test_list, overwrite=True,
            progress=False)
    return data


def train(workdir: Path, data: Path, iterations: int) -> Path | None:
    """Step 3: the scaled-down recipe through BasicSR's loop; the experiment folder (None if training failed)."""
    use_vgg = find_vgg_weights("vgg19") is not None
    if not use_vgg:
        print("      note: VGG19 ImageNet weights (vgg19-dcbb9e9d.pth) not found locally: the perceptual term is "
              "switched off for this demo (see README, 'VGG weights')")
    options = dump_yaml(demo_options(data, iterations, use_vgg), workdir / "demo_x4.yml")
    print(f"[3/4] training {iterations} iterations through BasicSR's loop (python -m medsr_se.train)", flush=True)
    experiment = workdir / "experiments" / "demo_x4"
    shutil.rmtree(experiment, ignore_errors=True)
    run = subprocess.run([sys.executable, "-m", "medsr_se.train", "-opt", str(options)], cwd=workdir)
    if run.returncode != 0:
        print(f"error: training failed (log in {experiment})", file=sys.stderr)
        return None
    return experiment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medsr-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("medsr_demo"), help="where everything is written")
    parser.add_argument("--iters", type=int, default=600, help="training iterations (600: about 3 min on 2 cores)")
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()
    started = time.time()
    data = prepare_tiles(workdir)
    experiment = train(workdir, data, args.iters)
    if experiment is None:
        return 1
    print("[4/4] evaluating against bicubic on the held-out tiles", flush=True)
    summary = evaluate(data, {4: str(experiment / "models" / "net_g_latest.pth")}, workdir / "results", [4])
    print(markdown_table(summary), end="")
    print(f"comparison sheets: {workdir / 'results' / 'sheets'}")
    print(f"done in {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

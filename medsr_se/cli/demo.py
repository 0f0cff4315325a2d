"""``medsr-demo``: the whole pipeline in a few minutes on a CPU, with nothing downloaded.

1. cuts scikit-image's real fundus photograph (``skimage.data.retina()``, 1411 x 1411) into 16 tiles and keeps
   those inside the field of view; held-out tiles form the test split;
2. prepares them with the STARE preparation code (MATLAB-bicubic x4 LR, LMDB + PNG folders);
3. trains a scaled-down x4 recipe (``RelativisticGANModel``: SEEDSRGenerator with the bicubic image skip,
   FusionSEDiscriminator, FusionLoss) through BasicSR's own loop, ``python -m medsr_se.train``;
4. evaluates it against bicubic with ``medsr-evaluate`` and prints the table; comparison sheets are PNGs.

BasicSR's full training output goes to ``<workdir>/train_output.log`` (``-v`` shows it live); the demo prints a
short summary instead: iterations, last losses, validation PSNR, and where the log, curves and sheets are.

VGG19 ImageNet weights are used when found locally (docs/training.md, "VGG weights"); otherwise the perceptual
term is switched off, with a message saying so: a random VGG is never used silently.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from medsr_se.cli.console import QUIET, VERBOSE, Console, add_verbosity_arguments, log_to_stderr
from medsr_se.evaluation import evaluate, markdown_table
from medsr_se.io.images import write_image
from medsr_se.losses.vgg_features import find_vgg_weights
from medsr_se.metrics.fov_metrics import fov_mask
from medsr_se.prepare import Params, prepare
from medsr_se.utils.options import derive, dump_yaml

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
                write_image(folder / f"{name}.png", photo[window])
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


def prepare_tiles(workdir: Path, console: Console) -> Path:
    """Steps 1 and 2: tiles of the photograph, prepared like STARE; the dataset root."""
    console.result("[1/4] cutting scikit-image's fundus photograph into tiles")
    names = write_tiles(workdir / "source")
    test_list = [name for name in TEST_TILES if name in names]
    console.result(f"      {len(names)} tiles inside the field of view; held out for testing: {', '.join(test_list)}")
    console.result("[2/4] preparing paired data (MATLAB-bicubic x4, BasicSR LMDB)")
    data = workdir / "datasets" / "RETINA"
    prepare(workdir / "source", data, Params((4,), 128, 64, False, False), test_list=test_list, overwrite=True,
            progress=False)
    return data


def train(workdir: Path, data: Path, iterations: int, console: Console) -> Path | None:
    """Step 3: the scaled-down recipe through BasicSR's loop; the experiment folder (None if training failed).
    BasicSR's output goes to ``train_output.log`` (live with -v)."""
    use_vgg = find_vgg_weights("vgg19") is not None
    if not use_vgg:
        console.note("VGG19 ImageNet weights (vgg19-dcbb9e9d.pth) not found locally: the perceptual term is "
                     "switched off for this demo (docs/training.md, 'VGG weights')")
    options = dump_yaml(demo_options(data, iterations, use_vgg), workdir / "demo_x4.yml")
    console.result(f"[3/4] training {iterations} iterations through BasicSR's loop (python -m medsr_se.train)")
    experiment = workdir / "experiments" / "demo_x4"
    shutil.rmtree(experiment, ignore_errors=True)
    command = [sys.executable, "-m", "medsr_se.train", "-opt", str(options)]
    if console.verbosity >= VERBOSE:
        run = subprocess.run(command, cwd=workdir)
    else:
        with (workdir / "train_output.log").open("w") as log:
            run = subprocess.run(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    if run.returncode != 0:
        print(f"error: training failed (BasicSR's output: {workdir / 'train_output.log'})", file=sys.stderr)
        return None
    return experiment


def training_summary(experiment: Path, console: Console) -> None:
    """Iterations, the last logged losses and the validation PSNR, read from BasicSR's log; the curves as a PNG."""
    from medsr_se.evaluation.plots import (
        plot_training_curves,
        read_training_log,
        split_discriminator_terms,
        training_log,
    )

    losses, metrics = read_training_log(training_log(experiment))
    losses, discriminator = split_discriminator_terms(losses)
    if losses:
        last = {name: points[-1] for name, points in losses.items()}
        iteration = max(i for i, _ in last.values())
        console.result(f"      {iteration} iterations; last losses: "
                       + ", ".join(f"{name} {value:.3g}" for name, (_, value) in sorted(last.items())))
    if discriminator:
        console.result("      discriminator: " + ", ".join(f"{name} {points[-1][1]:.3g}"
                                                          for name, points in sorted(discriminator.items())))
    for name, points in sorted(metrics.items()):
        console.result(f"      validation {name}: {points[-1][1]:.2f}")
    try:
        curves = plot_training_curves(experiment, experiment.parent.parent / "results" / "curves.png")
        console.result(f"      training curves: {curves}")
    except ValueError as error:  # matplotlib missing: the summary above still holds
        console.note(str(error))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medsr-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("medsr_demo"), help="where everything is written")
    parser.add_argument("--iters", type=int, default=600, help="training iterations (600: about 3 min on 2 cores)")
    add_verbosity_arguments(parser)
    args = parser.parse_args(argv)
    if args.iters < 1:
        parser.error(f"--iters {args.iters}: must be at least 1")
    console = Console(args.verbosity)
    log_to_stderr(args.verbosity)  # the preparation's notes
    workdir = args.workdir.resolve()
    started = time.time()
    data = prepare_tiles(workdir, console)
    experiment = train(workdir, data, args.iters, console)
    if experiment is None:
        return 1
    training_summary(experiment, console)
    console.result("[4/4] evaluating against bicubic on the held-out tiles")
    summary = evaluate(data, {4: str(experiment / "models" / "net_g_latest.pth")}, workdir / "results", [4],
                       plot=_has_matplotlib())
    if console.verbosity > QUIET:
        print(markdown_table(summary), end="")
    console.result(f"BasicSR's log: {workdir / 'train_output.log'} and {experiment}/train_*.log")
    console.result(f"comparison sheets: {workdir / 'results' / 'sheets'}")
    console.result(f"done in {time.time() - started:.0f} s")
    return 0


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())

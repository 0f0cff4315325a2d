"""LMDB paired loading throughput (BasicSR's PairedImageDataset on medsr-prepare-stare's LMDBs) vs the recipe's
demand at batch 16.

    python -m benchmarks.loader --out benchmarks/results/loader.json
    python -m benchmarks.loader --quick

1. A STARE-shaped ``all-images.zip`` (``--images`` photographs of 700 x 605, real fundus pixels) is prepared with
   ``medsr-prepare-stare`` into LMDBs, as a user does.
2. For each scale, the train loader of ``options/x{s}.yml`` (PairedImageDataset, lmdb, gt_size, flips and
   rotations, batch 16, BasicSR's ``build_dataloader``) is iterated after its first batch, with the option file's
   ``num_worker_per_gpu`` workers and with 0 workers (the main process alone: one core's throughput).
3. Demand: samples per second one GAN iteration of the same option file consumes on this machine (a warm
   ``optimize_parameters`` at batch 16, as in :mod:`benchmarks.train_memory`).
Target: loader >= 5x demand. Also reported: the shortest step time (e.g. of a GPU) the loader still feeds 5x over.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.lib.memory import measure as measure_iteration
from benchmarks.lib.reports import write_report
from benchmarks.lib.stare_like import write_stare_shaped_zip
from benchmarks.lib.training import load_recipe

MARGIN = 5.0


def prepare_dataset(root: Path, images: int, crop_size: int | None = None) -> Path:
    from skimage import data

    archive, _ = write_stare_shaped_zip(data.retina(), root / "all-images.zip", images)
    output = root / "STARE"
    command = [sys.executable, "-m", "medsr_se.cli.prepare", str(archive), "-o", str(output), "--n-test", "2"]
    if crop_size:
        command += ["--crop-size", str(crop_size)]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"preparation failed:\n{run.stderr[-3000:]}")
    return output


def train_loader_options(scale: int, dataset_root: Path, quick: bool) -> dict:
    train = dict(load_recipe(scale)["datasets"]["train"])
    for key in ("dataroot_gt", "dataroot_lq"):
        train[key] = str(dataset_root / Path(train[key]).relative_to("datasets/STARE"))
    train.update(phase="train", scale=scale)
    if quick:
        train.update(gt_size=64, batch_size_per_gpu=2, num_worker_per_gpu=2)  # each worker imports basicsr
    return train


def samples_per_second(dataset_opt: dict, workers: int, batches: int) -> tuple[float, int]:
    """(samples per second, batches timed): the loader's batches after its first, within one epoch (a new epoch
    would restart the workers and time their start-up)."""
    from basicsr.data import build_dataloader, build_dataset

    dataset_opt = {**dataset_opt, "num_worker_per_gpu": workers,
                   "persistent_workers": bool(dataset_opt.get("persistent_workers")) and workers > 0}
    loader = build_dataloader(build_dataset(dataset_opt), dataset_opt, num_gpu=1, dist=False, seed=0)
    batches = min(batches, len(loader) - 1)
    if batches < 1:
        raise SystemExit(f"one epoch has {len(loader)} batch(es): prepare more --images")
    iterator = iter(loader)
    next(iterator)  # worker start-up and first batch are not throughput
    start = time.perf_counter()
    count = sum(next(iterator)["gt"].shape[0] for _ in range(batches))
    return count / (time.perf_counter() - start), batches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--images", type=int, default=60, help="STARE-shaped photographs to prepare")
    parser.add_argument("--batches", type=int, default=30, help="batches timed per loader (at most one epoch)")
    parser.add_argument("--crop-size", type=int, help="training sub-image size (default: the preparation's)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    import torch

    import medsr_se  # noqa: F401

    torch.set_num_threads(2)
    images, batches = (4, 3) if args.quick else (args.images, args.batches)
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        dataset_root = prepare_dataset(Path(tmp_name), images, args.crop_size)
        for scale in args.scales:
            dataset_opt = train_loader_options(scale, dataset_root, args.quick)
            batch = dataset_opt["batch_size_per_gpu"]
            workers = dataset_opt["num_worker_per_gpu"]
            loader_rate, timed = samples_per_second(dataset_opt, workers, batches)
            single_core_rate, _ = samples_per_second(dataset_opt, 0, batches)
            step_seconds = measure_iteration(scale, args.quick, iterations=1 if args.quick else 2)[
                "cpu_iteration_seconds"]
            demand = batch / step_seconds
            rows.append({"scale": scale, "batch": batch, "gt_size": dataset_opt["gt_size"], "workers": workers,
                         "batches_timed": timed, "loader_samples_per_s": loader_rate,
                         "main_process_samples_per_s": single_core_rate,
                         "step_seconds": step_seconds, "demand_samples_per_s": demand,
                         "loader_over_demand": loader_rate / demand,
                         "shortest_step_fed_5x_s": MARGIN * batch / loader_rate})
            print(rows[-1], flush=True)
    write_report("loader", {"images": images, "cores": os.cpu_count(), "crop_size": args.crop_size or "default",
                            "rows": rows}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

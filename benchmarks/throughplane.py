"""Through-plane SR (medsr-selfsr) against cubic B-spline and linear interpolation along the slice axis, on thick
slices simulated from an isotropic volume that ships with nibabel.

    python -m benchmarks.throughplane --out benchmarks/results/throughplane.json      # r = 4 and 6, 3 seeds
    python -m benchmarks.throughplane --quick --out /tmp/tp.json                     # r = 4, 1 seed, tiny network

Ground truth: nibabel's ``tests/data/anatomical.nii`` (MRI, 33 x 41 x 25 voxels of 2 mm, isotropic). Thick slices
along z: the slice profile blur (Gaussian, FWHM = r slices = the new spacing) and every r-th slice, slice k centred
on ground-truth slice r·k + (r − 1)/2 (:func:`medsr_se.throughplane.degrade`, the degradation the method assumes),
written as a NIfTI with the affine of that grid (2 x 2 x 2r mm). Each method returns r·N slices on the ground-truth
grid:

- ``cubic``: ``scipy.ndimage.zoom(order=3, grid_mode=True)`` along z (cubic B-spline, pixel-centre grid);
- ``linear``: the same with order=1 (trilinear on this grid: in-plane voxels are not resampled);
- ``selfsr``: the whole ``medsr-selfsr`` command (``options/selfsr.yml``), one run per seed (``manual_seed``), in
  its own process, timed from the interpreter's start to the written result; ``--quick``: a tiny network, 10
  iterations, in this process (a check of the script, not a measurement).

Metrics against the ground truth (its own range as the data range): PSNR and SSIM (scikit-image, 3-D, window 7)
over the whole volume and inside a foreground mask (ground truth above 10 % of its maximum); mean and standard
deviation over the seeds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.lib.reports import write_report

REPO_ROOT = Path(__file__).resolve().parents[1]  # on the PYTHONPATH of medsr-selfsr's process: this checkout's medsr_se
FOREGROUND = 0.10  # fraction of the ground truth's maximum
QUICK_OVERRIDES = {"network_g": {"num_feat": 8, "num_block": 1, "reduction": 4},
                   "datasets": {"train": {"batch_size_per_gpu": 4, "num_worker_per_gpu": 0,
                                          "persistent_workers": False, "pin_memory": False, "gt_size": 24,
                                          "samples_per_epoch": 40}},
                   "train": {"total_iter": 10, "ema_decay": 0},
                   "logger": {"print_freq": 10, "save_checkpoint_freq": 10}}


def ground_truth():
    import nibabel

    path = Path(nibabel.__file__).parent / "tests" / "data" / "anatomical.nii"
    image = nibabel.load(str(path))
    return np.asarray(image.dataobj, np.float32), image.affine, path.name


def simulate_thick(volume: np.ndarray, affine: np.ndarray, r: int, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(thick slices, the ground truth cut to r·N slices); the thick NIfTI written to ``path``."""
    import nibabel

    from medsr_se import throughplane as tp

    count = volume.shape[2] // r
    truth = volume[:, :, : r * count]
    moved = np.moveaxis(truth, 2, 0)  # slices first: degrade works on rows
    flat = moved.reshape(moved.shape[0], -1)
    thick = np.moveaxis(tp.degrade(flat, tp.gaussian_profile(float(r)), r).reshape(count, *moved.shape[1:]), 0, 2)
    thick_affine = affine.copy()
    thick_affine[:3, 2] *= r
    thick_affine[:, 3] = affine @ np.array([0, 0, (r - 1) / 2, 1.0])  # slice 0 at ground-truth slice (r − 1)/2
    image = nibabel.Nifti1Image(thick.astype(np.float32), thick_affine)  # zooms from the affine: 2 x 2 x 2r mm
    nibabel.save(image, str(path))
    return thick, truth


def interpolated(thick: np.ndarray, r: int, order: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.zoom(thick, (1, 1, r), order=order, mode="nearest", grid_mode=True)


def metrics(result: np.ndarray, truth: np.ndarray) -> dict:
    from skimage.metrics import structural_similarity

    data_range = float(truth.max() - truth.min())
    mask = truth > FOREGROUND * truth.max()
    error = (result.astype(np.float64) - truth) ** 2
    _, ssim_map = structural_similarity(truth, result.astype(np.float32), data_range=data_range, win_size=7,
                                        full=True)
    return {"psnr": float(10 * np.log10(data_range**2 / error.mean())),
            "psnr_fg": float(10 * np.log10(data_range**2 / error[mask].mean())),
            "ssim": float(ssim_map.mean()), "ssim_fg": float(ssim_map[mask].mean())}


def run_selfsr(thick_path: Path, r: int, seed: int, quick: bool, work: Path,
               iterations: int | None = None, ema_decay: float | None = None) -> tuple[np.ndarray, float]:
    import nibabel

    from medsr_se.utils.options import derive, dump_yaml

    overrides = {"manual_seed": seed, **(QUICK_OVERRIDES if quick else {})}
    if ema_decay is not None:  # the applied network is params_ema: at 0.999 it lags ~1000 iterations behind
        overrides["train"] = {**overrides.get("train", {}), "ema_decay": ema_decay}
    recipe = dump_yaml(derive("selfsr", overrides), work / f"recipe_r{r}_s{seed}.yml")
    out = work / f"out_r{r}_s{seed}"
    arguments = ["-i", str(thick_path), "-o", str(out), "-opt", str(recipe), "--scale", str(r), "-q"]
    if iterations is not None:
        arguments += ["--iterations", str(iterations)]
    start = time.perf_counter()
    if quick:  # in this process: no second interpreter start (the quick mode is a check of the script)
        from medsr_se.cli import selfsr

        if selfsr.main(arguments):
            raise SystemExit("medsr-selfsr failed (the error above)")
    else:  # the whole command as a user runs it, interpreter start included
        env = dict(os.environ,
                   PYTHONPATH=os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(REPO_ROOT)])))
        run = subprocess.run([sys.executable, "-m", "medsr_se.cli.selfsr", *arguments], env=env, capture_output=True,
                             text=True)
        if run.returncode:
            raise SystemExit(f"medsr-selfsr failed:\n{run.stderr[-3000:]}")
    seconds = time.perf_counter() - start
    stem = thick_path.name.removesuffix(".nii.gz")
    return np.asarray(nibabel.load(str(out / f"{stem}_selfsr_x{r}.nii.gz")).dataobj, np.float32), seconds


def run_eclare(venv: Path, thick_path: Path, r: int, patches: int, work: Path) -> tuple[np.ndarray, float]:
    """ECLARE (``run-eclare`` of the ``eclare`` package, in its own virtual environment ``venv``: never a dependency of
    medsr-se) on the same thick NIfTI, with the slice profile given (Gaussian, relative thickness r: the degradation
    simulated here, so ESPRESO's profile estimation is skipped) and ``patches`` training patches (its default is 10^6;
    the count sets its training time, which is timed like medsr-selfsr's, interpreter start included)."""
    import nibabel

    out = work / f"eclare_r{r}"
    command = [str(venv / "bin" / "run-eclare"), "--in-fpath", str(thick_path), "--out-dir", str(out),
               "--relative-slice-thickness", str(r), "--n-patches", str(patches), "--gpu-id", "-1"]
    start = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if run.returncode:
        raise SystemExit(f"run-eclare failed:\n{run.stderr[-3000:]}")
    result = next(out.glob("*_eclare.nii*"))
    return np.asarray(nibabel.load(str(result)).dataobj, np.float32), seconds


def summary(runs: list[dict]) -> dict:
    keys = [key for key in runs[0] if key != "seed"]
    return {key: {"mean": statistics.fmean(run[key] for run in runs),
                  "std": statistics.pstdev(run[key] for run in runs)} for key in keys}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="r = 4, one seed, a tiny network, 10 iterations")
    parser.add_argument("--scales", type=int, nargs="+", default=None)
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--iterations", type=int, default=None,
                        help="medsr-selfsr training iterations (default: the recipe's total_iter)")
    parser.add_argument("--ema-decay", type=float, default=None, help="train:ema_decay (default: the recipe's)")
    parser.add_argument("--eclare-venv", type=Path, default=None,
                        help="a virtual environment with `pip install eclare`: ECLARE on the same volumes")
    parser.add_argument("--eclare-patches", type=int, default=2048, help="ECLARE's --n-patches")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    scales = args.scales or ([4] if args.quick else [4, 6])
    seeds = args.seeds or (1 if args.quick else 3)
    volume, affine, name = ground_truth()
    rows = {}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for r in scales:
            thick_path = work / f"thick_r{r}.nii.gz"
            thick, truth = simulate_thick(volume, affine, r, thick_path)
            runs = []
            for seed in range(seeds):
                result, seconds = run_selfsr(thick_path, r, seed, args.quick, work, args.iterations,
                                             args.ema_decay)
                runs.append({"seed": seed, **metrics(result, truth), "seconds": seconds})
                print(f"r={r} seed={seed}: {runs[-1]}", flush=True)
            rows[f"x{r}"] = {"thick_slices": int(thick.shape[2]),
                             "cubic": metrics(interpolated(thick, r, 3), truth),
                             "linear": metrics(interpolated(thick, r, 1), truth),
                             "selfsr": {"runs": runs, "summary": summary(runs)}}
            if args.eclare_venv is not None:  # what stops ECLARE is reported in its row, not fatal to the others
                try:
                    result, seconds = run_eclare(args.eclare_venv, thick_path, r, args.eclare_patches, work)
                    if result.shape != truth.shape:
                        raise SystemExit(f"ECLARE returned {result.shape}, the ground truth is {truth.shape}")
                    rows[f"x{r}"]["eclare"] = {**metrics(result, truth), "seconds": seconds,
                                               "patches": args.eclare_patches}
                except (SystemExit, OSError, StopIteration) as error:
                    rows[f"x{r}"]["eclare"] = {"error": str(error)[-2000:]}
                print(f"r={r}: eclare {rows[f'x{r}']['eclare']}", flush=True)
            print(f"r={r}: cubic {rows[f'x{r}']['cubic']}, linear {rows[f'x{r}']['linear']}", flush=True)
    write_report("throughplane", {"volume": f"nibabel tests/data/{name} (2 mm isotropic MRI)", "quick": args.quick,
                                  "seeds": seeds, "iterations": args.iterations,
                                  "ema_decay": args.ema_decay, "rows": rows}, args.out)


if __name__ == "__main__":
    main()

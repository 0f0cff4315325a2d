"""ECLARE (the SMORE authors' through-plane SR, ``pip install eclare`` in a virtual environment of its own: GPL-3.0,
never a dependency of this project) as the through-plane benchmark runs it: its command line, its result read back
on the truth's grid, and its wall time modelled as fixed + per-patch seconds (to give it the patches that fit a time).
"""

from __future__ import annotations

import argparse
import math
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.lib.head_cases import Case, UsageError

ECLARE_BATCH = 128  # run-eclare --batch-size, as its README runs it


def eclare_options(venv: Path) -> set[str]:
    """The long options that ``run-eclare --help`` of ``venv`` lists; :class:`UsageError` naming ``--eclare-venv``
    when it has no run-eclare or its --help fails."""
    command = venv / "bin" / "run-eclare"
    if not command.is_file():
        raise UsageError(f"--eclare-venv {venv}: no bin/run-eclare (pip install eclare into that environment)")
    run = subprocess.run([str(command), "--help"], capture_output=True, text=True)
    if run.returncode:
        raise UsageError(f"--eclare-venv {venv}: run-eclare --help failed: {' '.join(run.stderr.split())[-300:]}")
    return set(re.findall(r"--[a-z][a-z0-9-]*", run.stdout))


def eclare_command(venv: Path, options: set[str], case: Case, args: argparse.Namespace, out: Path,
                   patches: int | None = None) -> list[str]:
    """run-eclare's command line (``patches``: --n-patches, default ``--eclare-patches``); :class:`RuntimeError`
    naming an option this ECLARE's --help does not list."""
    wanted = {"--in-fpath": str(case.path), "--out-dir": str(out), "--gpu-id": args.eclare_gpu_id,
              "--n-patches": str(patches or args.eclare_patches), "--batch-size": str(ECLARE_BATCH)}
    if args.tell_thickness or args.tell_eclare:  # relative to the in-plane voxel: FWHM / in-plane spacing (README)
        wanted["--relative-slice-thickness"] = f"{case.fwhm:g}"
        wanted["--relative-slice-profile-type"] = "gaussian"  # the profile the thick slices were made with
    missing = sorted(set(wanted) - options)
    if missing:
        raise RuntimeError(f"this run-eclare's --help lists no {', '.join(missing)}")
    return [str(venv / "bin" / "run-eclare"), *(part for item in wanted.items() for part in item)]


def run_eclare(command: list[str], out: Path, case: Case) -> tuple[np.ndarray, float]:
    """(result, seconds); :class:`RuntimeError` (its row's error) when it fails, writes nothing, or writes a result
    off the truth's grid (its affine not the truth's: a voxel-wise comparison would be shifted)."""
    import nibabel

    start = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if run.returncode:
        raise RuntimeError(f"run-eclare failed:\n{run.stderr[-2000:]}")
    results = sorted(out.glob("*_eclare.nii*"))
    if not results:
        raise RuntimeError(f"run-eclare wrote no *_eclare.nii.gz in {out}")
    image = nibabel.load(str(results[0]))
    if not np.allclose(image.affine, case.affine, atol=1e-3):
        raise RuntimeError(f"{results[0].name} is not on the truth's grid: affine {image.affine.round(3).tolist()}, "
                           f"the truth's {case.affine.round(3).tolist()}")
    return np.asarray(image.dataobj, np.float32), seconds


@dataclass(frozen=True)
class EclareCost:
    """ECLARE's wall seconds as fixed + per_patch · patches (start-up, its inference on the volume, and training),
    fitted to two runs of this benchmark's first configuration (``runs``: [patches, seconds, PSNR] each), then
    refitted by :meth:`with_run` after each matched run: a long run costs less per patch than the two short ones
    say (on an Intel Xeon 0.024 s against 0.029), so the short line gave ECLARE only 3.4-4.1x our time for "4x"."""

    fixed_s: float
    per_patch_s: float
    runs: tuple[tuple[int, float, float], ...]
    config: str

    def patches_for(self, seconds: float) -> int:
        """The most patches (a multiple of the batch, at least one batch) that fit ``seconds``."""
        batches = math.floor((seconds - self.fixed_s) / (self.per_patch_s * ECLARE_BATCH))
        return max(1, batches) * ECLARE_BATCH

    @classmethod
    def fitted(cls, runs: tuple[tuple[int, float, float], ...], config: str) -> EclareCost:
        """The least-squares line (seconds against patches) through ``runs``, of at least two patch counts (through
        two runs: the line through them); the per-patch cost at least 1e-6 s, the fixed cost at least 0."""
        counts = np.array([run[0] for run in runs], float)
        times = np.array([run[1] for run in runs], float)
        spread = counts - counts.mean()
        per_patch = max(float((spread * (times - times.mean())).sum() / (spread**2).sum()), 1e-6)
        return cls(max(float(times.mean() - per_patch * counts.mean()), 0.0), per_patch, tuple(runs), config)

    def with_run(self, patches: int, seconds: float, psnr: float) -> EclareCost:
        """This cost with one more run, the line refitted through all runs (:meth:`fitted`)."""
        return EclareCost.fitted((*self.runs, (patches, seconds, psnr)), self.config)

    def as_json(self) -> dict:
        return {"fixed_s": self.fixed_s, "per_patch_s": self.per_patch_s, "runs": [list(r) for r in self.runs],
                "config": self.config}

    @classmethod
    def from_json(cls, entry: dict) -> EclareCost:
        return cls(entry["fixed_s"], entry["per_patch_s"], tuple(tuple(r) for r in entry["runs"]), entry["config"])

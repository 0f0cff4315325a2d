"""Through-plane SR (medsr-selfsr) against cubic B-spline and linear interpolation (and optionally ECLARE) on thick
slices simulated from an isotropic head volume, along each axis, with and without a gap and noise.

    python -m benchmarks.throughplane --out benchmarks/results/throughplane_mni.json        # 24 configs, MNI
    python -m benchmarks.throughplane --volume anatomical --out /tmp/tp_anat.json           # a real subject
    python -m benchmarks.throughplane --quick --out /tmp/tp.json                            # seconds: a check
    python -m benchmarks.throughplane --table benchmarks/results/throughplane_mni.json      # the markdown table

Volumes (``--volume``): ``mni``, the MNI152 2009a symmetric T1 template at 1 mm that nilearn's wheel ships
(``nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz``; nilearn is a benchmark-only
dependency: ``pip install nilearn``), and ``anatomical``, nibabel's ``tests/data/anatomical.nii`` (one subject's
MRI, 33 x 41 x 25 voxels of 2 mm). ``--crop`` (default on) cuts the volume to the bounding box of its head
(voxels above 10 % of the maximum) with a 2-voxel margin.

Configurations (every combination of ``--scales``, ``--axes``, ``--profiles``, ``--noise``): along the axis, the
truth is cut to r·N voxels and N thick slices are simulated exactly as medsr-selfsr models them
(:mod:`benchmarks.lib.thick_slices`: Gaussian slice profile of FWHM r voxels, "nogap", or 0.6·r, "gap"; slice j
centred on truth voxel r·j + (r − 1)/2), then Rician noise of sigma = level x the truth's mean inside the head
(seeded). The thick NIfTI has the affine of that grid (slice spacing r voxels); it cannot carry the thickness, so
medsr-selfsr estimates the thickness from the scan (or assumes thickness = spacing when the estimate is unreliable;
its row records ``thickness_source``) unless ``--tell-thickness`` gives ``--slice-thickness`` (and ECLARE its
``--relative-slice-thickness``, the FWHM in in-plane voxels); ``--assume-spacing`` gives it ``--slice-thickness`` =
the slice spacing, what it assumed before it estimated.

Methods, each returning r·N slices on the truth's grid: ``cubic`` / ``linear`` (``scipy.ndimage.zoom`` order 3 / 1
along the axis, pixel-centre grid), ``selfsr`` (the whole ``medsr-selfsr`` command in its own process, a recipe
derived from ``options/selfsr.yml`` with ``manual_seed``, ``--iterations``; timed from the interpreter's start to
the written result; ``--data-consistency`` passes that flag on: its result corrected to give the thick slices back,
each row saying so), ``eclare`` (``--eclare-venv``: ``run-eclare`` of that virtual environment). ``--quick``: the
anatomical volume, one configuration, a tiny network for 10 iterations in this process (a check of the script).

Metrics inside the head: PSNR, SSIM (3-D) against the truth, LR-PSNR (the result degraded again, against the input
slices), LR-PSNR clean (the same against the thick slices before the noise: with noise, a result that reproduces
the input's noise scores high on LR-PSNR and one that removes it cannot exceed the noise's own PSNR there;
without noise both are the same); ``gain_*``: the method's value minus cubic's. One report row per configuration
and method. ``--default-budget`` runs medsr-selfsr as a user does (its own budget), ``--resume`` continues a report
over several sittings.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.lib import thick_slices as ts
from benchmarks.lib.reports import write_report

REPO_ROOT = Path(__file__).resolve().parents[1]  # on the PYTHONPATH of medsr-selfsr's process: this checkout's medsr_se
MNI_FILE = Path("datasets") / "data" / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"  # inside nilearn's package
CROP_MARGIN = 2  # voxels around the head's bounding box
DEFAULT_ITERATIONS = 300  # the recipe's 2000 is sized for a GPU (about an hour a run on 2 CPU cores)
METRICS = ("psnr", "ssim", "lr_psnr", "lr_psnr_clean")
ECLARE_BATCH = 128  # run-eclare --batch-size, as its README runs it
QUICK_OVERRIDES = {"network_g": {"num_feat": 8, "num_block": 1, "reduction": 4},
                   "datasets": {"train": {"batch_size_per_gpu": 4, "num_worker_per_gpu": 0,
                                          "persistent_workers": False, "pin_memory": False, "gt_size": 24,
                                          "samples_per_epoch": 40}},
                   "train": {"total_iter": 10, "ema_decay": 0},
                   "logger": {"print_freq": 10, "save_checkpoint_freq": 10}}
QUICK_ITERATIONS = 10


class UsageError(ValueError):
    """A bad option or input; one line naming it."""


@dataclass
class GroundTruth:
    values: np.ndarray  # float32, isotropic, cropped
    affine: np.ndarray  # of ``values``
    spacing: float  # mm
    source: str
    source_shape: tuple[int, ...]
    box: list[tuple[int, int]] | None  # the crop, in source voxels


@dataclass(frozen=True)
class Config:
    r: int
    axis: int
    profile: str
    noise: float

    @property
    def name(self) -> str:
        return f"x{self.r} axis {self.axis} {self.profile} noise {self.noise:g}"


@dataclass
class Case:
    """One configuration made: the truth cut to r·N, the input slices (noisy where asked) and their file."""

    config: Config
    truth: np.ndarray
    affine: np.ndarray
    thick: np.ndarray
    path: Path
    fwhm: float  # voxels
    sigma: float  # Rician sigma (0: none)
    mask: np.ndarray  # the head on the truth's grid
    lr_mask: np.ndarray  # the head on the thick grid
    data_range: float
    noise_lr_psnr: float | None  # the noisy input slices against the noise-free ones
    clean: np.ndarray  # the thick slices before the noise (= thick without noise)


# ------------------------------------------------------------------------------------------------------ ground truth
def mni_path() -> Path:
    """nilearn's MNI152 2009a T1 (found through ``importlib.util.find_spec``; nilearn is never imported)."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise UsageError("--volume mni: nilearn is not installed in this environment (a benchmark-only dependency: "
                         "pip install nilearn), or give --volume anatomical")
    path = Path(next(iter(spec.submodule_search_locations))) / MNI_FILE
    if not path.is_file():
        raise UsageError(f"--volume mni: {path}: not in this nilearn (its wheel ships the MNI152 2009a template there)")
    return path


def anatomical_path() -> Path:
    import nibabel

    return Path(nibabel.__file__).parent / "tests" / "data" / "anatomical.nii"


def load_ground_truth(volume: str, crop: bool) -> GroundTruth:
    """The isotropic volume (its voxel sizes from the NIfTI header; :class:`UsageError` if they differ), cut to the
    head's bounding box (:data:`CROP_MARGIN` voxels around) when ``crop``."""
    import nibabel

    path = mni_path() if volume == "mni" else anatomical_path()
    image = nibabel.load(str(path))
    values = np.asarray(image.dataobj, np.float32)
    zooms = [float(z) for z in image.header.get_zooms()[:3]]
    if values.ndim != 3 or not np.allclose(zooms, zooms[0], rtol=1e-3):
        raise UsageError(f"--volume {volume}: {path}: not a 3-D isotropic volume (shape {values.shape}, voxels "
                         f"{zooms} mm)")
    box = ts.bounding_box(ts.head_mask(values), CROP_MARGIN) if crop else None
    affine = image.affine
    if box is not None:
        affine = ts.crop_affine(affine, box)
        values = values[tuple(slice(start, stop) for start, stop in box)]
    return GroundTruth(np.ascontiguousarray(values), affine, zooms[0], str(path), image.shape, box)


def make_case(gt: GroundTruth, config: Config, work: Path, noise_seed: int) -> Case:
    """The configuration's truth (cut to r·N along the axis) and thick input, written as ``work/<name>.nii.gz``
    (float32, the thick grid's affine)."""
    import nibabel

    r, axis = config.r, config.axis
    truth = ts.cut(gt.values, axis, r)
    fwhm = ts.fwhm_pixels(config.profile, r)
    clean = ts.simulate(truth, axis, r, fwhm)
    mask = ts.head_mask(truth)
    sigma = config.noise * float(gt.values[ts.head_mask(gt.values)].mean())
    thick = ts.rician(clean, sigma, noise_seed) if sigma > 0 else clean
    data_range = float(truth.max() - truth.min())
    lr_mask = clean > ts.FOREGROUND * truth.max()
    noise_psnr = ts.psnr(thick, clean, lr_mask, data_range) if sigma > 0 else None
    affine = np.array(gt.affine, np.float64)  # the cut keeps voxel 0: the truth's affine is the volume's
    path = work / f"thick_x{r}_axis{axis}_{config.profile}_noise{config.noise:g}.nii.gz"
    nibabel.save(nibabel.Nifti1Image(thick, ts.thick_affine(affine, axis, r)), str(path))
    return Case(config, truth, affine, thick, path, fwhm, sigma, mask, lr_mask, data_range, noise_psnr, clean)


def evaluate(result: np.ndarray, case: Case) -> dict:
    """PSNR and SSIM inside the head, and the LR consistency (module docstring)."""
    if result.shape != case.truth.shape:
        raise RuntimeError(f"a result of shape {result.shape}; the truth is {case.truth.shape}")
    c = case.config
    return {"psnr": ts.psnr(result, case.truth, case.mask, case.data_range),
            "ssim": ts.ssim(result, case.truth, case.mask, case.data_range),
            "lr_psnr": ts.lr_consistency(result, case.thick, case.lr_mask, c.axis, c.r, case.fwhm, case.data_range),
            "lr_psnr_clean": ts.lr_consistency(result, case.clean, case.lr_mask, c.axis, c.r, case.fwhm,
                                               case.data_range)}


# ----------------------------------------------------------------------------------------------------------- methods
def interpolation(case: Case, order: int) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    result = ts.interpolate(case.thick, case.config.axis, case.config.r, order)
    return result, time.perf_counter() - start


def told_thickness(case: Case, spacing: float) -> float:
    """The slice thickness in mm (the profile's FWHM): FWHM voxels x the truth's spacing."""
    return case.fwhm * spacing


def selfsr_arguments(case: Case, args: argparse.Namespace, spacing: float, recipe: Path, out: Path) -> list[str]:
    """medsr-selfsr's command line (after the program name) for ``case``."""
    arguments = ["-i", str(case.path), "-o", str(out), "-opt", str(recipe), "--scale", str(case.config.r), "-q"]
    # one or the other: medsr-selfsr refuses both; --time in seconds ("180.0" is a duration it reads)
    if args.time is not None:
        arguments += ["--time", str(args.time)]
    elif not args.default_budget:  # --default-budget: neither, as a user runs it (on a CPU: its 4-minute default)
        arguments += ["--iterations", str(args.iterations)]
    if args.tell_thickness:
        arguments += ["--slice-thickness", f"{told_thickness(case, spacing):g}"]
    elif args.assume_spacing:
        arguments += ["--slice-thickness", f"{case.config.r * spacing:g}"]
    if args.data_consistency:
        arguments.append("--data-consistency")
    return arguments


def run_selfsr(case: Case, seed: int, args: argparse.Namespace, spacing: float,
               work: Path) -> tuple[np.ndarray, float, dict]:
    """(result, seconds, what medsr-selfsr used: its options file's slice thickness and where it came from).
    :class:`RuntimeError` when the result's affine is not the truth's (a misplaced result is a bug)."""
    import nibabel

    from medsr_se.utils.options import derive, dump_yaml, load_yaml

    r = case.config.r
    overrides = {"manual_seed": seed, **(QUICK_OVERRIDES if args.quick else {})}
    if args.ema_decay is not None:
        overrides["train"] = {**overrides.get("train", {}), "ema_decay": args.ema_decay}
    if args.lr_noise is not None:
        train_set = overrides.get("datasets", {}).get("train", {})
        overrides["datasets"] = {"train": {**train_set, "lr_noise": args.lr_noise}}
    stem = case.path.name.removesuffix(".nii.gz")
    recipe = dump_yaml(derive("selfsr", overrides), work / f"recipe_{stem}_s{seed}.yml")
    out = work / f"selfsr_{stem}_s{seed}"
    arguments = selfsr_arguments(case, args, spacing, recipe, out)
    start = time.perf_counter()
    if args.quick:  # in this process: no second interpreter start (the quick mode is a check of the script)
        from medsr_se.cli import selfsr

        if selfsr.main(arguments):
            raise SystemExit("medsr-selfsr failed (the error above)")
    else:  # the whole command as a user runs it, interpreter start included
        env = dict(os.environ,
                   PYTHONPATH=os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(REPO_ROOT)])))
        run = subprocess.run([sys.executable, "-m", "medsr_se.cli.selfsr", *arguments], env=env, capture_output=True,
                             text=True)
        if run.returncode:
            raise SystemExit(f"medsr-selfsr failed on {case.path.name}:\n{run.stderr[-3000:]}")
    seconds = time.perf_counter() - start
    image = nibabel.load(str(out / f"{stem}_selfsr_x{r}.nii.gz"))
    if not np.allclose(image.affine, case.affine, atol=1e-4):
        raise RuntimeError(f"medsr-selfsr's result on {case.path.name} is not on the truth's grid: affine\n"
                           f"{image.affine}\nexpected\n{case.affine}")
    options = load_yaml(out / f"{stem}_selfsr_x{r}.yml")
    train = options["datasets"]["train"]
    used = {"slice_thickness_mm": train["slice_thickness"], "thickness_source": train["slice_thickness_source"],
            "iterations": options["train"]["total_iter"]}  # with --time: the iterations that fitted it
    return np.asarray(image.dataobj, np.float32), seconds, used


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


def eclare_command(venv: Path, options: set[str], case: Case, args: argparse.Namespace, out: Path) -> list[str]:
    """run-eclare's command line; :class:`RuntimeError` naming an option this ECLARE's --help does not list."""
    wanted = {"--in-fpath": str(case.path), "--out-dir": str(out), "--gpu-id": args.eclare_gpu_id,
              "--n-patches": str(args.eclare_patches), "--batch-size": str(ECLARE_BATCH)}
    if args.tell_thickness:  # relative to the in-plane voxel: FWHM / in-plane spacing (ECLARE's README)
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


# ------------------------------------------------------------------------------------------------------------ report
def row(config: Config, method: str, values: dict, seconds: float, cubic: dict | None, **extra) -> dict:
    """One report row: the metrics, seconds, and ``gain_<metric>`` = value − cubic's."""
    gains = {f"gain_{m}": values[m] - cubic[m] for m in METRICS} if cubic is not None else {}
    return {"config": config.name, "method": method, **values, "seconds": seconds, **gains, **extra}


def selfsr_row(case: Case, args: argparse.Namespace, spacing: float, work: Path, cubic: dict) -> dict:
    """The mean over ``--seeds`` runs (with ``std`` and ``runs`` when more than one)."""
    runs = []
    for seed in range(args.seeds):
        result, seconds, used = run_selfsr(case, seed, args, spacing, work)
        runs.append({"seed": seed, **evaluate(result, case), "seconds": seconds})
    mean = {key: statistics.fmean(run[key] for run in runs) for key in (*METRICS, "seconds")}
    extra = {"iterations": args.iterations, "data_consistency": args.data_consistency, "lr_noise": args.lr_noise,
             **used}
    if len(runs) > 1:
        extra.update(std={key: statistics.pstdev(run[key] for run in runs) for key in (*METRICS, "seconds")},
                     runs=runs)
    return row(case.config, "selfsr", {m: mean[m] for m in METRICS}, mean["seconds"], cubic, **extra)


def config_entry(case: Case, spacing: float) -> dict:
    c = case.config
    return {"name": c.name, "r": c.r, "axis": c.axis, "profile": c.profile, "noise": c.noise,
            "fwhm_voxels": case.fwhm, "fwhm_mm": case.fwhm * spacing, "slice_spacing_mm": c.r * spacing,
            "truth_shape": list(case.truth.shape), "thick_shape": list(case.thick.shape),
            "rician_sigma": case.sigma, "noise_lr_psnr": case.noise_lr_psnr}


def format_table(report: dict) -> str:
    """A markdown table: one line per configuration and method (an error row says its error)."""
    told = ("told" if report.get("tell_thickness") else "given = the slice spacing" if report.get("assume_spacing")
            else "not told (medsr-selfsr estimates it; see each row's thickness_source)")
    budget = (f"--time {report['time']:g} s" if report.get("time") else
              "its default budget" if report.get("default_budget") else f"{report['iterations']} iterations")
    budget += ", --data-consistency" if report.get("data_consistency") else ""
    lines = [f"{report['volume']} {' x '.join(map(str, report['shape']))} voxels of {report['spacing_mm']:g} mm; "
             f"medsr-selfsr {budget}, {report['seeds']} seed(s); thickness {told}",
             "",
             "| config | method | PSNR | SSIM | LR-PSNR | LR-PSNR clean | s | ΔPSNR | ΔSSIM | ΔLR-PSNR | "
             "ΔLR-PSNR clean |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for entry in report["rows"]:
        if "error" in entry:
            lines.append(f"| {entry['config']} | {entry['method']} | error: {' '.join(entry['error'].split())[:120]} "
                         "| | | | | | | | |")
            continue
        gains = [f"{entry[f'gain_{m}']:+.{3 if m == 'ssim' else 2}f}" if f"gain_{m}" in entry else "–"
                 for m in METRICS]
        clean = f"{entry['lr_psnr_clean']:.2f}" if "lr_psnr_clean" in entry else "–"  # reports before it: none
        lines.append(f"| {entry['config']} | {entry['method']} | {entry['psnr']:.2f} | {entry['ssim']:.4f} | "
                     f"{entry['lr_psnr']:.2f} | {clean} | {entry['seconds']:.1f} | {' | '.join(gains)} |")
    return "\n".join(lines)


def print_table(path: Path) -> None:
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"--table {path}: cannot read a JSON report ({' '.join(str(error).split())})") from error
    if not isinstance(report, dict) or report.get("benchmark") != "throughplane" or "configs" not in report:
        raise UsageError(f"--table {path}: not a report of this benchmark (python -m benchmarks.throughplane)")
    print(format_table(report))


# -------------------------------------------------------------------------------------------------------------- CLI
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--volume", choices=["mni", "anatomical"], help="default: mni (--quick: anatomical)")
    parser.add_argument("--crop", action=argparse.BooleanOptionalAction, default=True,
                        help="cut the volume to the head's bounding box (default: on)")
    parser.add_argument("--scales", type=int, nargs="+", help="r (default: 4 6; --quick: 4)")
    parser.add_argument("--axes", type=int, nargs="+", choices=[0, 1, 2], help="default: 0 1 2 (--quick: 2)")
    parser.add_argument("--profiles", nargs="+", choices=list(ts.PROFILES),
                        help="nogap: thickness = spacing; gap: thickness = 0.6 x spacing (default: both; --quick: "
                             "nogap)")
    parser.add_argument("--noise", type=float, nargs="+",
                        help="Rician sigma / the truth's mean inside the head (default: 0 0.03; --quick: 0)")
    parser.add_argument("--noise-seed", type=int, default=0)
    parser.add_argument("--tell-thickness", action="store_true",
                        help="give medsr-selfsr --slice-thickness (and ECLARE --relative-slice-thickness)")
    parser.add_argument("--assume-spacing", action="store_true",
                        help="give medsr-selfsr --slice-thickness = the slice spacing (its old default)")
    parser.add_argument("--iterations", type=int,
                        help=f"medsr-selfsr --iterations (default: {DEFAULT_ITERATIONS}; --quick: {QUICK_ITERATIONS})")
    parser.add_argument("--time", type=float, help="medsr-selfsr --time SECONDS (instead of --iterations)")
    parser.add_argument("--default-budget", action="store_true",
                        help="give medsr-selfsr neither --iterations nor --time: its own default (on a CPU, as many "
                             "iterations as fit 4 minutes for the whole command)")
    parser.add_argument("--seeds", type=int, default=1, help="medsr-selfsr runs per configuration (manual_seed)")
    parser.add_argument("--ema-decay", type=float, help="train:ema_decay (default: the recipe's)")
    parser.add_argument("--lr-noise", type=lambda text: text if text == "auto" else float(text),
                        help="datasets:train:lr_noise (auto, 0 or σ; default: the recipe's): noise matching")
    parser.add_argument("--data-consistency", action="store_true",
                        help="give medsr-selfsr --data-consistency (its result corrected to give the thick slices "
                             "back): run once with and once without to compare")
    parser.add_argument("--eclare-venv", type=Path, help="a virtual environment with run-eclare (pip install eclare)")
    parser.add_argument("--eclare-patches", type=int, default=2048, help="ECLARE's --n-patches")
    parser.add_argument("--eclare-gpu-id", default="-1", help="ECLARE's --gpu-id")
    parser.add_argument("--quick", action="store_true", help="a check of the script: see the module docstring")
    parser.add_argument("--out", type=Path, help="the JSON report (rewritten after each configuration)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the configurations --out holds already (run with the same settings) and run the "
                             "others: a long table over several sittings")
    parser.add_argument("--table", type=Path, metavar="REPORT", help="print a saved report's table and stop")
    args = parser.parse_args(argv)
    if args.tell_thickness and args.assume_spacing:
        parser.error("--tell-thickness and --assume-spacing: give one (the true thickness or the spacing)")
    if args.default_budget and (args.time is not None or args.iterations is not None):
        parser.error("--default-budget with --time or --iterations: give one budget")
    if args.resume and args.out is None:
        parser.error("--resume: give --out, the report to continue")
    quick = args.quick
    args.volume = args.volume or ("anatomical" if quick else "mni")
    args.scales = args.scales or ([4] if quick else [4, 6])
    args.axes = args.axes or ([2] if quick else [0, 1, 2])
    args.profiles = args.profiles or (["nogap"] if quick else ["nogap", "gap"])
    args.noise = args.noise if args.noise is not None else ([0.0] if quick else [0.0, 0.03])
    for name in ("scales", "axes", "profiles", "noise"):  # each configuration once, in the order given
        setattr(args, name, list(dict.fromkeys(getattr(args, name))))
    if args.iterations is None and not args.default_budget:  # (0 is checked, not replaced)
        args.iterations = QUICK_ITERATIONS if quick else DEFAULT_ITERATIONS
    return args


def check_args(args: argparse.Namespace) -> None:
    from medsr_se.throughplane import MAX_SCALE, MIN_SCALE

    for r in args.scales:
        if not MIN_SCALE <= r <= MAX_SCALE:
            raise UsageError(f"--scales {r}: medsr-selfsr takes r from {MIN_SCALE} to {MAX_SCALE}")
    for level in args.noise:
        if not np.isfinite(level) or level < 0:
            raise UsageError(f"--noise {level}: a level is a fraction >= 0 (0.03: sigma = 3 % of the head's mean)")
    for option, value in (("--iterations", args.iterations), ("--seeds", args.seeds),
                          ("--eclare-patches", args.eclare_patches)):
        if value is not None and value < 1:
            raise UsageError(f"{option} {value}: must be at least 1")
    if args.out is not None:
        if args.out.is_dir():
            raise UsageError(f"--out {args.out}: a folder; give the report's file name")
        folder = next(parent for parent in args.out.absolute().parents if parent.exists())
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise UsageError(f"--out {args.out}: {folder} is not a folder this user can write in")


def configs(args: argparse.Namespace, gt: GroundTruth) -> list[Config]:
    """Every combination; :class:`UsageError` where the volume has fewer than 2 thick slices along an axis."""
    chosen = [Config(r, axis, profile, noise) for r in args.scales for axis in args.axes
              for profile in args.profiles for noise in args.noise]
    for config in chosen:
        if gt.values.shape[config.axis] < 2 * config.r:
            raise UsageError(f"--scales {config.r} --axes {config.axis}: {gt.values.shape[config.axis]} voxels along "
                             f"axis {config.axis} make fewer than 2 thick slices")
    return chosen


SETTINGS = ("volume", "crop", "shape", "quick", "iterations", "time", "default_budget", "seeds", "tell_thickness",
            "assume_spacing", "data_consistency", "lr_noise", "ema_decay", "noise_seed", "eclare_patches")


def earlier_rows(args: argparse.Namespace, report: dict) -> tuple[list[dict], list[dict]]:
    """(configs, rows) of ``--out`` to keep with ``--resume``: :class:`UsageError` when it cannot be read, is not
    this benchmark's, or was run with other settings (its rows would not be comparable)."""
    try:
        earlier = json.loads(args.out.read_text())
    except FileNotFoundError:
        return [], []
    except (OSError, ValueError) as error:
        raise UsageError(f"--resume: {args.out}: cannot read a JSON report ({' '.join(str(error).split())})") from error
    if not isinstance(earlier, dict) or earlier.get("benchmark") != "throughplane":
        raise UsageError(f"--resume: {args.out}: not a report of this benchmark")
    differ = [key for key in SETTINGS if earlier.get(key) != report.get(key)]
    if differ:
        raise UsageError(f"--resume: {args.out} was run with other settings ({', '.join(differ)}: "
                         f"{', '.join(f'{earlier.get(k)!r} now {report.get(k)!r}' for k in differ)})")
    if (earlier.get("eclare_options") is None) != (report.get("eclare_options") is None):
        raise UsageError(f"--resume: {args.out}: ECLARE was {'not ' if report['eclare_options'] else ''}run there")
    done = {entry["name"] for entry in earlier.get("configs", [])}
    return earlier.get("configs", []), [entry for entry in earlier.get("rows", []) if entry["config"] in done]


def run(args: argparse.Namespace) -> dict:
    check_args(args)
    eclare = eclare_options(args.eclare_venv) if args.eclare_venv is not None else None
    gt = load_ground_truth(args.volume, args.crop)
    chosen = configs(args, gt)
    started = time.perf_counter()
    report = {"volume": args.volume, "source": gt.source, "source_shape": list(gt.source_shape), "crop": args.crop,
              "crop_box": gt.box and [list(b) for b in gt.box], "shape": list(gt.values.shape),
              "spacing_mm": gt.spacing, "head_mean": float(gt.values[ts.head_mask(gt.values)].mean()),
              "quick": args.quick, "iterations": args.iterations, "time": args.time, "seeds": args.seeds,
              "tell_thickness": args.tell_thickness, "assume_spacing": args.assume_spacing,
              "data_consistency": args.data_consistency, "default_budget": args.default_budget,
              "lr_noise": args.lr_noise, "ema_decay": args.ema_decay, "eclare_patches": args.eclare_patches,
              "noise_seed": args.noise_seed,
              "eclare_options": sorted(eclare) if eclare is not None else None, "configs": [], "rows": []}
    if args.resume:
        report["configs"], report["rows"] = earlier_rows(args, report)
        kept = {entry["name"] for entry in report["configs"]}
        if kept:
            print(f"--resume: {len(kept)} configuration(s) kept from {args.out}", file=sys.stderr)
        chosen = [config for config in chosen if config.name not in kept]
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for config in chosen:
            case = make_case(gt, config, work, args.noise_seed)
            report["configs"].append(config_entry(case, gt.spacing))
            result, seconds = interpolation(case, 3)
            cubic = evaluate(result, case)
            rows = [row(config, "cubic", cubic, seconds, None)]
            result, seconds = interpolation(case, 1)
            rows.append(row(config, "linear", evaluate(result, case), seconds, cubic))
            rows.append(selfsr_row(case, args, gt.spacing, work, cubic))
            if eclare is not None:  # what stops ECLARE is its row's error, not fatal to the others
                out = work / f"eclare_{case.path.name.removesuffix('.nii.gz')}"
                try:
                    result, seconds = run_eclare(eclare_command(args.eclare_venv, eclare, case, args, out), out, case)
                    rows.append(row(config, "eclare", evaluate(result, case), seconds, cubic,
                                    patches=args.eclare_patches))
                except (RuntimeError, OSError) as error:
                    rows.append({"config": config.name, "method": "eclare", "error": str(error)[-2000:]})
            for entry in rows:
                print(json.dumps(entry), flush=True)
            report["rows"] += rows
            write_report("throughplane", {**report, "complete": False}, args.out)  # a crash keeps the rows done
    report["wall_seconds"] = time.perf_counter() - started
    return write_report("throughplane", {**report, "complete": True}, args.out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.table is not None:
            print_table(args.table)
            return 0
        report = run(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

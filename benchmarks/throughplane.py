"""Through-plane SR (medsr-selfsr) against cubic B-spline and linear interpolation (and optionally ECLARE) on thick
slices simulated from an isotropic head volume, along each axis, with and without a gap and noise.

    python -m benchmarks.throughplane --out benchmarks/results/throughplane_mni.json        # 24 configs, MNI
    python -m benchmarks.throughplane --volume anatomical --out /tmp/tp_anat.json           # a real subject
    python -m benchmarks.throughplane --quick --out /tmp/tp.json                            # seconds: a check
    python -m benchmarks.throughplane --table benchmarks/results/throughplane_mni.json      # the markdown table
    python -m benchmarks.throughplane --summary gap.json nogap.json     # a line per configuration over reports

Volumes (``--volume``): ``mni``, the MNI152 2009a symmetric T1 template at 1 mm that nilearn's wheel ships
(``nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz``; nilearn is a benchmark-only
dependency: ``pip install nilearn``), and ``anatomical``, nibabel's ``tests/data/anatomical.nii`` (one subject's
MRI, 33 x 41 x 25 voxels of 2 mm), and ``anatomical-1mm``, the same resampled to 1 mm (cubic B-spline, 65 x 81 x
49: the tests' volume, where the slice-profile estimate is furthest off with touching slices). ``--crop`` (default
on) cuts the volume to the bounding box of its head (voxels above 10 % of the maximum) with a 2-voxel margin.

Configurations (every combination of ``--scales``, ``--axes``, ``--profiles``, ``--noise``): along the axis, the truth
is cut to r·N voxels and N thick slices are simulated exactly as medsr-selfsr models them
(:mod:`benchmarks.lib.thick_slices`: Gaussian slice profile of FWHM r voxels, "nogap", 0.6·r, "gap", or 1.2·r,
"overlap", not in the default set; slice j centred on truth voxel r·j + (r − 1)/2), then Rician noise of sigma = level x
the truth's mean inside the head (seeded). The thick NIfTI has the affine of that grid (slice spacing r voxels); it
cannot carry the thickness, so medsr-selfsr estimates the thickness from the scan (or assumes thickness = spacing when
the estimate is unreliable; its row records ``thickness_source``) unless ``--tell-thickness`` gives
``--slice-thickness`` (and ECLARE its ``--relative-slice-thickness``, the FWHM in in-plane voxels); ``--assume-spacing``
gives it ``--slice-thickness`` = the slice spacing, what it assumed before it estimated.

Methods, each returning r·N slices on the truth's grid: ``cubic`` / ``linear`` (``scipy.ndimage.zoom`` order 3 / 1 along
the axis, pixel-centre grid), ``selfsr`` (the whole ``medsr-selfsr`` command in its own process, a recipe derived from
``options/selfsr.yml`` with ``manual_seed``, ``--iterations``; timed from the interpreter's start to the written result;
``--data-consistency`` passes that flag on: its result corrected to give the thick slices back, each row saying so),
``eclare`` (``--eclare-venv``: ``run-eclare`` of that virtual environment, ``--eclare-patches`` patches; or ``eclare
x<F>`` for each ``--eclare-match F``: the patches that fit F times medsr-selfsr's wall time in that configuration, from
ECLARE's cost measured once, two runs on the first configuration, fixed + per-patch seconds, refitted through every
matched run after it, and through another report's runs with ``--eclare-cost-from``; ``--tell-eclare`` gives ECLARE the
true profile while medsr-selfsr estimates it). ``--quick``: the anatomical volume, one configuration, a tiny network for
10 iterations in this process (a check of the script).

Metrics inside the head: PSNR, SSIM (3-D) against the truth, LR-PSNR (the result degraded again, against the input
slices), LR-PSNR clean (the same against the thick slices before the noise: with noise, a result that reproduces
the input's noise scores high on LR-PSNR and one that removes it cannot exceed the noise's own PSNR there;
without noise both are the same); ``gain_*``: the method's value minus cubic's. One report row per configuration
and method. ``--default-budget`` runs medsr-selfsr as a user does (its own budget), ``--resume`` continues a report
over several sittings on the same CPU (every report names its CPU: another is refused); ``--resume
--rerun-selfsr`` runs medsr-selfsr again in the configurations chosen and keeps the other rows (after a change to
medsr-selfsr: ECLARE's rows stay matched to the time in their ``target_seconds``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.lib import thick_slices as ts
from benchmarks.lib.eclare import EclareCost, eclare_command, eclare_options, run_eclare
from benchmarks.lib.head_cases import (
    METRICS,
    VOLUMES,
    Case,
    Config,
    GroundTruth,
    UsageError,
    evaluate,
    load_ground_truth,
    make_case,
)
from benchmarks.lib.reports import cpu, describe_cpu, write_report

REPO_ROOT = Path(__file__).resolve().parents[1]  # on the PYTHONPATH of medsr-selfsr's process: this checkout's medsr_se
DEFAULT_ITERATIONS = 300  # the recipe's 2000 is sized for a GPU (about an hour a run on 2 CPU cores)
ECLARE_CALIBRATION_PATCHES = (128, 1280)  # --eclare-match: ECLARE's cost measured at these (1 and 10 batches)
QUICK_OVERRIDES = {"network_g": {"num_feat": 8, "num_block": 1, "reduction": 4},
                   "datasets": {"train": {"batch_size_per_gpu": 4, "num_worker_per_gpu": 0,
                                          "persistent_workers": False, "pin_memory": False, "gt_size": 24,
                                          "samples_per_epoch": 40}},
                   "train": {"total_iter": 10, "ema_decay": 0},
                   "logger": {"print_freq": 10, "save_checkpoint_freq": 10}}
QUICK_ITERATIONS = 10


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
        arguments += ["--slice-thickness", f"{told_thickness(case, spacing) * args.thickness_factor:g}"]
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
    if args.fwhm_jitter is not None:
        train_set = overrides.get("datasets", {}).get("train", {})
        overrides["datasets"] = {"train": {**train_set, "fwhm_jitter": args.fwhm_jitter}}
    if args.precision is not None:
        overrides["train"] = {**overrides.get("train", {}), "precision": args.precision}
    if args.se is not None:
        overrides["network_g"] = {**overrides.get("network_g", {}), "se": args.se}
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
            "iterations": options["train"]["total_iter"],  # with --time: the iterations that fitted it
            "precision": options["train"].get("precision", "fp32"),  # auto resolved for this CPU
            "se": options["network_g"].get("se", "improved")}
    return np.asarray(image.dataobj, np.float32), seconds, used


# ------------------------------------------------------------------------------------- ECLARE at a matched wall time
def measure_eclare_cost(venv: Path, options: set[str], case: Case, args: argparse.Namespace,
                        work: Path) -> EclareCost:
    """Two ECLARE runs on ``case`` (:data:`ECLARE_CALIBRATION_PATCHES`) and the line through them."""
    runs = []
    for patches in ECLARE_CALIBRATION_PATCHES:
        out = work / f"eclare_cost_{patches}"
        result, seconds = run_eclare(eclare_command(venv, options, case, args, out, patches), out, case)
        runs.append((patches, seconds, evaluate(result, case)["psnr"]))
        print(f"ECLARE timing: {patches} patches in {seconds:.1f} s", file=sys.stderr, flush=True)
    return EclareCost.fitted(tuple(runs), case.config.name)


def eclare_matched_row(venv: Path, options: set[str], case: Case, args: argparse.Namespace, work: Path,
                       cubic: dict, factor: float, selfsr_seconds: float, cost: EclareCost) -> dict:
    """ECLARE with the patches whose predicted wall time is ``factor`` x medsr-selfsr's in this configuration; the
    row says the target, the patches and the seconds it took (over the target when even one batch does not fit)."""
    target = factor * selfsr_seconds
    patches = cost.patches_for(target)
    out = work / f"eclare_x{factor:g}_{case.path.name.removesuffix('.nii.gz')}"
    result, seconds = run_eclare(eclare_command(venv, options, case, args, out, patches), out, case)
    return row(case.config, f"eclare x{factor:g}", evaluate(result, case), seconds, cubic, patches=patches,
               target_seconds=target, time_factor=factor, told=bool(args.tell_thickness or args.tell_eclare))


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
             "fwhm_jitter": args.fwhm_jitter,
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


def read_report(path: Path, option: str) -> dict:
    """A saved report of this benchmark; :class:`UsageError` naming ``option`` and ``path`` otherwise."""
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"{option} {path}: cannot read a JSON report ({' '.join(str(error).split())})") from error
    if not isinstance(report, dict) or report.get("benchmark") != "throughplane" or "configs" not in report:
        raise UsageError(f"{option} {path}: not a report of this benchmark (python -m benchmarks.throughplane)")
    return report


def print_table(path: Path) -> None:
    print(format_table(read_report(path, "--table")))


def summary_rows(paths: list[Path]) -> tuple[list[float], list[tuple[str, dict[str, dict]]]]:
    """(ECLARE's time factors, [(configuration, {method: row})]) over the reports at ``paths``, by r, axis,
    profile and noise; :class:`UsageError` where they were run with other settings or share a configuration."""
    reports = [read_report(path, "--summary") for path in paths]
    first = reports[0]
    configs: list[tuple[dict, dict[str, dict]]] = []
    for path, report in zip(paths, reports):
        differ = [key for key in SETTINGS if report.get(key) != first.get(key)]
        if differ:
            raise UsageError(f"--summary {path}: run with other settings than {paths[0]} ({', '.join(differ)})")
        for entry in report["configs"]:
            if entry["name"] in {earlier["name"] for earlier, _ in configs}:
                raise UsageError(f"--summary {path}: {entry['name']} is in an earlier report too")
            rows = {row["method"]: row for row in report["rows"] if row["config"] == entry["name"]}
            configs.append((entry, rows))
    configs.sort(key=lambda item: (item[0]["r"], item[0]["axis"], list(ts.PROFILES).index(item[0]["profile"]),
                                   item[0]["noise"]))
    factors = sorted({float(method.removeprefix("eclare x")) for _, rows in configs for method in rows
                      if method.startswith("eclare x")})
    return factors, [(entry["name"], rows) for entry, rows in configs]


def summary_table(paths: list[Path]) -> str:
    """One line per configuration over several reports (e.g. the gap and the no-gap runs): cubic, linear,
    medsr-selfsr and ECLARE at each matched time (PSNR / SSIM, seconds, patches), and ours − ECLARE at the largest
    time; "–" where a method was not run, "error" where its run failed (the report holds the message)."""
    factors, configs = summary_rows(paths)
    pair = lambda row: f"{row['psnr']:.2f} / {row['ssim']:.4f}"  # noqa: E731
    header = ["config", "cubic", "linear", "medsr-selfsr (s)", "Δ cubic"]
    header += [f"ECLARE x{f:g}: patches, PSNR / SSIM (s)" for f in factors]
    header += [f"ours − ECLARE x{factors[-1]:g}"] if factors else []
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name, rows in configs:
        rows = {method: row for method, row in rows.items() if "error" not in row or method.startswith("eclare x")}
        ours, cubic, linear = rows.get("selfsr"), rows.get("cubic"), rows.get("linear")
        cells = [name, pair(cubic) if cubic else "–", f"{linear['psnr']:.2f}" if linear else "–",
                 f"{pair(ours)} ({ours['seconds']:.0f})" if ours else "–",
                 f"{ours['gain_psnr']:+.2f} / {ours['gain_ssim']:+.3f}" if ours and "gain_psnr" in ours else "–"]
        for factor in factors:
            eclare = rows.get(f"eclare x{factor:g}")
            cells.append("–" if eclare is None else "error" if "error" in eclare else
                         f"{eclare['patches']:,}: {pair(eclare)} ({eclare['seconds']:.0f})")
        if factors:
            last = rows.get(f"eclare x{factors[-1]:g}")
            last = None if last is None or "error" in last else last
            cells.append(f"{ours['psnr'] - last['psnr']:+.2f} dB / {ours['ssim'] - last['ssim']:+.3f}"
                         if ours and last else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------------------------- CLI
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--volume", choices=list(VOLUMES), help="default: mni (--quick: anatomical)")
    parser.add_argument("--crop", action=argparse.BooleanOptionalAction, default=True,
                        help="cut the volume to the head's bounding box (default: on)")
    parser.add_argument("--scales", type=int, nargs="+", help="r (default: 4 6; --quick: 4)")
    parser.add_argument("--axes", type=int, nargs="+", choices=[0, 1, 2], help="default: 0 1 2 (--quick: 2)")
    parser.add_argument("--profiles", nargs="+", choices=list(ts.PROFILES),
                        help="nogap: thickness = spacing; gap: thickness = 0.6 x spacing; overlap: 1.2 x spacing "
                             "(default: nogap gap; --quick: nogap)")
    parser.add_argument("--noise", type=float, nargs="+",
                        help="Rician sigma / the truth's mean inside the head (default: 0 0.03; --quick: 0)")
    parser.add_argument("--noise-seed", type=int, default=0)
    parser.add_argument("--tell-thickness", action="store_true",
                        help="give medsr-selfsr --slice-thickness (and ECLARE --relative-slice-thickness)")
    parser.add_argument("--thickness-factor", type=float, default=1.0, metavar="F",
                        help="with --tell-thickness: tell medsr-selfsr F x the true thickness (what a wrong thickness "
                             "costs: F < 1 too thin, F > 1 too thick; ECLARE is told the truth)")
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
    parser.add_argument("--fwhm-jitter", type=float,
                        help="datasets:train:fwhm_jitter (each training pair's FWHM x U[1 − j, 1 + j]; default: the "
                             "recipe's)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"),
                        help="train:precision (default: the recipe's, auto: bf16 where the CPU has bf16 units)")
    parser.add_argument("--se", choices=("improved", "plain", "none"),
                        help="network_g:se, the generator's SE blocks (default: the recipe's, the paper's improved SE)")
    parser.add_argument("--data-consistency", action="store_true",
                        help="give medsr-selfsr --data-consistency (its result corrected to give the thick slices "
                             "back): run once with and once without to compare")
    parser.add_argument("--eclare-venv", type=Path, help="a virtual environment with run-eclare (pip install eclare)")
    parser.add_argument("--eclare-patches", type=int, default=2048, help="ECLARE's --n-patches")
    parser.add_argument("--eclare-gpu-id", default="-1", help="ECLARE's --gpu-id")
    parser.add_argument("--eclare-match", type=float, nargs="+", metavar="FACTOR",
                        help="instead of --eclare-patches: ECLARE runs given the patches that fit FACTOR x "
                             "medsr-selfsr's wall time in each configuration (1: equal time; 4: four times), from its "
                             "cost measured once (two runs on the first configuration, kept in the report)")
    parser.add_argument("--eclare-cost-from", type=Path, metavar="REPORT",
                        help="with --eclare-match: fit ECLARE's cost line through the runs of REPORT (a report of "
                             "this benchmark on the same CPU: another is refused) too, not only this report's own")
    parser.add_argument("--tell-eclare", action="store_true",
                        help="give ECLARE the true slice profile even when medsr-selfsr is not told it")
    parser.add_argument("--quick", action="store_true", help="a check of the script: see the module docstring")
    parser.add_argument("--out", type=Path, help="the JSON report (rewritten after each configuration)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the configurations --out holds already (run with the same settings on this CPU) "
                             "and run the others: a long table over several sittings")
    parser.add_argument("--rerun-selfsr", action="store_true",
                        help="with --resume: run medsr-selfsr again in the configurations chosen, keeping the others' "
                             "rows (interpolation, ECLARE): the same table after a change to medsr-selfsr")
    parser.add_argument("--table", type=Path, metavar="REPORT", help="print a saved report's table and stop")
    parser.add_argument("--summary", type=Path, nargs="+", metavar="REPORT",
                        help="print one line per configuration over saved reports of the same settings (cubic, "
                             "linear, medsr-selfsr, ECLARE at each matched time) and stop")
    args = parser.parse_args(argv)
    if args.table is not None and args.summary is not None:
        parser.error("--table and --summary: give one (one report's rows, or a line per configuration over reports)")
    if args.tell_thickness and args.assume_spacing:
        parser.error("--tell-thickness and --assume-spacing: give one (the true thickness or the spacing)")
    if args.thickness_factor != 1.0 and not (args.tell_thickness and args.thickness_factor > 0):
        parser.error("--thickness-factor: give it with --tell-thickness, and above 0")
    if args.default_budget and (args.time is not None or args.iterations is not None):
        parser.error("--default-budget with --time or --iterations: give one budget")
    if args.resume and args.out is None:
        parser.error("--resume: give --out, the report to continue")
    if args.eclare_cost_from is not None and not args.eclare_match:
        parser.error("--eclare-cost-from: give it with --eclare-match (the cost line sets the matched patches)")
    if args.rerun_selfsr and not args.resume:
        parser.error("--rerun-selfsr: give it with --resume (the report whose medsr-selfsr rows are run again)")
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
    if args.eclare_match is not None:
        if args.eclare_venv is None:
            raise UsageError("--eclare-match: give --eclare-venv too (the environment with run-eclare)")
        for factor in args.eclare_match:
            if not (math.isfinite(factor) and factor > 0):
                raise UsageError(f"--eclare-match {factor}: a factor of medsr-selfsr's wall time, > 0")
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
            "assume_spacing", "thickness_factor", "data_consistency", "lr_noise", "fwhm_jitter", "precision", "se",
            "ema_decay", "noise_seed")
# (ECLARE's rows say their own patches / time factor: ECLARE rows can be added to a table made without them)


def earlier_report(path: Path) -> dict | None:
    """The report ``--resume`` continues, read before any work: None where there is none yet (a fresh run);
    :class:`UsageError` naming ``path`` where it cannot be read, is not this benchmark's or was measured on another
    CPU (:func:`check_same_cpu`)."""
    if not path.exists():
        return None
    earlier = read_report(path, "--resume")
    check_same_cpu(earlier, f"--resume {path}")
    return earlier


def earlier_rows(args: argparse.Namespace, earlier: dict, report: dict, configs_chosen: list[Config]
                 ) -> tuple[list[dict], list[dict]]:
    """(configs, rows) of ``earlier`` (:func:`earlier_report`) to keep with ``--resume``, less medsr-selfsr's rows
    in ``configs_chosen`` with ``--rerun-selfsr`` (ECLARE's matched rows keep the time they were matched to:
    ``target_seconds``); :class:`UsageError` when it was run with other settings (its rows would not be
    comparable)."""
    differ = [key for key in SETTINGS if earlier.get(key) != report.get(key)]
    if differ:
        raise UsageError(f"--resume {args.out}: run with other settings ({', '.join(differ)}: "
                         f"{', '.join(f'{earlier.get(k)!r} now {report.get(k)!r}' for k in differ)})")
    done = {entry["name"] for entry in earlier["configs"]}
    if earlier.get("eclare_cost") and not report.get("eclare_cost"):
        report["eclare_cost"] = earlier["eclare_cost"]  # ECLARE's timing, measured once
    rerun = {(config.name, "selfsr") for config in configs_chosen} if args.rerun_selfsr else set()
    return earlier["configs"], [entry for entry in earlier.get("rows", [])
                                if entry["config"] in done and "error" not in entry
                                and (entry["config"], entry["method"]) not in rerun]


def check_same_cpu(report: dict, where: str) -> None:
    """:class:`UsageError` starting with ``where`` when ``report`` was measured on another CPU than this one
    (:func:`~benchmarks.lib.reports.cpu`): its seconds (medsr-selfsr's, ECLARE's cost line) would not hold here. A
    report that names no CPU (written before reports did) is taken to be from this one, and a warning says so."""
    here, there = cpu(), report.get("cpu")
    if there is None:
        print(f"warning: {where} names no CPU (written before reports named it): its seconds are taken to be this "
              f"machine's ({describe_cpu(here)})", file=sys.stderr)
    elif there != here:
        named = describe_cpu(there) if isinstance(there, dict) else repr(there)  # a report edited by hand
        raise UsageError(f"{where}: measured on another CPU ({named}; this one: {describe_cpu(here)}): its seconds "
                         "do not hold here")


def eclare_cost_from(path: Path) -> EclareCost:
    """The ECLARE cost line of the report at ``path`` (``--eclare-cost-from``), read before any work;
    :class:`UsageError` naming ``path`` when it is not a report of this benchmark, holds no cost line, or was
    measured on another CPU."""
    other = read_report(path, "--eclare-cost-from")
    if not other.get("eclare_cost"):
        raise UsageError(f"--eclare-cost-from {path}: the report holds no ECLARE cost line (run with --eclare-match)")
    check_same_cpu(other, f"--eclare-cost-from {path}")
    return EclareCost.from_json(other["eclare_cost"])


def cost_with_runs_from(report: dict, theirs: EclareCost) -> None:
    """``report``'s ECLARE cost line refitted through its own runs and ``theirs`` (another report's, from
    :func:`eclare_cost_from`) not already among them (:meth:`EclareCost.fitted`): short calibration runs alone put
    the per-patch cost too high, so a long run elsewhere on the same machine makes "4x our time" truer."""
    own = EclareCost.from_json(report["eclare_cost"]) if report.get("eclare_cost") else None
    runs = (*own.runs, *(run for run in theirs.runs if run not in own.runs)) if own else theirs.runs
    report["eclare_cost"] = EclareCost.fitted(runs, own.config if own else theirs.config).as_json()


def methods_wanted(args: argparse.Namespace, eclare: set[str] | None) -> list[str]:
    """The report's methods per configuration: cubic, linear, selfsr, and ECLARE's (one per --eclare-match factor,
    else one at --eclare-patches) when --eclare-venv is given."""
    methods = ["cubic", "linear", "selfsr"]
    if eclare is not None:
        methods += [f"eclare x{factor:g}" for factor in args.eclare_match] if args.eclare_match else ["eclare"]
    return methods


def config_rows(case: Case, args: argparse.Namespace, spacing: float, work: Path, done: dict[str, dict],
                wanted: list[str], eclare: set[str] | None, report: dict) -> list[dict]:
    """The rows of ``wanted`` methods that ``done`` (this configuration's rows kept by --resume) lacks; ECLARE's
    failures are their rows' errors, not fatal to the others."""
    config, rows = case.config, []
    if "cubic" in done:
        cubic = {m: done["cubic"][m] for m in METRICS}
    else:
        result, seconds = interpolation(case, 3)
        cubic = evaluate(result, case)
        rows.append(row(config, "cubic", cubic, seconds, None))
    if "linear" not in done:
        result, seconds = interpolation(case, 1)
        rows.append(row(config, "linear", evaluate(result, case), seconds, cubic))
    selfsr = done.get("selfsr") or selfsr_row(case, args, spacing, work, cubic)
    if "selfsr" not in done:
        rows.append(selfsr)
    for method in (m for m in wanted if m.startswith("eclare") and m not in done):
        try:
            if method == "eclare":
                out = work / f"eclare_{case.path.name.removesuffix('.nii.gz')}"
                result, seconds = run_eclare(eclare_command(args.eclare_venv, eclare, case, args, out), out, case)
                rows.append(row(config, "eclare", evaluate(result, case), seconds, cubic, patches=args.eclare_patches,
                                told=bool(args.tell_thickness or args.tell_eclare)))
                continue
            if "eclare_cost" not in report:
                report["eclare_cost"] = measure_eclare_cost(args.eclare_venv, eclare, case, args, work).as_json()
            factor = float(method.removeprefix("eclare x"))
            cost = EclareCost.from_json(report["eclare_cost"])
            matched = eclare_matched_row(args.eclare_venv, eclare, case, args, work, cubic, factor,
                                         selfsr["seconds"], cost)
            rows.append(matched)
            report["eclare_cost"] = cost.with_run(matched["patches"], matched["seconds"], matched["psnr"]).as_json()
        except (RuntimeError, OSError) as error:
            rows.append({"config": config.name, "method": method, "error": str(error)[-2000:]})
    return rows


def run(args: argparse.Namespace) -> dict:
    check_args(args)
    earlier = earlier_report(args.out) if args.resume else None  # the files given are read before any work
    other_cost = eclare_cost_from(args.eclare_cost_from) if args.eclare_cost_from is not None else None
    eclare = eclare_options(args.eclare_venv) if args.eclare_venv is not None else None
    gt = load_ground_truth(args.volume, args.crop)
    chosen = configs(args, gt)
    started = time.perf_counter()
    report = {"volume": args.volume, "source": gt.source, "source_shape": list(gt.source_shape), "crop": args.crop,
              "crop_box": gt.box and [list(b) for b in gt.box], "shape": list(gt.values.shape),
              "spacing_mm": gt.spacing, "head_mean": float(gt.values[ts.head_mask(gt.values)].mean()),
              "quick": args.quick, "iterations": args.iterations, "time": args.time, "seeds": args.seeds,
              "tell_thickness": args.tell_thickness,
              "thickness_factor": args.thickness_factor if args.thickness_factor != 1.0 else None,
              "assume_spacing": args.assume_spacing,
              "data_consistency": args.data_consistency, "default_budget": args.default_budget,
              "lr_noise": args.lr_noise, "fwhm_jitter": args.fwhm_jitter, "precision": args.precision,
              "se": args.se, "ema_decay": args.ema_decay,
              "eclare_patches": args.eclare_patches,
              "noise_seed": args.noise_seed,
              "eclare_options": sorted(eclare) if eclare is not None else None, "configs": [], "rows": []}
    if earlier is not None:
        report["configs"], report["rows"] = earlier_rows(args, earlier, report, chosen)
        kept = {entry["name"] for entry in report["configs"]}
        if kept:
            print(f"--resume: {len(kept)} configuration(s) kept from {args.out} (their missing rows are run)",
                  file=sys.stderr)
    if other_cost is not None:
        cost_with_runs_from(report, other_cost)
    wanted = methods_wanted(args, eclare)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for config in chosen:
            done = {entry["method"]: entry for entry in report["rows"] if entry["config"] == config.name}
            if all(method in done for method in wanted):
                continue
            case = make_case(gt, config, work, args.noise_seed)
            if config.name not in {entry["name"] for entry in report["configs"]}:
                report["configs"].append(config_entry(case, gt.spacing))
            rows = config_rows(case, args, gt.spacing, work, done, wanted, eclare, report)
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
        if args.summary is not None:
            print(summary_table(args.summary))
            return 0
        report = run(args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

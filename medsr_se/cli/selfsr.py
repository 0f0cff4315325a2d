"""``medsr-selfsr``: through-plane super-resolution of one thick-slice CT / MRI scan, trained on the scan itself.

    medsr-selfsr -i scan.nii.gz -o out/ [--slice-thickness MM] [--scale R] [--time 3m | --iterations N]
                 [-opt RECIPE] [--device auto|cpu|cuda] [--model net_g.pth] [--axis 0|1|2] [--slice-profile K.npy]
    medsr-selfsr -i dicom_series_folder/ -o out/
    medsr-selfsr -i folder_of_scans/ -o out/      every scan in it, each as alone (:mod:`medsr_se.cli.selfsr_cohort`)

1. Reads the scan: the result's slice spacing t is ``--target-spacing`` (default: the in-plane spacing) or slice
   spacing / ``--scale``; the network runs at r = ⌈slice spacing / t⌉, its r·N slices resampled to t by a cubic
   B-spline when t is not slice spacing / r; the slice profile is a Gaussian of FWHM = slice thickness
   (``--slice-thickness``, DICOM SliceThickness, the BIDS sidecar's, else estimated from the scan, with a warning).
   A note says which profile and where from.
2. Trains ``SEEDSRGenerator(upscale=[r, 1])`` on pairs from the scan's in-plane slices through BasicSR's own loop
   (recipe ``options/selfsr.yml`` or ``-opt``) under ``out/experiments/<scan>_selfsr_x<r>``, with a progress bar:
   ``--iterations N`` or as many as fit ``--time`` (the whole command's wall-clock budget; default on a CPU 4 min,
   on a GPU the recipe's total_iter), the learning-rate schedule fitted to them. The same command after an
   interruption resumes, only for the same scan and model / data options (``selfsr_fingerprint`` in
   ``out/<scan>_selfsr_x<r>.yml``); else a note says what differs, the old experiment is moved aside.
   ``--model net_g.pth`` skips training.
3. Applies it to every sagittal and coronal slice, averages both, and writes the result: NIfTI
   ``out/<scan>_selfsr_x<r>.nii.gz`` or a derived DICOM series ``out/<folder>_selfsr_x<r>/`` (resampled to t:
   ``..._selfsr_<t>mm``), ``--labels``' map on its grid, ``out/<result>_report.json`` (the run's facts, the LR
   consistency next to cubic B-spline's, whose numbers the last line printed gives) and with ``--sheet`` a PNG of
   the middle sagittal and coronal slices: input | cubic B-spline | result (the network's r·N slices).
   ``--data-consistency``: first the least correction that makes the result, degraded as the training pairs are,
   give the scan's slices back.

A user mistake ends the run with one line ``error: ...`` naming the file or option and exit status 2; nothing is
overwritten (an existing result, report or ``--sheet`` PNG is an error). Every check (the recipe included, and whether
``-o`` can be written) comes before anything is created under ``-o``; a run that fails later removes the folders it
created while they are empty, and an options file it wrote when training never began. Notes and warnings are one
line each; any other exception is a bug and keeps its traceback. The work is the library's
(:mod:`medsr_se.integration.selfsr_pipeline`: the run planned, then its files; the network trained, loaded and
applied by :mod:`~medsr_se.integration.selfsr_training` and :mod:`~medsr_se.inference.through_plane`); this module
parses, calls, shows progress, and shows their errors and notes under its flags.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from medsr_se.cli.console import Console, add_verbosity_arguments, log_to_stderr
from medsr_se.cli.messages import error_line, show_flags
from medsr_se.errors import MedSRError, UsageError
from medsr_se.evaluation.selfsr_report import StepClock, consistency_line
from medsr_se.inference.through_plane import apply_network, load_through_plane_model
from medsr_se.integration import selfsr_pipeline
from medsr_se.integration.selfsr_pipeline import SelfSRPlan
from medsr_se.integration.selfsr_training import train
from medsr_se.io import scans
from medsr_se.io.publish import WriteError, check_writable_folder, make_folder_checked, remove_empty_folders
from medsr_se.utils.durations import parse_duration, process_age_s

DEFAULT_RECIPE = "selfsr"
FLAGS = {"slice_thickness": "--slice-thickness", "scale": "--scale", "iterations": "--iterations", "recipe": "-opt",
         "device": "--device", "model": "--model", "axis": "--axis", "slice_profile": "--slice-profile",
         "nonfinite": "--nonfinite", "time_budget": "--time", "data_consistency": "--data-consistency",
         "labels": "--labels", "target_spacing": "--target-spacing", "output": "-o"}  # library parameter -> flag


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medsr-selfsr", description=__doc__.split("\n\n")[0])
    parser.add_argument("-i", "--input", type=Path, required=True, help="a NIfTI file, a DICOM series folder, or a "
                        "folder of scans: NIfTI files and DICOM series sub-folders, each processed as alone (--time "
                        "per scan), sub-folders recursed, out/cohort_summary.csv")
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for the result and the training")
    parser.add_argument("--slice-thickness", type=float,
                        help="mm: the slice profile's FWHM (default: DICOM SliceThickness or the BIDS sidecar "
                             "scan.json's; else the slice spacing, with a warning)")
    parser.add_argument("--scale", type=int, help="r: slices of slice spacing / r (default: --target-spacing's)")
    parser.add_argument("--target-spacing", type=float, metavar="MM",
                        help="the result's slice spacing (default: the in-plane spacing): the network runs at r = "
                             "ceil(slice spacing / MM), a cubic B-spline resamples to MM")
    parser.add_argument("--iterations", type=int, help="training iterations (default: as many as fit --time)")
    parser.add_argument("--time", metavar="DURATION", help="wall-clock budget for the whole command: 240 (s), 90s, "
                        "3m, 1h30m; training fits it (default: 4m on a CPU, the recipe's total_iter on a GPU)")
    parser.add_argument("-opt", "--opt", dest="recipe", default=DEFAULT_RECIPE,
                        help="training recipe: a path or a shipped name (default: selfsr)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="auto: every visible GPU, else the CPU")
    parser.add_argument("--model", type=Path, help="a trained through-plane net_g_*.pth: no training")
    parser.add_argument("--axis", type=int, choices=[0, 1, 2], help="the slice axis (needed for a 4-D NIfTI)")
    parser.add_argument("--slice-profile", type=Path, help="a .npy kernel (taps in in-plane pixels)")
    parser.add_argument("--sheet", action="store_true", help="also write a PNG of sagittal and coronal views")
    parser.add_argument("--nonfinite", type=float, metavar="VALUE",
                        help="replace NaN / ±inf voxels by VALUE (default: they are an error)")
    parser.add_argument("--data-consistency", action="store_true",
                        help="correct the result by the least change that makes the slice profile give the scan's "
                             "slices back (docs/through-plane.md)")
    parser.add_argument("--shared", action="store_true",
                        help="a cohort folder: each scan's training starts from the model trained on the cohort's "
                             "scan before it with the same r (the first from scratch), not from scratch")
    parser.add_argument("--labels", type=Path, metavar="SEG.nii.gz",
                        help="a NIfTI label map on the scan's grid: also written on the result's grid as "
                             "<result>_labels.nii.gz (shape-based interpolation)")
    add_verbosity_arguments(parser)
    return parser


def check_arguments(args: argparse.Namespace) -> None:
    if args.iterations is not None and args.time is not None:
        raise UsageError("--iterations and --time: give one of them (a number of iterations or a wall-clock budget)")
    args.time = parse_duration(args.time, "time_budget") if args.time is not None else None  # seconds
    if args.iterations is not None and args.iterations < 1:
        raise UsageError(f"--iterations {args.iterations}: must be at least 1")
    if args.scale is not None and not scans.MIN_SCALE <= args.scale <= scans.MAX_SCALE:
        raise UsageError(f"--scale {args.scale}: must be an integer from {scans.MIN_SCALE} to {scans.MAX_SCALE}")
    try:
        check_writable_folder(args.output)
    except WriteError as error:
        raise UsageError(f"-o {error}") from error
    if getattr(args, "shared", False) and args.model is not None:
        raise UsageError(f"--shared and --model {args.model}: --shared trains each scan starting from the model of "
                         "the scan before; --model applies one model without training: give one of them")
    if args.model is not None and not args.model.is_file():
        raise UsageError(f"--model {args.model}: no such file")
    if args.nonfinite is not None and not np.isfinite(args.nonfinite):
        raise UsageError(f"--nonfinite {args.nonfinite}: the replacement must be a finite number")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA GPU is available here (use --device cpu)")


def make_output_folder(output: Path) -> list[Path]:
    """``-o`` made (the folders created, for :func:`remove_empty_folders`); one that cannot be written: -o's error."""
    try:
        return make_folder_checked(output)
    except WriteError as error:
        raise UsageError(f"-o {error}") from error


def run(args: argparse.Namespace, console: Console, started: float) -> int:
    from medsr_se.cli import selfsr_cohort

    if selfsr_cohort.is_cohort(args.input):  # a folder of scans: each one through run_scan
        return selfsr_cohort.run_cohort(args, console)
    if args.shared and args.input.exists():  # (one that is not there: its own error)
        raise UsageError(f"--shared: for a folder of scans (-i {args.input} is one scan): each scan's training then "
                         "starts from the model of the scan before it")
    run_scan(args, console, started)
    return 0


def run_scan(args: argparse.Namespace, console: Console, started: float) -> Path:
    """One scan: the library's steps (:mod:`medsr_se.integration.selfsr_pipeline`) around the network, which this
    command loads or trains and applies with its progress bars; the result's path."""
    check_arguments(args)
    plan = selfsr_pipeline.plan_run(  # the flags as the library's parameters
        args.input, args.output, scale=args.scale, target_spacing=args.target_spacing,
        slice_thickness=args.slice_thickness, slice_profile=args.slice_profile, axis=args.axis,
        nonfinite=args.nonfinite, labels=args.labels, model=args.model, recipe=args.recipe, device=args.device,
        sheet=args.sheet, data_consistency=args.data_consistency, given_as=FLAGS)
    net = load_through_plane_model(args.model, plan.r, args.device) if args.model is not None else None
    start = shared_start(args, plan.r)
    if start is not None and plan.training is not None:
        selfsr_pipeline.start_training_from_if_it_fits(plan, *start)
    selfsr_pipeline.finish_plan(plan, iterations=args.iterations, time_budget_s=args.time, started=started)
    created = make_output_folder(args.output)
    try:
        clock = StepClock(started)
        model = args.model
        if plan.training is not None:
            model = train(plan.training, args.output, plan.experiment,
                          lambda n: console.progress(n, f"training {n} iterations"))
            clock.lap("training")
            net = load_through_plane_model(model, plan.r, args.device)
        clock.mark()
        values, _ = apply_network(plan.scan.values, plan.scan.geometry, net, progress=lambda total: console.progress(
            total, f"applying the network to {plan.in_plane_slices} sagittal and coronal slices"))
        clock.lap("application")
        report = selfsr_pipeline.produce(plan, values, net, model, clock)
    except BaseException:  # whatever stopped it: the folders this run made stay only if they hold something
        remove_empty_folders(created)
        raise
    show_result(plan, report, model, console)
    return plan.result


def shared_start(args: argparse.Namespace, r: int) -> tuple[Path, str] | None:
    """``--shared`` in a cohort: (model, the scan it was trained on) of the cohort's last scan of this r before
    this one (``args.shared_models``, kept by :mod:`medsr_se.cli.selfsr_cohort`); None: from scratch."""
    models = getattr(args, "shared_models", None)
    return None if models is None else models.get(r)


def show_result(plan: SelfSRPlan, report: dict, model: Path, console: Console) -> None:
    """The result's lines: its slices and model, its LR consistency next to cubic's, the label map written."""
    scan, grid = plan.scan, plan.grid
    console.result(f"{plan.result}: {grid.count} slices of {grid.spacing:g} mm (from "
                   f"{scan.values.shape[scan.geometry.axis]} of {scan.geometry.slice_spacing:g} mm; model {model})")
    console.result(consistency_line(plan.report, report))
    if plan.label_map is not None:
        console.result(f"{plan.labels}: {plan.label_map.path} on the result's grid")


def on_user_path(error: OSError, args: argparse.Namespace) -> bool:
    """Whether ``error`` is about a path the user named (-i, -o, --model, --slice-profile, -opt, --labels) or one
    under it."""
    if not isinstance(error.filename, (str, bytes, os.PathLike)) or not error.filename:
        return False
    failed = Path(os.fsdecode(error.filename)).resolve()
    given = (args.input, args.output, args.model, args.slice_profile, args.recipe, args.labels)
    named = [Path(p).resolve() for p in given if p]
    return any(failed == path or path in failed.parents for path in named)


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic() - (process_age_s() if argv is None else 0)  # --time counts Python's start-up too
    args = build_parser().parse_args(argv)
    log_to_stderr(args.verbosity)  # the library's log records and Python warnings: one note: / warning: line each
    show_flags(FLAGS)  # the library's parameter names in its notes as this command's flags
    try:
        return run(args, Console(args.verbosity), started)
    except MedSRError as error:
        print(f"error: {error_line(error, FLAGS)}", file=sys.stderr)
    except OSError as error:  # a bug unless it is about a path the user named
        if not on_user_path(error, args):
            raise
        print(f"error: {os.fsdecode(error.filename)}: {error.strerror or error}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

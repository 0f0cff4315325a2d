"""``medsr-selfsr``: through-plane super-resolution of one thick-slice CT / MRI scan, trained on the scan itself.

    medsr-selfsr -i scan.nii.gz -o out/ [--slice-thickness MM] [--scale R] [--time 3m | --iterations N]
                 [-opt RECIPE] [--device auto|cpu|cuda] [--model net_g.pth] [--axis 0|1|2] [--slice-profile K.npy]
    medsr-selfsr -i dicom_series_folder/ -o out/
    medsr-selfsr -i folder_of_scans/ -o out/      every scan in it, each as alone (:mod:`medsr_se.cli.selfsr_cohort`)

1. Reads the scan: the result's slice spacing t is ``--target-spacing`` (default: the in-plane spacing) or slice
   spacing / ``--scale``; the network runs at r = ⌈slice spacing / t⌉, and its r·N slices are resampled to t by a
   cubic B-spline when t is not slice spacing / r (:mod:`medsr_se.io.slice_grid`); the slice profile is a Gaussian
   of FWHM = slice thickness (``--slice-thickness``, DICOM SliceThickness, the BIDS sidecar's, else estimated from
   the scan, with a warning). A note says which profile and where from.
2. Trains ``SEEDSRGenerator(upscale=[r, 1])`` on pairs from the scan's in-plane slices through BasicSR's own loop
   (recipe ``options/selfsr.yml`` or ``-opt``) under ``out/experiments/<scan>_selfsr_x<r>``, with a progress bar:
   ``--iterations N`` or as many as fit ``--time`` (the whole command's wall-clock budget; default on a CPU 4 min,
   on a GPU the recipe's total_iter), the learning-rate schedule fitted to them. The same command after an
   interruption resumes, only for the same scan and model / data options (``selfsr_fingerprint`` in
   ``out/<scan>_selfsr_x<r>.yml``); else a note says what differs, the old experiment is moved aside.
   ``--model net_g.pth`` skips training.
3. Applies it to every sagittal and coronal slice, averages both, and writes the result with r times the slices:
   NIfTI ``out/<scan>_selfsr_x<r>.nii.gz`` or a derived DICOM series ``out/<folder>_selfsr_x<r>/`` (resampled to t:
   ``..._selfsr_<t>mm``; the sheet and the report show the network's r·N slices); ``--sheet``: a
   PNG of the middle sagittal and coronal slices: input (slices repeated r times) | cubic B-spline | result.
   Always ``out/<result>_report.json``: the run's facts and the result's LR consistency next to cubic B-spline's
   (:mod:`medsr_se.evaluation.selfsr_report`), whose numbers the last line printed gives.
   ``--data-consistency``: first the least correction that makes the result, degraded as the training pairs are,
   give the scan's slices back (:mod:`medsr_se.inference.data_consistency`).

A user mistake ends the run with one line ``error: ...`` naming the file or option and exit status 2; nothing is
overwritten (an existing result, report or ``--sheet`` PNG is an error). Every check (the recipe included, and whether
``-o`` can be written) comes before anything is created under ``-o``; a run that fails later removes the folders it
created while they are empty, and an options file it wrote when training never began. Notes and warnings are one
line each; any other exception is a bug and keeps its traceback. The work is the library's (:mod:`medsr_se.io.scans`,
:mod:`medsr_se.integration.selfsr_training`, :mod:`medsr_se.inference.through_plane`); this module parses, calls
and shows their errors and notes under its flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np

from medsr_se.cli.console import Console, add_verbosity_arguments, log_to_stderr
from medsr_se.cli.messages import error_line, show_flags
from medsr_se.data.degradations import load_profile
from medsr_se.data.label_interpolation import write_upscaled_labels
from medsr_se.data.profile_estimation import estimate_thickness
from medsr_se.data.slice_profile_notes import assumed_thickness_warning, slice_profile_note
from medsr_se.errors import MedSRError, UsageError
from medsr_se.evaluation import selfsr_report as reports
from medsr_se.evaluation.sheets import write_sheet
from medsr_se.inference.data_consistency import consistency_note, make_consistent, scan_profile, stored_dtype
from medsr_se.inference.slice_resampling import to_grid
from medsr_se.inference.through_plane import apply_network, load_through_plane_model
from medsr_se.integration.selfsr_training import train, training_options
from medsr_se.integration.training_budget import choose_budget
from medsr_se.io import scans, slice_grid, volumes
from medsr_se.io.label_maps import read_label_map
from medsr_se.io.publish import WriteError, check_writable_folder, make_folder_checked, remove_empty_folders
from medsr_se.utils.durations import parse_duration, process_age_s

DEFAULT_RECIPE = "selfsr"
FLAGS = {"slice_thickness": "--slice-thickness", "scale": "--scale", "iterations": "--iterations", "recipe": "-opt",
         "device": "--device", "model": "--model", "axis": "--axis", "slice_profile": "--slice-profile",
         "nonfinite": "--nonfinite", "time_budget": "--time",
         "data_consistency": "--data-consistency", "labels": "--labels",
         "target_spacing": "--target-spacing"}  # the library's parameter -> this command's flag
DESCRIPTION = "medsr-selfsr through-plane SR x{r} (self-supervised, slice spacing / {r})"  # of a derived series
RESAMPLED = "medsr-selfsr through-plane SR to {t:g} mm slices (self-supervised x{r}, cubic B-spline to {t:g} mm)"


class ResultExists(UsageError):
    """The run's result exists (nothing is overwritten; a cohort run takes the scan as done already)."""


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
    parser.add_argument("--labels", type=Path, metavar="SEG.nii.gz",
                        help="a NIfTI label map on the scan's grid: also written on the result's grid as "
                             "<result>_labels.nii.gz (shape-based interpolation)")
    add_verbosity_arguments(parser)
    return parser


def result_name(source: Path, r: int | str) -> str:
    """``<scan>_selfsr_x<r>``; a str ``r`` (a grid's label, ``0.9mm``) stands in place of ``x<r>``."""
    stem = volumes.nifti_stem(source) if volumes.is_nifti(source) else source.resolve().name
    return f"{stem}_selfsr_{r}" if isinstance(r, str) else f"{stem}_selfsr_x{r}"


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
    if args.model is not None and not args.model.is_file():
        raise UsageError(f"--model {args.model}: no such file")
    if args.nonfinite is not None and not np.isfinite(args.nonfinite):
        raise UsageError(f"--nonfinite {args.nonfinite}: the replacement must be a finite number")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA GPU is available here (use --device cpu)")


def read_scan(args: argparse.Namespace) -> scans.Scan:
    """The scan, its thickness source said under this command's flag (the library says ``from slice_thickness``)."""
    scan = scans.read_scan(args.input, args.axis, args.slice_thickness, args.nonfinite)
    if scan.geometry.thickness_source != scans.FROM_OPTION:
        return scan
    given = dataclasses.replace(scan.geometry, thickness_source=f"from {FLAGS['slice_thickness']}")
    return dataclasses.replace(scan, geometry=given)


def run(args: argparse.Namespace, console: Console, started: float) -> int:
    from medsr_se.cli import selfsr_cohort

    if selfsr_cohort.is_cohort(args.input):  # a folder of scans: each one through this function
        return selfsr_cohort.run_cohort(args, console)
    check_arguments(args)
    kernel = load_profile(args.slice_profile) if args.slice_profile is not None else None  # DataError naming it
    scan = read_scan(args)
    grid = slice_grid.choose_grid(scan.geometry, scan.values.shape[scan.geometry.axis], scan.name, args.scale,
                                  args.target_spacing)
    r, name = grid.network_scale, result_name(args.input, grid.label)
    experiment = result_name(args.input, r)  # the network's: one per r, whatever the target spacing
    target = args.output / (f"{name}.nii.gz" if scan.volume.kind == "nifti" else name)
    args.result = target  # read by a cohort run
    sheet, report = args.output / f"{name}_sheet.png", reports.report_path(args.output, name)
    for result in (target, sheet, report) if args.sheet else (target, report):
        if result.exists() or result.is_symlink():
            raise (ResultExists if result == target else UsageError)(
                f"{result}: exists; remove it or choose another -o (nothing was overwritten)")
    labels = args.output / f"{name}_labels.nii.gz"
    if args.labels is not None and (labels.exists() or labels.is_symlink()):
        raise UsageError(f"{labels}: exists; remove it or choose another -o (nothing was overwritten)")
    label_map = read_label_map(args.labels, scan) if args.labels is not None else None  # checked before training
    if args.model is None and kernel is None and scan.geometry.thickness_assumed:
        scan = estimate_thickness(scan)
    net = load_through_plane_model(args.model, r, args.device) if args.model is not None else None
    options = None if args.model is not None else training_options(  # -opt checked: nothing made yet
        args.recipe, scan, r, experiment, scan_path=args.input, slice_profile=args.slice_profile,
        nonfinite=args.nonfinite, device=args.device)
    console.note(slice_profile_note(scan, r, kernel, FLAGS["slice_profile"]))
    assumed = None if kernel is not None else assumed_thickness_warning(scan)
    if assumed:
        console.warning(f"{assumed}: give --slice-thickness MM (the protocol's slice thickness)")
    if options is not None:  # a note says how many iterations and why; a budget too short is an error here
        choose_budget(options, scan.values.shape, scan.geometry.axis, iterations=args.iterations,
                      time_budget_s=args.time, device=args.device, started=started)
    try:
        created = make_folder_checked(args.output)
    except WriteError as error:
        raise UsageError(f"-o {error}") from error
    try:
        clock = reports.StepClock(started)
        if options is not None:
            model_path = train(options, args.output, experiment,
                               lambda n: console.progress(n, f"training {n} iterations"))
            clock.lap("training")
            net = load_through_plane_model(model_path, r, args.device)
        else:
            model_path = args.model
        slices = sum(scan.values.shape[a] for a in scan.volume.in_plane_axes)
        clock.mark()
        values, new_geometry = apply_network(
            scan.values, scan.geometry, net,
            progress=lambda total: console.progress(total, f"applying the network to {slices} sagittal and coronal "
                                                           "slices"))
        clock.lap("application")
        if args.data_consistency:  # float64, before the writer rounds to the scan's type
            fixed = make_consistent(values, scan.values, scan.geometry.axis, scan_profile(scan.geometry, kernel), r)
            values = fixed.values
            console.note(consistency_note(fixed, r, stored_dtype(scan.volume),
                                          grid.spacing if grid.resampled else None))
        description = RESAMPLED.format(r=r, t=grid.spacing) if grid.resampled else DESCRIPTION.format(r=r)
        scans.write_result(scan, to_grid(values, scan.geometry.axis, grid), grid.scale, target, description)
        if label_map is not None:
            write_upscaled_labels(label_map, grid, labels)
        summary = reports.run_report(reports.SelfSRRun(
            args.input, target, scan, values, r, model_path, options["train"]["total_iter"] if options else None,
            reports.network_device(net), clock, kernel=kernel, kernel_file=args.slice_profile,
            kernel_source=FLAGS["slice_profile"], corrected=args.data_consistency,
            written=(grid.count, grid.spacing) if grid.resampled else None))
        if args.sheet:
            write_sheet(scan, values, r, sheet, reports.sheet_caption(summary))
        reports.write_report(report, summary)
    except BaseException:  # whatever stopped it: the folders this run made stay only if they hold something
        remove_empty_folders(created)
        raise
    axis = scan.geometry.axis
    console.result(f"{target}: {grid.count} slices of {grid.spacing:g} mm "
                   f"(from {scan.values.shape[axis]} of {scan.geometry.slice_spacing:g} mm; model {model_path})")
    console.result(reports.consistency_line(report, summary))
    if label_map is not None:
        console.result(f"{labels}: {args.labels} on the result's grid")
    return 0


def on_user_path(error: OSError, args: argparse.Namespace) -> bool:
    """Whether ``error`` is about a path the user named (-i, -o, --model, --slice-profile, -opt) or one under it."""
    if not isinstance(error.filename, (str, bytes, os.PathLike)) or not error.filename:
        return False
    failed = Path(os.fsdecode(error.filename)).resolve()
    named = [Path(p).resolve() for p in (args.input, args.output, args.model, args.slice_profile, args.recipe) if p]
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

"""``medsr-selfsr -i folder_of_scans/ -o out/``: every scan of a cohort folder (:mod:`medsr_se.io.cohorts`: NIfTI
files and DICOM series sub-folders, sub-folders recursed) processed as ``medsr-selfsr -i <scan>`` alone would
(:func:`medsr_se.cli.selfsr.run_scan`, the same options), one model per scan, into ``out/`` (a scan of a sub-folder:
into the same sub-folder of ``out/``), with ``out/cohort_summary.csv``.

- ``--shared``: each scan's training starts from the model trained on the cohort's last scan of the same r before
  it (the first of each r from scratch; a scan done already by an earlier run passes on the model its report
  names); its report and the summary say which (``started_from``).

- Checked once, before anything is made: the options as a single run checks them, the ``--slice-profile`` kernel
  and the ``-opt`` recipe, no ``--labels`` (one scan's), ``-o`` not the cohort folder itself, no two scans whose
  results would meet.
- A scan whose result exists is skipped (``note: ... done already``); an interrupted training resumes (the single
  run's own resume, per experiment folder).
- A scan that fails with a user's error (unreadable, not a volume, NaN without ``--nonfinite``, ...) is one
  ``error:`` line naming it and the next scan goes on; the exit status is then :data:`SOME_FAILED` (1), where a
  mistake found before any scan is processed is 2, as for one scan. Anything else (a bug) stops the cohort with its
  traceback, the summary written first.
- ``cohort_summary.csv`` (:data:`COLUMNS`) is replaced after every scan, atomically, with every scan's current state.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from medsr_se.cli import selfsr
from medsr_se.cli.console import Console
from medsr_se.cli.messages import error_line
from medsr_se.data.degradations import load_profile
from medsr_se.errors import MedSRError, OptionError, UsageError
from medsr_se.evaluation import selfsr_report as reports
from medsr_se.integration.selfsr_pipeline import ResultExists
from medsr_se.io import cohorts, volumes
from medsr_se.io.publish import write_atomically

SUMMARY = cohorts.SUMMARY
COLUMNS = ("scan", "status", "result", "r", "slice_thickness_mm", "thickness_source", "iterations", "seconds",
           "started_from", "error")
DONE, DONE_ALREADY, FAILED, NOT_REACHED = "done", "skipped: done already", "failed", "not reached"
SOME_FAILED = 1  # the exit status when a scan failed and the others were processed (2: nothing was done)


def is_cohort(path: Path) -> bool:
    """Whether ``-i path`` is a folder of scans (a DICOM series folder is not: it is one scan)."""
    return cohorts.is_cohort_folder(path)


def check_cohort(args: argparse.Namespace) -> cohorts.Cohort:
    """The cohort's scans, after every check that does not depend on a scan (``args`` left as they are)."""
    if args.output.resolve() == args.input.resolve():
        raise UsageError(f"-o {args.output}: the cohort folder itself: its results would be read as scans by the "
                         "next run; give another folder (one inside it is left out of the scans)")
    if getattr(args, "labels", None) is not None:
        raise UsageError(f"--labels {args.labels}: a label map belongs to one scan; give -i that scan")
    selfsr.check_arguments(copy.copy(args))
    if args.slice_profile is not None:
        load_profile(args.slice_profile)
    if args.model is None:
        from medsr_se.utils.options import load_recipe

        try:
            load_recipe(args.recipe)
        except (OptionError, OSError) as error:
            raise OptionError(f"recipe={args.recipe}: {error}", parameter="recipe") from error
    return cohorts.list_cohort(args.input, exclude=args.output)


def say_what_is_shared(args: argparse.Namespace, cohort: cohorts.Cohort, console: Console) -> None:
    each = ("each scan's training starting from the model of the scan before it with the same r (--shared)"
            if getattr(args, "shared", False) else "each processed as alone (one model per scan)")
    console.note(f"{args.input}: a cohort of {len(cohort.scans)} scan(s), {each} into {args.output}; summary: "
                 f"{args.output / SUMMARY}")
    if getattr(args, "shared", False) and len(cohort.scans) == 1:
        console.note("--shared: the cohort holds one scan, so no model is passed on")
    shared = [f"{flag} {value}" for flag, value in (
        ("--scale", args.scale), ("--slice-thickness", args.slice_thickness), ("--slice-profile", args.slice_profile),
        ("--target-spacing", getattr(args, "target_spacing", None)), ("--axis", args.axis),
        ("--nonfinite", args.nonfinite)) if value is not None]
    if shared:
        console.note(f"{', '.join(shared)}: the same for every scan of the cohort")
    if args.model is not None:
        console.note(f"--model {args.model}: applied to every scan, no training (a scan whose r it was not trained "
                     "for fails)")
    if args.time is not None:
        console.note(f"--time {args.time}: each scan's budget (the cohort may take {len(cohort.scans)} times it)")
    if args.iterations is not None:
        console.note(f"--iterations {args.iterations}: for each scan")


def relative_to(path: Path, folder: Path) -> str:
    return Path(os.path.relpath(path, folder)).as_posix()


def facts_of(result: Path) -> dict:
    """The summary's columns r ... seconds as the run that wrote ``result`` reported them in its
    ``<result name>_report.json`` (:mod:`medsr_se.evaluation.selfsr_report`); empty where there is none."""
    name = volumes.nifti_stem(result) if volumes.is_nifti(result) else result.name
    try:
        report = json.loads(reports.report_path(result.parent, name).read_text(encoding="utf-8"))
        profile, network = report.get("slice_profile") or {}, report.get("network") or {}
        facts = {"r": report.get("r"), "slice_thickness_mm": profile.get("fwhm_mm"),
                 "thickness_source": profile.get("source_detail"), "iterations": network.get("iterations"),
                 "seconds": (report.get("seconds") or {}).get("total"),
                 "started_from": (network.get("started_from") or {}).get("model")}
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):  # no report, or not one
        return {}
    formats = {"slice_thickness_mm": "{:g}", "seconds": "{:.1f}"}
    return {key: "" if value is None else formats.get(key, "{}").format(value) for key, value in facts.items()}


def trained_model(result: Path) -> tuple[int, Path] | str:
    """(r, model file) of the model the run that wrote ``result`` trained on its scan, found where that run put it
    beside ``result`` (``experiments/<name>/models/``: an output folder moved or copied keeps its own chain, never
    another folder's); else why there is none (a sentence)."""
    name = volumes.nifti_stem(result) if volumes.is_nifti(result) else result.name
    path = reports.report_path(result.parent, name)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        network, r = report["network"], int(report["r"])
        trained_here, named = bool(network["trained_here"]), Path(network["model"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        return f"its report {path} cannot be read ({type(error).__name__})"
    if not trained_here:
        return "it was made with --model: no model was trained on it"
    model = result.parent / Path(*named.parts[-4:])
    if len(named.parts) < 4 or named.parts[-4] != "experiments" or not model.is_file():
        return f"the model its report names is not in {result.parent / 'experiments'}"
    return r, model


def pass_on_model(row: dict, args: argparse.Namespace, console: Console) -> None:
    """``--shared``: the model trained on the scan of ``row`` becomes the start of the next scan of its r."""
    if not getattr(args, "shared", False) or row["status"] not in (DONE, DONE_ALREADY):
        return
    trained = trained_model(args.output / row["result"])
    if isinstance(trained, str):
        console.note(f"{row['scan']}: {trained}; the next scan of its r starts from the model before it, or from "
                     "scratch")
        return
    args.shared_models[trained[0]] = (trained[1], row["scan"])


def write_summary(path: Path, rows: Iterable[dict]) -> None:
    def write(temporary: Path) -> None:
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, COLUMNS)
            writer.writeheader()
            writer.writerows({column: row.get(column, "") for column in COLUMNS} for row in rows)

    write_atomically(path, write)


def process(scan: cohorts.CohortScan, args: argparse.Namespace, console: Console) -> dict:
    """One scan as a single run would do it (or its result found there: done already): its summary row. Its
    ``--time`` budget counts from here."""
    began = time.monotonic()
    name = scan.relative.as_posix()
    scan_args = copy.copy(args)
    scan_args.input, scan_args.output = scan.path, args.output / scan.relative.parent
    try:
        result = selfsr.run_scan(scan_args, console, began)
    except ResultExists as exists:
        console.note(f"{name}: done already ({exists.path}; remove it to process the scan again)")
        return {**facts_of(exists.path), "scan": name, "status": DONE_ALREADY,
                "result": relative_to(exists.path, args.output)}
    except MedSRError as error:
        message = error_line(error, selfsr.FLAGS)
    except OSError as error:  # a bug unless it is about a path the user named
        if not selfsr.on_user_path(error, scan_args):
            raise
        message = f"{os.fsdecode(error.filename)}: {error.strerror or error}"
    else:
        return {**facts_of(result), "scan": name, "status": DONE,
                "result": relative_to(result, args.output), "seconds": f"{time.monotonic() - began:.1f}"}
    message = message if str(scan.path) in message else f"{scan.path}: {message}"
    print(f"error: {message}", file=sys.stderr, flush=True)
    return {"scan": name, "status": FAILED, "seconds": f"{time.monotonic() - began:.1f}", "error": message}


def run_cohort(args: argparse.Namespace, console: Console) -> int:
    """Every scan of the cohort ``args.input`` (module docstring); 0, or :data:`SOME_FAILED`."""
    cohort = check_cohort(args)
    say_what_is_shared(args, cohort, console)
    selfsr.make_output_folder(args.output)
    summary = args.output / SUMMARY
    rows = {scan.relative: {"scan": scan.relative.as_posix(), "status": NOT_REACHED} for scan in cohort.scans}
    # --shared: r -> (the model the next scan of that r starts from, the scan it was trained on)
    args.shared_models = {} if getattr(args, "shared", False) else None
    write_summary(summary, rows.values())
    for index, scan in enumerate(cohort.scans):
        console.note(f"scan {index + 1}/{len(cohort.scans)}: {scan.relative.as_posix()}")
        try:
            rows[scan.relative] = process(scan, args, console)
            pass_on_model(rows[scan.relative], args, console)
        except BaseException as error:  # interrupted, or a bug (its traceback follows): the summary says so first
            stopped = "interrupted" if isinstance(error, KeyboardInterrupt) else f"stopped by {type(error).__name__}"
            rows[scan.relative] = {"scan": scan.relative.as_posix(), "status": FAILED, "error": stopped}
            write_summary(summary, rows.values())
            raise
        write_summary(summary, rows.values())
    counts = Counter(row["status"] for row in rows.values())
    failed = [row["scan"] for row in rows.values() if row["status"] == FAILED]
    console.result(f"{args.input}: {len(rows)} scan(s): {counts[DONE]} done, {counts[DONE_ALREADY]} done already, "
                   f"{counts[FAILED]} failed{' (' + ', '.join(failed) + ')' if failed else ''}; summary {summary}")
    return SOME_FAILED if failed else 0

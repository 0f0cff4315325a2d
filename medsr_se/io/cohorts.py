"""A cohort folder: a folder of thick-slice scans, each processed on its own (``medsr-selfsr -i folder/``).

    is_cohort_folder(folder)              whether -i folder/ is a cohort (else: one DICOM series, as before)
    cohort = list_cohort(folder, exclude) Cohort: scans (sorted, with their relative paths), what was skipped

What a folder is, decided by the names of its entries and, where that leaves a doubt, the first 132 bytes of its
files:

- a **DICOM series**: it holds a DICOM file (``DICM`` after the 128-byte preamble, what the series reader reads),
  or holds only files that :func:`medsr_se.io.scans.series_files` would take for slices (any file but hidden ones,
  NIfTI ones and what an export puts beside the slices: :data:`~medsr_se.io.scans.NOT_SLICE_NAMES`,
  :data:`~medsr_se.io.scans.NOT_SLICE_SUFFIXES`). Such a folder given itself is one scan, as it always was;
- otherwise a **cohort** (it holds NIfTI files or sub-folders, or nothing that may be a slice): its NIfTI files
  (``.nii`` / ``.nii.gz``) are scans, its sub-folders are read the same way (a DICOM series sub-folder is one scan;
  any other sub-folder is recursed into, so a BIDS tree ``sub-*/[ses-*/]anat/*.nii.gz`` is found whole), and the
  rest (README, BIDS ``.json`` sidecars and ``participants.tsv``, ``.DS_Store``, hidden files, a DICOMDIR, notes)
  is skipped and listed at debug level.

At a BIDS root (a folder holding ``dataset_description.json``) the folders that hold no raw scans of the dataset's
own (:data:`BIDS_NOT_RAW`: ``sourcedata`` often holds the same scans as DICOM, ``derivatives`` results) are
skipped. Each scan keeps its path relative to the cohort folder: its result goes to the same relative folder under
the output, so equal file names of different subjects do not meet; two scans whose results would meet all the
same (``a.nii`` and ``a.nii.gz``, ``a.nii.gz`` and a series folder ``a/``, names differing in case only) are a
:class:`~medsr_se.errors.DataError` naming both, before any work.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from medsr_se.errors import DataError
from medsr_se.io import volumes
from medsr_se.io.scans import NOT_SLICE_NAMES, NOT_SLICE_SUFFIXES

log = logging.getLogger(__name__)
BIDS_ROOT_MARK = "dataset_description.json"
BIDS_NOT_RAW = frozenset({"sourcedata", "derivatives", "code", "stimuli", "phenotype"})
SUMMARY = "cohort_summary.csv"  # what a cohort run writes into its output folder (medsr_se.cli.selfsr_cohort)
RESULT_NAME = re.compile(r"_selfsr_(x\d+|[\d.e+-]+mm)$")  # medsr-selfsr's results: <scan>_selfsr_x<r> / _<t>mm


@dataclass(frozen=True)
class CohortScan:
    """One scan of a cohort: ``path`` (a NIfTI file or a DICOM series folder) and ``relative``, its path under the
    cohort folder (its parent is the folder its result goes to, under the output)."""

    path: Path
    relative: Path

    @property
    def result_stem(self) -> str:
        """What its result's name starts with: the NIfTI's stem or the series folder's name."""
        return volumes.nifti_stem(self.path) if volumes.is_nifti(self.path) else self.path.resolve().name


@dataclass
class Cohort:
    """The scans of a cohort ``folder``, sorted by relative path, and the entries skipped: (relative path, why)."""

    folder: Path
    scans: list[CohortScan] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def skip(self, relative: Path, why: str) -> None:
        self.skipped.append((relative, why))

    def skipped_text(self, most: int | None = None) -> str:
        """``why: a, b; why: c`` (at most ``most`` names in all, then how many more)."""
        groups: dict[str, list[str]] = {}
        for relative, why in self.skipped[:most]:
            groups.setdefault(why, []).append(relative.as_posix())
        more = len(self.skipped) - most if most is not None and len(self.skipped) > most else 0
        return "; ".join(f"{why}: {', '.join(names)}" for why, names in groups.items()) + (
            f" and {more} more" if more else "")


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _may_be_a_slice(path: Path) -> bool:
    """What :func:`medsr_se.io.scans.series_files` reads as a slice (a NIfTI excepted: ``.nii.gz`` would be)."""
    return (path.is_file() and not volumes.is_nifti(path) and path.name.upper() not in NOT_SLICE_NAMES
            and path.suffix.lower() not in NOT_SLICE_SUFFIXES)


def _is_dicom_file(path: Path) -> bool:
    """Whether ``path`` starts as a DICOM file that the series reader reads: ``DICM`` after a 128-byte preamble."""
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:] == b"DICM"
    except OSError:
        return False


def is_selfsr_output(entry: Path) -> bool:
    """What medsr-selfsr wrote, not a scan: a result (a NIfTI file or series folder named as one,
    :data:`RESULT_NAME`), a folder of its trainings (``experiments/`` holding ``*_selfsr_*``), an earlier cohort's
    output folder (holding :data:`SUMMARY`)."""
    stem = volumes.nifti_stem(entry) if volumes.is_nifti(entry) else entry.name
    if RESULT_NAME.search(stem):
        return True
    if not entry.is_dir():
        return False
    if (entry / SUMMARY).is_file():
        return True
    return entry.name == "experiments" and any(p.is_dir() and "_selfsr_" in p.name for p in entry.iterdir())


def is_cohort_folder(folder: Path) -> bool:
    """Whether ``folder`` is read as a cohort: it holds no file that may be a slice, or it holds NIfTI files or
    sub-folders and none of those files is a DICOM file (``participants.tsv``, ``CHANGES``, notes: skipped). A
    folder holding a DICOM file, or only files that may be slices, is one DICOM series, as it always was."""
    folder = Path(folder)
    if not folder.is_dir():
        return False
    entries = _visible(folder)
    may_be_slices = [p for p in entries if _may_be_a_slice(p)]
    if not may_be_slices:
        return True
    holds_scans = any(p.is_dir() or (p.is_file() and volumes.is_nifti(p)) for p in entries)
    return holds_scans and not any(_is_dicom_file(p) for p in may_be_slices)


def list_cohort(folder: Path, exclude: Path | None = None) -> Cohort:
    """The scans of the cohort ``folder`` (module docstring), sorted by relative path; ``exclude`` (the output
    folder, when it lies inside) is left out with all it holds. :class:`DataError` naming ``folder``: no scans, or
    two whose results would meet (:func:`check_no_clashes`)."""
    folder = Path(folder)
    cohort = Cohort(folder)
    excluded = Path(exclude).resolve() if exclude is not None else None
    _collect(folder, Path(), cohort, excluded, {folder.resolve()})
    cohort.scans.sort(key=lambda scan: scan.relative.as_posix())
    first: dict[Path, CohortScan] = {}
    real_folder = folder.resolve()
    for scan in sorted(cohort.scans, key=lambda scan: scan.path.resolve() != real_folder / scan.relative):
        if first.setdefault(scan.path.resolve(), scan) is not scan:  # one scan reached through a link too: once
            cohort.skip(scan.relative, f"the same as {first[scan.path.resolve()].relative.as_posix()}")
    cohort.scans = [scan for scan in cohort.scans if first[scan.path.resolve()] is scan]
    if cohort.skipped:
        log.debug(f"{folder}: skipped {len(cohort.skipped)}: {cohort.skipped_text()}")
    if not cohort.scans:
        skipped = f"; skipped {cohort.skipped_text(5)}" if cohort.skipped else ""
        raise DataError(f"{folder}: no scans in it (expected NIfTI .nii / .nii.gz files, DICOM series sub-folders, "
                        f"or the files of one DICOM series){skipped}")
    check_no_clashes(cohort)
    return cohort


def _collect(folder: Path, relative: Path, cohort: Cohort, excluded: Path | None, seen: set[Path]) -> None:
    """The scans under ``folder`` (at ``relative`` in the cohort) into ``cohort``; ``seen``: folders already read
    (a link back up is read once)."""
    for name in sorted(p.name for p in folder.iterdir() if p.name.startswith(".")):
        cohort.skip(relative / name, "hidden")
    bids_root = (folder / BIDS_ROOT_MARK).is_file()
    for entry in _visible(folder):
        inside = relative / entry.name
        if is_selfsr_output(entry):
            cohort.skip(inside, "medsr-selfsr's output")
        elif entry.is_dir():
            real = entry.resolve()
            if real == excluded:
                cohort.skip(inside, "the output folder")
            elif real in seen:
                cohort.skip(inside, "a link to a folder above it")
            elif bids_root and entry.name in BIDS_NOT_RAW:
                cohort.skip(inside, "not raw data at a BIDS root")
            elif is_cohort_folder(entry):
                found = len(cohort.scans) + len(cohort.skipped)
                _collect(entry, inside, cohort, excluded, seen | {real})
                if len(cohort.scans) + len(cohort.skipped) == found:
                    cohort.skip(inside, "an empty folder")
            else:
                cohort.scans.append(CohortScan(entry, inside))
        elif entry.is_file() and volumes.is_nifti(entry):
            cohort.scans.append(CohortScan(entry, inside))
        else:
            cohort.skip(inside, "not a scan")


def clash_key(scan: CohortScan) -> str:
    """Scans with the same key would write results of one name in one folder (or names differing in case only,
    the same file on a case-insensitive disk)."""
    return os.path.normcase((scan.relative.parent / scan.result_stem).as_posix()).casefold()


def check_no_clashes(cohort: Cohort) -> None:
    """:class:`DataError` naming the first two scans whose results (``<stem>_selfsr_...``, its options and
    experiment folder) would have the same name in the same folder, and how many more such scans there are."""
    first: dict[str, CohortScan] = {}
    clashing = [(first[clash_key(scan)], scan) for scan in cohort.scans
                if first.setdefault(clash_key(scan), scan) is not scan]
    if clashing:
        other, scan = clashing[0]
        more = f" (and {len(clashing) - 1} more such scan(s))" if len(clashing) > 1 else ""
        raise DataError(f"{cohort.folder}: {other.relative.as_posix()} and {scan.relative.as_posix()} would both "
                        f"write results named {scan.result_stem}_selfsr_... in one folder{more}: rename them "
                        "(nothing was done)")

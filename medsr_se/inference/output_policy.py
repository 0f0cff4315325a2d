"""Where results may go: an input is never written over, and a file already there is replaced only on request.

Refused before any work (:func:`check_outputs`), each an error naming the path:

- an ``output`` that is a file, or lies inside the input folder (paths compared resolved: symlinks and an output
  above the input count), or is the folder of an input (results would replace inputs);
- a result inside the input folder (a later run would read it as an input);
- two inputs sharing a result name (they would be written to one file);
- a result path that holds a file, unless ``overwrite``; a folder there, or a file where a folder is needed, even
  with it.

With ``overwrite`` a DICOM result replaces the old series whole: the other files of a series it replaces
(:func:`replaced_series_files`, found by SeriesInstanceUID) are removed once the new series is written
(:func:`remove_replaced`), so a folder never mixes two series.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from medsr_se.errors import OptionError, WriteError
from medsr_se.inference.jobs import Job
from medsr_se.io import dicom_reading

__all__ = ["check_free", "check_outputs", "remove_replaced", "replaced_series_files", "series_uid"]

logger = logging.getLogger(__name__)


def check_outputs(jobs: list[Job], output: Path, source: Path, suffix: str = "", ext: str = "png",
                  overwrite: bool = False) -> None:
    """Every result path of ``jobs`` (:meth:`Job.targets` under ``output``) checked against the inputs and what
    is there (module docstring), before any work: an OptionError naming the first problem (``parameter``
    "output" or "overwrite" when that setting is the one to change). ``source``: the input file or folder. With
    ``overwrite``, each DICOM job's :attr:`Job.replaces` is filled in."""
    if output.exists() and not output.is_dir():
        raise OptionError(f"output={output}: is a file; give a folder for the results", parameter="output")
    input_folder = source.resolve() if source.is_dir() else None
    if input_folder is not None and output.resolve().is_relative_to(input_folder):
        raise OptionError(f"output={output}: is inside the input folder {source}; results would replace inputs or "
                          "be read as inputs next time, so give another output folder", parameter="output")
    by_output: dict[Path, Path] = {}
    inputs = {path.resolve() for job in jobs for path in job.paths}
    for job in jobs:
        sources = job.paths if job.kind == "dicom" else job.paths[:1]
        for path, target in zip(sources, job.targets(output, suffix, ext)):
            resolved = target.resolve()
            if resolved in inputs or path.resolve().parent == resolved.parent:
                raise OptionError(f"output={output}: is the folder of the input {path}; results would replace "
                                  "inputs, so give another output folder", parameter="output")
            if input_folder is not None and resolved.is_relative_to(input_folder):
                raise OptionError(f"{target}: would be written inside the input folder {source} (the result of "
                                  f"{path}; it would be read as an input next time), so give an output folder "
                                  "outside it", parameter="output")
            if target in by_output:
                raise OptionError(f"{by_output[target]} and {path} would both be written to {target}; rename one "
                                  "or run them separately")
            by_output[target] = path
    for target in by_output:
        check_free(target, overwrite)
    if overwrite:
        for job in jobs:
            if job.kind == "dicom":
                job.replaces = replaced_series_files(job.targets(output, suffix), inputs)


def check_free(target: Path, overwrite: bool) -> None:
    """A result path holding anything (a file, a folder, a link) is refused unless ``overwrite`` and it is a file;
    so is one whose folder cannot be made because a file holds its place (never replaced, even with
    ``overwrite``)."""
    existing = next(parent for parent in target.parents if os.path.lexists(parent))
    if not existing.is_dir():
        raise OptionError(f"{existing} exists and is not a folder; {target} needs a folder there, so move it or give "
                          "another output folder", parameter="output")
    if not os.path.lexists(target):
        return
    if os.path.isdir(target):
        raise OptionError(f"{target} exists and is a folder; overwrite=True replaces files only, so move it or give "
                          "another output folder", parameter="overwrite")
    if not overwrite:
        raise OptionError(f"{target} exists (use overwrite=True to replace it)", parameter="overwrite")


def series_uid(path: Path) -> str | None:
    """The SeriesInstanceUID of a DICOM file (header only), None when it is not a readable DICOM or has none."""
    import pydicom

    try:
        return str(pydicom.dcmread(str(path), stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
                   .SeriesInstanceUID) or None
    except (*dicom_reading.dicom_errors(), AttributeError):  # not DICOM, truncated, no UID (AttributeError): it is
        return None  # replaced as a file, nothing else goes with it


def replaced_series_files(targets: list[Path], keep: set[Path]) -> list[Path]:
    """With ``overwrite``: the other files of every series one of ``targets`` replaces, in the targets' folders
    (never one of ``keep``, the resolved inputs). They are removed once the new series is written, so a folder
    never holds a mix of the old series and the new one (a 3-slice result replaced by a 2-slice one would otherwise
    keep the old third slice)."""
    uids = {uid for target in targets if target.is_file() for uid in [series_uid(target)] if uid}
    if not uids:
        return []
    chosen = set(targets)
    folders = {target.parent for target in targets}
    return sorted(path for folder in folders for path in folder.glob("*") if path.suffix.lower() == ".dcm"
                  and path.is_file() and path not in chosen and path.resolve() not in keep
                  and series_uid(path) in uids)


def remove_replaced(job: Job) -> None:
    """Once the new series of ``job`` is complete, the rest of the series it replaced goes too (never a mix): a
    WriteError naming a file that cannot be removed; a note counting those removed."""
    for path in job.replaces:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as error:
            raise WriteError(f"{path}: cannot remove this file of the replaced series ({error.strerror or error}); "
                             "the folder now holds two series") from error
    if job.replaces:
        logger.info("%s: overwrite=True removed %d more file(s) of the series it replaced (%s)", job.name,
                    len(job.replaces), job.replaces[0].parent)

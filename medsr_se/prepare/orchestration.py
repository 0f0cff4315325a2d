"""STARE (or any fundus / medical image set) -> BasicSR-ready paired data; the command is ``medsr-prepare``
(:mod:`medsr_se.cli.prepare`; ``medsr-prepare-stare`` is the same command).

Steps, per image (in parallel over all cores, streamed: at most a few images in memory):

1. read the member (gunzip ``.ppm.gz``), decode, convert to 8-bit BGR unless ``gray`` / ``keep_depth``;
2. mod-crop the HR so that the largest scale divides it;
3. LR_x{s} = MATLAB-style bicubic ``imresize(HR, 1/s)`` (:func:`medsr_se.utils.bicubic.matlab_bicubic`) of the whole
   mod-cropped HR, rounded to the HR's integer type;
4. test images are kept whole (PNG folders, for BasicSR validation); training images are cut into overlapping
   sub-images (``crop_size``, ``step``, multiples of the largest scale) with the LR cut at the same place.

CT / MRI sources (a folder of DICOM series, multi-frame DICOM or NIfTI files) are first cut into 16-bit gray slices
through one intensity model for the whole dataset (:mod:`medsr_se.prepare.volume_slices`), which the manifest
records; the split is then made by volume (``n_test`` counts volumes), and the slices go through the steps above.

Output (``output``, default ``datasets/STARE``): ``train/HR.lmdb`` and ``train/LR_x{s}.lmdb`` (identical key
sets), ``test/HR/`` and ``test/LR_x{s}/``, and ``manifest.json`` (split, source checksums, parameters, counts,
versions). Everything is written into a hidden sibling folder and renamed into place only when complete.

A source or options that cannot give a dataset are a :class:`~medsr_se.prepare.split.PrepareError` naming the file
or the parameter (``crop_size=250 and step=192 ...``, ``error.parameter``); an output that cannot be written is a
:class:`~medsr_se.errors.WriteError` or an ``OSError`` naming it; anything else is a bug and propagates.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import lmdb
from mmengine.utils import ProgressBar

from medsr_se.errors import MedSRError, WriteError
from medsr_se.io.publish import (
    MANIFEST,
    exclusive_lock,
    holds_manifest,
    partial_directory,
    recover_directory,
    replace_directory,
)
from medsr_se.prepare.pieces import Params, SourceImage
from medsr_se.prepare.sources import list_images
from medsr_se.prepare.split import PrepareError, make_split, split_by_volume
from medsr_se.prepare.volume_slices import VolumeOptions, volume_files, write_slices
from medsr_se.prepare.workers import results_in_order
from medsr_se.prepare.writing import OutputWriter, versions

log = logging.getLogger(__name__)  # notes, under the "medsr_se" logger (printed by medsr_se.cli.console)
DEFAULT_OUTPUT = Path("datasets") / "STARE"
PROGRAM = "medsr-prepare"


def check_params(params: Params) -> None:
    """Before any work: every scale one the recipes have, crop size and step positive multiples of the largest."""
    for scale in params.scales:
        if scale not in (2, 4, 8, 16):
            raise PrepareError(f"scales={scale}: not one of 2, 4, 8, 16", parameter="scales")
    bad_crop = params.crop_size <= 0 or params.crop_size % params.modulus
    if bad_crop or params.step <= 0 or params.step % params.modulus:
        raise PrepareError(f"crop_size={params.crop_size} and step={params.step} must be positive multiples of the "
                           f"largest scale {params.modulus}", parameter="crop_size" if bad_crop else "step")


def check_output(output: Path, overwrite: bool) -> None:
    if output.exists() and not output.is_dir():
        raise PrepareError(f"output={output}: is a file, not a dataset folder; give another path",
                           parameter="output")
    if output.exists() and not overwrite:
        raise PrepareError(f"{output} already exists; pass overwrite=True to replace it (it is kept until the new "
                           "dataset is complete)", parameter="output")


def _as_prepare_error(error: MedSRError) -> PrepareError:
    """A problem of the source as the preparation's error (same message and parameter)."""
    return error if isinstance(error, PrepareError) else PrepareError(str(error), parameter=error.parameter)


def prepare(source: Path, output: Path, params: Params, n_test: int = 20, seed: int = 0,
            test_list: list[str] | None = None, overwrite: bool = False, skip_bad: bool = False,
            workers: int | None = None, initial_map_size: int = 1 << 28, progress: bool = True,
            volume_options: VolumeOptions | None = None) -> dict:
    """Build the dataset (module docstring); returns the manifest."""
    check_params(params)
    if volume_options:
        volume_options.check()
    medical = volume_files(source)
    chosen = volume_options.chosen() if volume_options else ""
    if chosen and not medical and source.exists():
        raise PrepareError(f"{chosen}: applies to CT/MRI volumes (DICOM, NIfTI); {source} holds images, which map "
                           "their type's full range", parameter=volume_options.chosen_parameter())
    if not medical:
        try:
            images, ignored = list_images(source)
        except MedSRError as error:
            raise _as_prepare_error(error) from error
    output.parent.mkdir(parents=True, exist_ok=True)
    slices_folder = tempfile.TemporaryDirectory(prefix="medsr-slices-") if medical else contextlib.nullcontext()
    with exclusive_lock(output, PROGRAM), slices_folder as slices_root:
        recover_directory(output, complete=holds_manifest)
        check_output(output, overwrite)
        volume_record = None
        if medical:
            ignored = []
            options = replace(volume_options or VolumeOptions(), skip_bad=skip_bad)
            params, images, volume_record = _volume_source(medical, Path(slices_root) / "slices", params, options)
            split = split_by_volume({name: entry["slices"] for name, entry in volume_record["volumes"].items()},
                                    n_test, seed, test_list)
        else:
            split = make_split([image.stem for image in images], n_test, seed, test_list)
        for name in ignored:
            log.info("ignoring %s (not an image)", name)
        tmp = partial_directory(output)
        try:
            try:
                manifest = _build(tmp, images, split, params, skip_bad, workers or os.cpu_count() or 1,
                                  initial_map_size, progress)
            except lmdb.Error as error:  # a full disk, a failing write of the LMDBs
                raise WriteError(f"{output}: cannot write the dataset ({error}); nothing was published") from error
            manifest.update(source=str(source), ignored_files=ignored)
            manifest["parameters"].update(n_test=len(split["test"]), seed=seed, test_list=test_list is not None)
            if volume_record:
                manifest["skipped"] = volume_record.pop("skipped_files") + manifest["skipped"]
                manifest.update(modality=volume_record.pop("modality"), intensity=volume_record.pop("intensity"),
                                volumes=volume_record)
            else:
                manifest["modality"] = "photo"
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
            replace_directory(tmp, output)
            return manifest
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _volume_source(files: list[Path], folder: Path, params: Params,
                   options: VolumeOptions) -> tuple[Params, list[SourceImage], dict]:
    """CT / MRI volumes as 16-bit gray slice images in ``folder`` (module docstring)."""
    if not (params.gray and params.keep_depth):
        log.info("CT/MRI volumes are prepared as one-channel 16-bit slices (gray, depth kept)")
        params = replace(params, gray=True, keep_depth=True)
    try:
        record = write_slices(files, folder, options)
        images, _ = list_images(folder)
    except WriteError:
        raise
    except MedSRError as error:
        raise _as_prepare_error(error) from error
    intensity = record["intensity"]
    log.info("%d volume(s), %d slice(s), %s, intensity %s [%g, %g] %s", len(record["volumes"]), len(images),
             record["modality"], intensity["kind"], intensity["low"], intensity["high"], intensity["unit"])
    if record["values_outside_window"]:
        log.info("%d value(s) lie outside that window and were clipped to it (another window or intensity model "
                 "changes that)", record["values_outside_window"])
    return params, images, record


def _build(tmp: Path, images: list[SourceImage], split: dict[str, list[str]], params: Params, skip_bad: bool,
           workers: int, initial_map_size: int, progress: bool) -> dict:
    """Process every image into ``tmp``; the manifest's contents (without the run's source / split options)."""
    split_of = {stem: name for name, stems in split.items() for stem in stems}
    skipped, notes, checksums = [], {}, {}
    writer = OutputWriter(tmp, params.scales, initial_map_size)
    tasks = [(image, split_of[image.stem], params) for image in images]
    bar = ProgressBar(len(tasks), file=sys.stderr) if progress else None
    for result in results_in_order(tasks, workers):
        if bar:
            bar.update()
        if result.sha256:
            checksums[result.stem] = result.sha256
        if result.error:
            if not skip_bad:
                if bar:
                    sys.stderr.write("\n")  # the error line starts a line of its own, not the bar's
                raise PrepareError(f"{result.error} (pass skip_bad=True to leave such images out)")
            skipped.append({"stem": result.stem, "split": result.split, "error": result.error})
            continue
        if result.notes:
            notes[result.stem] = result.notes
        writer.add(result)
    writer.close()
    if bar:
        sys.stderr.write("\n")
    if writer.counts["test_images"] == 0 or writer.counts["train_images"] == 0:
        raise PrepareError(f"no {'test' if writer.counts['test_images'] == 0 else 'training'} image is left "
                           f"after skipping {len(skipped)} bad one(s); nothing was written")
    return {
        "parameters": {
            "scales": list(params.scales), "crop_size": params.crop_size, "step": params.step,
            "mod_crop": params.modulus, "gray": params.gray, "keep_depth": params.keep_depth,
            "downsampling": "basicsr.utils.matlab_functions.imresize (MATLAB bicubic, antialiased), rounded"},
        "split": split, "skipped": skipped, "notes": notes, "counts": writer.counts,
        "source_sha256": checksums, "versions": versions(),
    }

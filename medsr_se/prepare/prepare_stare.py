"""STARE (or any fundus / medical image set) -> BasicSR-ready paired data; the command is ``medsr-prepare-stare``
(:mod:`medsr_se.cli.prepare_stare`).

Steps, per image (in parallel over all cores, streamed: at most a few images in memory):

1. read the member (gunzip ``.ppm.gz``), decode, convert to 8-bit BGR unless ``--gray`` / ``--keep-depth``;
2. mod-crop the HR so that the largest scale divides it;
3. LR_x{s} = MATLAB-style bicubic ``imresize(HR, 1/s)`` (:func:`medsr_se.utils.bicubic.matlab_bicubic`) of the whole
   mod-cropped HR, rounded to the HR's integer type;
4. test images are kept whole (PNG folders, for BasicSR validation); training images are cut into overlapping
   sub-images (``--crop-size``, ``--step``, multiples of the largest scale) with the LR cut at the same place.

CT / MRI sources (a folder of DICOM series, multi-frame DICOM or NIfTI files) are first cut into 16-bit gray slices
through one intensity model for the whole dataset (:mod:`medsr_se.prepare.volume_slices`), which the manifest
records; the split is then made by volume (``--n-test`` counts volumes), and the slices go through the steps above.

Output (``-o``, default ``datasets/STARE``): ``train/HR.lmdb`` and ``train/LR_x{s}.lmdb`` (identical key sets),
``test/HR/`` and ``test/LR_x{s}/``, and ``manifest.json`` (split, source checksums, parameters, counts, versions).
Everything is written into a hidden sibling folder and renamed into place only when complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
from mmengine.utils import ProgressBar

from medsr_se.prepare.lmdb_writer import LmdbWriter
from medsr_se.prepare.sources import BadImageError, SourceImage, decode, list_images, read_bytes
from medsr_se.prepare.volume_slices import VolumeOptions, volume_files, write_slices
from medsr_se.utils.bicubic import matlab_bicubic, mod_crop

log = logging.getLogger(__name__)  # notes, under the "medsr_se" logger (printed by medsr_se.cli.console)
DEFAULT_OUTPUT = Path("datasets") / "STARE"
PNG_LEVEL = 1


class PrepareError(RuntimeError):
    """A problem with the input or the options; the message names the file or option."""


@dataclass(frozen=True)
class Params:
    scales: tuple[int, ...]
    crop_size: int
    step: int
    gray: bool
    keep_depth: bool

    @property
    def modulus(self) -> int:
        return max(self.scales)


@dataclass
class Piece:
    """One HR image (or sub-image) and its LR versions, PNG-encoded."""

    key: str
    hr_png: bytes
    hr_shape: tuple[int, ...]
    lr_png: dict[int, bytes]
    lr_shape: dict[int, tuple[int, ...]]


@dataclass
class ImageResult:
    stem: str
    name: str
    split: str
    sha256: str = ""
    pieces: list[Piece] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str = ""


# ---------------------------------------------------------------------------------------------------- split
def make_split(stems: list[str], n_test: int, seed: int, test_list: list[str] | None,
               what: str = "images") -> dict[str, list[str]]:
    """Deterministic train/test split of sorted stems: ``test_list`` if given, else a seeded sample of n_test.
    Both sides must get at least one of ``what`` ('images', or 'volumes' for a CT/MRI source)."""
    stems = sorted(stems)
    if len(stems) < 2:
        raise PrepareError(f"a train/test split needs at least 2 {what}, the source has {len(stems)}: add more, "
                           "or prepare it together with others")
    if test_list is not None:
        unknown = sorted(set(test_list) - set(stems))
        if unknown:
            raise PrepareError(f"--test-list names {what} that are not in the input: {', '.join(unknown[:10])}")
        test = sorted(set(test_list))
        if not test or len(test) == len(stems):
            raise PrepareError(f"--test-list: names {'no' if not test else f'all {len(stems)}'} {what}, which "
                               f"leaves no {'test' if not test else 'training'} {what}")
    else:
        if not 0 < n_test < len(stems):
            raise PrepareError(f"--n-test {n_test}: must be between 1 and {len(stems) - 1} for {len(stems)} {what}")
        test = sorted(random.Random(seed).sample(stems, n_test))
    test_set = set(test)
    return {"train": [s for s in stems if s not in test_set], "test": test}


def split_by_volume(slices: dict[str, list[str]], n_test: int, seed: int,
                    test_list: list[str] | None) -> dict[str, list[str]]:
    """:func:`make_split` over volume names (``n_test`` and ``test_list`` count volumes), expanded to slice stems,
    so that the slices of one volume (one patient) are never on both sides."""
    try:
        by_volume = make_split(list(slices), n_test, seed, test_list, "volumes")
    except PrepareError as error:
        if not str(error).startswith("--n-test"):
            raise
        raise PrepareError(f"{error} (for volumes, --n-test and --test-list count volumes: {len(slices)} found)") \
            from error
    return {side: sorted(stem for name in names for stem in slices[name]) for side, names in by_volume.items()}


# ---------------------------------------------------------------------------------------------------- pixels
def normalise_pixels(pixels: np.ndarray, gray: bool, keep_depth: bool) -> tuple[np.ndarray, list[str]]:
    """8-bit BGR by default; ``gray`` keeps/makes one channel, ``keep_depth`` keeps 16-bit values."""
    notes = []
    if pixels.dtype not in (np.uint8, np.uint16):
        raise BadImageError(f"unsupported pixel type {pixels.dtype} (8- or 16-bit integer images only)")
    if pixels.ndim == 3 and pixels.shape[2] == 4:
        pixels, _ = pixels[:, :, :3], notes.append("alpha channel dropped")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.dtype == np.uint16 and not keep_depth:
        pixels = np.round(pixels / 257.0).astype(np.uint8)
        notes.append("16-bit converted to 8-bit (use --keep-depth to keep it)")
    if gray and pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)
        notes.append("colour converted to gray (--gray)")
    elif not gray and pixels.ndim == 2:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
        notes.append("gray replicated to 3 channels (use --gray to keep one channel)")
    return np.ascontiguousarray(pixels), notes


def crop_starts(length: int, crop: int, step: int) -> list[int]:
    """Start offsets covering [0, length) with windows of ``crop`` every ``step``, the last flush with the end."""
    if length <= crop:
        return [0]
    starts = list(range(0, length - crop + 1, step))
    if starts[-1] != length - crop:
        starts.append(length - crop)
    return starts


def encode_png(pixels: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL])
    if not ok:
        raise BadImageError("PNG encoding failed")
    return buffer.tobytes()


def make_pieces(stem: str, hr: np.ndarray, split: str, params: Params) -> list[Piece]:
    """Whole image for test; overlapping sub-images (LR cut at the same place) for train."""
    lrs = {scale: matlab_bicubic(hr, 1 / scale) for scale in params.scales}
    height, width = hr.shape[:2]
    if split == "test":
        windows = [(stem, 0, 0, height, width)]
    else:
        crop_h, crop_w = min(params.crop_size, height), min(params.crop_size, width)
        windows = [(f"{stem}_s{index:03d}", top, left, crop_h, crop_w) for index, (top, left) in enumerate(
            (top, left) for top in crop_starts(height, crop_h, params.step)
            for left in crop_starts(width, crop_w, params.step))]
    pieces = []
    for key, top, left, crop_h, crop_w in windows:
        hr_piece = hr[top:top + crop_h, left:left + crop_w]
        lr_pieces = {s: lr[top // s:(top + crop_h) // s, left // s:(left + crop_w) // s] for s, lr in lrs.items()}
        lr_png = {s: encode_png(p) for s, p in lr_pieces.items()}
        pieces.append(Piece(key, encode_png(hr_piece), hr_piece.shape, lr_png,
                            {s: p.shape for s, p in lr_pieces.items()}))
    return pieces


def process_image(task: tuple[SourceImage, str, Params]) -> ImageResult:
    """Worker: read, decode, normalise, mod-crop, downsample and cut one image. Errors are returned, not raised."""
    image, split, params = task
    result = ImageResult(image.stem, image.name, split)
    try:
        raw = read_bytes(image)
        result.sha256 = hashlib.sha256(raw).hexdigest()
        pixels, result.notes = normalise_pixels(decode(raw, image.name), params.gray, params.keep_depth)
        hr = mod_crop(pixels, params.modulus)
        if min(hr.shape[:2]) < params.modulus:
            raise BadImageError(f"{pixels.shape[1]}x{pixels.shape[0]} is smaller than the largest scale "
                                f"{params.modulus}")
        result.pieces = make_pieces(image.stem, hr, split, params)
    except BadImageError as error:
        message = str(error)
        result.error = message if message.startswith(image.name) else f"{image.name}: {message}"
    return result


def _die_with_parent() -> None:
    """Linux: ask the kernel to end this worker when its parent (the pool's process) dies, so a killed preparation
    leaves no workers running on."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    if os.getppid() == 1:  # the parent died before the request was made: the kernel will not signal any more
        os._exit(1)


def _init_worker() -> None:
    _die_with_parent()  # first: a kill during the slow imports below must not leave this worker behind
    import torch

    torch.set_num_threads(1)  # one image per process; basicsr's imresize runs on torch
    cv2.setNumThreads(1)
    # decoding errors are reported by us, with the member's name, not by OpenCV's logger
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


# ---------------------------------------------------------------------------------------------------- output
class OutputWriter:
    """Streams pieces into ``<tmp>/train/*.lmdb`` and ``<tmp>/test/*/`` as results arrive."""

    def __init__(self, root: Path, scales: tuple[int, ...], initial_map_size: int) -> None:
        self.root = root
        self.scales = scales
        (root / "train").mkdir(parents=True)
        self.lmdbs = {"HR": LmdbWriter(root / "train" / "HR.lmdb", initial_map_size, compress_level=PNG_LEVEL)}
        for scale in scales:
            self.lmdbs[f"LR_x{scale}"] = LmdbWriter(root / "train" / f"LR_x{scale}.lmdb", initial_map_size,
                                                     compress_level=PNG_LEVEL)
            (root / "test" / f"LR_x{scale}").mkdir(parents=True)
        (root / "test" / "HR").mkdir(parents=True)
        self.counts = {"train_images": 0, "train_pieces": 0, "test_images": 0}

    def add(self, result: ImageResult) -> None:
        if result.split == "train":
            for piece in result.pieces:
                self.lmdbs["HR"].put(piece.key, piece.hr_png, piece.hr_shape)
                for scale in self.scales:
                    self.lmdbs[f"LR_x{scale}"].put(piece.key, piece.lr_png[scale], piece.lr_shape[scale])
            self.counts["train_images"] += 1
            self.counts["train_pieces"] += len(result.pieces)
        else:
            (piece,) = result.pieces
            (self.root / "test" / "HR" / f"{piece.key}.png").write_bytes(piece.hr_png)
            for scale in self.scales:
                (self.root / "test" / f"LR_x{scale}" / f"{piece.key}.png").write_bytes(piece.lr_png[scale])
            self.counts["test_images"] += 1

    def close(self) -> None:
        for writer in self.lmdbs.values():
            writer.close()


def versions() -> dict[str, str]:
    import basicsr
    import lmdb

    from medsr_se.version import __version__

    return {"medsr_se": __version__, "basicsr": basicsr.__version__, "opencv": cv2.__version__,
            "numpy": np.__version__, "lmdb": lmdb.__version__, "python": sys.version.split()[0]}


# ---------------------------------------------------------------------------------------------------- publishing
MANIFEST = "manifest.json"  # written last: a folder holding it is a complete dataset


def _siblings(output: Path, kind: str) -> list[Path]:
    """Hidden working folders of ``output``: ``.<name>.partial-*`` (being built) or ``.<name>.old-*`` (replaced)."""
    return sorted(output.parent.glob(f".{output.name}.{kind}-*"), key=lambda path: path.stat().st_mtime)


@contextlib.contextmanager
def output_lock(output: Path):
    """Exclusive lock on ``output`` for one preparation at a time (``.<name>.lock`` beside it, holding the pid).

    A second run on the same output is refused with a message naming the running one. The lock dies with its
    process; the file is removed on the way out while still locked (a run that opened it meanwhile sees that the
    path no longer names its file and tries again).
    """
    import fcntl

    lock_path = output.parent / f".{output.name}.lock"
    while True:
        handle = open(lock_path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise PrepareError(f"{output}: another medsr-prepare-stare (pid {owner}) is writing it; wait for it to "
                               "finish or stop it") from None
        try:
            if os.stat(lock_path).st_ino == os.fstat(handle.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        handle.close()  # the holder removed the file between our open and our lock: take the new one
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            lock_path.unlink()
        handle.close()  # releases the lock


def recover_interrupted(output: Path) -> None:
    """Finish or undo what a killed run left (call under :func:`output_lock`), never deleting a complete dataset:

    - a complete new dataset (``.partial-*`` with its manifest) is published, replacing ``output``;
    - incomplete ``.partial-*`` folders are removed;
    - a replaced dataset (``.old-*``) is removed once ``output`` exists, else restored as ``output``.
    """
    for partial in _siblings(output, "partial"):
        if (partial / MANIFEST).is_file():
            log.info("publishing %s, a complete dataset left by an interrupted run", partial)
            _publish(partial, output)
        else:
            log.info("removing %s, an incomplete dataset left by an interrupted run", partial)
            shutil.rmtree(partial, ignore_errors=True)
    for old in reversed(_siblings(output, "old")):
        if output.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            log.info("restoring %s from %s (an interrupted --overwrite)", output, old)
            old.rename(output)


def _publish(tmp: Path, output: Path) -> None:
    """Move the finished tmp folder into place; an existing output is replaced only after that succeeds.
    A kill between the two renames is repaired by :func:`recover_interrupted`."""
    old = output.parent / f".{output.name}.old-{uuid.uuid4().hex[:8]}"
    if output.exists():
        output.rename(old)
    tmp.rename(output)
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------- the run
def check_params(params: Params) -> None:
    for scale in params.scales:
        if scale not in (2, 4, 8, 16):
            raise PrepareError(f"--scales: {scale} is not one of 2, 4, 8, 16")
    if (params.crop_size <= 0 or params.step <= 0 or params.crop_size % params.modulus
            or params.step % params.modulus):
        raise PrepareError(f"--crop-size {params.crop_size} and --step {params.step} must be positive multiples "
                           f"of the largest scale {params.modulus}")


def check_output(output: Path, overwrite: bool) -> None:
    if output.exists() and not output.is_dir():
        raise PrepareError(f"-o {output}: is a file, not a dataset folder; give another path")
    if output.exists() and not overwrite:
        raise PrepareError(f"{output} already exists; pass --overwrite to replace it (it is kept until the new "
                           "dataset is complete)")


def _results(tasks: list, workers: int) -> Iterator[ImageResult]:
    """Processed images in order, from a pool of fresh worker processes (or in this process for one worker)."""
    if workers <= 1:
        yield from map(process_image, tasks)
        return
    # fresh workers: a fork of a process whose OpenMP / OpenCV thread pools already ran can deadlock
    context = multiprocessing.get_context("forkserver" if sys.platform.startswith("linux") else "spawn")
    with context.Pool(workers, initializer=_init_worker) as pool:
        yield from pool.imap(process_image, tasks, chunksize=2)


def prepare(source: Path, output: Path, params: Params, n_test: int = 20, seed: int = 0,
            test_list: list[str] | None = None, overwrite: bool = False, skip_bad: bool = False,
            workers: int | None = None, initial_map_size: int = 1 << 28, progress: bool = True,
            volume_options: VolumeOptions | None = None) -> dict:
    """Build the dataset (module docstring); returns the manifest."""
    check_params(params)
    medical = volume_files(source)
    chosen = volume_options.chosen() if volume_options else ""
    if chosen and not medical and source.exists():
        raise PrepareError(f"{chosen}: applies to CT/MRI volumes (DICOM, NIfTI); {source} holds images, which map "
                           "their type's full range")
    if not medical:
        try:
            images, ignored = list_images(source)
        except (BadImageError, ValueError) as error:
            raise PrepareError(str(error)) from error
    output.parent.mkdir(parents=True, exist_ok=True)
    slices_folder = tempfile.TemporaryDirectory(prefix="medsr-slices-") if medical else contextlib.nullcontext()
    with output_lock(output), slices_folder as slices_root:
        recover_interrupted(output)
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
        tmp = output.parent / f".{output.name}.partial-{uuid.uuid4().hex[:8]}"
        try:
            manifest = _build(tmp, images, split, params, skip_bad, workers or os.cpu_count() or 1,
                              initial_map_size, progress)
            manifest.update(source=str(source), ignored_files=ignored)
            manifest["parameters"].update(n_test=len(split["test"]), seed=seed, test_list=test_list is not None)
            if volume_record:
                manifest["skipped"] = volume_record.pop("skipped_files") + manifest["skipped"]
                manifest.update(modality=volume_record.pop("modality"), intensity=volume_record.pop("intensity"),
                                volumes=volume_record)
            else:
                manifest["modality"] = "photo"
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
            _publish(tmp, output)
            return manifest
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _volume_source(files: list[Path], folder: Path, params: Params,
                   options: VolumeOptions) -> tuple[Params, list[SourceImage], dict]:
    """CT / MRI volumes as 16-bit gray slice images in ``folder`` (module docstring)."""
    if not (params.gray and params.keep_depth):
        log.info("CT/MRI volumes are prepared as one-channel 16-bit slices (--gray --keep-depth)")
        params = replace(params, gray=True, keep_depth=True)
    try:
        record = write_slices(files, folder, options)
        images, _ = list_images(folder)
    except (BadImageError, ValueError) as error:
        raise PrepareError(str(error)) from error
    intensity = record["intensity"]
    log.info("%d volume(s), %d slice(s), %s, intensity %s [%g, %g] %s", len(record["volumes"]), len(images),
             record["modality"], intensity["kind"], intensity["low"], intensity["high"], intensity["unit"])
    if record["values_outside_window"]:
        log.info("%d value(s) lie outside that window and were clipped to it (choose --window / --intensity to "
                 "change it)", record["values_outside_window"])
    return params, images, record


def _build(tmp: Path, images: list[SourceImage], split: dict[str, list[str]], params: Params, skip_bad: bool,
           workers: int, initial_map_size: int, progress: bool) -> dict:
    """Process every image into ``tmp``; the manifest's contents (without the run's source / split options)."""
    split_of = {stem: name for name, stems in split.items() for stem in stems}
    skipped, notes, checksums = [], {}, {}
    writer = OutputWriter(tmp, params.scales, initial_map_size)
    tasks = [(image, split_of[image.stem], params) for image in images]
    bar = ProgressBar(len(tasks), file=sys.stderr) if progress else None
    for result in _results(tasks, workers):
        if bar:
            bar.update()
        if result.sha256:
            checksums[result.stem] = result.sha256
        if result.error:
            if not skip_bad:
                if bar:
                    sys.stderr.write("\n")  # the error line starts a line of its own, not the bar's
                raise PrepareError(f"{result.error} (pass --skip-bad to leave such images out)")
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

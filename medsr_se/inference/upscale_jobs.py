"""Each job of a folder run (:mod:`medsr_se.inference.jobs`) checked against the model before any work
(:func:`check_inputs`), then super-resolved and written: an image as an image file (:func:`upscale_image`), a
volume slice by slice in-plane, written as the same kind, NIfTI or a derived DICOM series
(:func:`upscale_volume_job`). Every result is written under a temporary name and renamed into place once complete.

Tiling: ``tile`` 0 is the whole image when its inference fits ``budget`` bytes
(:func:`~medsr_se.inference.memory.memory_budget`), else tiles of
:data:`~medsr_se.inference.memory.AUTO_TILE` (a note says so); an image that does not fit even tiled is refused.
``progress(total, label)`` (a command's progress bar) returns the function to call after each of ``total`` steps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.errors import MedSRError, OptionError, WriteError
from medsr_se.inference.checkpoint import TrainingData
from medsr_se.inference.halo import tile_for
from medsr_se.inference.jobs import Job
from medsr_se.inference.memory import plan_tile
from medsr_se.inference.model_copies import network_for
from medsr_se.inference.output_policy import remove_replaced
from medsr_se.inference.reports import held_back, named
from medsr_se.inference.tiling import MIN_TILE_PAD
from medsr_se.inference.upscale import check_image, upscale
from medsr_se.inference.volume_intensity import volume_intensity, warn_mismatch
from medsr_se.inference.window import input_multiple, multiple_reason
from medsr_se.io import dicom_derived, nifti, volumes
from medsr_se.io.images import read_image, write_image

__all__ = ["OWN_PROGRESS_PIXELS", "check_inputs", "final_resize", "note_tile_rounding", "upscale_image",
           "upscale_volume_job"]

logger = logging.getLogger(__name__)

OWN_PROGRESS_PIXELS = 256 * 256  # an image at least this large gets a progress bar of its own (per tile)
Progress = Callable[[int, str], Callable[[], None]]


def _about(name: object, error: MedSRError) -> MedSRError:
    """``error`` (same kind, same ``parameter``) with ``name: `` in front of its message."""
    return type(error)(f"{name}: {error}", parameter=error.parameter)


def check_inputs(jobs: list[Job], models: dict[str, torch.nn.Module], *, budget: int, tile: int = 0,
                 tile_pad: int = 4) -> None:
    """Every input checked against the model before any work, so that a folder is done whole or not at all: each
    image read (readable) and checked as :func:`~medsr_se.inference.upscale.upscale` would check it (type,
    channels, size: :func:`~medsr_se.inference.upscale.check_image`) with its memory plan (and, when that plan
    tiles a SEEDSRGenerator, ``tile_pad`` against :data:`~medsr_se.inference.tiling.MIN_TILE_PAD`); each volume's
    slices for size and memory. The first problem is one error naming the file."""
    for job in jobs:
        if job.kind == "image":
            image = read_image(job.paths[0])
            model, shape, dtype, intensity = network_for(image, models), image.shape, image.dtype, None
        else:
            volume = job.volume
            model, dtype, intensity = models["fp32"], volume.values.dtype, job.intensity
            shape = tuple(volume.values.shape[axis] for axis in volume.in_plane_axes)
        try:
            check_image(shape, dtype, model, intensity)
            tiled = plan_tile(model, shape[0], shape[1], tile, budget, tile_pad) > 0
            if tiled and isinstance(model, SEEDSRGenerator) and tile_pad < MIN_TILE_PAD:
                raise OptionError(f"tile_pad={tile_pad}: must be at least {MIN_TILE_PAD} LR pixels for an exact "
                                  "result", parameter="tile_pad")
        except MedSRError as error:
            raise _about(job.name, error) from error


def note_tile_rounding(model: torch.nn.Module, tile: int) -> None:
    """A note when ``tile`` is rounded up to the multiple the network's input needs (SwinIR's window)."""
    if tile and tile_for(model, tile) != tile:
        logger.info("tile=%d: %s takes multiples of %d pixels (%s), so tiles of %d are used", tile,
                    type(model).__name__, input_multiple(model), multiple_reason(model), tile_for(model, tile))


def final_resize(result: np.ndarray, image: np.ndarray, outscale: float | None, model_scale: int) -> np.ndarray:
    """Real-ESRGAN's ``--outscale``: the network's result resized (Lanczos) to outscale x the input size."""
    if not outscale or outscale == model_scale:
        return result
    height, width = image.shape[:2]
    size = (max(1, round(width * outscale)), max(1, round(height * outscale)))
    return cv2.resize(result, size, interpolation=cv2.INTER_LANCZOS4)


def upscale_image(job: Job, models: dict[str, torch.nn.Module], output: Path, *, budget: int, tile: int = 0,
                  tile_pad: int = 4, outscale: float | None = None, suffix: str = "", ext: str = "png",
                  progress: Progress | None = None) -> Path:
    """Read, super-resolve and write one image file (:meth:`Job.targets`); the result's path. The warnings of its
    computation name the file; an image of :data:`OWN_PROGRESS_PIXELS` or more reports ``progress`` per tile or
    per block."""
    path = job.paths[0]
    image = read_image(path)
    model = network_for(image, models, path)
    try:
        planned = tile_for(model, plan_tile(model, image.shape[0], image.shape[1], tile, budget, tile_pad))
        if planned and not tile:
            logger.info("%s: too large for whole-image inference here; tiling with tile=%d", path, planned)
        logger.debug("%s: %dx%d %s, %s", path, image.shape[1], image.shape[0], image.dtype,
                     f"tile {planned}" if planned else "whole image")
        large = image.shape[0] * image.shape[1] >= OWN_PROGRESS_PIXELS
        steps = (lambda total: progress(total, f"{path}:")) if progress is not None and large else None
        with named(path):
            result = upscale(image, model, planned, tile_pad, progress=steps)
    except MedSRError as error:
        raise _about(path, error) from error
    result = final_resize(result, image, outscale, model.upscale)
    target = job.targets(output, suffix, ext)[0]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WriteError(f"{target.parent}: cannot create the folder ({error.strerror or error})") from error
    write_image(target, result)
    logger.debug("%s -> %s", path, target)
    return target


def upscale_volume_job(job: Job, models: dict[str, torch.nn.Module], training: TrainingData, output: Path, *,
                       budget: int, checkpoint: str = "", tile: int = 0, tile_pad: int = 4, suffix: str = "",
                       progress: Progress | None = None) -> list[Path]:
    """Every in-plane slice of the job's volume through the float32 network, written as a volume of the same kind
    (its paths returned): a NIfTI, or a derived DICOM series (its description names ``checkpoint``) replacing the
    old series whole (:func:`~medsr_se.inference.output_policy.remove_replaced`). The volume's warnings are said
    once (values outside the intensity window, a model trained on another modality or on colour), not per slice;
    ``progress`` per slice."""
    volume, model = job.volume, models["fp32"]
    warn_mismatch(volume, model, training)
    mapping = job.intensity or volume_intensity(volume, training)
    slices = len(volume.slice_indices())
    logger.info("%s: %d slice(s), intensity %s", volume.name, slices, mapping.describe())
    outside = mapping.outside(volume.values)
    if outside:
        logger.warning("%s: %d of %d values lie outside %s; the network sees them clipped to it", volume.name,
                       outside, volume.values.size, mapping.range_text())
    step = progress(slices, "") if progress is not None else (lambda: None)

    def one_slice(values: np.ndarray) -> np.ndarray:
        planned = plan_tile(model, values.shape[0], values.shape[1], tile, budget, tile_pad)
        with held_back():  # said once for the whole volume above
            return upscale(values, model, planned, tile_pad, intensity=mapping, out_dtype=np.float32)

    try:
        values = volumes.upscale_volume(volume, one_slice, model.upscale, lambda _done, _total: step())
    except MedSRError as error:
        raise _about(volume.name, error) from error
    targets = job.targets(output, suffix)
    description = (f"super-resolution x{model.upscale} by medsr-se {type(model).__name__} ({Path(checkpoint).name}), "
                   f"intensity {mapping.describe()}")
    if job.kind == "nifti":
        nifti.write_nifti(volume, values, model.upscale, targets[0])
    else:
        series = dicom_derived.derived_series(volume, values, model.upscale, description)
        dicom_derived.write_dicom_series((dataset, target) for (_, dataset), target in zip(series, targets))
        remove_replaced(job)
    return targets

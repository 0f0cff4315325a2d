"""Which intensity model maps a CT / MRI volume to the network's [0, 1] (:mod:`medsr_se.io.intensity`), chosen and
checked for every volume before any work.

The choice, first that applies: ``window`` (a CT window in HU: a preset name or ``LOW,HIGH``), ``measure``
(``percentile`` or ``minmax`` of the volume's own values), the intensity model the checkpoint records
(:class:`~medsr_se.inference.checkpoint.TrainingData`), else the modality's default (a full CT window for CT, the
volume's percentiles otherwise). A window the volume's values collapse in is an error naming the setting and the
file; one that leaves them few of its 16-bit levels is a warning (:func:`medsr_se.io.intensity.window_fit`).
"""

from __future__ import annotations

import logging

import torch

from medsr_se.errors import DataError
from medsr_se.inference.checkpoint import TrainingData
from medsr_se.inference.jobs import Job
from medsr_se.inference.upscale import input_channels
from medsr_se.io import intensity as intensity_models
from medsr_se.io.intensity import IntensityModel
from medsr_se.io.volumes import Volume

__all__ = ["check_intensities", "intensity_source", "volume_intensity", "warn_mismatch"]

logger = logging.getLogger(__name__)


def volume_intensity(volume: Volume, training: TrainingData, window: str | None = None,
                     measure: str | None = None) -> IntensityModel:
    """``window``, else ``measure`` on the volume, else the checkpoint's intensity model, else the modality's
    default (module docstring)."""
    if window:
        return intensity_models.ct_window(window)
    if measure:
        return intensity_models.measured(volume.values, measure)
    recorded = training.intensity_model()
    if recorded is not None:
        return recorded
    modality = "CT" if volume.unit == "HU" else volume.modality
    return intensity_models.choose(None, modality, volume.values)


def intensity_source(training: TrainingData, window: str | None = None, measure: str | None = None,
                     checkpoint: str = "") -> str:
    """What chose a volume's intensity model, for messages: ``window=...``, ``measure=...``, the checkpoint's, or
    the default."""
    if window:
        return f"window={window}"
    if measure:
        return f"measure={measure}"
    if training.intensity_model() is not None:
        return f"the checkpoint's intensity model ({checkpoint})"
    return "the default intensity model"


def check_intensities(jobs: list[Job], training: TrainingData, window: str | None = None,
                      measure: str | None = None, checkpoint: str = "") -> None:
    """Every volume's intensity model chosen (:attr:`Job.intensity`) and checked before any work: a DataError naming
    the setting (``parameter`` "window" / "measure" when one was given) and the file when the values collapse in
    it, a warning (logged) when they keep few levels."""
    parameter = "window" if window else "measure" if measure else None
    for job in jobs:
        if job.volume is None:
            continue
        job.intensity = volume_intensity(job.volume, training, window, measure)
        where = f"{intensity_source(training, window, measure, checkpoint)}: {job.volume.name}"
        try:
            warning = intensity_models.window_fit(job.intensity, job.volume.values, where)
        except DataError as error:
            raise DataError(str(error), parameter=parameter) from error
        if warning:
            logger.warning("%s", warning)


def warn_mismatch(volume: Volume, model: torch.nn.Module, training: TrainingData) -> None:
    """A warning when the checkpoint's recorded modality or the model's channel count does not fit ``volume``."""
    trained_on = training.modality
    if input_channels(model) != 1:
        logger.warning("%s: the model takes %d-channel images (%s); this is a gray %s: expect artefacts, use a gray "
                       "model (options/x4_gray.yml)", volume.name, input_channels(model),
                       trained_on or "colour photographs", volume.modality or "volume")
    elif trained_on and volume.modality and trained_on != volume.modality:
        logger.warning("%s: the model was trained on %s, this volume is %s", volume.name, trained_on,
                       volume.modality)

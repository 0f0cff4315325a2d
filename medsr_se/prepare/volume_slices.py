"""CT / MRI volumes (DICOM series, multi-frame DICOM, NIfTI) -> 16-bit gray slice images for the preparation.

The preparation works on images; a volume source is first cut into its in-plane slices along ``axis`` (DICOM:
its frames / slices; NIfTI: the chosen voxel axis) and every slice mapped through *one* intensity model for the
whole dataset (:mod:`medsr_se.io.intensity`):

    slice PNG = round(65535 · clip((physical − low) / (high − low), 0, 1))      uint16, one channel

so the network's [0, 1] is the window for every slice, at every stage: the model is recorded in the dataset's
``manifest.json`` and, from there, in every checkpoint trained on it, and ``medsr-infer`` maps volumes back to
physical units with it. Values outside the window are counted and reported. Slice images are named
``<volume>_<index>`` (volume = the NIfTI file's or the series folder's name, made a valid LMDB key); the train/test
split is made by volume, so no patient's slices are on both sides.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from medsr_se.io import dicom_reading, nifti, volumes
from medsr_se.io import intensity as intensity_models

log = logging.getLogger(__name__)  # warnings, under the "medsr_se" logger (printed by medsr_se.cli.console)
DICOM_SUFFIX = ".dcm"


@dataclass(frozen=True)
class VolumeOptions:
    """How volumes become training slices: ``window`` (CT preset or 'LOW,HIGH' in HU) or ``intensity``
    ('percentile' / 'minmax'), not both; neither: a full CT window for CT in HU, else percentiles; ``axis`` for
    NIfTI; ``mixed``: pool volumes of different modalities (CT in HU, MR, NIfTI, ...) into one intensity model,
    refused otherwise; ``skip_bad``: leave unreadable files out (recorded) instead of stopping."""

    window: str | None = None
    intensity: str | None = None
    axis: int = 2
    mixed: bool = False
    skip_bad: bool = False

    def chosen(self) -> str:
        """The option that chose the intensity model, for messages ('' when neither was given)."""
        return f"--window {self.window}" if self.window else f"--intensity {self.intensity}" if self.intensity else ""


def volume_files(source: Path) -> list[Path]:
    """The DICOM / NIfTI files of ``source`` (a file or a folder, searched recursively); [] when it has none."""
    if source.is_file():
        return [source] if source.suffix.lower() == DICOM_SUFFIX or volumes.is_nifti(source) else []
    if not source.is_dir():
        return []
    return sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith(".")
                  and (p.suffix.lower() == DICOM_SUFFIX or volumes.is_nifti(p)))


def key_name(text: str) -> str:
    """A BasicSR LMDB key part: ASCII letters, digits, '-' and '_' only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "volume"


def readable_files(files: list[Path], axis: int, skip_bad: bool) -> tuple[list[volumes.Volume], list[dict]]:
    """The volumes of ``files`` and, with ``skip_bad``, the files left out because they cannot be read, as
    ``{"file", "error"}`` records (without it the first such file is the error, with the hint). Read together
    first; only when that fails is each DICOM file tried on its own, to find the bad ones."""
    skipped: list[dict] = []
    found = []
    for path in (p for p in files if volumes.is_nifti(p)):
        try:
            found.append(nifti.read_nifti(path, axis))
        except ValueError as error:
            skipped.append(_skip(path, error, skip_bad))
    dicom = [p for p in files if p.suffix.lower() == DICOM_SUFFIX]
    try:
        found += dicom_reading.read_dicom_volumes(dicom) if dicom else []
    except ValueError as error:
        if not skip_bad:
            raise ValueError(f"{error} (pass --skip-bad to leave such files out)") from error
        good = []
        for path in dicom:
            try:
                dicom_reading.read_dicom_volumes([path])
                good.append(path)
            except ValueError as single:
                skipped.append(_skip(path, single, skip_bad))
        found += dicom_reading.read_dicom_volumes(good) if good else []
    return found, skipped


def _skip(path: Path, error: ValueError, skip_bad: bool) -> dict:
    """The record of a file left out; without ``skip_bad``, the error with the hint instead."""
    message = str(error) if str(error).startswith(str(path)) else f"{path}: {error}"
    if not skip_bad:
        raise ValueError(f"{message} (pass --skip-bad to leave such files out)") from error
    return {"stem": None, "file": str(path), "split": None, "error": message}


def read_volumes(files: list[Path], axis: int, skip_bad: bool = False) -> tuple[list[tuple[str, volumes.Volume]],
                                                                               list[dict]]:
    """(unique name, volume) of every NIfTI file and every DICOM series / multi-frame file in ``files``, and the
    files skipped as unreadable (``skip_bad``; :func:`readable_files`)."""
    found, skipped = readable_files(files, axis, skip_bad)
    named, used = [], set()
    for volume in found:
        first = volume.paths[0]
        base = key_name(volumes.nifti_stem(first) if volume.kind == "nifti" else
                        first.stem if volume.kind == "dicom-multiframe" else first.parent.name)
        name, count = base, 1
        while name in used:
            count += 1
            name = f"{base}_{count}"
        used.add(name)
        named.append((name, volume))
    return named, skipped


def modality_label(volume: volumes.Volume) -> str:
    """What a volume's values are, for the mixed-modality check: 'CT in HU', 'MR', 'NIfTI (no modality recorded)'."""
    if volume.kind == "nifti":
        return "NIfTI (no modality recorded)"
    if not volume.modality:
        return "DICOM without Modality"
    return f"{volume.modality} in HU" if volume.unit == "HU" else volume.modality


def check_modalities(named: list[tuple[str, volumes.Volume]], mixed: bool) -> None:
    """One intensity model for the whole dataset only fits volumes of one kind of values: a source mixing CT in HU,
    MR, NIfTI, ... is refused (naming a file of each), or with ``mixed`` pooled with a warning."""
    examples: dict[str, Path] = {}
    for _, volume in named:
        examples.setdefault(modality_label(volume), volume.paths[0])
    if len(examples) < 2:
        return
    examples = dict(sorted(examples.items()))
    kinds = " and ".join(examples)
    if mixed:
        log.warning("pooling %s values into one intensity model (--mixed-modalities)", kinds)
        return
    listed = ", ".join(f"{label} ({path})" for label, path in examples.items())
    raise ValueError(f"mixed modalities in one source: {listed}; one intensity window would pool their values: "
                     "prepare each modality separately, or pass --mixed-modalities to pool them")


def dataset_intensity(named: list[tuple[str, volumes.Volume]], options: VolumeOptions) -> tuple[str, object]:
    """(modality, intensity model) for the whole dataset; ValueError for a mixed-modality source
    (:func:`check_modalities`) or both ``window`` and ``intensity``."""
    if options.window and options.intensity:
        raise ValueError(f"--window {options.window} and --intensity {options.intensity}: both choose the intensity "
                         "model (one would be ignored); give one")
    check_modalities(named, options.mixed)
    modalities = sorted({volume.modality for _, volume in named if volume.modality})
    all_hu = all(volume.unit == "HU" for _, volume in named)
    modality = "/".join(modalities) or "volume"
    if options.window:
        return modality, intensity_models.ct_window(options.window)
    if options.intensity is None and all_hu:
        return modality, intensity_models.ct_window(intensity_models.DEFAULT_CT_WINDOW)
    values = np.concatenate([volume.values.ravel()[:: max(1, volume.values.size // 2_000_000)]
                             for _, volume in named])
    return modality, intensity_models.measured(values, options.intensity or "percentile")


def write_slices(files: list[Path], folder: Path, options: VolumeOptions) -> dict:
    """Every slice of every volume in ``files`` as a uint16 PNG in ``folder``; returns the record for the manifest
    (modality, intensity, axis, volumes with their files and slice names, values outside the window)."""
    named, skipped = read_volumes(files, options.axis, options.skip_bad)
    if not named:
        if skipped:
            raise ValueError(f"no volume left: all {len(skipped)} DICOM / NIfTI file(s) are unreadable (the first: "
                             f"{skipped[0]['error']})")
        raise ValueError("no DICOM or NIfTI volume found")
    modality, mapping = dataset_intensity(named, options)
    chosen = options.chosen() or "the default intensity model"
    for _, volume in named:
        warning = intensity_models.window_fit(mapping, volume.values, f"{chosen}: {volume.name}")
        if warning:
            log.warning("%s", warning)
    folder.mkdir(parents=True)
    record: dict = {"modality": modality, "intensity": mapping.to_dict(), "axis": options.axis, "volumes": {},
                    "values_outside_window": 0, "skipped_files": skipped}
    for name, volume in named:
        stems = []
        for index, selection in enumerate(volume.slice_indices()):
            physical = volume.values[selection]
            record["values_outside_window"] += mapping.outside(physical)
            unit = np.clip(mapping.to_unit(physical), 0.0, 1.0)
            stem = f"{name}_{index:04d}"
            if not cv2.imwrite(str(folder / f"{stem}.png"), np.round(unit * 65535.0).astype(np.uint16)):
                raise OSError(f"{folder / stem}.png: cannot write the slice")
            stems.append(stem)
        record["volumes"][name] = {"kind": volume.kind, "modality": volume.modality, "unit": volume.unit,
                                   "files": [str(p) for p in volume.paths], "slices": stems}
    return record

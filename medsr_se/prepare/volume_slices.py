"""CT / MRI volumes (DICOM series, multi-frame DICOM, NIfTI) -> 16-bit gray slice images for the preparation.

The preparation works on images; a volume source is first cut into its in-plane slices along ``axis`` (DICOM:
its frames / slices; NIfTI: the chosen voxel axis) and every slice mapped through *one* intensity model for the
whole dataset (:mod:`medsr_se.intensity`):

    slice PNG = round(65535 · clip((physical − low) / (high − low), 0, 1))      uint16, one channel

so the network's [0, 1] is the window for every slice, at every stage: the model is recorded in the dataset's
``manifest.json`` and, from there, in every checkpoint trained on it, and ``medsr-infer`` maps volumes back to
physical units with it. Values outside the window are counted and reported. Slice images are named
``<volume>_<index>`` (volume = the NIfTI file's or the series folder's name, made a valid LMDB key); the train/test
split is made by volume, so no patient's slices are on both sides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from medsr_se import intensity as intensity_models
from medsr_se import volumes

DICOM_SUFFIX = ".dcm"


@dataclass(frozen=True)
class VolumeOptions:
    """How volumes become training slices: ``window`` (CT preset or 'LOW,HIGH' in HU) or ``intensity``
    ('percentile' / 'minmax'); neither: a full CT window for CT in HU, else percentiles; ``axis`` for NIfTI."""

    window: str | None = None
    intensity: str | None = None
    axis: int = 2


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


def read_volumes(files: list[Path], axis: int) -> list[tuple[str, volumes.Volume]]:
    """(unique name, volume) of every NIfTI file and every DICOM series / multi-frame file in ``files``."""
    found = [volumes.read_nifti(p, axis) for p in files if volumes.is_nifti(p)]
    dicom = [p for p in files if p.suffix.lower() == DICOM_SUFFIX]
    if dicom:
        found += volumes.read_dicom_volumes(dicom)
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
    return named


def dataset_intensity(named: list[tuple[str, volumes.Volume]], options: VolumeOptions) -> tuple[str, object]:
    """(modality, intensity model) for the whole dataset."""
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
    named = read_volumes(files, options.axis)
    if not named:
        raise ValueError("no DICOM or NIfTI volume found")
    modality, mapping = dataset_intensity(named, options)
    folder.mkdir(parents=True)
    record: dict = {"modality": modality, "intensity": mapping.to_dict(), "axis": options.axis, "volumes": {},
                    "values_outside_window": 0}
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

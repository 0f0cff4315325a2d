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

Errors name the parameter of :class:`VolumeOptions` at fault (``window=lung and intensity=minmax: ...``) and carry
it (``error.parameter``); the command shows its flags instead.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medsr_se.errors import DataError, MedSRError, WriteError
from medsr_se.io import dicom_reading, nifti, volumes
from medsr_se.io import intensity as intensity_models
from medsr_se.io.images import encode_image
from medsr_se.prepare.split import PrepareError

log = logging.getLogger(__name__)  # warnings, under the "medsr_se" logger (printed by medsr_se.cli.console)
DICOM_SUFFIX = ".dcm"
MEASURED = ("percentile", "minmax")  # intensity models measured on the data (io.intensity.measured)


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

    def chosen_parameter(self) -> str | None:
        """The parameter that chose the intensity model ('window' or 'intensity'; None when neither was given)."""
        return "window" if self.window else "intensity" if self.intensity else None

    def chosen(self) -> str:
        """The option that chose the intensity model, for messages (``window=lung``; '' when neither was given)."""
        parameter = self.chosen_parameter()
        return f"{parameter}={getattr(self, parameter)}" if parameter else ""

    def check(self) -> None:
        """Before any work: :class:`~medsr_se.prepare.split.PrepareError` naming the parameter for a window that is
        no CT window, an unknown intensity model, both of them (one would be ignored), or no slice axis."""
        if self.window and self.intensity:
            raise PrepareError(f"window={self.window} and intensity={self.intensity}: both choose the intensity "
                               "model (one would be ignored); give one", parameter="window")
        if self.window:
            try:
                intensity_models.ct_window(self.window)
            except ValueError as error:
                raise PrepareError(f"window={self.window}: {error}", parameter="window") from error
        if self.intensity not in (None, *MEASURED):
            raise PrepareError(f"intensity={self.intensity}: use one of {', '.join(MEASURED)} (or a CT window)",
                               parameter="intensity")
        if self.axis not in (0, 1, 2):
            raise PrepareError(f"axis={self.axis}: a volume's slice axis is 0, 1 or 2", parameter="axis")


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
    first; only when that fails is each DICOM file tried on its own, to find the bad ones. What the readers raise
    for a file (a :class:`~medsr_se.errors.MedSRError` naming it) is a bad file; anything else is a bug and
    propagates."""
    skipped: list[dict] = []
    found = []
    nifti_files = [p for p in files if volumes.is_nifti(p)]
    dicom = [p for p in files if p.suffix.lower() == DICOM_SUFFIX]
    _check_readers(nifti_files, dicom)
    for path in nifti_files:
        try:
            found.append(nifti.read_nifti(path, axis))
        except MedSRError as error:
            skipped.append(_skip(path, error, skip_bad))
    try:
        found += dicom_reading.read_dicom_volumes(dicom) if dicom else []
    except MedSRError as error:
        if not skip_bad:
            raise DataError(f"{error} (pass skip_bad=True to leave such files out)") from error
        good = []
        for path in dicom:
            try:
                dicom_reading.read_dicom_volumes([path])
                good.append(path)
            except MedSRError as single:
                skipped.append(_skip(path, single, skip_bad))
        found += dicom_reading.read_dicom_volumes(good) if good else []
    return found, skipped


def _check_readers(nifti_files: list[Path], dicom_files: list[Path]) -> None:
    """The readers these files need are installed (the ``medical`` extra); a DataError saying what to install."""
    try:
        if nifti_files:
            nifti.nifti_errors()
        if dicom_files:
            dicom_reading.dicom_errors()
    except ValueError as error:  # only "needs the extra" (the readers' import check)
        raise DataError(str(error)) from error


def _skip(path: Path, error: MedSRError, skip_bad: bool) -> dict:
    """The record of a file left out; without ``skip_bad``, the error with the hint instead."""
    message = str(error) if str(error).startswith(str(path)) else f"{path}: {error}"
    if not skip_bad:
        raise DataError(f"{message} (pass skip_bad=True to leave such files out)") from error
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
        log.warning("pooling %s values into one intensity model (mixed modalities allowed)", kinds)
        return
    listed = ", ".join(f"{label} ({path})" for label, path in examples.items())
    raise DataError(f"mixed modalities in one source: {listed}; one intensity window would pool their values: "
                    "prepare each modality separately, or pass mixed=True to pool them")


def dataset_intensity(named: list[tuple[str, volumes.Volume]], options: VolumeOptions) -> tuple[str, object]:
    """(modality, intensity model) for the whole dataset; a DataError for a mixed-modality source
    (:func:`check_modalities`) or data without one finite value to measure on, a PrepareError for options that
    cannot work (:meth:`VolumeOptions.check`)."""
    options.check()
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
    if not np.isfinite(values).any():
        raise DataError(f"{named[0][1].paths[0]}: no finite value in any volume to measure an intensity range on")
    return modality, intensity_models.measured(values, options.intensity or "percentile")


def write_slices(files: list[Path], folder: Path, options: VolumeOptions) -> dict:
    """Every slice of every volume in ``files`` as a uint16 PNG in ``folder``; returns the record for the manifest
    (modality, intensity, axis, volumes with their files and slice names, values outside the window)."""
    named, skipped = read_volumes(files, options.axis, options.skip_bad)
    if not named:
        if skipped:
            raise DataError(f"no volume left: all {len(skipped)} DICOM / NIfTI file(s) are unreadable (the first: "
                            f"{skipped[0]['error']})")
        raise DataError("no DICOM or NIfTI volume found")
    modality, mapping = dataset_intensity(named, options)
    chosen = options.chosen() or "the default intensity model"
    for _, volume in named:
        try:
            warning = intensity_models.window_fit(mapping, volume.values, f"{chosen}: {volume.name}")
        except ValueError as error:  # the data would collapse to one level in that window
            raise PrepareError(str(error), parameter=options.chosen_parameter()) from error
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
            _write_slice(folder / f"{stem}.png", np.round(unit * 65535.0).astype(np.uint16))
            stems.append(stem)
        record["volumes"][name] = {"kind": volume.kind, "modality": volume.modality, "unit": volume.unit,
                                   "files": [str(p) for p in volume.paths], "slices": stems}
    return record


def _write_slice(path: Path, pixels: np.ndarray) -> None:
    """One slice PNG (:func:`medsr_se.io.images.encode_image`) in the preparation's own temporary folder (nothing
    there is published, so not atomically); a WriteError naming it when it cannot be written."""
    data = encode_image(pixels, ".png")
    try:
        path.write_bytes(data)
    except OSError as error:
        raise WriteError(f"{path}: cannot write the slice ({error.strerror or error})") from error

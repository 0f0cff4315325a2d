"""The units of work of folder inference (``medsr-infer``): an image file, a NIfTI file, or the DICOM files of one
series (or one multi-frame file), each with the result paths it is written to.

    files = input_files(Path("scans"))              # every image / volume file below the folder
    jobs = collect_jobs(files, axis=2, root=Path("scans"))
    jobs[0].targets(Path("out"))                    # [out/<same sub-folder>/<stem>.png]

Images keep their file; a NIfTI is read as one volume; the ``.dcm`` files are grouped into series by
SeriesInstanceUID and sorted along the slice normal (:func:`medsr_se.io.dicom_reading.read_dicom_volumes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from medsr_se.errors import DataError
from medsr_se.io import dicom_reading, nifti, volumes
from medsr_se.io.images import SUFFIXES
from medsr_se.io.intensity import IntensityModel

__all__ = ["Job", "collect_jobs", "input_files"]


@dataclass
class Job:
    """One unit of work: an image file, a NIfTI file, or the DICOM files of one series / one multi-frame file.
    ``root`` is the input folder: results keep each file's place below it (recursive input)."""

    kind: str  # 'image', 'nifti' or 'dicom'
    paths: list[Path]
    root: Path
    volume: volumes.Volume | None = field(default=None, repr=False)
    replaces: list[Path] = field(default_factory=list)  # overwrite: files of the old series this one replaces
    intensity: IntensityModel | None = None  # a volume's, chosen and checked before any work

    @property
    def name(self) -> Path:
        return self.paths[0] if len(self.paths) == 1 else self.paths[0].parent

    def targets(self, output: Path, suffix: str = "", ext: str = "png") -> list[Path]:
        """Result paths: ``<output>/<same sub-folder>/<stem>[_<suffix>].<ext>`` (volumes keep their format; ``ext``
        ``auto``: the image's own)."""
        tail = f"_{suffix}" if suffix else ""

        def place(path: Path, name: str) -> Path:
            return output / path.parent.relative_to(self.root) / name if self.root in path.parents else output / name

        if self.kind == "nifti":
            path = self.paths[0]
            return [place(path, volumes.nifti_stem(path) + tail + path.name[len(volumes.nifti_stem(path)):])]
        if self.kind == "dicom":
            return [place(path, f"{path.stem}{tail}.dcm") for path in self.paths]
        path = self.paths[0]
        extension = path.suffix.lower().lstrip(".") if ext == "auto" else ext
        return [place(path, f"{path.stem}{tail}.{extension}")]


def input_files(source: Path) -> list[Path]:
    """``source`` itself, or every image / volume file below the folder ``source`` (sub-folders included, hidden
    files left out); a DataError naming ``source`` when there is none."""
    if source.is_file():
        return [source]
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith(".")
                       and (p.suffix.lower() in SUFFIXES or volumes.is_nifti(p)))
        if files:
            return files
        raise DataError(f"{source}: no images ({', '.join(SUFFIXES)}, .nii, .nii.gz)")
    raise DataError(f"input not found: {source}")


def collect_jobs(files: list[Path], axis: int, root: Path, nonfinite: float | None = None) -> list[Job]:
    """Images one by one, each NIfTI as a volume (slices along ``axis``), the DICOM files grouped into series;
    ``nonfinite`` replaces NaN / ±inf voxels (else they are an error). Every volume is read here, so a file that
    cannot be read is an error before any work."""
    jobs = [Job("image", [p], root) for p in files if p.suffix.lower() != ".dcm" and not volumes.is_nifti(p)]
    jobs += [Job("nifti", [p], root, nifti.read_nifti(p, axis, nonfinite)) for p in files if volumes.is_nifti(p)]
    dicom_files = [p for p in files if p.suffix.lower() == ".dcm"]
    if dicom_files:
        jobs += [Job("dicom", volume.paths, root, volume) for volume in dicom_reading.read_dicom_volumes(dicom_files)]
    return jobs

"""``medsr-infer``: super-resolve images with a trained SEEDSRGenerator checkpoint.

    medsr-infer -i photo.png -o out/ --model experiments/SEEDSR_GAN_x4/models/net_g_latest.pth
    medsr-infer -i folder/ -o out/ --model net_g.pth --scale 4 --tile 256     # large images, bounded memory

Reads png, jpg, tif/tiff, ppm/pgm, bmp, and with the ``medical`` extra CT/MRI volumes: NIfTI ``.nii``/``.nii.gz``,
DICOM ``.dcm`` (a folder's DICOM files are grouped into series by SeriesInstanceUID and sorted along the slice normal;
a multi-frame file is one volume). Images keep their bit depth (8 / 16) and channel count (a gray image through an
RGB model is converted and back, with a warning) and are written as ``<output>/<stem>.png``. Volumes are upscaled
in-plane slice by slice (``--axis`` picks the slice axis of a NIfTI; DICOM slices are its frames) through the
intensity model (:mod:`medsr_se.intensity`): ``--window`` (CT presets or LOW,HIGH in HU) or ``--intensity
percentile|minmax``, else the one stored in the checkpoint, else a full CT window for CT and the volume's
percentiles otherwise. They are written as the same kind: NIfTI with the affine and zooms scaled
(medsr_se.volumes), DICOM as a derived series (new SeriesInstanceUID for the series, new SOPInstanceUIDs,
DERIVED/SECONDARY, DerivationDescription, the source image referenced, spacing and position updated, the pixel type
and rescale of the input). The architecture and scale are
read from the checkpoint (``params_ema`` if present); ``--scale`` only checks it. ``--tile`` splits the LR image
into tiles whose result equals whole-image inference (see medsr_se.archs.seedsr_tiling). ``--precision bf16`` (CPU
or CUDA) or ``fp16`` (CUDA; also ``--fp16``) runs 8-bit images in reduced precision; 16-bit images always run in
fp32. Reductions (the SE squeeze, the tiles' statistics) accumulate in fp32 whatever the precision.

Safety (README, "Safety"): the output folder may not be an input folder (an input is never written over), two
inputs may not share a stem (they would be written to one file): both are refused before any work. Every file is
written to a temporary name and renamed into place once complete; a failed write is an error naming the file.
Without ``--tile``, an image whose whole-image inference would not fit in memory is tiled automatically (a note
says so); one that would not fit even tiled is refused. A 4-channel image keeps its alpha (resized bicubic).
"""

from __future__ import annotations

import argparse
import copy
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from mmengine.utils import ProgressBar

from medsr_se import intensity as intensity_models
from medsr_se import volumes
from medsr_se.imageio import SUFFIXES, WriteError, read_image, write_image
from medsr_se.inference import CheckpointError, load_generator, memory_budget, plan_tile, upscale

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class UsageError(ValueError):
    """A command line that cannot work; the message names the option or file."""


@dataclass
class Job:
    """One unit of work: an image file, a NIfTI file, or the DICOM files of one series / one multi-frame file."""

    kind: str  # 'image', 'nifti' or 'dicom'
    paths: list[Path]
    volume: volumes.Volume | None = field(default=None, repr=False)

    @property
    def name(self) -> Path:
        return self.paths[0] if len(self.paths) == 1 else self.paths[0].parent

    def targets(self, output: Path) -> list[Path]:
        if self.kind == "nifti":
            return [output / self.paths[0].name]
        if self.kind == "dicom":
            return [output / f"{path.stem}.dcm" for path in self.paths]
        return [output / f"{self.paths[0].stem}.png"]


def input_files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.is_file() and (p.suffix.lower() in SUFFIXES
                                                                          or volumes.is_nifti(p)))
        if files:
            return files
        raise FileNotFoundError(f"{source}: no images ({', '.join(SUFFIXES)}, .nii, .nii.gz)")
    raise FileNotFoundError(f"input not found: {source}")


def collect_jobs(files: list[Path], axis: int) -> list[Job]:
    """Images one by one, each NIfTI as a volume, the DICOM files grouped into series (medsr_se.volumes)."""
    jobs = [Job("image", [p]) for p in files if p.suffix.lower() != ".dcm" and not volumes.is_nifti(p)]
    jobs += [Job("nifti", [p], volumes.read_nifti(p, axis)) for p in files if volumes.is_nifti(p)]
    dicom_files = [p for p in files if p.suffix.lower() == ".dcm"]
    if dicom_files:
        jobs += [Job("dicom", volume.paths, volume) for volume in volumes.read_dicom_volumes(dicom_files)]
    return jobs


def check_outputs(jobs: list[Job], output: Path) -> None:
    """Refuse, before any work, an output folder that would write over an input or two inputs sharing a name."""
    if output.exists() and not output.is_dir():
        raise UsageError(f"-o {output}: is a file; give a folder for the results")
    by_output: dict[Path, Path] = {}
    inputs = {path.resolve() for job in jobs for path in job.paths}
    for job in jobs:
        for path, target in zip(job.paths if job.kind == "dicom" else job.paths[:1], job.targets(output)):
            if target.resolve() in inputs or path.resolve().parent == output.resolve():
                raise UsageError(f"-o {output}: is the folder of the input {path}; results would replace inputs, "
                                 "so give another output folder")
            if target in by_output:
                raise UsageError(f"{by_output[target]} and {path} would both be written to {target}; rename one or "
                                 "run them separately")
            by_output[target] = path


def check_device(device: str) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: no CUDA GPU is available here (use --device cpu)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medsr-infer", description=__doc__.split("\n\n")[0])
    parser.add_argument("-i", "--input", type=Path, required=True, help="image file or folder")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output folder (not an input folder)")
    parser.add_argument("--model", required=True, help="BasicSR net_g checkpoint of a SEEDSRGenerator")
    parser.add_argument("--scale", type=int, help="expected scale (checked against the checkpoint)")
    parser.add_argument("--tile", type=int, default=0, help="LR tile size in pixels; 0 = whole image when it fits")
    parser.add_argument("--tile-pad", type=int, default=4, help="LR halo around each tile (>= 4)")
    parser.add_argument("--precision", choices=PRECISIONS, help="network precision for 8-bit images (default fp32; "
                        "fp16 needs CUDA); 16-bit images always run in fp32")
    parser.add_argument("--fp16", action="store_const", const="fp16", dest="precision_alias",
                        help="= --precision fp16 (CUDA only)")
    parser.add_argument("--fp32", action="store_const", const="fp32", dest="precision_alias",
                        help="= --precision fp32 (Real-ESRGAN's spelling)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--window", help="CT volumes: intensity window in HU, one of "
                        f"{', '.join(intensity_models.CT_WINDOWS)} or LOW,HIGH (default: the checkpoint's, else full)")
    parser.add_argument("--intensity", choices=("percentile", "minmax"),
                        help="volumes without HU: normalise by the volume's 0.5/99.5th percentiles or min/max")
    parser.add_argument("--axis", type=int, choices=(0, 1, 2), default=2,
                        help="NIfTI: the slice axis (the other two are upscaled); DICOM slices are always its frames")
    return parser


def network_for(image, models: dict[str, torch.nn.Module], path: Path) -> torch.nn.Module:
    """The reduced-precision network for 8-bit images; float32 for 16-bit ones, whose 65,536 levels a float16
    (11 significant bits) or bfloat16 (8) network cannot carry."""
    if image.dtype == np.uint16 and "reduced" in models:
        print(f"note: {path}: 16-bit image, computed in fp32 (reduced precision would lose depth)", file=sys.stderr)
        return models["fp32"]
    return models.get("reduced", models["fp32"])


def upscale_image(job: Job, models: dict[str, torch.nn.Module], args: argparse.Namespace, budget: int) -> None:
    """Read, super-resolve and write one image file (atomically, checked)."""
    path = job.paths[0]
    image = read_image(path)
    model = network_for(image, models, path)
    try:
        tile = plan_tile(model, image.shape[0], image.shape[1], args.tile, budget)
        if tile and not args.tile:
            print(f"note: {path}: too large for whole-image inference here; tiling with --tile {tile}",
                  file=sys.stderr)
        result = upscale(image, model, tile, args.tile_pad)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    write_image(job.targets(args.output)[0], result)


def volume_intensity(volume: volumes.Volume, model: torch.nn.Module, args: argparse.Namespace):
    """--window / --intensity, else the checkpoint's intensity model, else the modality's default."""
    if args.window:
        return intensity_models.ct_window(args.window)
    if args.intensity:
        return intensity_models.measured(volume.values, args.intensity)
    record = getattr(model, "training_data", None) or {}
    if record.get("intensity") and record["intensity"].get("kind") != "dtype":
        return intensity_models.IntensityModel.from_dict(record["intensity"])
    modality = "CT" if volume.unit == "HU" else volume.modality
    return intensity_models.choose(None, modality, volume.values)


def warn_mismatch(volume: volumes.Volume, model: torch.nn.Module) -> None:
    """A note when the checkpoint's recorded modality or channel count does not fit a volume."""
    record = getattr(model, "training_data", None) or {}
    trained_on = record.get("modality")
    if model.conv_first.in_channels != 1:
        print(f"warning: {volume.name}: the model takes {model.conv_first.in_channels}-channel images "
              f"({trained_on or 'colour photographs'}); this is a gray {volume.modality or 'volume'}: expect "
              "artefacts, use a gray model (options/x4_gray.yml)", file=sys.stderr)
    elif trained_on and volume.modality and trained_on != volume.modality:
        print(f"warning: {volume.name}: the model was trained on {trained_on}, this volume is {volume.modality}",
              file=sys.stderr)


def upscale_volume_job(job: Job, models: dict[str, torch.nn.Module], args: argparse.Namespace, budget: int) -> None:
    """Every in-plane slice through the network (fp32), written as a volume of the same kind."""
    volume, model = job.volume, models["fp32"]
    warn_mismatch(volume, model)
    mapping = volume_intensity(volume, model, args)
    print(f"note: {volume.name}: {len(volume.slice_indices())} slice(s), intensity {mapping.describe()}",
          file=sys.stderr)
    outside = mapping.outside(volume.values)
    if outside:
        print(f"warning: {volume.name}: {outside} of {volume.values.size} values lie outside the window "
              f"{mapping.describe()}; the network sees them clipped to it", file=sys.stderr)
    bar = ProgressBar(len(volume.slice_indices()), file=sys.stderr)

    def one_slice(values: np.ndarray) -> np.ndarray:
        tile = plan_tile(model, values.shape[0], values.shape[1], args.tile, budget)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # counted once for the whole volume above
            return upscale(values, model, tile, args.tile_pad, intensity=mapping, out_dtype=np.float32)

    try:
        values = volumes.upscale_volume(volume, one_slice, model.upscale, lambda done, total: bar.update())
    except ValueError as error:
        raise ValueError(f"{volume.name}: {error}") from error
    sys.stderr.write("\n")
    if job.kind == "nifti":
        volumes.write_nifti(volume, values, model.upscale, job.targets(args.output)[0])
        return
    description = (f"super-resolution x{model.upscale} by medsr-se SEEDSRGenerator ({Path(args.model).name}), "
                   f"intensity {mapping.describe()}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for path, dataset in volumes.derived_series(volume, values, model.upscale, description):
            volumes.write_dicom_file(dataset, args.output / f"{path.stem}.dcm")
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)


def load_models(args: argparse.Namespace, precision: str) -> dict[str, torch.nn.Module]:
    """``fp32`` always; ``reduced`` too for --precision bf16 / fp16."""
    model = load_generator(args.model, device=args.device, upscale=args.scale)
    models = {"fp32": model}
    if precision != "fp32":
        models["reduced"] = copy.deepcopy(model).to(PRECISIONS[precision])
    return models


def run(args: argparse.Namespace) -> int:
    if args.tile < 0:
        raise UsageError(f"--tile {args.tile}: must be 0 (whole image) or a positive tile size")
    check_device(str(args.device))
    precision = args.precision or args.precision_alias or "fp32"
    if precision == "fp16" and not str(args.device).startswith("cuda"):
        raise UsageError("--precision fp16 / --fp16 needs a CUDA device (--device cuda); on a CPU use bf16")
    if args.window:
        intensity_models.ct_window(args.window)  # a bad spelling fails before any work
    jobs = collect_jobs(input_files(args.input), args.axis)
    check_outputs(jobs, args.output)
    models = load_models(args, precision)
    model = models["fp32"]
    try:
        args.output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WriteError(f"{args.output}: cannot create the output folder ({error.strerror or error})") from error
    budget = memory_budget(args.device)
    images = [job for job in jobs if job.kind == "image"]
    bar = ProgressBar(len(images), file=sys.stderr) if images else None
    for job in jobs:
        if job.kind == "image":
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                upscale_image(job, models, args, budget)
            for warning in caught:
                print(f"warning: {job.name}: {warning.message}", file=sys.stderr)
            bar.update()
        else:
            upscale_volume_job(job, models, args, budget)
    if bar:
        sys.stderr.write("\n")
    print(f"{len(images)} image(s), {len(jobs) - len(images)} volume(s) x{model.upscale} -> {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # our messages name the file instead
    try:
        return run(args)
    except (FileNotFoundError, ValueError, CheckpointError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

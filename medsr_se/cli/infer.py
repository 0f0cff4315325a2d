"""``medsr-infer``: super-resolve images with a trained SEEDSRGenerator (or any BasicSR generator) checkpoint.

    medsr-infer -i photo.png -o out/ --model experiments/SEEDSR_GAN_x4/models/net_g_latest.pth
    medsr-infer -i folder/ -o out/ --model net_g.pth --scale 4 --tile 256     # large images, bounded memory

Reads png, jpg, tif/tiff, ppm/pgm, bmp, and with the ``medical`` extra CT/MRI volumes: NIfTI ``.nii``/``.nii.gz``,
DICOM ``.dcm`` (a folder's DICOM files are grouped into series by SeriesInstanceUID and sorted along the slice normal;
a multi-frame file is one volume). Images keep their bit depth (8 / 16) and channel count (a gray image through an
RGB model is converted and back, with a warning) and are written as ``<output>/<stem>.png``. Volumes are upscaled
in-plane slice by slice (``--axis`` picks the slice axis of a NIfTI; DICOM slices are its frames) through the
intensity model (:mod:`medsr_se.io.intensity`): ``--window`` (CT presets or LOW,HIGH in HU) or ``--intensity
percentile|minmax``, else the one stored in the checkpoint, else a full CT window for CT and the volume's
percentiles otherwise. They are written as the same kind: NIfTI with the affine and zooms scaled
(medsr_se.io.volumes), DICOM as a derived series (new SeriesInstanceUID for the series, new SOPInstanceUIDs,
DERIVED/SECONDARY, DerivationDescription, the source image referenced, spacing and position updated, the pixel type
and rescale of the input). The architecture and scale are
read from the checkpoint (``params_ema`` if present); ``--scale`` only checks it. ``--tile`` splits the LR image
into tiles whose result equals whole-image inference (see medsr_se.inference.tiling; for other BasicSR generators
medsr_se.inference.halo, which warns where tiles are not exact: a network that pools over the whole image, or a
windowed-attention network such as SwinIR whose reach exceeds the halo). A windowed-attention network takes any
image size: it is padded by reflection to a multiple of its window and cropped back, as SwinIR's own test code
does (medsr_se.inference.window); its tiles are rounded up to a multiple of the window (a note says so).
``--precision bf16`` (CPU or CUDA) or ``fp16`` (CUDA; also ``--fp16``) runs 8-bit images in reduced precision;
16-bit images always run in fp32. Reductions (the SE squeeze, the tiles' statistics) accumulate in fp32 whatever
the precision.

Safety (README, "Safety"): the output folder may not be an input folder (an input is never written over), no
result may land inside the input folder (paths compared resolved: symlinks and ``-o`` above the input count), two
inputs may not share a stem (they would be written to one file), and a result path that already holds a file is
refused unless ``--overwrite`` is given (unlike Real-ESRGAN's script, which writes over it): all are refused before
any work, and so is an input the model cannot take (unreadable, a type without an intensity range, channels the
model lacks, too small for its window, too large for memory): a folder is done whole or not at all.
``--overwrite`` replaces a DICOM series whole (the rest of the old series goes too). Every file is
written to a temporary name and renamed into place once complete; a failed write is an error naming the file.
Without ``--tile``, an image whose whole-image inference would not fit in memory is tiled automatically (a note
says so); one that would not fit even tiled is refused. A 4-channel image keeps its alpha (resized bicubic).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from medsr_se.cli.console import Console, add_verbosity_arguments, log_to_stderr
from medsr_se.errors import UsageError
from medsr_se.inference import CheckpointError, load_generator, memory_budget, plan_tile, upscale
from medsr_se.inference.checkpoint import TrainingData, load_training_data, network_option_file, one_line, probe_forward
from medsr_se.inference.halo import tile_for
from medsr_se.inference.upscale import check_image, input_channels
from medsr_se.inference.window import input_multiple, multiple_reason
from medsr_se.io import dicom_derived, dicom_reading, nifti, volumes
from medsr_se.io import intensity as intensity_models
from medsr_se.io.images import SUFFIXES, WriteError, read_image, write_image
from medsr_se.utils.precision import warn_slow_bf16

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
OWN_PROGRESS_PIXELS = 256 * 256  # an image at least this large gets a progress bar of its own (per tile)



@dataclass
class Job:
    """One unit of work: an image file, a NIfTI file, or the DICOM files of one series / one multi-frame file.
    ``root`` is the input folder: results keep each file's place below it (recursive input)."""

    kind: str  # 'image', 'nifti' or 'dicom'
    paths: list[Path]
    root: Path
    volume: volumes.Volume | None = field(default=None, repr=False)
    replaces: list[Path] = field(default_factory=list)  # --overwrite: files of the old series this one replaces
    intensity: intensity_models.IntensityModel | None = None  # a volume's, chosen and checked before any work

    @property
    def name(self) -> Path:
        return self.paths[0] if len(self.paths) == 1 else self.paths[0].parent

    def targets(self, output: Path, suffix: str = "", ext: str = "png") -> list[Path]:
        """Result paths: ``<output>/<same sub-folder>/<stem>[_<suffix>].<ext>`` (volumes keep their format)."""
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
    """``source`` itself, or every image / volume file below the folder ``source`` (sub-folders included)."""
    if source.is_file():
        return [source]
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith(".")
                       and (p.suffix.lower() in SUFFIXES or volumes.is_nifti(p)))
        if files:
            return files
        raise FileNotFoundError(f"{source}: no images ({', '.join(SUFFIXES)}, .nii, .nii.gz)")
    raise FileNotFoundError(f"input not found: {source}")


def collect_jobs(files: list[Path], axis: int, root: Path, nonfinite: float | None = None) -> list[Job]:
    """Images one by one, each NIfTI as a volume, the DICOM files grouped into series (medsr_se.io.volumes);
    ``nonfinite`` replaces NaN / ±inf voxels (else they are an error)."""
    jobs = [Job("image", [p], root) for p in files if p.suffix.lower() != ".dcm" and not volumes.is_nifti(p)]
    jobs += [Job("nifti", [p], root, nifti.read_nifti(p, axis, nonfinite)) for p in files if volumes.is_nifti(p)]
    dicom_files = [p for p in files if p.suffix.lower() == ".dcm"]
    if dicom_files:
        jobs += [Job("dicom", volume.paths, root, volume) for volume in dicom_reading.read_dicom_volumes(dicom_files)]
    return jobs


def check_outputs(jobs: list[Job], args: argparse.Namespace) -> None:
    """Refuse, before any work, an output folder that would write over an input or beside it, a result inside the
    input folder (a later run would read it as an input; paths compared resolved, so symlinks and ``-o`` above the
    input count), two inputs sharing a result name, and a result path that already holds a file (without
    ``--overwrite``; a folder there is refused even with it). With ``--overwrite`` a DICOM result replaces the old
    series as a whole (:func:`replaced_series_files`)."""
    output = args.output
    if output.exists() and not output.is_dir():
        raise UsageError(f"-o {output}: is a file; give a folder for the results")
    input_folder = args.input.resolve() if args.input.is_dir() else None
    if input_folder is not None and output.resolve().is_relative_to(input_folder):
        raise UsageError(f"-o {output}: is inside the input folder {args.input}; results would replace inputs or be "
                         "read as inputs next time, so give another output folder")
    by_output: dict[Path, Path] = {}
    inputs = {path.resolve() for job in jobs for path in job.paths}
    for job in jobs:
        sources = job.paths if job.kind == "dicom" else job.paths[:1]
        for path, target in zip(sources, job.targets(output, args.suffix, args.ext)):
            resolved = target.resolve()
            if resolved in inputs or path.resolve().parent == resolved.parent:
                raise UsageError(f"-o {output}: is the folder of the input {path}; results would replace inputs, "
                                 "so give another output folder")
            if input_folder is not None and resolved.is_relative_to(input_folder):
                raise UsageError(f"{target}: would be written inside the input folder {args.input} (the result of "
                                 f"{path}; it would be read as an input next time), so give an output folder outside "
                                 "it")
            if target in by_output:
                raise UsageError(f"{by_output[target]} and {path} would both be written to {target}; rename one or "
                                 "run them separately")
            by_output[target] = path
    for target in by_output:
        check_free(target, args.overwrite)
    if args.overwrite:
        for job in jobs:
            if job.kind == "dicom":
                job.replaces = replaced_series_files(job.targets(output, args.suffix), inputs)


def check_free(target: Path, overwrite: bool) -> None:
    """A result path holding anything (a file, a folder, a link) is refused unless ``overwrite`` and it is a file;
    so is one whose folder cannot be made because a file holds its place (never replaced, even with ``overwrite``)."""
    existing = next(parent for parent in target.parents if os.path.lexists(parent))
    if not existing.is_dir():
        raise UsageError(f"{existing} exists and is not a folder; {target} needs a folder there, so move it or give "
                         "another output folder")
    if not os.path.lexists(target):
        return
    if os.path.isdir(target):
        raise UsageError(f"{target} exists and is a folder; --overwrite replaces files only, so move it or give "
                         "another output folder")
    if not overwrite:
        raise UsageError(f"{target} exists (use --overwrite to replace it)")


def series_uid(path: Path) -> str | None:
    """The SeriesInstanceUID of a DICOM file (header only), None when it is not a readable DICOM or has none."""
    import pydicom

    try:
        return str(pydicom.dcmread(str(path), stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
                   .SeriesInstanceUID) or None
    except (*dicom_reading.dicom_errors(), AttributeError):  # not DICOM, truncated, no UID (AttributeError): it is
        return None  # replaced as a file, nothing else goes with it


def replaced_series_files(targets: list[Path], keep: set[Path]) -> list[Path]:
    """With ``--overwrite``: the other files of every series one of ``targets`` replaces, in the targets' folders.
    They are removed once the new series is written, so a folder never holds a mix of the old series and the new
    one (a 3-slice result replaced by a 2-slice one would otherwise keep the old third slice)."""
    uids = {uid for target in targets if target.is_file() for uid in [series_uid(target)] if uid}
    if not uids:
        return []
    chosen = set(targets)
    folders = {target.parent for target in targets}
    return sorted(path for folder in folders for path in folder.glob("*") if path.suffix.lower() == ".dcm"
                  and path.is_file() and path not in chosen and path.resolve() not in keep
                  and series_uid(path) in uids)


def check_device(device: str) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {device}: no CUDA GPU is available here (use --device cpu)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medsr-infer", description=__doc__.split("\n\n")[0])
    parser.add_argument("-i", "--input", type=Path, required=True,
                        help="image / volume file, or a folder (its sub-folders too; the layout is kept)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output folder (not an input folder)")
    parser.add_argument("--model", required=True, help="BasicSR net_g checkpoint (SEEDSRGenerator or any BasicSR "
                        "generator)")
    parser.add_argument("--opt", help="the option file (or recipe name) the checkpoint was trained with, for a "
                        "checkpoint that does not record its network_g")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace result files that already exist (never an input). Without it a result path "
                        "that holds a file is an error before anything is written: Real-ESRGAN's "
                        "inference_realesrgan.py writes with cv2.imwrite over whatever is there, but a scan folder "
                        "holds other acquisitions, which must not be lost silently. A DICOM result replaces the old "
                        "series whole: the other files of a series it replaces are removed once the new series is "
                        "written, so a folder never mixes two series")
    parser.add_argument("--scale", type=int, help="expected scale (checked against the checkpoint)")
    parser.add_argument("--tile", type=int, default=0, help="LR tile size in pixels; 0 = whole image when it fits")
    parser.add_argument("--tile-pad", "--tile_pad", type=int, default=4, dest="tile_pad",
                        help="LR halo around each tile (>= 4)")
    parser.add_argument("-s", "--outscale", type=float, help="final scale of images: the network's result resized "
                        "(Lanczos) to outscale x the input size, as Real-ESRGAN does; default: the model's scale")
    parser.add_argument("--suffix", default="", help="appended to result names: <stem>_<suffix> (Real-ESRGAN's "
                        "default is 'out'; ours is none)")
    parser.add_argument("--ext", default="png", choices=("png", "auto", "jpg", "tif", "bmp"),
                        help="image result format: png (default, lossless), auto (the input's format), jpg, tif, bmp")
    parser.add_argument("--precision", choices=PRECISIONS, help="network precision for 8-bit images (default fp32; "
                        "fp16 needs CUDA; bf16 on a CPU without avx512_bf16 / amx_bf16 is slower than fp32, a "
                        "warning says so); 16-bit images always run in fp32")
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
    parser.add_argument("--nonfinite", type=float, metavar="VALUE",
                        help="NIfTI: replace NaN / +-inf voxels by VALUE (a warning counts them); without it they "
                        "are an error, since the network would spread each over its whole slice")
    add_verbosity_arguments(parser)
    return parser


def network_for(image, models: dict[str, torch.nn.Module], path: Path,
                console: Console | None = None) -> torch.nn.Module:
    """The reduced-precision network for 8-bit images; float32 for 16-bit ones, whose 65,536 levels a float16
    (11 significant bits) or bfloat16 (8) network cannot carry (a note says so on ``console``)."""
    if image.dtype == np.uint16 and "reduced" in models:
        if console is not None:
            console.note(f"{path}: 16-bit image, computed in fp32 (reduced precision would lose depth)")
        return models["fp32"]
    return models.get("reduced", models["fp32"])


def what_goes_in(job: Job, models: dict[str, torch.nn.Module]) -> tuple[torch.nn.Module, tuple[int, ...], np.dtype,
                                                                        intensity_models.IntensityModel | None]:
    """(network, shape, dtype, intensity model) of what one job hands to ``upscale``: an image as read (reading it
    is its readability check), a volume's in-plane slices."""
    if job.kind == "image":
        image = read_image(job.paths[0])
        return network_for(image, models, job.name), image.shape, image.dtype, None
    volume = job.volume
    return models["fp32"], tuple(volume.values.shape[a] for a in volume.in_plane_axes), volume.values.dtype, \
        job.intensity


def check_inputs(jobs: list[Job], models: dict[str, torch.nn.Module], args: argparse.Namespace,
                 budget: int) -> None:
    """Every input checked against the model before any work, so that a folder is done whole or not at all: each
    image read (readable) and checked as :func:`~medsr_se.inference.upscale.upscale` would check it (type,
    channels, size: :func:`~medsr_se.inference.upscale.check_image`) with its memory plan; each volume's slices
    for size and memory. The first problem is one error naming the file."""
    for job in jobs:
        model, shape, dtype, intensity = what_goes_in(job, models)
        try:
            check_image(shape, dtype, model, intensity)
            plan_tile(model, shape[0], shape[1], args.tile, budget, args.tile_pad)
        except ValueError as error:
            raise UsageError(f"{job.name}: {error}") from error


def final_resize(result: np.ndarray, image: np.ndarray, outscale: float | None, model_scale: int) -> np.ndarray:
    """Real-ESRGAN's ``--outscale``: the network's result resized (Lanczos) to outscale x the input size."""
    if not outscale or outscale == model_scale:
        return result
    height, width = image.shape[:2]
    size = (max(1, round(width * outscale)), max(1, round(height * outscale)))
    return cv2.resize(result, size, interpolation=cv2.INTER_LANCZOS4)


def upscale_image(job: Job, models: dict[str, torch.nn.Module], args: argparse.Namespace, budget: int,
                  console: Console) -> None:
    """Read, super-resolve and write one image file (atomically, checked); progress per tile or per block."""
    path = job.paths[0]
    image = read_image(path)
    model = network_for(image, models, path, console)
    try:
        tile = tile_for(model, plan_tile(model, image.shape[0], image.shape[1], args.tile, budget, args.tile_pad))
        if tile and not args.tile:
            console.note(f"{path}: too large for whole-image inference here; tiling with --tile {tile}")
        console.detail(f"{path}: {image.shape[1]}x{image.shape[0]} {image.dtype}, "
                       f"{'tile ' + str(tile) if tile else 'whole image'}")
        large = image.shape[0] * image.shape[1] >= OWN_PROGRESS_PIXELS
        progress = (lambda total: console.progress(total, f"{path}:")) if large else None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = upscale(image, model, tile, args.tile_pad, progress=progress)
        for warning in caught:
            console.warning(f"{path}: {warning.message}")
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    result = final_resize(result, image, args.outscale, model.upscale)
    target = job.targets(args.output, args.suffix, args.ext)[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    write_image(target, result)
    console.detail(f"{path} -> {target}")


def volume_intensity(volume: volumes.Volume, training: TrainingData, args: argparse.Namespace):
    """--window / --intensity, else the checkpoint's intensity model, else the modality's default."""
    if args.window:
        return intensity_models.ct_window(args.window)
    if args.intensity:
        return intensity_models.measured(volume.values, args.intensity)
    recorded = training.intensity_model()
    if recorded is not None:
        return recorded
    modality = "CT" if volume.unit == "HU" else volume.modality
    return intensity_models.choose(None, modality, volume.values)


def intensity_option(training: TrainingData, args: argparse.Namespace) -> str:
    """What chose a volume's intensity model, for messages: the option, the checkpoint, or the default."""
    if args.window:
        return f"--window {args.window}"
    if args.intensity:
        return f"--intensity {args.intensity}"
    if training.intensity_model() is not None:
        return f"the checkpoint's intensity model ({args.model})"
    return "the default intensity model"


def check_intensities(jobs: list[Job], training: TrainingData, args: argparse.Namespace, console: Console) -> None:
    """Every volume's intensity model, chosen and checked before any work: a window its values collapse in is an
    error naming the option and the file, one that leaves them few levels a warning (intensity.window_fit)."""
    for job in jobs:
        if job.volume is None:
            continue
        job.intensity = volume_intensity(job.volume, training, args)
        where = f"{intensity_option(training, args)}: {job.volume.name}"
        try:
            warning = intensity_models.window_fit(job.intensity, job.volume.values, where)
        except ValueError as error:
            raise UsageError(str(error)) from error
        if warning:
            console.warning(warning)


def warn_mismatch(volume: volumes.Volume, model: torch.nn.Module, training: TrainingData, console: Console) -> None:
    """A warning when the checkpoint's recorded modality or channel count does not fit a volume."""
    trained_on = training.modality
    if input_channels(model) != 1:
        console.warning(f"{volume.name}: the model takes {input_channels(model)}-channel images "
                        f"({trained_on or 'colour photographs'}); this is a gray {volume.modality or 'volume'}: "
                        "expect artefacts, use a gray model (options/x4_gray.yml)")
    elif trained_on and volume.modality and trained_on != volume.modality:
        console.warning(f"{volume.name}: the model was trained on {trained_on}, this volume is {volume.modality}")


def upscale_volume_job(job: Job, models: dict[str, torch.nn.Module], training: TrainingData,
                       args: argparse.Namespace, budget: int, console: Console) -> None:
    """Every in-plane slice through the network (fp32), written as a volume of the same kind."""
    volume, model = job.volume, models["fp32"]
    warn_mismatch(volume, model, training, console)
    mapping = job.intensity or volume_intensity(volume, training, args)
    slices = len(volume.slice_indices())
    console.note(f"{volume.name}: {slices} slice(s), intensity {mapping.describe()}")
    outside = mapping.outside(volume.values)
    if outside:
        console.warning(f"{volume.name}: {outside} of {volume.values.size} values lie outside "
                        f"{mapping.range_text()}; the network sees them clipped to it")
    step = console.progress(slices)

    def one_slice(values: np.ndarray) -> np.ndarray:
        tile = plan_tile(model, values.shape[0], values.shape[1], args.tile, budget, args.tile_pad)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # counted once for the whole volume above
            return upscale(values, model, tile, args.tile_pad, intensity=mapping, out_dtype=np.float32)

    try:
        values = volumes.upscale_volume(volume, one_slice, model.upscale, lambda _done, _total: step())
    except ValueError as error:
        raise ValueError(f"{volume.name}: {error}") from error
    targets = job.targets(args.output, args.suffix)
    description = (f"super-resolution x{model.upscale} by medsr-se {type(model).__name__} ({Path(args.model).name}), "
                   f"intensity {mapping.describe()}")
    with warnings.catch_warnings(record=True) as caught:  # the result is published whole or not at all
        warnings.simplefilter("always")
        if job.kind == "nifti":
            nifti.write_nifti(volume, values, model.upscale, targets[0])
        else:
            series = dicom_derived.derived_series(volume, values, model.upscale, description)
            dicom_derived.write_dicom_series((dataset, target) for (_, dataset), target in zip(series, targets))
    for warning in caught:
        console.warning(str(warning.message))
    if job.kind == "dicom":
        remove_replaced(job, console)


def remove_replaced(job: Job, console: Console) -> None:
    """--overwrite: once the new series is complete, the rest of the series it replaced goes too (never a mix)."""
    for path in job.replaces:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as error:
            raise WriteError(f"{path}: cannot remove this file of the replaced series ({error.strerror or error}); "
                             "the folder now holds two series") from error
    if job.replaces:
        console.note(f"{job.name}: --overwrite removed {len(job.replaces)} more file(s) of the series it replaced "
                     f"({job.replaces[0].parent})")


def load_models(args: argparse.Namespace, precision: str) -> dict[str, torch.nn.Module]:
    """``fp32`` always; ``reduced`` too for --precision bf16 / fp16."""
    model = load_generator(args.model, device=args.device, options=network_option_file(args.opt),
                           upscale=args.scale)  # a --scale mismatch of a through-plane model says what it is
    height_scale, width_scale = getattr(model, "scale_hw", (model.upscale, model.upscale))
    if height_scale != width_scale:
        raise UsageError(f"--model {args.model}: a through-plane model (upscale [{height_scale}, {width_scale}]) "
                         f"works on whole thick-slice scans: medsr-selfsr -i SCAN -o OUT --model {args.model}")
    models = {"fp32": model}
    if precision != "fp32":
        models["reduced"] = copy.deepcopy(model).to(PRECISIONS[precision])
        try:  # tried once here rather than failing at the first image
            probe_forward(models["reduced"])
        except RuntimeError as error:  # SwinIR: its attention mask stays float32 and meets bf16 values
            raise UsageError(f"--precision {precision}: {type(model).__name__} cannot run in {precision} "
                             f"({one_line(error)}); use fp32") from error
    return models


def note_tiling(model: torch.nn.Module, args: argparse.Namespace, console: Console) -> None:
    """A note when ``--tile`` is rounded up to the multiple the network's input needs (SwinIR's window)."""
    if args.tile and tile_for(model, args.tile) != args.tile:
        console.note(f"--tile {args.tile}: {type(model).__name__} takes multiples of {input_multiple(model)} pixels "
                     f"({multiple_reason(model)}), so tiles of {tile_for(model, args.tile)} are used")


def check_arguments(args: argparse.Namespace) -> str:
    """Every option checked before any work; the precision to use."""
    if args.tile < 0:
        raise UsageError(f"--tile {args.tile}: must be 0 (whole image) or a positive tile size")
    if args.outscale is not None and args.outscale <= 0:
        raise UsageError(f"-s/--outscale {args.outscale}: must be positive")
    if args.suffix and any(c in args.suffix for c in "/\\"):
        raise UsageError(f"--suffix {args.suffix!r}: may not contain a path separator")
    check_device(str(args.device))
    precision = args.precision or args.precision_alias or "fp32"
    if precision == "fp16" and not str(args.device).startswith("cuda"):
        raise UsageError("--precision fp16 / --fp16 needs a CUDA device (--device cuda); on a CPU use bf16")
    if args.nonfinite is not None and not np.isfinite(args.nonfinite):
        raise UsageError(f"--nonfinite {args.nonfinite}: the replacement must be a finite number")
    if args.window and args.intensity:
        raise UsageError(f"--window {args.window} and --intensity {args.intensity}: both choose the intensity model "
                         "(one would be ignored); give one")
    if args.window:
        try:
            intensity_models.ct_window(args.window)
        except ValueError as error:
            raise UsageError(f"--window: {error}") from error
    return precision


def run(args: argparse.Namespace) -> int:
    console = Console(args.verbosity)
    precision = check_arguments(args)
    root = args.input if args.input.is_dir() else args.input.parent
    with warnings.catch_warnings(record=True) as caught:  # what reading noticed: replaced values, slice spacing
        warnings.simplefilter("always")
        jobs = collect_jobs(input_files(args.input), args.axis, root, args.nonfinite)
    for warning in caught:
        console.warning(str(warning.message))
    if args.outscale and any(job.kind != "image" for job in jobs):
        raise UsageError("-s/--outscale: applies to images only; volumes keep the model's scale (their geometry "
                         "follows it)")
    chosen = f"--window {args.window}" if args.window else f"--intensity {args.intensity}" if args.intensity else ""
    if chosen and all(job.kind == "image" for job in jobs):
        raise UsageError(f"{chosen}: applies to CT/MRI volumes (DICOM, NIfTI); the inputs are images only, which "
                         "map their type's full range")
    check_outputs(jobs, args)
    if precision == "bf16":
        warn_slow_bf16(args.device, "--precision bf16", console.warning)
    models = load_models(args, precision)
    model = models["fp32"]
    training = load_training_data(args.model)
    check_intensities(jobs, training, args, console)
    budget = memory_budget(args.device)
    check_inputs(jobs, models, args, budget)
    note_tiling(model, args, console)
    try:
        args.output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WriteError(f"{args.output}: cannot create the output folder ({error.strerror or error})") from error
    images = [job for job in jobs if job.kind == "image"]
    step = console.progress(len(images), f"{len(images)} image(s)") if len(images) > 1 else (lambda: None)
    for job in jobs:
        if job.kind == "image":
            upscale_image(job, models, args, budget, console)
            step()
        else:
            upscale_volume_job(job, models, training, args, budget, console)
    console.result(f"{len(images)} image(s), {len(jobs) - len(images)} volume(s) x{model.upscale} -> {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log_to_stderr(args.verbosity)  # the library's records: -v adds the warnings of loading (debug)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # our messages name the file instead
    try:
        return run(args)
    except (FileNotFoundError, ValueError, CheckpointError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""``medsr-infer``: super-resolve images with a trained SEEDSRGenerator (or any BasicSR generator) checkpoint.

    medsr-infer -i photo.png -o out/ --model experiments/SEEDSR_GAN_x4/models/net_g_latest.pth
    medsr-infer -i folder/ -o out/ --model net_g.pth --scale 4 --tile 256     # large images, bounded memory

Images (png, jpg, tif, ppm/pgm, bmp) keep their bit depth and channels; CT/MRI volumes (NIfTI, DICOM series or
multi-frame files, with the ``medical`` extra) are upscaled in-plane slice by slice and written as the same kind.
What each step does lives in the library: the jobs (:mod:`medsr_se.inference.jobs`), where results may go
(:mod:`medsr_se.inference.output_policy`), a volume's intensity model (:mod:`medsr_se.inference.volume_intensity`),
reduced precision (:mod:`medsr_se.inference.model_copies`), checking and running each job
(:mod:`medsr_se.inference.upscale_jobs`). Every input and every result path is checked before any work: a folder is
done whole or not at all (docs/inference.md, docs/safety.md). This module parses the flags, calls those functions
and shows their errors as one ``error:`` line under this command's flags (:data:`FLAGS`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from medsr_se.cli.console import Console, add_verbosity_arguments
from medsr_se.cli.messages import about_given_path, error_line, show_flags
from medsr_se.errors import MedSRError, UsageError, WriteError
from medsr_se.inference import memory_budget
from medsr_se.inference.checkpoint import load_training_data, network_option_file
from medsr_se.inference.jobs import collect_jobs, input_files
from medsr_se.inference.model_copies import PRECISIONS, load_models
from medsr_se.inference.output_policy import check_outputs
from medsr_se.inference.upscale_jobs import check_inputs, note_tile_rounding, upscale_image, upscale_volume_job
from medsr_se.inference.volume_intensity import check_intensities
from medsr_se.io import intensity as intensity_models
from medsr_se.utils.logs import log_to_stderr
from medsr_se.utils.precision import warn_slow_bf16

# the library's parameter names -> this command's flags, for its errors and log lines (medsr_se.cli.messages)
FLAGS = {"output": "-o", "checkpoint": "--model", "options": "--opt", "overwrite": "--overwrite", "tile": "--tile",
         "tile_pad": "--tile-pad", "outscale": "-s/--outscale", "precision": "--precision", "device": "--device",
         "window": "--window", "measure": "--intensity", "axis": "--axis", "nonfinite": "--nonfinite"}


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


def check_arguments(args: argparse.Namespace) -> str:
    """Every flag checked before any work; the precision to use."""
    if args.tile < 0:
        raise UsageError(f"--tile {args.tile}: must be 0 (whole image) or a positive tile size")
    if args.outscale is not None and args.outscale <= 0:
        raise UsageError(f"-s/--outscale {args.outscale}: must be positive")
    if args.suffix and any(c in args.suffix for c in "/\\"):
        raise UsageError(f"--suffix {args.suffix!r}: may not contain a path separator")
    if str(args.device).startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {args.device}: no CUDA GPU is available here (use --device cpu)")
    precision = args.precision or args.precision_alias or "fp32"
    if precision == "fp16" and not str(args.device).startswith("cuda"):
        raise UsageError("--precision fp16 / --fp16 needs a CUDA device (--device cuda); on a CPU use bf16")
    if args.nonfinite is not None and not np.isfinite(args.nonfinite):
        raise UsageError(f"--nonfinite {args.nonfinite}: the replacement must be a finite number")
    if args.window and args.intensity:
        raise UsageError(f"--window {args.window} and --intensity {args.intensity}: both choose the intensity model "
                         "(one would be ignored); give one")
    if args.window:
        intensity_models.ct_window(args.window)  # an OptionError naming window=
    return precision


def check_kinds(args: argparse.Namespace, jobs: list) -> None:
    """Flags that apply to one kind of input only, refused when there is none of that kind."""
    if args.outscale and any(job.kind != "image" for job in jobs):
        raise UsageError("-s/--outscale: applies to images only; volumes keep the model's scale (their geometry "
                         "follows it)")
    chosen = f"--window {args.window}" if args.window else f"--intensity {args.intensity}" if args.intensity else ""
    if chosen and all(job.kind == "image" for job in jobs):
        raise UsageError(f"{chosen}: applies to CT/MRI volumes (DICOM, NIfTI); the inputs are images only, which "
                         "map their type's full range")


def run(args: argparse.Namespace) -> int:
    console = Console(args.verbosity)
    precision = check_arguments(args)
    root = args.input if args.input.is_dir() else args.input.parent
    jobs = collect_jobs(input_files(args.input), args.axis, root, args.nonfinite)
    check_kinds(args, jobs)
    check_outputs(jobs, args.output, args.input, args.suffix, args.ext, args.overwrite)
    if precision == "bf16":
        warn_slow_bf16(args.device, "--precision bf16")
    models = load_models(args.model, args.device, network_option_file(args.opt), args.scale, precision)
    training = load_training_data(args.model)
    check_intensities(jobs, training, args.window, args.intensity, args.model)
    tiling = {"budget": memory_budget(args.device), "tile": args.tile, "tile_pad": args.tile_pad}
    check_inputs(jobs, models, **tiling)
    note_tile_rounding(models["fp32"], args.tile)
    try:
        args.output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WriteError(f"{args.output}: cannot create the output folder ({error.strerror or error})") from error
    images = [job for job in jobs if job.kind == "image"]
    step = console.progress(len(images), f"{len(images)} image(s)") if len(images) > 1 else (lambda: None)
    for job in jobs:
        if job.kind == "image":
            upscale_image(job, models, args.output, outscale=args.outscale, suffix=args.suffix, ext=args.ext,
                          progress=console.progress, **tiling)
            step()
        else:
            upscale_volume_job(job, models, training, args.output, checkpoint=args.model, suffix=args.suffix,
                               progress=console.progress, **tiling)
    scale = models["fp32"].upscale
    console.result(f"{len(images)} image(s), {len(jobs) - len(images)} volume(s) x{scale} -> {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    log_to_stderr(args.verbosity)  # the library's notes and warnings; -v adds the warnings of loading (debug)
    show_flags(FLAGS)
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # our messages name the file instead
    try:
        return run(args)
    except MedSRError as error:
        print(f"error: {error_line(error, FLAGS)}", file=sys.stderr)
    except OSError as error:
        if not about_given_path(error, (args.input, args.output, args.model, args.opt)):
            raise  # a bug: its traceback
        print(f"error: {error}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())

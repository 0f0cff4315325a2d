"""``medsr-infer``: super-resolve images with a trained SEEDSRGenerator checkpoint.

    medsr-infer -i photo.png -o out/ --model experiments/SEEDSR_GAN_x4/models/net_g_latest.pth
    medsr-infer -i folder/ -o out/ --model net_g.pth --scale 4 --tile 256     # large images, bounded memory

Reads png, jpg, tif/tiff, ppm/pgm, bmp and (with the ``dicom`` extra) single-frame monochrome DICOM ``.dcm``; keeps
each image's bit depth (8 / 16) and channel count (a gray image through an RGB model is converted and back) and
writes ``<output>/<stem>.png``, or ``<stem>.dcm`` for DICOM: the input's header with the new size, pixel spacing
divided by the scale, a new SOP instance UID and the same pixel type (signed 16-bit pixels, as CT stores them, go
through the network offset by 32768 into the unsigned range and come back signed). The architecture and scale are
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
from pathlib import Path

import cv2
import numpy as np
import torch
from mmengine.utils import ProgressBar

from medsr_se.imageio import SUFFIXES, WriteError, read_dicom, read_image, write_dicom, write_image
from medsr_se.inference import CheckpointError, load_generator, memory_budget, plan_tile, upscale

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class UsageError(ValueError):
    """A command line that cannot work; the message names the option or file."""


def input_files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in SUFFIXES)
        if files:
            return files
        raise FileNotFoundError(f"{source}: no images ({', '.join(SUFFIXES)})")
    raise FileNotFoundError(f"input not found: {source}")


def output_path(path: Path, output: Path) -> Path:
    return output / f"{path.stem}{'.dcm' if path.suffix.lower() == '.dcm' else '.png'}"


def check_outputs(files: list[Path], output: Path) -> None:
    """Refuse, before any work, an output folder that would write over an input or two inputs sharing a name."""
    if output.exists() and not output.is_dir():
        raise UsageError(f"-o {output}: is a file; give a folder for the results")
    by_output: dict[Path, Path] = {}
    inputs = {path.resolve() for path in files}
    for path in files:
        target = output_path(path, output)
        if target.resolve() in inputs or path.resolve().parent == output.resolve():
            raise UsageError(f"-o {output}: is the folder of the input {path}; results would replace inputs, so "
                             "give another output folder")
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
    return parser


def network_for(image, models: dict[str, torch.nn.Module], path: Path) -> torch.nn.Module:
    """The reduced-precision network for 8-bit images; float32 for 16-bit ones, whose 65,536 levels a float16
    (11 significant bits) or bfloat16 (8) network cannot carry."""
    if image.dtype == np.uint16 and "reduced" in models:
        print(f"note: {path}: 16-bit image, computed in fp32 (reduced precision would lose depth)", file=sys.stderr)
        return models["fp32"]
    return models.get("reduced", models["fp32"])


def upscale_file(path: Path, models: dict[str, torch.nn.Module], args: argparse.Namespace, budget: int) -> None:
    """Read, super-resolve and write one file (atomically, checked)."""
    dicom = None
    if path.suffix.lower() == ".dcm":
        dicom, image = read_dicom(path)
    else:
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
    target = output_path(path, args.output)
    if dicom is not None:
        write_dicom(dicom, result, model.upscale, target)
    else:
        write_image(target, result)


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
    files = input_files(args.input)
    check_outputs(files, args.output)
    models = load_models(args, precision)
    model = models["fp32"]
    try:
        args.output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WriteError(f"{args.output}: cannot create the output folder ({error.strerror or error})") from error
    budget = memory_budget(args.device)
    bar = ProgressBar(len(files), file=sys.stderr)
    for path in files:
        upscale_file(path, models, args, budget)
        bar.update()
    sys.stderr.write("\n")
    print(f"{len(files)} image(s) x{model.upscale} -> {args.output}")
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

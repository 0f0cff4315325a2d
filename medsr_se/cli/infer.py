"""``medsr-infer``: super-resolve images with a trained SEEDSRGenerator checkpoint.

    medsr-infer -i photo.png -o out/ --model experiments/SEEDSR_GAN_x4/models/net_g_latest.pth
    medsr-infer -i folder/ -o out/ --model net_g.pth --scale 4 --tile 256     # large images, bounded memory

Reads png, jpg, tif/tiff, ppm/pgm, bmp and (with the ``dicom`` extra) single-frame monochrome DICOM ``.dcm``; keeps
each image's bit depth (8 / 16) and channel count (a gray image through an RGB model is converted and back) and
writes ``<output>/<stem>.png``, or ``<stem>.dcm`` for DICOM: the input's header with the new size, pixel spacing
divided by the scale, a new SOP instance UID and the same pixel type (signed 16-bit pixels, as CT stores them, go
through the network offset by 32768 into the unsigned range and come back signed). The architecture and scale are
read from the checkpoint (``params_ema`` if present); ``--scale`` only checks it. ``--tile`` splits the LR image
into tiles whose result equals whole-image inference (see medsr_se.archs.seedsr_tiling).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import torch
from mmengine.utils import ProgressBar

from medsr_se.imageio import SUFFIXES, read_dicom, read_image, write_dicom
from medsr_se.inference import CheckpointError, load_generator, upscale


def input_files(source: Path) -> list[Path]:
    if source.is_file():
        return [source]
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in SUFFIXES)
        if files:
            return files
        raise FileNotFoundError(f"{source}: no images ({', '.join(SUFFIXES)})")
    raise FileNotFoundError(f"input not found: {source}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="medsr-infer", description=__doc__.split("\n\n")[0])
    parser.add_argument("-i", "--input", type=Path, required=True, help="image file or folder")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    parser.add_argument("--model", required=True, help="BasicSR net_g checkpoint of a SEEDSRGenerator")
    parser.add_argument("--scale", type=int, help="expected scale (checked against the checkpoint)")
    parser.add_argument("--tile", type=int, default=0, help="LR tile size in pixels; 0 = whole image")
    parser.add_argument("--tile-pad", type=int, default=4, help="LR halo around each tile (>= 4)")
    parser.add_argument("--fp16", action="store_true", help="half precision (CUDA only)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    try:
        if args.fp16 and not str(args.device).startswith("cuda"):
            raise ValueError("--fp16 needs a CUDA device (--device cuda)")
        files = input_files(args.input)
        model = load_generator(args.model, device=args.device, upscale=args.scale)
        if args.fp16:
            model = model.half()
        args.output.mkdir(parents=True, exist_ok=True)
        bar = ProgressBar(len(files), file=sys.stderr)
        for path in files:
            dicom = None
            if path.suffix.lower() == ".dcm":
                dicom, image = read_dicom(path)
            else:
                image = read_image(path)
            try:
                result = upscale(image, model, args.tile, args.tile_pad)
            except ValueError as error:
                raise ValueError(f"{path}: {error}") from error
            if dicom is not None:
                write_dicom(dicom, result, model.upscale, args.output / f"{path.stem}.dcm")
            else:
                cv2.imwrite(str(args.output / f"{path.stem}.png"), result)
            bar.update()
        sys.stderr.write("\n")
    except (FileNotFoundError, ValueError, CheckpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(files)} image(s) x{model.upscale} -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

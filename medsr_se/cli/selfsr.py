"""``medsr-selfsr``: through-plane super-resolution of one thick-slice CT / MRI scan, trained on the scan itself.

    medsr-selfsr -i scan.nii.gz -o out/ [--slice-thickness MM] [--scale R] [--iterations N] [-opt RECIPE]
                 [--device auto|cpu|cuda] [--model net_g.pth] [--axis 0|1|2] [--slice-profile kernel.npy] [--sheet]
    medsr-selfsr -i dicom_series_folder/ -o out/

1. Reads the scan (:func:`medsr_se.throughplane.read_scan`): r = round(slice spacing / in-plane spacing) unless
   ``--scale``; the slice profile is a Gaussian of FWHM = slice thickness (``--slice-thickness`` or the scan's).
2. Trains ``SEEDSRGenerator(upscale=[r, 1])`` on pairs from the scan's in-plane slices through BasicSR's own loop
   (:mod:`medsr_se.train`, recipe ``options/selfsr.yml`` or ``-opt``), under ``out/experiments/<scan>_selfsr_x<r>``
   with ``--auto_resume``: the same command after an interruption resumes from the last saved state. The options
   used are in ``out/<scan>_selfsr_x<r>.yml`` (``python -m medsr_se.train -opt`` that file trains the same way,
   with every BasicSR flag). ``--model net_g.pth`` skips training and reuses a trained model (same protocol).
3. Applies it to every sagittal and coronal slice, averages both, and writes the result with r times the slices:
   NIfTI ``out/<scan>_selfsr_x<r>.nii.gz`` (slice column of the affine / r, origin at the new first slice's centre)
   or, for a DICOM series, a derived series ``out/<folder>_selfsr_x<r>/`` of r·N instances. With ``--sheet`` a PNG
   of the middle sagittal and coronal slices: input (each slice repeated r times) | cubic B-spline | result.

A user mistake ends the run with one line ``error: ...`` naming the file or option and exit status 2; nothing is
overwritten (an existing result is an error).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from medsr_se import throughplane as tp
from medsr_se.cli.console import Console, add_verbosity_arguments
from medsr_se.io import volumes
from medsr_se.io.atomic import WriteError, write_atomically
from medsr_se.io.intensity import IntensityModel

DEFAULT_RECIPE = "selfsr"
SHEET_MIN_HEIGHT = 400  # pixels: the --sheet of a small scan is enlarged (nearest) to at least this height


class UsageError(ValueError):
    """A bad option; one line naming it."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medsr-selfsr", description=__doc__.split("\n\n")[0])
    parser.add_argument("-i", "--input", type=Path, required=True, help="a NIfTI file or a DICOM series folder")
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for the result and the training")
    parser.add_argument("--slice-thickness", type=float, help="mm: the slice profile's FWHM (default: the scan's)")
    parser.add_argument("--scale", type=int, help="r (default: round(slice spacing / in-plane spacing))")
    parser.add_argument("--iterations", type=int, help="training iterations (default: the recipe's total_iter)")
    parser.add_argument("-opt", "--opt", dest="recipe", default=DEFAULT_RECIPE,
                        help="training recipe: a path or a shipped name (default: selfsr)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="auto: every visible GPU, else the CPU")
    parser.add_argument("--model", type=Path, help="a trained through-plane net_g_*.pth: no training")
    parser.add_argument("--axis", type=int, choices=[0, 1, 2], help="the slice axis (needed for a 4-D NIfTI)")
    parser.add_argument("--slice-profile", type=Path, help="a .npy kernel (taps in in-plane pixels)")
    parser.add_argument("--sheet", action="store_true", help="also write a PNG of sagittal and coronal views")
    parser.add_argument("--nonfinite", type=float, metavar="VALUE",
                        help="replace NaN / ±inf voxels by VALUE (default: they are an error)")
    add_verbosity_arguments(parser)
    return parser


def result_name(source: Path, r: int) -> str:
    stem = volumes.nifti_stem(source) if volumes.is_nifti(source) else source.resolve().name
    return f"{stem}_selfsr_x{r}"


def check_arguments(args: argparse.Namespace) -> None:
    if args.iterations is not None and args.iterations < 1:
        raise UsageError(f"--iterations {args.iterations}: must be at least 1")
    if args.scale is not None and not tp.MIN_SCALE <= args.scale <= tp.MAX_SCALE:
        raise UsageError(f"--scale {args.scale}: must be an integer from {tp.MIN_SCALE} to {tp.MAX_SCALE}")
    if args.output.exists() and not args.output.is_dir():
        raise UsageError(f"-o {args.output}: is a file; give a folder for the results")
    if args.model is not None and not args.model.is_file():
        raise UsageError(f"--model {args.model}: no such file")
    if args.nonfinite is not None and not np.isfinite(args.nonfinite):
        raise UsageError(f"--nonfinite {args.nonfinite}: the replacement must be a finite number")
    if args.slice_profile is not None:
        tp.load_profile(args.slice_profile)  # ThroughPlaneError naming the file
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA GPU is available here (use --device cpu)")


def training_options(args: argparse.Namespace, scan: tp.Scan, r: int, name: str) -> dict:
    """The recipe with what this scan decides: the volume, r, the generator's [r, 1], a gt_size that r divides."""
    from medsr_se.utils.options import OptionFileError, load_recipe

    try:
        options = load_recipe(args.recipe)
    except (OptionFileError, FileNotFoundError, OSError) as error:
        raise UsageError(f"-opt {args.recipe}: {error}") from error
    train = options.setdefault("datasets", {}).setdefault("train", {})
    smallest = min(scan.values.shape[a] for a in scan.volume.in_plane_axes)
    gt_size = max(r, min(int(train.get("gt_size") or 64), smallest) // r * r)
    train.update(volumes=[str(args.input.resolve())], axis=scan.geometry.axis, gt_size=gt_size,
                 slice_thickness=scan.geometry.slice_thickness,
                 slice_profile=str(args.slice_profile.resolve()) if args.slice_profile else None,
                 nonfinite=args.nonfinite)
    options["name"] = name
    options["scale"] = r
    options.setdefault("network_g", {})["upscale"] = [r, 1]
    if args.iterations is not None:
        options.setdefault("train", {})["total_iter"] = args.iterations
    if args.device == "cpu":
        options["num_gpu"] = 0
    return options


@contextlib.contextmanager
def working_directory(folder: Path):
    """BasicSR puts experiments/ and finds --auto_resume states under the working directory."""
    previous = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(previous)


def train(options: dict, output: Path, name: str, console: Console) -> Path:
    """BasicSR's training loop (medsr_se.train's pipeline, ``--auto_resume``); the trained net_g_latest.pth."""
    import basicsr.train

    from medsr_se.train import run_pipeline
    from medsr_se.utils.options import check_training_options, dump_yaml

    option_file = dump_yaml(options, output.resolve() / f"{name}.yml")
    console.note(f"training {options['train'].get('total_iter')} iterations through BasicSR's loop "
                 f"(options: {option_file}; log: {output / 'experiments' / name})")
    argv = sys.argv[:]
    sys.argv[:] = ["medsr-selfsr", "-opt", str(option_file), "--auto_resume"]
    try:
        with working_directory(output):
            status = run_pipeline(basicsr.train, "train_pipeline", check_training_options)
    finally:
        sys.argv[:] = argv
    if status:
        raise UsageError("training stopped (the message above)")
    model = output / "experiments" / name / "models" / "net_g_latest.pth"
    if not model.is_file():
        raise UsageError(f"training ended without {model}")
    return model


def load_model(path: Path, r: int, device: str):
    from medsr_se.inference import load_generator

    net = load_generator(str(path), device="cuda" if device != "cpu" and _cuda() else "cpu")
    if net.scale_hw != (r, 1):
        trained = f"upscale [{net.scale_hw[0]}, 1]" if net.scale_hw[1] == 1 else f"upscale {net.upscale}"
        raise UsageError(f"--model {path}: trained with {trained}, but this scan needs [{r}, 1] (give --scale to "
                         "choose r)")
    return net


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def write_result(scan: tp.Scan, values: np.ndarray, r: int, target: Path) -> None:
    if scan.volume.kind == "nifti":
        volumes.write_nifti_through_plane(scan.volume, values, r, target)
        return
    description = f"medsr-selfsr through-plane SR x{r} (self-supervised, slice spacing / {r})"
    series = volumes.through_plane_series(scan.volume, values, r, description)
    volumes.write_dicom_series((dataset, target / name) for name, dataset in series)


PANEL_TITLES = ("input (slices repeated)", "cubic B-spline", "medsr-selfsr")
SHEET_MIN_PANEL_WIDTH = 200  # pixels: narrow views are enlarged so that each panel's title fits above it
LABEL_HEIGHT = 36  # pixels of the title strip above each row of panels (two lines of text)


def sheet_image(source: np.ndarray, result: np.ndarray, axis: int, r: int,
                intensity: IntensityModel) -> np.ndarray:
    """The --sheet as a uint8 image. ``source``: the 3-D scan (slice axis ``axis``); ``result``: its r·N-slice
    result. One row per in-plane axis (the middle slice across it; title ``across axis A, slice M``), three
    panels per row: the input with each slice repeated r times | cubic B-spline (scipy) | the result; each voxel a
    block of ``enlarge`` pixels (nearest), the same for every panel."""
    from scipy import ndimage

    zoom = [1.0] * 3
    zoom[axis] = r
    volumes_shown = (np.repeat(source, r, axis=axis), ndimage.zoom(source, zoom, order=3, mode="nearest",
                                                                   grid_mode=True), result)
    rows = []
    for across in (a for a in (0, 1, 2) if a != axis):
        middle = source.shape[across] // 2
        views = [np.clip(intensity.to_unit(np.moveaxis(volume, (across, axis), (0, 1))[middle]), 0, 1)
                 for volume in volumes_shown]
        rows.append((f"across axis {across}, slice {middle}", views))
    height = sum(views[0].shape[0] for _, views in rows)
    narrowest = min(views[0].shape[1] for _, views in rows)
    enlarge = max(1, -(-SHEET_MIN_HEIGHT // height), -(-SHEET_MIN_PANEL_WIDTH // narrowest))
    images = [labelled_row(title, views, enlarge) for title, views in rows]
    width = max(image.shape[1] for image in images)
    return np.vstack([np.pad(image, ((0, 2), (0, width - image.shape[1]))) for image in images])


def labelled_row(title: str, views: list[np.ndarray], enlarge: int) -> np.ndarray:
    """Three views in [0, 1] side by side (uint8, each voxel ``enlarge`` x ``enlarge`` pixels) under a strip of two
    text lines: the row's ``title``, then each panel's title above it."""
    import cv2

    panels = [np.kron(np.round(view * 255).astype(np.uint8), np.ones((enlarge, enlarge), np.uint8))
              for view in views]
    strip = np.zeros((LABEL_HEIGHT, sum(panel.shape[1] for panel in panels)), np.uint8)
    cv2.putText(strip, title, (4, LABEL_HEIGHT // 2 - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 255, 1, cv2.LINE_AA)
    left = 0
    for panel_title, panel in zip(PANEL_TITLES, panels):
        cv2.putText(strip, panel_title, (left + 4, LABEL_HEIGHT - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 255, 1,
                    cv2.LINE_AA)
        left += panel.shape[1]
    return np.vstack([strip, np.hstack(panels)])


def write_sheet(scan: tp.Scan, values: np.ndarray, r: int, path: Path) -> None:
    """:func:`sheet_image` of the scan's first 3-D volume, written atomically as a PNG."""
    import cv2

    first = (...,) + (0,) * (scan.values.ndim - 3)
    image = sheet_image(scan.values[first], values[first], scan.geometry.axis, r, tp.intensity_for(scan.values))

    def write(temporary: Path) -> None:
        ok, encoded = cv2.imencode(".png", image)
        if not ok:
            raise OSError(f"cannot encode {path}")
        temporary.write_bytes(encoded.tobytes())

    write_atomically(path, write)


def run(args: argparse.Namespace, console: Console) -> int:
    check_arguments(args)
    with warnings.catch_warnings(record=True) as caught:  # replaced non-finite voxels: one line each
        warnings.simplefilter("always")
        scan = tp.read_scan(args.input, args.axis, args.slice_thickness, args.nonfinite)
    for warning in caught:
        console.warning(str(warning.message))
    r = tp.choose_scale(scan.geometry, scan.name, args.scale)
    name = result_name(args.input, r)
    target = args.output / (f"{name}.nii.gz" if scan.volume.kind == "nifti" else name)
    if target.exists():
        raise UsageError(f"{target}: exists; remove it or choose another -o (nothing was overwritten)")
    geometry = scan.geometry
    net = load_model(args.model, r, args.device) if args.model is not None else None
    console.note(f"{scan.name}: slice spacing {geometry.slice_spacing:g} mm, in-plane {geometry.in_plane_spacing:g} "
                 f"mm, thickness {geometry.slice_thickness:g} mm -> r = {r}, slice profile FWHM "
                 f"{geometry.fwhm_pixels:.3g} px")
    args.output.mkdir(parents=True, exist_ok=True)
    if args.model is None:
        model_path = train(training_options(args, scan, r, name), args.output, name, console)
        net = load_model(model_path, r, args.device)
    else:
        model_path = args.model
    slices = sum(scan.values.shape[a] for a in scan.volume.in_plane_axes)
    values, new_geometry = tp.apply_network(
        scan.values, geometry, net,
        progress=lambda total: console.progress(total, f"applying the network to {slices} sagittal and coronal "
                                                       "slices"))
    write_result(scan, values, r, target)
    if args.sheet:
        write_sheet(scan, values, r, args.output / f"{name}_sheet.png")
    console.result(f"{target}: {values.shape[geometry.axis]} slices of {new_geometry.slice_spacing:g} mm "
                   f"(from {scan.values.shape[geometry.axis]} of {geometry.slice_spacing:g} mm; model {model_path})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(args.verbosity)
    from medsr_se.inference import CheckpointError

    try:
        return run(args, console)
    except (UsageError, tp.ThroughPlaneError, volumes.VolumeError, CheckpointError, WriteError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

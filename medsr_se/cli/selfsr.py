"""``medsr-selfsr``: through-plane super-resolution of one thick-slice CT / MRI scan, trained on the scan itself.

    medsr-selfsr -i scan.nii.gz -o out/ [--slice-thickness MM] [--scale R] [--iterations N] [-opt RECIPE]
                 [--device auto|cpu|cuda] [--model net_g.pth] [--axis 0|1|2] [--slice-profile kernel.npy] [--sheet]
    medsr-selfsr -i dicom_series_folder/ -o out/

1. Reads the scan (:func:`medsr_se.throughplane.read_scan`): r = round(slice spacing / in-plane spacing) unless
   ``--scale``; the slice profile is a Gaussian of FWHM = slice thickness (``--slice-thickness``, else the scan's:
   DICOM SliceThickness, or SliceThickness in the BIDS sidecar ``scan.json`` that dcm2niix writes beside
   ``scan.nii.gz``; else assumed = the slice spacing, with a warning). A note says which profile and where from.
2. Trains ``SEEDSRGenerator(upscale=[r, 1])`` on pairs from the scan's in-plane slices through BasicSR's own loop
   (:mod:`medsr_se.train`, recipe ``options/selfsr.yml`` or ``-opt``), under ``out/experiments/<scan>_selfsr_x<r>``
   with ``--auto_resume``: the same command after an interruption resumes from the last saved state. Only the
   same scan (the sha256 of its voxel values) with the same model and data options (more ``--iterations`` may
   differ) resumes: the options file records them (``selfsr_fingerprint``) and BasicSR copies it into the
   experiment; for another scan or, e.g., another ``--slice-thickness``, a note says what differs, BasicSR moves
   the experiment aside (``<scan>_selfsr_x<r>_archived_<time>``) and training starts from iteration 0. The options
   used are in ``out/<scan>_selfsr_x<r>.yml`` (``python -m medsr_se.train -opt`` that file trains the same way,
   with every BasicSR flag). ``--model net_g.pth`` skips training and reuses a trained model (same protocol).
3. Applies it to every sagittal and coronal slice, averages both, and writes the result with r times the slices:
   NIfTI ``out/<scan>_selfsr_x<r>.nii.gz`` (slice column of the affine / r, origin at the new first slice's centre)
   or, for a DICOM series, a derived series ``out/<folder>_selfsr_x<r>/`` of r·N instances. With ``--sheet`` a PNG
   of the middle sagittal and coronal slices: input (each slice repeated r times) | cubic B-spline | result.

A user mistake ends the run with one line ``error: ...`` naming the file or option and exit status 2; nothing is
overwritten (an existing result or ``--sheet`` PNG is an error). Every check (the recipe included, and whether
``-o`` can be written) comes before anything is created under ``-o``; a run that fails later removes the folders it
created while they are empty, and an options file it wrote when training never began. Warnings (the library's,
torch's) are one ``warning: ...`` line each.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from medsr_se import throughplane as tp
from medsr_se.cli.console import Console, add_verbosity_arguments, log_to_stderr
from medsr_se.errors import UsageError
from medsr_se.evaluation.sheets import write_sheet
from medsr_se.integration.experiment_state import (
    FINGERPRINT_KEY,
    forget_basicsr_logger,
    may_resume,
    training_fingerprint,
)
from medsr_se.io import dicom_derived, volumes
from medsr_se.io.publish import (
    WriteError,
    check_writable_folder,
    make_folder_checked,
    remove_empty_folders,
    write_atomically,
)

DEFAULT_RECIPE = "selfsr"



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medsr-selfsr", description=__doc__.split("\n\n")[0])
    parser.add_argument("-i", "--input", type=Path, required=True, help="a NIfTI file or a DICOM series folder")
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for the result and the training")
    parser.add_argument("--slice-thickness", type=float,
                        help="mm: the slice profile's FWHM (default: DICOM SliceThickness or the BIDS sidecar "
                             "scan.json's; else the slice spacing, with a warning)")
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
    try:
        check_writable_folder(args.output)
    except WriteError as error:
        raise UsageError(f"-o {error}") from error
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
    """The recipe with what this scan decides: the volume, r, the generator's [r, 1], a gt_size that r divides;
    checked (:func:`~medsr_se.utils.options.check_training_options`, before anything is written) and with its
    :func:`training_fingerprint` under ``selfsr_fingerprint``."""
    from medsr_se.utils.options import OptionError, OptionFileError, check_training_options, load_recipe

    try:
        options = load_recipe(args.recipe)
    except (OptionFileError, FileNotFoundError, OSError) as error:
        raise UsageError(f"-opt {args.recipe}: {error}") from error
    train = options.setdefault("datasets", {}).setdefault("train", {})
    smallest = min(scan.values.shape[a] for a in scan.volume.in_plane_axes)
    gt_size = max(r, min(int(train.get("gt_size") or 64), smallest) // r * r)
    train.update(volumes=[str(args.input.resolve())], axis=scan.geometry.axis, gt_size=gt_size,
                 slice_thickness=scan.geometry.slice_thickness, slice_thickness_source=scan.geometry.thickness_source,
                 slice_profile=str(args.slice_profile.resolve()) if args.slice_profile else None,
                 nonfinite=args.nonfinite)
    options["name"] = name
    options["scale"] = r
    options.setdefault("network_g", {})["upscale"] = [r, 1]
    if args.iterations is not None:
        options.setdefault("train", {})["total_iter"] = args.iterations
    if args.device == "cpu":
        options["num_gpu"] = 0
    try:
        check_training_options(options)
    except OptionError as error:
        raise UsageError(f"-opt {args.recipe}: {error}") from error
    options[FINGERPRINT_KEY] = training_fingerprint(options, scan.values, args.slice_profile)
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
    """BasicSR's training loop (medsr_se.train's pipeline); the trained net_g_latest.pth.

    ``--auto_resume`` only where :func:`may_resume` finds the saved states trained on this scan and these options;
    otherwise BasicSR moves the experiment folder aside (``<name>_archived_<time>``) and trains from iteration 0.
    A training that stops before BasicSR made the experiment folder leaves no options file behind that this run
    wrote."""
    import basicsr.train

    from medsr_se.train import run_pipeline
    from medsr_se.utils.options import check_training_options, dump_yaml

    experiment = output / "experiments" / name
    resume = may_resume(experiment, options[FINGERPRINT_KEY])
    option_file = output.resolve() / f"{name}.yml"
    new_file = not option_file.exists()
    write_atomically(option_file, lambda temporary: dump_yaml(options, temporary))
    console.note(f"training {options['train'].get('total_iter')} iterations through BasicSR's loop "
                 f"(options: {option_file}; log: {experiment})")
    argv = sys.argv[:]
    sys.argv[:] = ["medsr-selfsr", "-opt", str(option_file), *(["--auto_resume"] if resume else [])]
    try:
        with working_directory(output):
            forget_basicsr_logger()
            status = run_pipeline(basicsr.train, "train_pipeline", check_training_options)
        if status:
            raise UsageError("training stopped (the message above)")
    except BaseException:
        if new_file and not experiment.exists():
            option_file.unlink(missing_ok=True)
        raise
    finally:
        sys.argv[:] = argv
    model = experiment / "models" / "net_g_latest.pth"
    if not model.is_file():
        raise UsageError(f"training ended without {model}")
    return model


def load_model(path: Path, r: int, device: str):
    """The through-plane generator in ``path`` for r; UsageError naming ``--model`` for one that cannot be: an
    in-plane (isotropic) model, which --scale cannot fix (medsr-selfsr needs upscale [r, 1]); a through-plane model
    of another r (--scale can choose that r); one for other than 1-channel (gray) images."""
    from medsr_se.inference import load_generator

    net = load_generator(str(path), device="cuda" if device != "cpu" and _cuda() else "cpu")
    height, width = getattr(net, "scale_hw", (net.upscale, net.upscale))
    if width != 1:
        factor = f"x{height} on both axes" if height == width else f"x{height} by x{width}"
        raise UsageError(f"--model {path}: an in-plane model ({factor}); medsr-selfsr needs a through-plane model "
                         "(upscale [r, 1]) trained by medsr-selfsr: leave out --model to train one on this scan")
    if height != r:
        raise UsageError(f"--model {path}: trained with upscale [{height}, 1], but this scan needs [{r}, 1]; give "
                         f"--scale {height} to apply it with r = {height}, or leave out --model to train one")
    channels = _channels(net)
    if channels != (1, 1):
        raise UsageError(f"--model {path}: a through-plane model for {channels[0]}-channel images; a CT / MRI scan "
                         "is 1-channel (gray): give a 1-channel model trained by medsr-selfsr")
    return net


def _channels(net) -> tuple[int, int]:
    """(input, output) channels: those of the network's first and last convolution."""
    import torch

    convolutions = [module for module in net.modules() if isinstance(module, torch.nn.Conv2d)]
    return convolutions[0].in_channels, convolutions[-1].out_channels


def note_slice_profile(console: Console, scan: tp.Scan, r: int, profile_file: Path | None) -> None:
    """What the run rests on: the spacings, r, and the slice profile with where it came from
    (``SliceGeometry.thickness_source`` or ``--slice-profile``); a warning when the thickness is assumed (a gap or
    an overlap between slices makes that profile wrong)."""
    geometry = scan.geometry
    if profile_file is not None:
        profile = f"{tp.load_profile(profile_file).name} (from --slice-profile)"
    else:
        profile = (f"Gaussian FWHM {geometry.slice_thickness:g} mm = {geometry.fwhm_pixels:.3g} px "
                   f"({geometry.thickness_source})")
    console.note(f"{scan.name}: slice spacing {geometry.slice_spacing:g} mm, in-plane {geometry.in_plane_spacing:g} "
                 f"mm -> r = {r}; slice profile: {profile}")
    if profile_file is None and geometry.thickness_assumed:
        console.warning(f"{scan.name}: the slice thickness is not known, so the slice profile assumes it equals the "
                        f"slice spacing ({geometry.slice_spacing:g} mm); with a gap or an overlap between slices "
                        "that is wrong: give --slice-thickness MM (the protocol's slice thickness)")


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def write_result(scan: tp.Scan, values: np.ndarray, r: int, target: Path) -> None:
    if scan.volume.kind == "nifti":
        volumes.write_nifti_through_plane(scan.volume, values, r, target)
        return
    description = f"medsr-selfsr through-plane SR x{r} (self-supervised, slice spacing / {r})"
    series = dicom_derived.through_plane_series(scan.volume, values, r, description)
    dicom_derived.write_dicom_series((dataset, target / name) for name, dataset in series)


def estimate_thickness(scan: tp.Scan, console: Console) -> tp.Scan:
    """A scan that does not say its slice thickness: the thickness estimated from it when the estimate is reliable
    (:func:`~medsr_se.data.profile_estimation.with_estimated_thickness`), said in a warning: the training pairs
    rest on it."""
    from medsr_se.data.profile_estimation import with_estimated_thickness

    geometry, estimate, line = with_estimated_thickness(scan.geometry, scan.values, scan.name)
    if geometry is scan.geometry:
        console.note(line)
        return scan
    console.warning(line)
    return dataclasses.replace(scan, geometry=geometry)


def run(args: argparse.Namespace, console: Console) -> int:
    check_arguments(args)
    with warnings.catch_warnings(record=True) as caught:  # replaced non-finite voxels: one line each
        warnings.simplefilter("always")
        scan = tp.read_scan(args.input, args.axis, args.slice_thickness, args.nonfinite)
    for warning in caught:
        console.warning(one_line(warning.message))
    r = tp.choose_scale(scan.geometry, scan.name, args.scale)
    name = result_name(args.input, r)
    target = args.output / (f"{name}.nii.gz" if scan.volume.kind == "nifti" else name)
    sheet = args.output / f"{name}_sheet.png"
    for result in (target, sheet) if args.sheet else (target,):
        if result.exists() or result.is_symlink():
            raise UsageError(f"{result}: exists; remove it or choose another -o (nothing was overwritten)")
    if args.model is None and args.slice_profile is None and scan.geometry.thickness_assumed:
        scan = estimate_thickness(scan, console)
    geometry = scan.geometry
    net = load_model(args.model, r, args.device) if args.model is not None else None
    options = training_options(args, scan, r, name) if args.model is None else None  # -opt checked: nothing made yet
    note_slice_profile(console, scan, r, args.slice_profile)
    try:
        created = make_folder_checked(args.output)
    except WriteError as error:
        raise UsageError(f"-o {error}") from error
    try:
        if options is not None:
            model_path = train(options, args.output, name, console)
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
            write_sheet(scan, values, r, sheet)
    except BaseException:  # whatever stopped it: the folders this run made stay only if they hold something
        remove_empty_folders(created)
        raise
    console.result(f"{target}: {values.shape[geometry.axis]} slices of {new_geometry.slice_spacing:g} mm "
                   f"(from {scan.values.shape[geometry.axis]} of {geometry.slice_spacing:g} mm; model {model_path})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(args.verbosity)
    log_to_stderr(args.verbosity)  # the library's log records (medsr_se logger): note: / warning: lines
    from medsr_se.inference import CheckpointError

    with warnings.catch_warnings():  # Python warnings (ours, torch's, ...): one warning: line each
        warnings.showwarning = warning_printer(console)
        try:
            return run(args, console)
        except (UsageError, tp.ThroughPlaneError, volumes.VolumeError, CheckpointError, WriteError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2


def one_line(message: Warning | str) -> str:
    """A warning's text on one line (torch's span several)."""
    return " ".join(str(message).split())


def warning_printer(console: Console) -> Callable[..., None]:
    """A ``warnings.showwarning`` that prints ``warning: <message>`` on one line (Python's prints the file, the
    line number, the category and the source line)."""
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        console.warning(one_line(message))

    return show


if __name__ == "__main__":
    sys.exit(main())

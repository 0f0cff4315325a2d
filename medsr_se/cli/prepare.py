"""``medsr-prepare``: STARE (or any fundus / medical image set) -> BasicSR-ready paired data.

    medsr-prepare all-images.zip                  # -> datasets/STARE
    medsr-prepare stare.tar -o datasets/STARE --scales 4 8 16 --skip-bad
    medsr-prepare ct_series/ -o datasets/CT --scales 4 --window soft-tissue    # DICOM / NIfTI volumes
    medsr-prepare --verify datasets/STARE

What is made and how: :mod:`medsr_se.prepare.orchestration`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from pathlib import Path

import lmdb

from medsr_se.cli.console import QUIET, VERBOSE, Console, add_verbosity_arguments, log_to_stderr
from medsr_se.errors import MedSRError
from medsr_se.io.intensity import CT_WINDOWS, ct_window
from medsr_se.prepare import DEFAULT_OUTPUT, Params, prepare
from medsr_se.prepare.volume_slices import VolumeOptions


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medsr-prepare", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("source", nargs="?", type=Path,
                        help="STARE all-images.zip, a tar of .ppm.gz, a folder of images, or CT/MRI volumes (a folder "
                        "of DICOM series / NIfTI files, or one such file)")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT, help="output folder")
    parser.add_argument("--scales", type=int, nargs="+", default=[4, 8, 16], help="LR scales to make")
    parser.add_argument("--n-test", type=int, default=20, help="images in the test split (STARE: 397 = 377 + 20)")
    parser.add_argument("--test-list", type=Path, help="file with the test stems, one per line (overrides --n-test)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the train/test split")
    parser.add_argument("--crop-size", type=int, default=448, help="training sub-image size (HR pixels; larger than "
                        "the recipes' largest gt_size, 384, so every scale gets random crops)")
    parser.add_argument("--step", type=int, default=192, help="training sub-image step (HR pixels)")
    parser.add_argument("--gray", action="store_true", help="one channel (CT/MRI); default: 3-channel BGR")
    parser.add_argument("--keep-depth", action="store_true", help="keep 16-bit pixels; default: convert to 8-bit")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output (once complete)")
    parser.add_argument("--skip-bad", action="store_true", help="leave unreadable images out (recorded)")
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument("--window", help=f"CT volumes: intensity window in HU, one of {', '.join(CT_WINDOWS)} or "
                        "LOW,HIGH (default for CT in HU: full)")
    parser.add_argument("--intensity", choices=("percentile", "minmax"), help="volumes without HU (MRI): "
                        "normalise by the dataset's 0.5/99.5th percentiles (default) or min/max")
    parser.add_argument("--axis", type=int, choices=(0, 1, 2), default=2, help="NIfTI: the slice axis")
    parser.add_argument("--mixed-modalities", action="store_true", help="pool volumes of different modalities "
                        "(CT in HU, MR, NIfTI, ...) into one intensity model; refused by default, since one window "
                        "cannot fit HU and MR values alike")
    parser.add_argument("--verify", type=Path, metavar="DIR", help="check a prepared dataset and exit")
    add_verbosity_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verify is not None:
        from medsr_se.prepare.verify import verify

        problems = verify(args.verify)
        for problem in problems:
            print(f"problem: {problem}", file=sys.stderr)
        print(f"{args.verify}: {'OK' if not problems else f'{len(problems)} problem(s)'}")
        return 1 if problems else 0
    if args.source is None:
        build_parser().error("give the STARE archive or image folder (or --verify DIR)")
    test_list = None
    if args.test_list is not None:
        if not args.test_list.is_file():
            print(f"error: --test-list {args.test_list}: no such file", file=sys.stderr)
            return 2
        test_list = [line.strip() for line in args.test_list.read_text().splitlines() if line.strip()]
    if args.window and args.intensity:
        print(f"error: --window {args.window} and --intensity {args.intensity}: both choose the intensity model (one "
              "would be ignored); give one", file=sys.stderr)
        return 2
    if args.window:
        try:
            ct_window(args.window)
        except ValueError as error:
            print(f"error: --window: {error}", file=sys.stderr)
            return 2
    params = Params(tuple(sorted(set(args.scales))), args.crop_size, args.step, args.gray, args.keep_depth)
    volume_options = VolumeOptions(args.window, args.intensity, args.axis, args.mixed_modalities)
    console = Console(args.verbosity)
    log_to_stderr(args.verbosity)  # the preparation's notes / warnings; -q: none (the logger's level), no bar
    try:
        with warnings.catch_warnings() if args.verbosity == QUIET else contextlib.nullcontext():
            if args.verbosity == QUIET:  # the volume readers' warnings too: -q prints errors only
                warnings.simplefilter("ignore")
            manifest = prepare(args.source, args.output, params, args.n_test, args.seed, test_list, args.overwrite,
                               args.skip_bad, args.workers, volume_options=volume_options,
                               progress=args.verbosity > QUIET)
    except (MedSRError, FileNotFoundError) as error:  # PrepareError, LockedError, WriteError
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (OSError, lmdb.Error) as error:  # read-only or full disk, a path under a regular file, ...
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        where = getattr(error, "filename", None) or args.output
        print(f"error: {where}: cannot write the dataset ({reason}); nothing was published", file=sys.stderr)
        return 2
    counts = manifest["counts"]
    console.result(f"{args.output}: {counts['train_images']} train images ({counts['train_pieces']} sub-images), "
                   f"{counts['test_images']} test images, scales {list(params.scales)}, "
                   f"{len(manifest['skipped'])} skipped")
    for entry in manifest["skipped"]:
        console.warning(f"skipped: {entry['error']}")
    conversions: dict[str, int] = {}
    for image_notes in manifest["notes"].values():
        for note in image_notes:
            conversions[note] = conversions.get(note, 0) + 1
    for note, count in sorted(conversions.items()):
        console.note(f"{count} image(s): {note}")
    if args.verbosity >= VERBOSE:
        for split, stems in manifest["split"].items():
            console.detail(f"{split}: {', '.join(stems)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``medsr-prepare``: STARE (or any fundus / medical image set) -> BasicSR-ready paired data.

    medsr-prepare all-images.zip                  # -> datasets/STARE
    medsr-prepare stare.tar -o datasets/STARE --scales 4 8 16 --skip-bad
    medsr-prepare ct_series/ -o datasets/CT --scales 4 --window soft-tissue    # DICOM / NIfTI volumes
    medsr-prepare --verify datasets/STARE

What is made and how: :mod:`medsr_se.prepare.orchestration`. The library names its parameters in messages
(``crop_size=250 ...``, ``pass skip_bad=True ...``); this command shows its flags instead (:data:`FLAGS`,
:func:`medsr_se.cli.messages.error_line`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from medsr_se.cli.console import QUIET, VERBOSE, Console, add_verbosity_arguments
from medsr_se.cli.messages import error_line, with_flags
from medsr_se.errors import MedSRError
from medsr_se.io.intensity import CT_WINDOWS
from medsr_se.prepare import DEFAULT_OUTPUT, Params, prepare
from medsr_se.prepare.volume_slices import VolumeOptions
from medsr_se.utils.logs import log_to_stderr

# the library's parameter (prepare(), Params, VolumeOptions) -> this command's flag
FLAGS = {"scales": "--scales", "crop_size": "--crop-size", "step": "--step", "n_test": "--n-test",
         "test_list": "--test-list", "seed": "--seed", "gray": "--gray", "keep_depth": "--keep-depth",
         "overwrite": "--overwrite", "skip_bad": "--skip-bad", "workers": "--workers", "window": "--window",
         "intensity": "--intensity", "axis": "--axis", "mixed": "--mixed-modalities", "output": "-o"}
def on_given_paths(error: OSError, source: Path, output: Path) -> bool:
    """Whether ``error`` is about a path the user gave: the source or a file in it, the output, a folder above it or
    a file beside it (its lock and working folders), or no file at all (a write to them: a full disk)."""
    names = [Path(os.path.abspath(os.fsdecode(name))) for name in (error.filename, error.filename2)
             if isinstance(name, (str, bytes, os.PathLike))]
    source, output = Path(os.path.abspath(source)), Path(os.path.abspath(output))
    return all(name.is_relative_to(source) or output.is_relative_to(name) or name.is_relative_to(output.parent)
               for name in names)


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
    log_to_stderr(args.verbosity)  # the preparation's notes and warnings (Python's too); -q: errors only
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
    params = Params(tuple(sorted(set(args.scales))), args.crop_size, args.step, args.gray, args.keep_depth)
    volume_options = VolumeOptions(args.window, args.intensity, args.axis, args.mixed_modalities)
    console = Console(args.verbosity)
    try:
        manifest = prepare(args.source, args.output, params, args.n_test, args.seed, test_list, args.overwrite,
                           args.skip_bad, args.workers, volume_options=volume_options,
                           progress=args.verbosity > QUIET)
    except MedSRError as error:  # PrepareError, LockedError, WriteError
        print(f"error: {error_line(error, FLAGS)}", file=sys.stderr)
        return 2
    except OSError as error:
        if not on_given_paths(error, args.source, args.output):
            raise  # not the user's to fix: a bug, or a fault of the machine, with its traceback
        if isinstance(error, FileNotFoundError):  # the source, or a folder of it, is not there
            print(f"error: {with_flags(str(error), FLAGS)}", file=sys.stderr)
            return 2
        reason = error.strerror or str(error)  # the output: read-only or full disk, a path under a regular file
        where = error.filename or args.output
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
        console.note(f"{count} image(s): {with_flags(note, FLAGS)}")
    if args.verbosity >= VERBOSE:
        for split, stems in manifest["split"].items():
            console.detail(f"{split}: {', '.join(stems)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What every command prints, at one of three levels: ``-q`` (errors only), default, ``-v`` (more detail).

Errors are always printed (``error: ...`` on stderr, by each command); notes, warnings and progress bars go to
stderr at the default level; ``-v`` adds per-item details; results (tables, summaries) go to stdout unless ``-q``.

Library code (``medsr_se.prepare``, ...) logs its notes and warnings through ``logging.getLogger(__name__)``, under
the ``medsr_se`` logger; :func:`log_to_stderr` prints them as ``note: ...`` / ``warning: ...`` lines, and the
verbosity is the logger's level (``-q``: errors only).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from medsr_se.utils.logs import LEVELS, NORMAL, PACKAGE_LOGGER, QUIET, VERBOSE, log_to_stderr

__all__ = ["LEVELS", "NORMAL", "PACKAGE_LOGGER", "QUIET", "VERBOSE", "Console", "add_verbosity_arguments",
           "log_to_stderr"]


def add_verbosity_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_const", const=QUIET, dest="verbosity", default=NORMAL,
                       help="print errors only")
    group.add_argument("-v", "--verbose", action="store_const", const=VERBOSE, dest="verbosity",
                       help="print more detail (per file and per step)")


class Console:
    def __init__(self, verbosity: int = NORMAL) -> None:
        self.verbosity = verbosity

    def note(self, message: str) -> None:
        if self.verbosity >= NORMAL:
            print(f"note: {message}", file=sys.stderr, flush=True)

    def warning(self, message: str) -> None:
        if self.verbosity >= NORMAL:
            print(f"warning: {message}", file=sys.stderr, flush=True)

    def detail(self, message: str) -> None:
        if self.verbosity >= VERBOSE:
            print(message, file=sys.stderr, flush=True)

    def result(self, message: str, end: str = "\n") -> None:
        if self.verbosity >= NORMAL:
            print(message, end=end, flush=True)

    def progress(self, total: int, label: str = "") -> Callable[[], None]:
        """A function to call once per finished step of ``total``: a progress bar on stderr (none with ``-q``)."""
        if self.verbosity < NORMAL or total <= 0:
            return lambda: None
        from mmengine.utils import ProgressBar

        if label:
            print(label, file=sys.stderr, flush=True)
        bar = ProgressBar(total, file=sys.stderr)
        done = [0]

        def step() -> None:
            bar.update()
            done[0] += 1
            if done[0] == total:
                sys.stderr.write("\n")

        return step

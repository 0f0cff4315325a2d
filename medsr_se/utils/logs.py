"""The ``medsr_se`` logger's stderr lines: library code logs through ``logging.getLogger(__name__)`` (under the
``medsr_se`` logger) and never prints; :func:`log_to_stderr` shows its records as ``note: ...`` / ``warning: ...``
/ ``error: ...`` lines, at the verbosity a command was given (``-q``: errors only, ``-v``: details)."""

from __future__ import annotations

import logging
import sys

QUIET, NORMAL, VERBOSE = 0, 1, 2
PACKAGE_LOGGER = "medsr_se"
LEVELS = {QUIET: logging.ERROR, NORMAL: logging.INFO, VERBOSE: logging.DEBUG}
PREFIXES = {logging.INFO: "note", logging.WARNING: "warning", logging.ERROR: "error"}


class _StderrLines(logging.Handler):
    """``note: ...`` (INFO) / ``warning: ...`` / ``error: ...`` on whatever ``sys.stderr`` is at the time."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            prefix = PREFIXES.get(record.levelno)
            message = record.getMessage()
            print(f"{prefix}: {message}" if prefix else message, file=sys.stderr, flush=True)
        except (OSError, ValueError):  # a closed or broken stderr: the message is lost, not the run
            self.handleError(record)


def log_to_stderr(verbosity: int = NORMAL) -> logging.Logger:
    """The ``medsr_se`` logger printing to stderr at ``verbosity`` (one handler, however often it is called)."""
    logger = logging.getLogger(PACKAGE_LOGGER)
    for handler in [h for h in logger.handlers if isinstance(h, _StderrLines)]:
        logger.removeHandler(handler)
    logger.addHandler(_StderrLines())
    logger.setLevel(LEVELS[verbosity])
    return logger

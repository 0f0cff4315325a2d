"""The ``medsr_se`` logger's stderr lines: library code logs through ``logging.getLogger(__name__)`` (under the
``medsr_se`` logger) and never prints; :func:`log_to_stderr` shows its records as ``note: ...`` / ``warning: ...``
/ ``error: ...`` lines, at the verbosity a command was given (``-q``: errors only, ``-v``: details).

Python warnings are not a second channel: the library never reports through them (a deprecation for Python
callers aside), so a warning a command meets is another library's (torch's exporter notice, numpy's, BasicSR's);
:func:`log_to_stderr` routes them into logging at debug level, one line each (shown with ``-v``)."""

from __future__ import annotations

import logging
import sys
import warnings

QUIET, NORMAL, VERBOSE = 0, 1, 2
PACKAGE_LOGGER = "medsr_se"
LEVELS = {QUIET: logging.ERROR, NORMAL: logging.INFO, VERBOSE: logging.DEBUG}
PREFIXES = {logging.INFO: "note", logging.WARNING: "warning", logging.ERROR: "error"}
PYTHON_WARNINGS_LOGGER = f"{PACKAGE_LOGGER}.python_warnings"


class _StderrLines(logging.Handler):
    """``note: ...`` (INFO) / ``warning: ...`` / ``error: ...`` on whatever ``sys.stderr`` is at the time."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            prefix = PREFIXES.get(record.levelno)
            message = record.getMessage()
            print(f"{prefix}: {message}" if prefix else message, file=sys.stderr, flush=True)
        except (OSError, ValueError):  # a closed or broken stderr: the message is lost, not the run
            self.handleError(record)


def log_python_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A ``warnings.showwarning`` that logs the warning's text on one line (torch's span several) at debug level.
    Where it was raised says nothing about whose it is: torch attributes its exporter's notice to the line of ours
    that called it."""
    logging.getLogger(PYTHON_WARNINGS_LOGGER).debug("%s", " ".join(str(message).split()))


def log_to_stderr(verbosity: int = NORMAL) -> logging.Logger:
    """The ``medsr_se`` logger printing to stderr at ``verbosity`` (one handler, however often it is called), with
    Python warnings routed into it (:func:`log_python_warning`; for the rest of the process: call it from a
    command's ``main`` only)."""
    warnings.showwarning = log_python_warning
    logger = logging.getLogger(PACKAGE_LOGGER)
    for handler in [h for h in logger.handlers if isinstance(h, _StderrLines)]:
        logger.removeHandler(handler)
    logger.addHandler(_StderrLines())
    logger.setLevel(LEVELS[verbosity])
    return logger

"""Checks of what library code logs: it reports through ``logging.getLogger(__name__)`` (never ``warnings.warn``),
so its tests read ``caplog`` records of that logger instead of ``pytest.warns``."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator


def warnings_of(caplog, logger: str) -> list[str]:
    """The messages of the WARNING records ``logger`` (e.g. ``medsr_se.io.nifti``) logged so far in this test."""
    return [record.getMessage() for record in caplog.records
            if record.name == logger and record.levelno == logging.WARNING]


@contextlib.contextmanager
def logs_warning(caplog, logger: str, pattern: str | None = None) -> Iterator[list[str]]:
    """The block must log at least one WARNING record through ``logger`` (one matching the regular expression
    ``pattern``, if given); the list yielded holds the block's warning messages of that logger once it is done.
    Records logged before the block are not counted. Independent of the levels earlier tests left set (a command
    run with ``-q`` sets the ``medsr_se`` logger to ERROR): ``caplog.at_level`` sets ``logger``'s own level."""
    before = len(caplog.records)
    messages: list[str] = []
    with caplog.at_level(logging.WARNING, logger=logger):
        yield messages
    messages += [record.getMessage() for record in caplog.records[before:]
                 if record.name == logger and record.levelno == logging.WARNING]
    assert messages, f"no warning logged by {logger}"
    if pattern is not None:
        assert any(re.search(pattern, message) for message in messages), (pattern, messages)


@contextlib.contextmanager
def logs_no_warning(caplog, logger: str = "medsr_se") -> Iterator[None]:
    """The block logs no WARNING (or worse) record through ``logger`` or the loggers below it."""
    before = len(caplog.records)
    with caplog.at_level(logging.WARNING, logger=logger):
        yield
    logged = [record for record in caplog.records[before:] if record.levelno >= logging.WARNING
              and (record.name == logger or record.name.startswith(f"{logger}."))]
    assert not logged, [record.getMessage() for record in logged]


@contextlib.contextmanager
def command_logging(verbosity: int | None = None) -> Iterator[None]:
    """The ``medsr_se`` logger set up as a command sets it up (:func:`medsr_se.utils.logs.log_to_stderr`: ``note:`` /
    ``warning:`` lines on stderr), whatever earlier tests left (a command run with ``-q`` leaves its level at
    ERROR); its level, handlers and ``warnings.showwarning`` restored afterwards."""
    import warnings

    from medsr_se.utils import logs

    logger = logging.getLogger(logs.PACKAGE_LOGGER)
    level, handlers, showwarning = logger.level, list(logger.handlers), warnings.showwarning
    logs.log_to_stderr(logs.NORMAL if verbosity is None else verbosity)
    try:
        yield
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        warnings.showwarning = showwarning

"""What the library reports while one file is computed, shaped for a folder run: each record named after the file
it is about (:func:`named`), or held back while a volume's slices go through the network one by one
(:func:`held_back`: the volume's own warnings say it once for all its slices).

Both act on the handlers of the ``medsr_se`` logger (those :func:`medsr_se.utils.logs.log_to_stderr` installs, which
also carry Python warnings): without a handler there is nothing to shape, and records pass as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from medsr_se.utils.logs import PACKAGE_LOGGER

__all__ = ["held_back", "named"]


class _Named(logging.Filter):
    """``name: message`` for every record that does not start with the name already."""

    def __init__(self, name: object) -> None:
        super().__init__()
        self.prefix = f"{name}: "

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.startswith(self.prefix):
            record.msg, record.args = self.prefix + message, ()
        return True


class _HeldBack(logging.Filter):
    """Drops the records below ERROR (notes, warnings, details)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


@contextmanager
def _filtering(shaper: logging.Filter) -> Iterator[None]:
    handlers = list(logging.getLogger(PACKAGE_LOGGER).handlers)
    for handler in handlers:
        handler.addFilter(shaper)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(shaper)


@contextmanager
def named(name: object) -> Iterator[None]:
    """Inside, every record (and routed Python warning) reads ``name: message``: which file of a folder a warning
    of :func:`~medsr_se.inference.upscale.upscale` is about."""
    with _filtering(_Named(name)):
        yield


@contextmanager
def held_back() -> Iterator[None]:
    """Inside, notes and warnings are dropped, routed Python warnings included (a volume's slices: its clipped
    values, a gray volume through a colour model, said once for the whole volume by the caller); errors pass."""
    with _filtering(_HeldBack()):
        yield

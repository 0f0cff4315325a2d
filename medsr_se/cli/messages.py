"""What a command shows its user of the library's errors and log lines.

Library code names a setting by its parameter (``tile_pad=2: must be at least 4``, ``overwrite=True replaces files
only``); a command shows it under its own flag (``--tile-pad 2: must be at least 4``, ``--overwrite replaces files
only``), given ``flags``: parameter name -> flag, e.g. ``{"tile_pad": "--tile-pad", "overwrite": "--overwrite"}``.
An ``OSError`` is the user's to fix (one ``error:`` line) only when it is about a path they gave; any other is a bug
and keeps its traceback.

    error_line(error, flags)           an error's one line (:func:`medsr_se.errors.for_command`)
    show_flags(flags)                  the same for the notes and warnings the library logs from now on
    about_given_path(error, paths)     whether an OSError concerns one of the paths given (or one below it)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from medsr_se.errors import for_command
from medsr_se.utils.logs import PACKAGE_LOGGER

__all__ = ["about_given_path", "error_line", "show_flags", "with_flags"]


def _switches(text: str, flags: Mapping[str, str]) -> str:
    """A flag without a value (``--overwrite``) where the library wrote ``overwrite=True``."""
    for flag in flags.values():
        text = text.replace(f"{flag} True", flag)
    return text


def error_line(error: BaseException, flags: Mapping[str, str]) -> str:
    """``error``'s one line with the parameter it names shown as its flag (:func:`medsr_se.errors.for_command`),
    and every other parameter it mentions too (:func:`with_flags`)."""
    return with_flags(for_command(error, dict(flags)), flags).rstrip()


def with_flags(text: str, flags: Mapping[str, str]) -> str:
    """Every ``parameter=`` of ``flags`` in ``text`` (a whole word: not ``upscale=`` for ``scale``) as its flag,
    and a parameter with an underscore also where it stands bare (``test_list names ...``: no English word has
    one; not within an option path such as ``datasets:train:slice_thickness``)."""
    if not flags:
        return text
    names = "|".join(sorted(map(re.escape, flags), key=len, reverse=True))
    shown = re.sub(rf"(?<![\w./:=-])({names})=", lambda match: f"{flags[match.group(1)]} ", text)
    bare = "|".join(sorted((re.escape(name) for name in flags if "_" in name), key=len, reverse=True))
    if bare:
        shown = re.sub(rf"(?<![\w./:=-])({bare})\b(?!=)", lambda match: flags[match.group(1)], shown)
    return _switches(shown, flags)


class _FlagNames(logging.Filter):
    def __init__(self, flags: Mapping[str, str]) -> None:
        super().__init__()
        self.flags = dict(flags)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        shown = with_flags(message, self.flags)
        if shown != message:
            record.msg, record.args = shown, ()
        return True


def show_flags(flags: Mapping[str, str]) -> None:
    """The handlers of the ``medsr_se`` logger (:func:`medsr_se.utils.logs.log_to_stderr` installs one; call this
    after it) show each record's parameter names as ``flags`` (:func:`with_flags`); one such filter per handler,
    however often it is called."""
    for handler in logging.getLogger(PACKAGE_LOGGER).handlers:
        for shown in [f for f in handler.filters if isinstance(f, _FlagNames)]:
            handler.removeFilter(shown)
        handler.addFilter(_FlagNames(flags))


def about_given_path(error: BaseException, paths: Iterable[str | Path | None]) -> bool:
    """Whether ``error`` (an OSError, or a refusal that names its file) names, as its file names or in its text,
    one of ``paths``, the paths given on the command line (None: not given), or a path below one of them."""
    names = (getattr(error, "filename", None), getattr(error, "filename2", None), error)
    text = " ".join(str(part) for part in names if part)
    return any(str(path) in text for path in paths if path)

"""The errors medsr-se raises for what a user gave it: one ``MedSRError`` base, four kinds below it.

A command turns a :class:`MedSRError` (and an ``OSError`` on a path the user named) into one line ``error: ...``
and exit status 2; anything else is a bug and keeps its traceback. Each kind also derives from the built-in error
that callers caught before there was a base (``ValueError``; ``OSError`` for writes).

    MedSRError
    ├── OptionError       a bad option, option file, recipe or argument
    │   └── UsageError    a command line that cannot work (raised by the commands in ``cli/``)
    ├── DataError         an input image, scan or dataset that cannot be used as it is
    ├── CheckpointError   a model / training-state file that cannot be used
    └── WriteError        an output that could not be written (nothing half-written is left)
"""

from __future__ import annotations


class MedSRError(Exception):
    """Something the user gave (a file, an option) cannot be used; the message names it, in one line.

    Library code names a bad value by its parameter, ``axis=5: ...``, and passes ``parameter="axis"``: a command
    shows it under its own flag with :func:`for_command` (``--axis 5: ...``); a Python caller reads the name it
    passed."""

    def __init__(self, message: str = "", *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter

    def __reduce__(self):  # picklable across process pools, parameter included
        return _rebuild, (type(self), str(self), self.parameter)


def _rebuild(cls: type[MedSRError], message: str, parameter: str | None) -> MedSRError:
    return cls(message, parameter=parameter)


def for_command(error: BaseException, flags: dict[str, str]) -> str:
    """``error``'s one line as a command shows it: a leading ``parameter=`` becomes the command's flag for it
    (``flags``: parameter name -> flag, e.g. ``{"axis": "--axis"}``); other messages unchanged."""
    message = " ".join(str(error).split())
    parameter = getattr(error, "parameter", None)
    flag = flags.get(parameter) if parameter else None
    if flag and message.startswith(f"{parameter}="):
        return f"{flag} {message[len(parameter) + 1:]}"
    return message.replace(f"{parameter}=", f"{flag} ", 1) if flag else message


class OptionError(MedSRError, ValueError):
    """A bad option, option file, recipe or command-line argument."""


class DataError(MedSRError, ValueError):
    """An image, scan or dataset that cannot be used as it is."""


class CheckpointError(MedSRError, ValueError):
    """A model or training-state file that cannot be used."""


class WriteError(MedSRError, OSError):
    """An output could not be written; what was there before is unchanged."""


class UsageError(OptionError):
    """A command line that cannot work; the message names the option or file."""

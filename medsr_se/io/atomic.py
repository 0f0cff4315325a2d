"""The one atomic writer every output of medsr-se goes through (images, volumes, DICOM series, sheets, plots, ONNX).

Checkpoints are the exception: BasicSR writes them, :mod:`medsr_se.models.atomic_save` publishes them whole.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from pathlib import Path


class WriteError(OSError):
    """A file that could not be written; the message names it. Nothing is left at its path."""


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """``write(temporary)`` into a hidden file beside ``path``, flushed to disk, then renamed onto ``path``.

    ``write`` may also check what it wrote and raise (``medsr-export`` runs the exported model there). Any
    failure removes the temporary file; an OSError (full disk, read-only folder) becomes :class:`WriteError`
    naming ``path``, anything else (a failed check, an encoder's error, a bug) propagates unchanged. A reader
    never sees a partly written or unchecked file at ``path``.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        write(temporary)
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        _remove(temporary)
        raise WriteError(f"{path}: cannot write it ({error.strerror or error})") from error
    except BaseException:  # a failed check or an encoder's own error: nothing left behind, the error unchanged
        _remove(temporary)
        raise


def _remove(temporary: Path) -> None:
    with contextlib.suppress(OSError):
        temporary.unlink()

"""Publishing outputs so that a reader never sees half of one: the only module of medsr-se that renames files.

    write_atomically(path, write)        one file: written beside ``path`` under a hidden name, flushed, renamed
    write_all_or_nothing(writes)         a set of files (a DICOM series, a NIfTI, a checkpoint): all or none
    move_all_into_place(staged)          files already written elsewhere (a staging folder), moved in order, all
                                         or none
    replace_directory(finished, output)  a finished folder replaces ``output`` (a dataset), the old one kept until then
    recover_directory(output, complete)  finish or undo what a killed :func:`replace_directory` left
    exclusive_lock(output, program)      one writer of ``output`` at a time (``.<name>.lock`` beside it)
    archive_folder(folder)               ``folder`` moved aside as ``<name>_archived_<time>`` (BasicSR's naming), unique
    check_writable_folder(output)        before any work: ``output`` is, or can be made, a folder we may write
    make_folder_checked(output)          ``mkdir -p`` and a probe file; remove_empty_folders() undoes it
    MANIFEST, holds_manifest(folder)     a folder published with its ``manifest.json`` written last is complete
                                         when it holds it (a prepared dataset)

Working names are hidden siblings of the target (``.<name>.tmp-<id>``, ``.<name>.old-<id>``,
``.<name>.partial-<id>``): readers that skip hidden files never see them. A failure removes what the call wrote and
puts back what it moved aside; an ``OSError`` (full disk, read-only folder) becomes :class:`WriteError` naming the
target, any other error (a failed check, an encoder's error, a bug) propagates unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from medsr_se.errors import MedSRError, WriteError

__all__ = ["MANIFEST", "LockedError", "WriteError", "archive_folder", "check_writable_folder", "exclusive_lock",
           "hidden_sibling", "holds_manifest", "make_folder_checked", "move_all_into_place", "recover_directory",
           "remove_empty_folders", "replace_directory", "write_all_or_nothing", "write_atomically"]

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"  # written last into a folder being built: a folder holding it is complete


class LockedError(MedSRError, RuntimeError):
    """Another process holds the lock on an output; the message names it and that process."""


def hidden_sibling(path: Path, kind: str) -> Path:
    """``.<name>.<kind>-<8 hex digits>`` beside ``path``."""
    return path.with_name(f".{path.name}.{kind}-{uuid.uuid4().hex[:8]}")


def _fsync(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = " ".join(str(error).split("Traceback (most recent call last)")[0].split()) or type(error).__name__
    return text if len(text) <= 400 else text[:397] + "..."


# ------------------------------------------------------------------------------------------------------ one file
def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """``write(temporary)`` into a hidden file beside ``path``, flushed to disk, then renamed onto ``path``.

    ``write`` may also check what it wrote and raise (``medsr-export`` runs the exported model there). Any failure
    removes the temporary file; an OSError becomes :class:`WriteError` naming ``path``, anything else propagates
    unchanged. A reader never sees a partly written or unchecked file at ``path``.
    """
    path = Path(path)
    temporary = hidden_sibling(path, "tmp")
    try:
        write(temporary)
        _fsync(temporary)
        os.replace(temporary, path)
    except OSError as error:
        _remove(temporary)
        raise WriteError(f"{path}: cannot write it ({_reason(error)})") from error
    except BaseException:  # a failed check or an encoder's own error: nothing left behind, the error unchanged
        _remove(temporary)
        raise


# ------------------------------------------------------------------------------------------------- a set of files
def write_all_or_nothing(writes: Iterable[tuple[Path, Callable[[Path], None]]],
                         errors: tuple[type[BaseException], ...] = (OSError,)) -> None:
    """Every file of one result published, or none.

    Each ``write(temporary)`` goes to a hidden name beside its target, flushed to disk; folders are made as needed.
    Only when every file is written are they moved into place (:func:`move_all_into_place`). A failure at any step
    removes what this call wrote and the folders it made; what a write raises for the data or the disk
    (``errors``, e.g. a DICOM writer's ``ValueError`` as well) becomes :class:`WriteError` naming the file.
    ``writes`` may be a generator (one derived dataset in memory at a time).
    """
    staged: list[tuple[Path, Path]] = []  # (temporary, target)
    made: list[Path] = []
    target = None
    published = False
    try:
        for target, write in writes:
            target = Path(target)
            made += _make_folders(target.parent)
            temporary = hidden_sibling(target, "tmp")
            staged.append((temporary, target))
            write(temporary)
            _fsync(temporary)
        move_all_into_place(staged)
        published = True
    except WriteError:
        raise
    except errors as error:
        raise WriteError(f"{target}: cannot write it ({_reason(error)}); nothing of it was written") from error
    finally:
        if not published:
            for temporary, _ in staged:
                _remove(temporary)
            for folder in reversed(made):
                with contextlib.suppress(OSError):
                    folder.rmdir()


def move_all_into_place(staged: list[tuple[Path, Path]]) -> None:
    """Rename every ``(source, target)`` in order; a file already at a target is moved aside first and deleted once
    all are in place. On a failure the renames already done are undone (what was aside is put back) and
    :class:`WriteError` names the target."""
    done: list[tuple[Path, Path | None]] = []  # (target, the old file moved aside or None)
    target = None
    try:
        for source, target in staged:
            aside = None
            if target.is_file() or target.is_symlink():
                aside = hidden_sibling(target, "old")
                os.replace(target, aside)
            done.append((target, aside))
            os.replace(source, target)
    except OSError as error:
        for placed, aside in reversed(done):
            with contextlib.suppress(OSError):
                if aside is not None:
                    os.replace(aside, placed)
                elif placed.exists():
                    placed.unlink()
        raise WriteError(f"{target}: cannot put it in place ({_reason(error)}); nothing of it was written") from error
    for _, aside in done:
        if aside is not None:
            _remove(aside)


def _make_folders(folder: Path) -> list[Path]:
    """``folder`` and any missing parents created; the ones made, outermost first."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    made = []
    for path in reversed(missing):
        path.mkdir()
        made.append(path)
    return made


# ------------------------------------------------------------------------------------------------------- folders
def _siblings(output: Path, kind: str) -> list[Path]:
    """Hidden working folders of ``output``: ``.<name>.partial-*`` (being built) or ``.<name>.old-*`` (replaced)."""
    return sorted(output.parent.glob(f".{output.name}.{kind}-*"), key=lambda path: path.stat().st_mtime)


def holds_manifest(folder: Path) -> bool:
    """Whether ``folder`` is complete: it holds its :data:`MANIFEST`, the file written last (a prepared dataset;
    the ``complete`` test of :func:`recover_directory` for such folders)."""
    return (Path(folder) / MANIFEST).is_file()


def partial_directory(output: Path) -> Path:
    """A new hidden folder beside ``output`` to build its replacement in (found by :func:`recover_directory`)."""
    folder = hidden_sibling(output, "partial")
    folder.mkdir(parents=True)
    return folder


def replace_directory(finished: Path, output: Path) -> None:
    """Move the ``finished`` folder into place as ``output``; an existing ``output`` is moved aside first and removed
    only after the new one is in place. A kill between the two renames is repaired by :func:`recover_directory`."""
    old = hidden_sibling(output, "old")
    if output.exists():
        output.rename(old)
    finished.rename(output)
    shutil.rmtree(old, ignore_errors=True)


def recover_directory(output: Path, complete: Callable[[Path], bool]) -> None:
    """Finish or undo what a killed run left beside ``output`` (call under :func:`exclusive_lock`), never deleting a
    complete result: a ``.partial-*`` folder that is ``complete`` replaces ``output``; incomplete ones are removed;
    a replaced folder (``.old-*``) is removed once ``output`` exists, else restored as ``output``."""
    for partial in _siblings(output, "partial"):
        if complete(partial):
            log.info("publishing %s, a complete result left by an interrupted run", partial)
            replace_directory(partial, output)
        else:
            log.info("removing %s, an incomplete result left by an interrupted run", partial)
            shutil.rmtree(partial, ignore_errors=True)
    for old in reversed(_siblings(output, "old")):
        if output.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            log.info("restoring %s from %s (an interrupted replacement)", output, old)
            old.rename(output)


@contextlib.contextmanager
def exclusive_lock(output: Path, program: str) -> Iterator[None]:
    """Exclusive lock on ``output`` for one writer at a time (``.<name>.lock`` beside it, holding the pid).

    A second writer is refused with :class:`LockedError` naming the running one (``program``, pid). The lock dies
    with its process; the file is removed on the way out while still locked (a writer that opened it meanwhile sees
    that the path no longer names its file and tries again).
    """
    import fcntl

    lock_path = output.parent / f".{output.name}.lock"
    while True:
        handle = open(lock_path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise LockedError(f"{output}: another {program} (pid {owner}) is writing it; wait for it to finish or "
                              "stop it") from None
        try:
            if os.stat(lock_path).st_ino == os.fstat(handle.fileno()).st_ino:
                break
        except FileNotFoundError:
            pass
        handle.close()  # the holder removed the file between our open and our lock: take the new one
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        with contextlib.suppress(OSError):
            lock_path.unlink()
        handle.close()  # releases the lock


def archive_folder(folder: Path) -> Path:
    """Move ``folder`` aside as ``<name>_archived_<YYYYmmdd_HHMMSS>`` beside it (the name BasicSR's
    ``mkdir_and_rename`` gives), with ``_2``, ``_3``, ... when that name is taken (BasicSR's rename fails when two
    archives fall in the same second); the new path."""
    import time

    folder = Path(folder)
    base = f"{folder.name}_archived_{time.strftime('%Y%m%d_%H%M%S', time.localtime())}"
    target, number = folder.with_name(base), 1
    while target.exists():
        number += 1
        target = folder.with_name(f"{base}_{number}")
    folder.rename(target)
    return target


# ------------------------------------------------------------------------------------------ an output folder
def check_writable_folder(output: Path) -> None:
    """Before any work: ``output`` is a folder, or does not exist yet under a folder this process may write into
    (``os.access``: a read-only or immutable folder says no even to root). :class:`WriteError` naming ``output``
    otherwise; :func:`make_folder_checked` tries it for real."""
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise WriteError(f"{output}: is a file; give a folder for the results")
    if output.is_symlink() and not output.exists():
        raise WriteError(f"{output}: a link to {os.readlink(output)}, which does not exist")
    existing = next(folder for folder in (output, *output.parents, Path(".")) if folder.exists())
    if not existing.is_dir():
        raise WriteError(f"{output}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise WriteError(f"{output}: cannot write in {existing} (read-only or no permission)")


def make_folder_checked(output: Path) -> list[Path]:
    """``mkdir -p output``, then a file created and removed in it (the real test of :func:`check_writable_folder`'s
    guess); the folders this created, innermost first, for :func:`remove_empty_folders`. :class:`WriteError`
    naming ``output`` when it cannot be written (nothing created is left)."""
    output = Path(output)
    missing = [folder for folder in (output, *output.parents) if not folder.exists()]
    try:
        output.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output, prefix=".medsr-probe-"):
            pass
    except OSError as error:
        remove_empty_folders(missing)
        raise WriteError(f"{output}: cannot write there ({_reason(error)})") from error
    return missing


def remove_empty_folders(folders: list[Path]) -> None:
    """Each folder that is still empty, in the order given (innermost first); a folder that holds anything stays."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()

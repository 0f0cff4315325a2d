"""The checkpoint format: what medsr-se's models add to a BasicSR ``net_g`` checkpoint, and how any checkpoint is
read safely (weights only, nothing unpickled), with one line naming the file when it cannot be.

    saved = read_checkpoint("net_g_latest.pth")       a dict: params / params_ema, and our two entries:
    saved[NETWORK_OPTIONS_KEY]                        the network_g options the generator was built from
    saved[DATA_KEY]                                   the training set's modality and intensity model

The bottom room beside ``utils``: the models write these entries, the integration adds them to BasicSR's own
checkpoints, inference reads them.
"""

from __future__ import annotations

import logging
import pickle
import re
import struct
import sys
import warnings
from collections.abc import Callable
from os import path as osp
from pathlib import Path
from typing import TypeVar

import torch

from medsr_se.errors import CheckpointError

__all__ = ["DATA_KEY", "NETWORK_OPTIONS_KEY", "TORCH_LOAD_ERRORS", "CheckpointError", "one_line", "quietly",
           "read_checkpoint"]

logger = logging.getLogger(__name__)
T = TypeVar("T")
PACKAGE_FOLDER = Path(__file__).resolve().parent

# What our models add to a BasicSR net_g checkpoint (written by :mod:`medsr_se.models.atomic_save`)
NETWORK_OPTIONS_KEY = "medsr_se_network_g"  # the network_g options the generator was built from
DATA_KEY = "medsr_se_data"  # the training data record: modality, intensity model, dataset folder

# What torch.load(weights_only=True) raises for a file that is not a whole torch checkpoint (probed on truncated,
# empty, bit-flipped, plain-text, non-torch zip and arbitrary-pickle files, zip and legacy formats). Anything else
# (a TypeError from a wrong call, say) is a programming error and surfaces as itself.
TORCH_LOAD_ERRORS = (OSError, EOFError, RuntimeError, pickle.UnpicklingError, UnicodeDecodeError, struct.error,
                     IndexError, KeyError, AssertionError)


def quietly(run: Callable[[], T]) -> T:
    """``run()`` with the warnings of the libraries it calls (torch.load's pickle-protocol note, torch's meshgrid
    deprecation inside BasicSR's SwinIR) logged at debug level instead of printed raw: they are about the code
    that wrote or builds the network, not about the user's input (a command's ``-v`` shows them). A warning raised
    by medsr_se's own code (a deprecation) is not silenced: it is issued again as it was."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run()
    for warning in caught:
        if Path(warning.filename).resolve().is_relative_to(PACKAGE_FOLDER):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        else:
            logger.debug("%s: %s", warning.category.__name__, warning.message)
    return result


REASON_CHARACTERS = 200  # of torch's error text quoted in a message (cut at a word)
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # torch's error texts carry bold / reset codes
PICKLED_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")  # how torch's weights-only unpickler names what it refused
STATE_DICT_ADVICE = ("save the weights instead: torch.save(model.state_dict(), path) or "
                     "torch.save({'params': model.state_dict()}, path)")


def read_checkpoint(path: str) -> object:
    """``torch.load`` of ``path`` onto the CPU, weights only; FileNotFoundError when it is not a file,
    CheckpointError naming it when torch cannot read it (:data:`TORCH_LOAD_ERRORS`), in one line: a file of
    pickled Python objects (a whole model saved with ``torch.save(model)``) is named as such with how to save a
    state dict (:func:`pickled_objects`); other reasons are torch's, without its terminal codes, cut at a word."""
    if not osp.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return quietly(lambda: torch.load(path, map_location="cpu", weights_only=True))
    except pickle.UnpicklingError as error:
        objects = pickled_objects(path, error)
        if objects is None:
            raise CheckpointError(f"{path}: cannot be read as a torch checkpoint ({one_line(error)})") from error
        raise CheckpointError(f"{path}: holds {objects}, not a state dict; it is not unpickled (that can run code "
                              f"from the file): {STATE_DICT_ADVICE}") from error
    except TORCH_LOAD_ERRORS as error:
        raise CheckpointError(f"{path}: cannot be read as a torch checkpoint ({one_line(error)})") from error


def one_line(error: Exception, limit: int = REASON_CHARACTERS) -> str:
    """An error's text on one line without terminal escape codes, cut at a word boundary after ``limit``
    characters (marked by "..."); its type's name when it has no text."""
    text = " ".join(ANSI_ESCAPE.sub("", str(error)).split()) or type(error).__name__
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:(") + " ..."


def pickled_objects(path: str, error: pickle.UnpicklingError) -> str | None:
    """What torch's weights-only unpickler refused in ``path``, for the message: "a whole pickled model (EDSR,
    saved with torch.save(model))" when it holds a torch module, "pickled Python objects (...)" otherwise; None
    when nothing refused is named (a corrupt file). Nothing is unpickled or imported: the names are the global
    torch's error names (the first one met: the top-level object) and, for zip checkpoints, torch's list of the
    file's unsafe globals; a name is a module class when it is one of ``torch.nn`` or of a module already
    imported (BasicSR's archs, ours)."""
    try:
        listed = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except (ValueError, RuntimeError):  # a legacy (non-zip) file: ValueError
        listed = []
    names = list(dict.fromkeys([*PICKLED_GLOBAL.findall(str(error)), *listed]))
    if not names:
        return None
    modules = [name for name in names if is_module_class(name)]
    if modules:
        top = next((name for name in modules if not name.startswith("torch.")), modules[0])
        return f"a whole pickled model ({top.rsplit('.', 1)[-1]}, saved with torch.save(model))"
    return f"pickled Python objects ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"


def is_module_class(name: str) -> bool:
    """Whether the dotted ``name`` is a torch.nn.Module subclass, looked up in modules already imported only."""
    module_name, _, attribute = name.rpartition(".")
    found = getattr(sys.modules.get(module_name), attribute, None)
    return name.startswith("torch.nn.modules.") or (isinstance(found, type) and issubclass(found, torch.nn.Module))

"""Every error class medsr-se defines sits under one base, :class:`medsr_se.errors.MedSRError`, so a command (or a
caller) can tell "the user's input cannot be used" from a bug by one ``except``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import medsr_se
from medsr_se import errors


def _package_error_classes() -> dict[str, type]:
    found = {}
    for module_info in pkgutil.walk_packages(medsr_se.__path__, prefix="medsr_se."):
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if (inspect.isclass(value) and issubclass(value, BaseException)
                    and value.__module__ == module.__name__):
                found[f"{module.__name__}.{name}"] = value
    return found


# Exceptions that are signals, not errors: raised and caught inside one module, never reaching a caller.
SIGNALS = {"medsr_se.inference.global_reads.ReadMeasured"}  # ends a tile's forward once its read is measured


def test_every_error_class_is_a_medsr_error():
    classes = _package_error_classes()
    assert len(classes) >= 15  # the walk found the package's errors (a broken walk would pass vacuously)
    assert SIGNALS <= set(classes)  # each signal named still exists
    outside = sorted(name for name, cls in classes.items()
                     if not issubclass(cls, errors.MedSRError) and name not in SIGNALS)
    assert outside == []


def test_usage_error_is_defined_once():
    classes = _package_error_classes()
    assert [name for name in classes if name.endswith(".UsageError")] == ["medsr_se.errors.UsageError"]


def test_a_parameter_is_shown_under_the_commands_flag():
    flags = {"axis": "--axis", "slice_thickness": "--slice-thickness"}
    assert errors.for_command(errors.OptionError("axis=5: a volume has axes 0-2", parameter="axis"),
                              flags) == "--axis 5: a volume has axes 0-2"
    inside = errors.DataError("scan.nii: slice_thickness=0 mm is not a thickness", parameter="slice_thickness")
    assert errors.for_command(inside, flags) == "scan.nii: --slice-thickness 0 mm is not a thickness"
    assert errors.for_command(errors.OptionError("axis=5: no", parameter="axis"), {}) == "axis=5: no"
    assert errors.for_command(ValueError("plain\n  text"), flags) == "plain text"


def test_errors_keep_their_parameter_through_a_process_pool():
    import pickle

    for cls in (errors.OptionError, errors.DataError, errors.CheckpointError, errors.WriteError, errors.UsageError):
        copy = pickle.loads(pickle.dumps(cls("x=1: bad", parameter="x")))
        assert (type(copy), str(copy), copy.parameter) == (cls, "x=1: bad", "x")

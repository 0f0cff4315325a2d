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


def test_every_error_class_is_a_medsr_error():
    classes = _package_error_classes()
    assert len(classes) >= 15  # the walk found the package's errors (a broken walk would pass vacuously)
    outside = sorted(name for name, cls in classes.items() if not issubclass(cls, errors.MedSRError))
    assert outside == []


def test_usage_error_is_defined_once():
    classes = _package_error_classes()
    assert [name for name in classes if name.endswith(".UsageError")] == ["medsr_se.errors.UsageError"]

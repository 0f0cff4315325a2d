"""Start-up hook: when ``basicsr`` is imported, make it work on the current stack and load medsr_se into it.

Installed with medsr-se as ``medsr_se_autoload.pth`` in site-packages, which runs :func:`install` at interpreter
start (the standard ``site`` mechanism that coverage tools and editable installs use). ``install`` only puts a
finder on ``sys.meta_path``: no torch, no basicsr, nothing heavy is imported until a program imports ``basicsr``.
Then the finder

1. applies :func:`medsr_se.integration.fixes.apply_before_import` (torchvision's renamed module) so ``import basicsr``
   succeeds on torchvision >= 0.17, and
2. once basicsr's own ``__init__`` has run, imports ``medsr_se``, which applies the remaining fixes and registers
   the archs, loss, models and metrics, so BasicSR's unchanged ``basicsr/train.py``, ``basicsr/test.py`` and any
   script calling ``basicsr.train.train_pipeline`` find them.

``MEDSR_SE_NO_AUTOLOAD=1`` switches it off. Any failure becomes one warning; it never stops a program.
"""

from __future__ import annotations

import os
import sys
import warnings

ENV_SWITCH = "MEDSR_SE_NO_AUTOLOAD"
HOOKED_MODULE = "basicsr"


def _warn(stage: str, error: BaseException) -> None:
    warnings.warn(f"medsr_se autoload {stage} failed ({type(error).__name__}: {error}); basicsr works without "
                  f"medsr_se's fixes and classes (set {ENV_SWITCH}=1 to silence)", RuntimeWarning, stacklevel=2)


class _LoaderThenPlugin:
    """Runs basicsr's own loader, then loads medsr_se into it (a loader in the sense of importlib)."""

    def __init__(self, loader) -> None:
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        try:
            import medsr_se  # noqa: F401  (applies compat fixes and registers everything)
        except Exception as error:  # never break the program that imported basicsr
            _warn("loading medsr_se after basicsr", error)


class BasicsrFinder:
    """Meta path finder (duck-typed: importlib.abc costs ~10 ms at start-up) for the first ``import basicsr``."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != HOOKED_MODULE:
            return None
        import importlib.util

        sys.meta_path.remove(self)  # once: the searches below must not come back here
        try:
            from medsr_se.integration import fixes as compat

            compat.apply_before_import()
        except Exception as error:
            _warn("compatibility fix before basicsr", error)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _LoaderThenPlugin(spec.loader)
        return spec


def install() -> None:
    """Called from the .pth file at start-up; cheap, and silent unless something is wrong."""
    try:
        if os.environ.get(ENV_SWITCH, "") not in ("", "0"):
            return
        if HOOKED_MODULE in sys.modules or any(isinstance(f, BasicsrFinder) for f in sys.meta_path):
            return
        sys.meta_path.insert(0, BasicsrFinder())
    except Exception as error:
        _warn("start-up", error)

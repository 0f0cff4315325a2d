"""Make basicsr 1.4.2 (the newest release) work on the current torch / torchvision stack, and reach BasicSR's own
entry points with medsr-se's option handling: the table of :mod:`medsr_se.integration.patches`, each applied once.

Each patch module has ``needed()`` (looks at the installed basicsr / torchvision: is the upstream behaviour still
there?) and ``apply()``. :func:`apply` runs every needed one once (idempotent); a basicsr release that fixes a bug
upstream simply stops needing its patch. All of them are observable with basicsr 1.4.2, torch 2.14, torchvision
0.29:

    functional_tensor  torchvision >= 0.17 renamed a module that ``import basicsr`` needs (before the import)
    resume_state       resume on CPU, skip truncated states, find states under the experiment root
    dist_cpu           DDP without CUDA (gloo, CPU DDP)
    safe_yaml          option files are plain data (a ``!!python`` tag runs nothing)
    vgg_path           BasicSR's VGG19 file from torch's hub cache when it is there
    parse_options      one wrapper: ``--local-rank``, recipe names, safe reading, option fix-ups, checks
    network_options    BasicSR's own ``net_g`` checkpoints carry ``network_g`` (any generator loads on its own)
"""

from __future__ import annotations

import logging
from types import ModuleType

from medsr_se.integration.patches import (
    dist_cpu,
    functional_tensor,
    network_options,
    parse_options,
    resume_state,
    safe_yaml,
    vgg_path,
)
from medsr_se.utils.logs import PACKAGE_LOGGER, log_to_stderr

BEFORE_IMPORT: dict[str, ModuleType] = {"functional_tensor": functional_tensor}
AFTER_IMPORT: dict[str, ModuleType] = {
    "resume_state": resume_state,
    "dist_cpu": dist_cpu,
    "safe_yaml": safe_yaml,
    "vgg_path": vgg_path,
    "parse_options": parse_options,
    "network_options": network_options,
}
APPLIED: list[str] = []


def _run(patches: dict[str, ModuleType]) -> None:
    for name, patch in patches.items():
        if name not in APPLIED and patch.needed():
            patch.apply()
            APPLIED.append(name)


def apply_before_import() -> None:
    """The patches that must be in place before ``import basicsr`` runs (safe to call at any time)."""
    _run(BEFORE_IMPORT)


def default_logging() -> None:
    """medsr_se's log records (these patches' warnings, the library's notes) print as ``warning: ...`` /
    ``note: ...`` on stderr unless the ``medsr_se`` logger has a handler already: the commands set theirs from
    ``-q`` / ``-v``; training through BasicSR's entry points has no such flag, and BasicSR's own logger must not be
    touched before its pipeline sets it up."""
    if not logging.getLogger(PACKAGE_LOGGER).handlers:
        log_to_stderr()


def apply() -> None:
    """Apply every patch that the installed basicsr still needs, importing basicsr on the way. Idempotent."""
    default_logging()
    apply_before_import()
    import basicsr  # noqa: F401  (the import itself is what the first patch makes possible)

    _run(AFTER_IMPORT)

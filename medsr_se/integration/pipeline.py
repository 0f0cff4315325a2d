"""Run one of BasicSR's pipelines (``basicsr.train.train_pipeline``, ``basicsr.test.test_pipeline``) as a command:
``--list-recipes``, the checks a pipeline asks for on the parsed options, and a user mistake as one line
``error: ...`` with exit status 2 instead of a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from types import ModuleType

from medsr_se.errors import MedSRError
from medsr_se.integration.patches.parse_options import checks
from medsr_se.losses.vgg_features import MissingVGGWeights
from medsr_se.utils.options import recipe_names, recipe_path, recipe_summary

USER_ERRORS = (MedSRError, MissingVGGWeights)


def list_recipes() -> int:
    for name in recipe_names():
        print(f"{name:<14} {recipe_summary(name)}  ({recipe_path(name)})")
    return 0


def run_pipeline(module: ModuleType, pipeline: str, check: Callable[[dict], None] | None) -> int:
    """Run ``module.<pipeline>(cwd)`` with ``check`` on its parsed options; a user mistake -> ``error: ...``, 2."""
    if "--list-recipes" in sys.argv[1:]:
        return list_recipes()
    try:
        with checks(check):
            getattr(module, pipeline)(os.getcwd())
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0

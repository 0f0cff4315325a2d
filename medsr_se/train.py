"""``python -m medsr_se.train -opt options/x4.yml [BasicSR train.py flags]`` / ``medsr-train -opt x4``.

``-opt`` takes a path or the name of a shipped recipe (``x4``, ``pretrain_x8``, ``x4_gray``, ...: they are inside
the installed package too); ``medsr-train --list-recipes`` lists them.

BasicSR's own ``train_pipeline`` with every flag of its train.py (``--launcher none|pytorch|slurm``,
``--auto_resume``, ``--debug``, ``--force_yml``, ``--local_rank`` / ``--local-rank``). ``experiments/`` and
``tb_logger/`` go under the current working directory.

Before the first iteration the option file is read safely (plain YAML data only) and checked
(:func:`medsr_se.utils.options.check_training_options`: dataset folders, ``network_g:upscale`` = ``scale``,
``gt_size``).
A user mistake (a bad option file, a missing dataset or VGG weights file) ends the run with one line
``error: ...`` and exit status 2, not a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import medsr_se  # noqa: F401  (compatibility fixes and registration)
from medsr_se.losses.vgg_features import MissingVGGWeights
from medsr_se.utils.compat import ResumeStateError
from medsr_se.utils.options import (
    OptionError,
    OptionFileError,
    check_training_options,
    load_yaml,
    option_file_argument,
    recipe_names,
    recipe_path,
    recipe_summary,
    resolve_option_argument,
)

USER_ERRORS = (OptionFileError, OptionError, MissingVGGWeights, ResumeStateError)


def checked_parse_options(parse_options: Callable, check: Callable[[dict], None] | None) -> Callable:
    """BasicSR's ``parse_options`` preceded by a safe read of the option file and followed by ``check``."""

    def parse(root_path: str, is_train: bool = True):
        option_file = option_file_argument(sys.argv)
        if option_file is not None:
            load_yaml(option_file)  # OptionFileError naming the file, before BasicSR touches it
        opt, args = parse_options(root_path, is_train)
        if check is not None:
            check(opt)
        return opt, args

    return parse


def list_recipes() -> int:
    for name in recipe_names():
        print(f"{name:<14} {recipe_summary(name)}  ({recipe_path(name)})")
    return 0


def run_pipeline(module, pipeline: str, check: Callable[[dict], None] | None) -> int:
    """Run ``module.<pipeline>(cwd)`` with checked option parsing; a user mistake -> ``error: ...``, exit 2."""
    if "--list-recipes" in sys.argv[1:]:
        return list_recipes()
    sys.argv[:] = resolve_option_argument(sys.argv)
    original = module.parse_options
    module.parse_options = checked_parse_options(original, check)
    try:
        getattr(module, pipeline)(os.getcwd())
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        module.parse_options = original
    return 0


def main() -> None:
    import basicsr.train

    sys.exit(run_pipeline(basicsr.train, "train_pipeline", check_training_options))


if __name__ == "__main__":
    main()

"""``python -m medsr_se.train -opt options/x4.yml [BasicSR train.py flags]`` / ``medsr-train -opt x4``.

``-opt`` takes a path or the name of a shipped recipe (``x4``, ``pretrain_x8``, ``x4_gray``, ...: they are inside
the installed package too); ``medsr-train --list-recipes`` lists them.

BasicSR's own ``train_pipeline`` with every flag of its train.py (``--launcher none|pytorch|slurm``,
``--auto_resume``, ``--debug``, ``--force_yml``, ``--local_rank`` / ``--local-rank``). ``experiments/`` and
``tb_logger/`` go under the current working directory.

Before the first iteration the option file is read safely (plain YAML data only) and checked
(:func:`medsr_se.utils.options.check_training_options`: dataset folders, ``network_g:upscale`` = ``scale``,
``gt_size``), through the one wrapper of BasicSR's ``parse_options``
(:mod:`medsr_se.integration.patches.parse_options`).
A user mistake (a bad option file, a missing dataset or VGG weights file) ends the run with one line
``error: ...`` and exit status 2, not a traceback.
"""

from __future__ import annotations

import sys

import medsr_se  # noqa: F401  (compatibility fixes and registration)
from medsr_se.integration.pipeline import list_recipes, run_pipeline
from medsr_se.utils.options import check_training_options

__all__ = ["list_recipes", "main", "run_pipeline"]


def main() -> None:
    import basicsr.train

    sys.exit(run_pipeline(basicsr.train, "train_pipeline", check_training_options))


if __name__ == "__main__":
    main()

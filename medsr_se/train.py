"""``python -m medsr_se.train -opt options/x4.yml [BasicSR train.py flags]`` / ``medsr-train``.

BasicSR's own ``train_pipeline`` with every flag of its train.py (``--launcher none|pytorch|slurm``,
``--auto_resume``, ``--debug``, ``--force_yml``, ``--local_rank`` / ``--local-rank``). ``experiments/`` and
``tb_logger/`` go under the current working directory. A missing VGG weights file ends the run with its message
(which names the file and where to put it) and exit status 2, not a traceback.
"""

from __future__ import annotations

import os
import sys

import medsr_se  # noqa: F401  (compatibility fixes and registration)
from medsr_se.losses.vgg_features import MissingVGGWeights


def main() -> None:
    from basicsr.train import train_pipeline

    try:
        train_pipeline(os.getcwd())
    except MissingVGGWeights as error:
        print(f"medsr-train: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()

"""``python -m medsr_se.train -opt options/x4.yml [BasicSR train.py flags]`` / ``medsr-train``.

BasicSR's own ``train_pipeline`` with every flag of its train.py (``--launcher none|pytorch|slurm``,
``--auto_resume``, ``--debug``, ``--force_yml``, ``--local_rank`` / ``--local-rank``). ``experiments/`` and
``tb_logger/`` go under the current working directory.
"""

from __future__ import annotations

import os

import medsr_se  # noqa: F401  (compatibility fixes and registration)


def main() -> None:
    from basicsr.train import train_pipeline

    train_pipeline(os.getcwd())


if __name__ == "__main__":
    main()

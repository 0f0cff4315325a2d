"""``python -m medsr_se.test -opt options/test_x4.yml`` / ``medsr-test``: BasicSR's test pipeline.

Results go to ``results/<name>`` under the current working directory.
"""

from __future__ import annotations

import os

import medsr_se  # noqa: F401  (compatibility fixes and registration)


def main() -> None:
    from basicsr.test import test_pipeline

    test_pipeline(os.getcwd())


if __name__ == "__main__":
    main()

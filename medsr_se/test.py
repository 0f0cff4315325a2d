"""``python -m medsr_se.test -opt options/test_x4.yml`` / ``medsr-test -opt test_x4``: BasicSR's test pipeline.

``-opt`` takes a path or a shipped recipe's name; ``--list-recipes`` lists them.

Results go to ``results/<name>`` under the current working directory. The option file is read safely first; a bad
one ends with ``error: ...`` and exit status 2.
"""

from __future__ import annotations

import sys

import medsr_se  # noqa: F401  (compatibility fixes and registration)
from medsr_se.integration.pipeline import run_pipeline


def main() -> None:
    import basicsr.test

    sys.exit(run_pipeline(basicsr.test, "test_pipeline", None))


if __name__ == "__main__":
    main()

"""BasicSR's own log lines (its ``basicsr`` logger: the banner, the options, the loss every ``print_freq``) during a
training run inside a command: into the experiment's log file only, so that the command's stderr holds its own
notes and progress bar.

BasicSR's ``get_root_logger`` sets the logger up once per process: a stream on stderr, and a file when asked.
:func:`basicsr_log_file` sets it up first (BasicSR then takes it as it is) with the file alone, opened at the first
line, after BasicSR has made (or moved aside) the experiment folder; on leaving, the set-up is forgotten
(:func:`~medsr_se.integration.experiment_state.forget_basicsr_logger`), so the next training logs into its own.

    with basicsr_log_file(out / "experiments" / name / f"train_{name}_{get_time_str()}.log"):
        basicsr.train.train_pipeline(root)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from medsr_se.integration.experiment_state import forget_basicsr_logger

BASICSR_LOGGER = "basicsr"
BASICSR_FORMAT = "%(asctime)s %(levelname)s: %(message)s"  # basicsr.utils.logger.get_root_logger's


@contextlib.contextmanager
def basicsr_log_file(log_file: Path | None) -> Iterator[None]:
    """While inside, the ``basicsr`` logger writes to ``log_file`` alone (None: nowhere) at INFO level."""
    from basicsr.utils import logger as basicsr_logger

    forget_basicsr_logger()
    logger = logging.getLogger(BASICSR_LOGGER)
    handler: logging.Handler = logging.NullHandler() if log_file is None else \
        logging.FileHandler(log_file, mode="w", delay=True)
    handler.setFormatter(logging.Formatter(BASICSR_FORMAT))
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    basicsr_logger.initialized_logger[BASICSR_LOGGER] = True
    try:
        yield
    finally:
        basicsr_logger.initialized_logger.pop(BASICSR_LOGGER, None)
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(saved[0])
        logger.propagate = saved[1]

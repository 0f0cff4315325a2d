"""Fixtures shared by the tests; helper functions live in :mod:`tests.helpers` (importable by test modules)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.lib.stare_like import stare_like_images, write_stare_tar
from medsr_se.utils.logs import PACKAGE_LOGGER
from tests.helpers import STARE_PARAMS, write_pairs


@pytest.fixture(autouse=True)
def _medsr_logging_restored():
    """Each test starts from the ``medsr_se`` and root loggers as the previous one found them: a command run
    in-process with ``-q`` sets the ``medsr_se`` level to ERROR and installs a stderr handler (``log_to_stderr``),
    which would hide a later test's warnings from caplog; BasicSR's ``train.py`` run in-process calls
    ``logging.basicConfig``, whose root handler keeps that test's captured stderr and fails on every later record
    ("I/O operation on closed file") once it is closed."""
    loggers = [logging.getLogger(PACKAGE_LOGGER), logging.getLogger()]
    saved = [(logger.level, list(logger.handlers), list(logger.filters)) for logger in loggers]
    _no_stream_left_closed()
    yield
    for logger, (level, handlers, filters) in zip(loggers, saved):
        logger.setLevel(level)
        logger.handlers[:] = handlers
        logger.filters[:] = filters
    _no_stream_left_closed()


def _no_stream_left_closed() -> None:
    """BasicSR's ``get_root_logger`` binds a handler of its ``basicsr`` logger to the ``sys.stderr`` of the moment
    (a module fixture building a network under one test's ``capsys``): once that closes, the handler writes to the
    session's stderr instead of failing on every later record."""
    for logger in (logging.getLogger(), logging.getLogger("basicsr"), logging.getLogger(PACKAGE_LOGGER)):
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and getattr(handler.stream, "closed", False):
                handler.stream = sys.stderr  # not setStream: it flushes the closed one first


@pytest.fixture(scope="session")
def retina() -> np.ndarray:
    """scikit-image's fundus photograph, RGB uint8 (1411 x 1411 x 3)."""
    from skimage import data

    return data.retina()


@pytest.fixture(scope="session")
def pairs_x4(retina, tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("pairs_x4")
    return {"train": write_pairs(retina, base / "train", 6, 96, 4, seed=1),
            "val": write_pairs(retina, base / "val", 2, 64, 4, seed=2)}


@pytest.fixture(scope="session")
def stare_images(retina):
    return stare_like_images(retina, 6)


@pytest.fixture(scope="session")
def prepared(stare_images, tmp_path_factory):
    """(root, manifest) of a STARE-shaped tar (6 images, one README) prepared for x4/x8/x16, 2 test images; in this
    process (workers=1: a pool's start, each worker importing torch, costs seconds; tests/prepare runs the pool and
    compares its bytes with these)."""
    from medsr_se.prepare import prepare

    base = tmp_path_factory.mktemp("stare")
    archive = write_stare_tar(stare_images, base / "stare.tar", extra={"README.txt": b"STARE"})
    output = base / "STARE"
    manifest = prepare(archive, output, STARE_PARAMS, n_test=2, workers=1, progress=False)
    return output, manifest

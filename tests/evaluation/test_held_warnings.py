"""The table reports through logging only: the warnings logged while a scale's images are computed are held and
logged once each after them (``x2: 3 of 3 image(s): ...``), not raised as Python warnings, and no record of another
level is lost on the way."""

from __future__ import annotations

import logging
import warnings
from collections import Counter

import cv2
import numpy as np
import pytest
import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.evaluation import table
from medsr_se.utils.bicubic import matlab_bicubic

MESSAGE = "values outside the window were clipped"


def gray_pairs(root, count: int = 3, scale: int = 2):
    rng = np.random.default_rng(0)
    for folder in ("HR", f"LR_x{scale}"):
        (root / "test" / folder).mkdir(parents=True)
    for index in range(count):
        hr = rng.integers(0, 255, (32, 32), dtype=np.uint8)
        cv2.imwrite(str(root / "test" / "HR" / f"im{index}.png"), hr)
        cv2.imwrite(str(root / "test" / f"LR_x{scale}" / f"im{index}.png"), matlab_bicubic(hr, 1 / scale))
    return root


def logging_upscale(lr, model):
    """An upscale that logs as medsr_se.inference.upscale does: a warning (the same for every image) and a note."""
    logger = logging.getLogger("medsr_se.inference.upscale")
    logger.warning("%d %s", 12, MESSAGE)
    logger.info("a note about %s", "this image")
    return matlab_bicubic(lr, 2)


@pytest.fixture()
def gray_model():
    torch.manual_seed(0)
    return SEEDSRGenerator(1, 1, num_feat=4, num_block=1, upscale=2).eval()


def test_the_warnings_of_the_images_are_one_logged_line_after_them(tmp_path, monkeypatch, caplog, gray_model):
    data = gray_pairs(tmp_path / "data")
    monkeypatch.setattr(table, "upscale", logging_upscale)
    caplog.set_level(logging.INFO, logger="medsr_se")
    package = logging.getLogger("medsr_se")
    handlers, propagate = package.handlers[:], package.propagate
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a Python warning (the old channel) fails the test
        rows = table.evaluate_scale(data, 2, None, None, models={"m": gray_model}, niqe=False)
    assert len(rows) == 6
    records = [(r.name, r.levelname, r.getMessage()) for r in caplog.records if r.name.startswith("medsr_se")]
    assert [record for record in records if record[1] == "WARNING"] == [
        ("medsr_se.evaluation.table", "WARNING", f"x2: 3 of 3 image(s): 12 {MESSAGE}")]
    assert records.count(("medsr_se.inference.upscale", "INFO", "a note about this image")) == 3  # passed on
    assert package.handlers == handlers and package.propagate == propagate  # put back


def test_held_warnings_hold_warnings_only_and_restore_the_logger(caplog):
    caplog.set_level(logging.DEBUG, logger="medsr_se")
    logger = logging.getLogger("medsr_se.some.module")
    with table.held_warnings() as held:
        logger.warning("first\n  second line")
        logger.warning("first\n  second line")
        logger.error("an error is never held")
        logger.debug("details")
    logger.warning("after the block")
    assert held == {"first second line"}
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("ERROR", "an error is never held"), ("DEBUG", "details"), ("WARNING", "after the block")]


def test_report_warnings_logs_without_a_callback(caplog):
    caplog.set_level(logging.INFO, logger="medsr_se")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table.report_warnings(Counter({"a gray image through a colour model": 2}), 4, 5, None)
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("medsr_se.evaluation.table", "WARNING", "x4: 2 of 5 image(s): a gray image through a colour model")]

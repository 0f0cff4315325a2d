"""medsr-evaluate turns the warnings of what it runs into one readable line each, after the progress bar, not
Python's raw ``UserWarning`` text inside it (issue 22, defect 15)."""

from __future__ import annotations

import json
import warnings

import cv2
import numpy as np
import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.cli import evaluate as evaluate_cli
from medsr_se.utils.bicubic import matlab_bicubic


def gray_dataset(root, count: int = 3, scale: int = 2):
    """A prepared-looking CT test split: 16-bit one-channel HR / LR pairs and a manifest."""
    rng = np.random.default_rng(0)
    for folder in ("HR", f"LR_x{scale}"):
        (root / "test" / folder).mkdir(parents=True)
    for index in range(count):
        hr = rng.integers(0, 65535, (32, 32), dtype=np.uint16)
        cv2.imwrite(str(root / "test" / "HR" / f"ct_{index}.png"), hr)
        cv2.imwrite(str(root / "test" / f"LR_x{scale}" / f"ct_{index}.png"), matlab_bicubic(hr, 1 / scale))
    (root / "manifest.json").write_text(json.dumps({"parameters": {"scales": [scale]}, "modality": "CT"}))
    return root


def test_a_colour_model_on_gray_data_is_one_warning_line_after_the_bar(tmp_path, capsys):
    data = gray_dataset(tmp_path / "CT")
    torch.manual_seed(0)
    torch.save({"params": SEEDSRGenerator(3, 3, num_feat=4, num_block=1, upscale=2).state_dict()}, tmp_path / "g.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning that escapes as a Python warning fails the test
        assert evaluate_cli.main(["--data", str(data), "--model", f"x2={tmp_path / 'g.pth'}", "-o",
                                  str(tmp_path / "e"), "--no-sheets", "--no-plot", "--no-niqe"]) == 0
    err = capsys.readouterr().err
    lines = err.splitlines()
    warned = [line for line in lines if "trained on 3-channel" in line]
    assert len(warned) == 1 and warned[0].startswith("warning: x2: 3 of 3 image(s): a gray image through a model")
    assert "UserWarning" not in err and "warnings.warn" not in err
    assert lines.index(warned[0]) > max(index for index, line in enumerate(lines) if "3/3" in line)

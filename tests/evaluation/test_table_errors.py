"""medsr_se.evaluation.table refuses a dataset it cannot evaluate with a DataError naming ``data=`` (a Python
caller's parameter; medsr-evaluate shows it as ``--data``), never a bare FileNotFoundError / ValueError that a
command could not tell from a bug."""

from __future__ import annotations

import pytest

from medsr_se.cli.evaluate import FLAGS
from medsr_se.cli.messages import error_line
from medsr_se.errors import DataError
from medsr_se.evaluation.table import check_test_pairs, evaluate


def test_a_folder_that_is_no_dataset_is_a_data_error_naming_data(tmp_path):
    with pytest.raises(DataError, match=r"^data=.*not a prepared dataset") as caught:
        evaluate(tmp_path, {}, tmp_path / "out")
    assert caught.value.parameter == "data" and not (tmp_path / "out").exists()
    assert error_line(caught.value, FLAGS).startswith(f"--data {tmp_path}: not a prepared dataset")


def test_a_dataset_without_a_manifest_or_scales_says_to_give_them(tmp_path):
    (tmp_path / "test" / "HR").mkdir(parents=True)
    with pytest.raises(DataError, match="give scales=") as caught:
        evaluate(tmp_path, {}, tmp_path / "out")
    assert error_line(caught.value, FLAGS).endswith("give --scales")


def test_missing_pairs_are_a_data_error(tmp_path):
    (tmp_path / "test" / "HR").mkdir(parents=True)
    with pytest.raises(DataError, match="no test pairs for x4"):
        check_test_pairs(tmp_path, 4, {})

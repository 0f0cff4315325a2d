"""``medsr-plot``: a user's problem (no log, a log without training lines) is one ``error:`` line and exit 2; a bug
keeps its traceback."""

from __future__ import annotations

import pytest

from medsr_se.cli import plot as plot_cli
from medsr_se.evaluation import plots


def test_a_log_without_training_lines_is_one_error_line(tmp_path, capsys):
    (tmp_path / "train_run_20261125.log").write_text("2026-11-25 10:00:00,000 INFO: nothing yet\n")
    assert plot_cli.main([str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'train_run_20261125.log'}: no training or validation " \
                                      "lines yet\n"


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    """Before: every ValueError (a bug in reading the log as well) became "error: ..." and exit 2."""
    (tmp_path / "train_run_20261125.log").write_text("x\n")

    def broken(path):
        raise ValueError("too many values to unpack (expected 2)")

    monkeypatch.setattr(plots, "read_training_log", broken)
    with pytest.raises(ValueError, match="too many values to unpack"):
        plot_cli.main([str(tmp_path)])

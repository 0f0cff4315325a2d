"""compat / precision (issue 23, point 3): a damaged training state is a ResumeStateError naming it, a programming
error surfaces as itself; warnings go through ``logging`` (the ``medsr_se`` logger), so a level silences them, and
BasicSR's logger is left for its training pipeline to set up (its log file is not lost)."""

from __future__ import annotations

import logging
import pickle

import pytest
import torch

from medsr_se.integration.patches import resume_state as compat
from medsr_se.utils import precision
from tests.helpers import REPO_ROOT, run_python
from tests.logged import command_logging


def options(root) -> dict:
    (root / "models").mkdir(exist_ok=True)
    (root / "training_states").mkdir(exist_ok=True)
    return {"auto_resume": True, "network_g": {}, "path": {"training_states": str(root / "training_states"),
                                                           "models": str(root / "models"), "resume_state": None}}


def write_state(root, iteration: int, content: bytes | None = None) -> str:
    torch.save({"params": {}}, root / "models" / f"net_g_{iteration}.pth")
    path = root / "training_states" / f"{iteration}.state"
    if content is None:
        torch.save({"iter": iteration, "epoch": 0, "optimizers": [], "schedulers": []}, path)
    else:
        path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated", b"\x80\x02}q\x00(X", pickle.dumps(pickle.Pickler)],
                         ids=["empty", "truncated zip", "truncated pickle", "pickle of a class"])
def test_a_damaged_state_is_a_resume_state_error(tmp_path, content):
    opt = options(tmp_path)
    path = write_state(tmp_path, 20, content)
    with pytest.raises(compat.ResumeStateError, match=r"20\.state: unreadable training state"):
        compat.read_state(path, opt)


@pytest.mark.parametrize("saved", [[1, 2, 3], {"epoch": 0}, torch.ones(2)], ids=["list", "no iter", "tensor"])
def test_a_torch_file_that_is_not_a_training_state_is_a_resume_state_error(tmp_path, saved):
    opt = options(tmp_path)
    path = tmp_path / "training_states" / "20.state"
    torch.save(saved, path)
    with pytest.raises(compat.ResumeStateError, match=r"20\.state: .*not a BasicSR training state"):
        compat.read_state(str(path), opt)


def test_a_programming_error_inside_read_state_surfaces(tmp_path, monkeypatch):
    opt = options(tmp_path)
    path = write_state(tmp_path, 20)

    def broken_load(*args, **kwargs):
        raise TypeError("a bug, not a damaged file")

    monkeypatch.setattr(torch, "load", broken_load)
    with pytest.raises(TypeError, match="a bug"):
        compat.read_state(path, opt)


def test_the_skip_warning_is_logged_and_a_level_silences_it(tmp_path, capsys, caplog):
    opt = options(tmp_path)
    write_state(tmp_path, 10)
    write_state(tmp_path, 20, b"garbage")
    with caplog.at_level(logging.WARNING, logger="medsr_se"):
        assert compat.load_resume_state(opt)["iter"] == 10
    assert [r.name for r in caplog.records] == ["medsr_se.integration.patches.resume_state"]
    assert "--auto_resume skips" in caplog.records[0].getMessage()
    assert "warning: --auto_resume skips" in capsys.readouterr().err  # the user-visible text is kept
    package = logging.getLogger("medsr_se")
    level = package.level
    package.setLevel(logging.ERROR)  # what -q does
    try:
        compat.load_resume_state(options(tmp_path))
    finally:
        package.setLevel(level)
    assert "--auto_resume skips" not in capsys.readouterr().err


@pytest.mark.slow
def test_the_training_log_file_survives_a_skipped_state(tmp_path):
    """BasicSR's get_root_logger must first be called by its train pipeline (with the log file): calling it
    earlier, while resuming, left the run without its log file and without its INFO lines."""
    code = f"""
import pathlib, torch, medsr_se
from medsr_se.integration.patches import resume_state as compat
from basicsr.utils import get_root_logger
root = pathlib.Path({str(tmp_path)!r})
(root / "models").mkdir(); (root / "training_states").mkdir()
for it in (10, 20):
    torch.save({{"params": {{}}}}, root / "models" / f"net_g_{{it}}.pth")
torch.save({{"iter": 10, "epoch": 0, "optimizers": [], "schedulers": []}}, root / "training_states" / "10.state")
(root / "training_states" / "20.state").write_bytes(b"garbage")
opt = {{"auto_resume": True, "network_g": {{}}, "path": {{"training_states": str(root / "training_states"),
       "models": str(root / "models"), "resume_state": None}}}}
assert compat.load_resume_state(opt)["iter"] == 10
get_root_logger(log_file=str(root / "train.log")).info("the run's first line")
"""
    run = run_python(["-c", code], cwd=REPO_ROOT)
    assert run.returncode == 0, run.stderr
    assert "warning: --auto_resume skips" in run.stderr
    log = tmp_path / "train.log"
    assert log.is_file() and "the run's first line" in log.read_text()


def test_the_slow_bf16_warning_is_logged(monkeypatch, caplog, capsys):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "fma"})
    monkeypatch.setattr(precision, "_warned", set())
    with command_logging(), caplog.at_level(logging.WARNING, logger="medsr_se"):
        message = precision.warn_slow_bf16("cpu", "train:precision bf16")
    assert message and [r.getMessage() for r in caplog.records] == [message]
    assert caplog.records[0].name == "medsr_se.utils.precision"
    assert f"warning: {message}" in capsys.readouterr().err

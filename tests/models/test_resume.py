"""Auto-resume picks the newest complete checkpoint, skips damaged ones with a note, and keeps its state on the CPU."""

from __future__ import annotations

import pytest
import torch

from medsr_se.integration.patches import resume_state as compat
from tests.helpers import resume_options, write_checkpoint


def test_auto_resume_skips_an_unreadable_newest_state(tmp_path, capsys):
    opt = resume_options(tmp_path)
    write_checkpoint(tmp_path, 10)
    write_checkpoint(tmp_path, 20, state_bytes=b"PK\x03\x04 truncated")
    state = compat.load_resume_state(opt)
    assert state["iter"] == 10 and opt["path"]["resume_state"].endswith("10.state")
    assert opt["path"]["pretrain_network_g"].endswith("net_g_10.pth")
    assert "20.state: unreadable training state" in capsys.readouterr().err


def test_auto_resume_skips_a_state_without_its_networks(tmp_path, capsys):
    opt = resume_options(tmp_path)
    write_checkpoint(tmp_path, 10)
    write_checkpoint(tmp_path, 20)
    (tmp_path / "models" / "net_d_20.pth").unlink()
    assert compat.load_resume_state(opt)["iter"] == 10
    assert "net_d_20.pth is missing" in capsys.readouterr().err


def test_an_explicit_unreadable_state_is_an_error_naming_it(tmp_path):
    opt = resume_options(tmp_path, auto_resume=False, resume_state=str(tmp_path / "training_states" / "20.state"))
    write_checkpoint(tmp_path, 20, state_bytes=b"garbage")
    with pytest.raises(compat.ResumeStateError, match=r"20\.state: unreadable"):
        compat.load_resume_state(opt)


def test_resume_state_stays_on_the_cpu_even_for_gpu_runs(tmp_path, monkeypatch):
    """Adam's step counters must not be mapped to the GPU (a host sync per tensor and step)."""
    opt = resume_options(tmp_path, num_gpu=1)
    write_checkpoint(tmp_path, 10)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    seen = {}
    real_load = torch.load

    def spy(*args, **kwargs):
        seen["map_location"] = kwargs.get("map_location")
        return real_load(*args, **{**kwargs, "map_location": "cpu"})

    monkeypatch.setattr(torch, "load", spy)
    compat.load_resume_state(opt)
    assert str(seen["map_location"]) == "cpu"

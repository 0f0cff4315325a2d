"""Checkpoint files: a failed write publishes nothing; every generator option travels with the file (a legacy file
still loads)."""

from __future__ import annotations

import errno

import pytest
import torch

from medsr_se.inference.checkpoint import load_generator
from medsr_se.models.atomic_save import CheckpointWriteError
from tests.helpers import build_tiny_model, saved_root


def test_res_scale_and_every_generator_option_travel_with_the_checkpoint(pairs_x4, tmp_path):
    options_override = {"network_g": {"res_scale": 0.1}}
    model = build_tiny_model(pairs_x4, tmp_path)
    model.opt["network_g"].update(options_override["network_g"])
    root = saved_root(tmp_path)
    model.save(epoch=0, current_iter=2)
    net = load_generator(str(root / "models" / "net_g_2.pth"))
    assert all(block.res_scale == 0.1 for block in net.body)
    legacy = tmp_path / "legacy.pth"  # a checkpoint without the entry still loads (architecture from the tensors)
    saved = torch.load(root / "models" / "net_g_2.pth", weights_only=True)
    torch.save({"params": saved["params"]}, legacy)
    assert load_generator(str(legacy)).body[0].res_scale == 1.0


def disk_full_for_net_d(real_save):
    """torch.save that raises before net_d's file exists (BasicSR logs and retries it)."""
    def save(obj, path, *args, **kwargs):
        if "net_d" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)
    return save


def truncated_everywhere(real_save):
    """torch.save on a disk that fills up mid-write: a truncated file, no error from the writer."""
    def save(obj, path, *args, **kwargs):
        with open(path, "wb") as handle:
            handle.write(b"PK\x03\x04 truncated")
    return save


@pytest.mark.parametrize("failing_save,named", [(disk_full_for_net_d, r"net_d_9\.pth"),
                                                (truncated_everywhere, r"net_[dg]_9\.pth")],
                         ids=["net_d never written", "truncated files"])
def test_a_failed_checkpoint_write_publishes_nothing(pairs_x4, tmp_path, monkeypatch, failing_save, named):
    """Iteration 9's checkpoint fails: CheckpointWriteError naming the file, and iteration 5's stays the newest."""
    model = build_tiny_model(pairs_x4, tmp_path)
    root = saved_root(tmp_path)
    model.save(epoch=0, current_iter=5)
    monkeypatch.setattr(torch, "save", failing_save(torch.save))
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    with pytest.raises(CheckpointWriteError, match=named):
        model.save(epoch=0, current_iter=9)
    assert [p.name for p in (root / "training_states").iterdir()] == ["5.state"]
    assert sorted(p.name for p in (root / "models").iterdir()) == ["net_d_5.pth", "net_g_5.pth"]

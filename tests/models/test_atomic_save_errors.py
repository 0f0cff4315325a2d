"""Crash-safe checkpoints (issue 23, point 3): a staged file that does not load or cannot be rewritten is a
CheckpointWriteError naming it, a programming error surfaces as itself, and either way the staging folder goes and
the published checkpoints stay untouched."""

from __future__ import annotations

import os

import pytest
import torch

from medsr_se.models import atomic_save
from medsr_se.models.atomic_save import STAGING_DIR, AtomicSaveMixin, CheckpointWriteError

REAL_SAVE = torch.save


class WritesLikeBasicSR:
    """BasicSR's ``save`` reduced to what AtomicSaveMixin relies on: files named by BasicSR's scheme under
    ``opt['path']['models']`` / ``['training_states']``."""

    def save(self, epoch: int, current_iter: int) -> None:
        REAL_SAVE({"params": {"w": torch.ones(2) * current_iter}},
                   os.path.join(self.opt["path"]["models"], f"net_g_{current_iter}.pth"))
        REAL_SAVE({"iter": current_iter, "epoch": epoch},
                   os.path.join(self.opt["path"]["training_states"], f"{current_iter}.state"))


class Model(AtomicSaveMixin, WritesLikeBasicSR):
    def __init__(self, root) -> None:
        self.net_g = torch.nn.Linear(1, 1)
        self.opt = {"network_g": {"type": "SEEDSRGenerator"}, "datasets": {},
                    "path": {"experiments_root": str(root), "models": str(root / "models"),
                             "training_states": str(root / "training_states")}}


def published(root) -> dict[str, bytes]:
    return {name: (root / folder / name).read_bytes() for folder in ("models", "training_states")
            for name in sorted(os.listdir(root / folder))}


def test_a_good_save_publishes_both_files(tmp_path):
    Model(tmp_path).save(0, 5)
    assert set(published(tmp_path)) == {"net_g_5.pth", "5.state"} and not (tmp_path / STAGING_DIR).exists()


def test_a_staged_file_that_does_not_load_is_a_write_error(tmp_path):
    path = tmp_path / "net_g_5.pth"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointWriteError, match=r"net_g_5\.pth was written but does not load"):
        atomic_save._check_and_extend(str(path), {})


def test_a_failing_rewrite_is_a_write_error(tmp_path, monkeypatch):
    path = tmp_path / "net_g_5.pth"
    torch.save({"params": {}}, path)

    def disk_full(*args, **kwargs):  # what torch.save raises on a full disk (probed on /dev/full)
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(CheckpointWriteError, match=r"writing net_g_5\.pth failed"):
        atomic_save._check_and_extend(str(path), {"extra": 1})


@pytest.mark.parametrize("broken", ["load", "save"])
def test_a_programming_error_surfaces_and_publishes_nothing(tmp_path, monkeypatch, broken):
    Model(tmp_path).save(0, 5)
    before = published(tmp_path)

    def bug(*args, **kwargs):
        raise TypeError("a bug, not a write failure")

    monkeypatch.setattr(torch, broken, bug)  # WritesLikeBasicSR keeps the real torch.save (REAL_SAVE)
    with pytest.raises(TypeError, match="a bug"):
        Model(tmp_path).save(0, 9)
    assert published(tmp_path) == before and not (tmp_path / STAGING_DIR).exists()

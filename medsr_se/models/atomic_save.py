"""Crash-safe checkpoints for BasicSR models.

BasicSR writes ``models/net_*_<iter>.pth`` and ``training_states/<iter>.state`` in place and, when ``torch.save``
fails three times, only logs a warning. A run killed (or out of disk) while saving leaves a truncated newest
``.state`` that ``--auto_resume`` then picks up. :class:`AtomicSaveMixin` lets BasicSR's own ``save`` write into a
staging folder, checks every file, and moves them into place with ``os.replace`` (atomic on one file system):
networks first, the training state last, so a ``.state`` file only ever appears when its networks are complete.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from os import path as osp

from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import get_dist_info

STAGING_DIR = ".saving"


class CheckpointWriteError(RuntimeError):
    pass


class AtomicSaveMixin:
    """Put before a BasicSR model class in the bases: ``class M(AtomicSaveMixin, SRGANModel)``."""

    def save(self, epoch: int, current_iter: int) -> None:
        paths = self.opt["path"]
        final_dirs = {"models": paths["models"], "training_states": paths["training_states"]}
        rank, _ = get_dist_info()
        staging = osp.join(paths["experiments_root"], STAGING_DIR)
        if rank == 0:
            shutil.rmtree(staging, ignore_errors=True)
            for key in final_dirs:
                os.makedirs(osp.join(staging, key))
        try:
            for key in final_dirs:
                paths[key] = osp.join(staging, key)
            super().save(epoch, current_iter)
        finally:
            paths.update(final_dirs)
        if rank == 0:
            _publish(staging, final_dirs)


def _publish(staging: str, final_dirs: dict[str, str]) -> None:
    """Check every staged file, then move networks and finally training states into place."""
    staged = {key: sorted(os.listdir(osp.join(staging, key))) for key in final_dirs}
    for key, names in staged.items():
        for name in names:
            if not zipfile.is_zipfile(osp.join(staging, key, name)):
                shutil.rmtree(staging, ignore_errors=True)
                raise CheckpointWriteError(f"writing {osp.join(final_dirs[key], name)} failed (see the warnings "
                                           "above); the previous checkpoints are untouched")
    for key in ("models", "training_states"):
        os.makedirs(final_dirs[key], exist_ok=True)
        for name in staged[key]:
            os.replace(osp.join(staging, key, name), osp.join(final_dirs[key], name))
    shutil.rmtree(staging, ignore_errors=True)
    get_root_logger().debug("checkpoint published: %s", staged)

"""Crash-safe checkpoints for BasicSR models.

BasicSR writes ``models/net_*_<iter>.pth`` and ``training_states/<iter>.state`` in place and, when ``torch.save``
fails three times, only logs a warning. A run killed (or out of disk) while saving leaves a truncated newest
``.state`` that ``--auto_resume`` then picks up. :class:`AtomicSaveMixin` lets BasicSR's own ``save`` write into a
staging folder, then checks that **every** file of that iteration is there and loads (each network the model has,
and the training state), and moves them into place (:func:`medsr_se.io.publish.move_all_into_place`, atomic on one
file system): networks first, the training state last, so a ``.state`` file only ever appears when its networks
are complete.

While checking, three entries are added to the staged files:

- ``net_g_<iter>.pth`` gets ``medsr_se_network_g``: the ``network_g`` options it was built from (``res_scale``,
  ``reduction``, ``img_residual``, widths, scale, channels), so :func:`medsr_se.inference.checkpoint.load_generator`
  rebuilds exactly that generator (``res_scale`` cannot be read off the weights);
- ``net_g_<iter>.pth`` also gets ``medsr_se_data``: the modality and intensity model of the training set, read
  from the ``manifest.json`` of the prepared dataset it was trained on (:func:`training_data_record`), so inference
  maps CT / MRI values exactly as training did;
- the ``.state`` gets the model's :meth:`extra_training_state` (e.g. the fp16 gradient scaler).
"""

from __future__ import annotations

import json
import os
import shutil
from os import path as osp
from pathlib import Path

import torch
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import get_dist_info

from medsr_se.checkpoint_format import DATA_KEY, NETWORK_OPTIONS_KEY, TORCH_LOAD_ERRORS
from medsr_se.errors import WriteError
from medsr_se.io.publish import MANIFEST, holds_manifest, move_all_into_place
from medsr_se.utils.options import plain

STAGING_DIR = ".saving"
# What torch.save raises when the file cannot be written (probed: a full disk, a missing folder, a directory)
TORCH_SAVE_ERRORS = (OSError, RuntimeError)


def training_data_record(opt: dict) -> dict:
    """{'modality', 'intensity', 'dataset'} of the training set from the manifest.json of the prepared dataset
    holding ``datasets:train:dataroot_gt`` (looked for up to three folders up); {} when there is none."""
    root = (opt.get("datasets") or {}).get("train", {}).get("dataroot_gt")
    if not root:
        return {}
    folder = Path(root)
    for candidate in [folder, *list(folder.parents)[:3]]:
        if holds_manifest(candidate):
            try:
                data = json.loads((candidate / MANIFEST).read_text())
            except (OSError, ValueError):
                return {}
            return {"modality": data.get("modality"), "intensity": data.get("intensity"), "dataset": str(candidate)}
    return {}


class CheckpointWriteError(WriteError):
    """A checkpoint that could not be written whole; the previous checkpoints are untouched."""


class AtomicSaveMixin:
    """Put before a BasicSR model class in the bases: ``class M(AtomicSaveMixin, SRGANModel)``."""

    def network_labels(self) -> list[str]:
        """``net_g`` and, for GAN models, ``net_d``: the files every checkpoint of this model must have."""
        return [label for label in ("net_g", "net_d") if hasattr(self, label)]

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
            complete = False
            try:
                self._complete_staged(staging, current_iter)
                complete = True
            finally:  # whatever went wrong (a write error, a bug), nothing half-checked stays staged
                if not complete:
                    shutil.rmtree(staging, ignore_errors=True)
            _publish(staging, final_dirs)

    def _complete_staged(self, staging: str, current_iter: int) -> None:
        """Check every expected staged file loads, adding the metadata entries (module docstring)."""
        label = "latest" if current_iter == -1 else str(current_iter)
        for network in self.network_labels():
            extra = {NETWORK_OPTIONS_KEY: plain(self.opt.get("network_g", {})),
                     DATA_KEY: training_data_record(self.opt)} if network == "net_g" else {}
            _check_and_extend(osp.join(staging, "models", f"{network}_{label}.pth"), extra)
        if current_iter != -1:
            extra_state = self.extra_training_state() if hasattr(self, "extra_training_state") else {}
            _check_and_extend(osp.join(staging, "training_states", f"{current_iter}.state"), extra_state)


def _check_and_extend(path: str, extra: dict) -> None:
    """``path`` must exist and load; ``extra`` entries are added to it. CheckpointWriteError otherwise."""
    final_name = osp.basename(path)
    if not osp.isfile(path):
        raise CheckpointWriteError(f"writing {final_name} failed (see the warnings above); the previous checkpoints "
                                   "are untouched")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except TORCH_LOAD_ERRORS as error:
        raise CheckpointWriteError(f"{final_name} was written but does not load ({error}); the previous "
                                   "checkpoints are untouched") from error
    if extra:
        saved.update(extra)
        try:
            torch.save(saved, path)
        except TORCH_SAVE_ERRORS as error:
            raise CheckpointWriteError(f"writing {final_name} failed ({error}); the previous checkpoints are "
                                       "untouched") from error


def _publish(staging: str, final_dirs: dict[str, str]) -> None:
    """Move networks and finally training states into place (all or none: :func:`move_all_into_place`)."""
    staged = {key: sorted(os.listdir(osp.join(staging, key))) for key in final_dirs}
    moves = []
    for key in ("models", "training_states"):
        os.makedirs(final_dirs[key], exist_ok=True)
        moves += [(Path(staging, key, name), Path(final_dirs[key], name)) for name in staged[key]]
    move_all_into_place(moves)
    shutil.rmtree(staging, ignore_errors=True)
    get_root_logger().debug("checkpoint published: %s", staged)

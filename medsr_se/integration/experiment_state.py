"""What a BasicSR experiment's saved training states were trained on, so that ``--auto_resume`` never continues
another run's training: a fingerprint of the data and the options that shape the model, stored in the options file
(BasicSR copies that file into ``experiments/<name>/``), compared before resuming. A mismatch is said in one note;
BasicSR then moves the experiment aside (``<name>_archived_<time>``) and trains from iteration 0.

    options[FINGERPRINT_KEY] = training_fingerprint(options, values, slice_profile)
    resume = may_resume(experiment_folder, options[FINGERPRINT_KEY])
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import yaml

from medsr_se.io.publish import archive_folder

log = logging.getLogger(__name__)
FINGERPRINT_KEY = "selfsr_fingerprint"  # in the options file; BasicSR copies it into experiments/<name>/<name>.yml
RUNTIME_DATASET_KEYS = ("volumes", "slice_profile", "slice_thickness_source", "lr_noise_source", "num_worker_per_gpu",
                        "persistent_workers", "pin_memory", "prefetch_mode")  # where and how the data is read or
# described, not what it is (the two paths: their content is hashed instead)


def training_fingerprint(options: Mapping, values: np.ndarray, slice_profile: Path | None) -> dict:
    """What a saved training state was trained on, as stored in YAML: the scan's voxel values (sha256 of their
    shape, dtype and bytes as read, after any ``nonfinite`` replacement: the same scan under another path or
    name matches), the slice-profile file's sha256, and the options that shape the model and its data
    (``model_type``, ``scale``, ``network_g``, ``path:pretrain_network_g``, ``datasets:train`` but for
    :data:`RUNTIME_DATASET_KEYS`, ``train`` but for ``total_iter``: more iterations may resume)."""
    from medsr_se.utils.options import plain

    scan = hashlib.sha256(f"{values.shape} {values.dtype}".encode())
    scan.update(np.ascontiguousarray(values).data)
    train = options["datasets"]["train"]
    fingerprint = {
        "scan_sha256": scan.hexdigest(),
        "slice_profile_sha256": hashlib.sha256(slice_profile.read_bytes()).hexdigest() if slice_profile else None,
        "model_type": options.get("model_type"),
        "scale": options.get("scale"),
        "network_g": options.get("network_g"),
        "pretrain_network_g": (options.get("path") or {}).get("pretrain_network_g"),
        "datasets:train": {key: value for key, value in train.items() if key not in RUNTIME_DATASET_KEYS},
        "train": {key: value for key, value in (options.get("train") or {}).items() if key != "total_iter"},
    }
    return yaml.safe_load(yaml.safe_dump(plain(fingerprint), sort_keys=False))  # compares equal to a stored one


def may_resume(experiment: Path, fingerprint: dict) -> bool:
    """Whether ``--auto_resume`` may take the training states under ``experiment``: the options BasicSR copied there
    (``<name>.yml``) hold this :func:`training_fingerprint`. Otherwise an existing ``experiment`` folder is moved
    aside (:func:`~medsr_se.io.publish.archive_folder`, a name no other run has, where BasicSR's own renaming
    fails for two archives in one second) and a note says what differed; training starts from iteration 0."""
    if not experiment.exists():
        return False
    if any((experiment / "training_states").glob("*.state")):
        recorded = recorded_fingerprint(experiment / f"{experiment.name}.yml")
        if recorded == fingerprint:
            return True
        differences = fingerprint_differences(recorded, fingerprint) if recorded is not None else \
            ["no record of what they were trained on"]
        why = f"its saved training states do not fit this run ({'; '.join(differences)})"
    else:
        why = "it holds no training state to resume"
    archive = archive_folder(experiment)
    log.info(f"{experiment}: {why}; moved aside to {archive.name}, training starts from iteration 0")
    return False


def recorded_fingerprint(option_copy: Path) -> dict | None:
    """The :func:`training_fingerprint` in BasicSR's copy of the options of an experiment; None without one."""
    from medsr_se.utils.options import OptionFileError, load_yaml, plain

    try:
        recorded = load_yaml(option_copy)
    except OptionFileError:
        return None
    fingerprint = recorded.get(FINGERPRINT_KEY)
    return plain(fingerprint) if isinstance(fingerprint, Mapping) else None


def fingerprint_differences(recorded: Mapping, current: Mapping, most: int = 4) -> list[str]:
    """``key:sub_key old -> new`` for each leaf that differs (the scan: "trained on another scan")."""
    def leaves(tree: Mapping, prefix: str = "") -> dict:
        flat = {}
        for key, value in tree.items():
            if isinstance(value, Mapping):
                flat.update(leaves(value, f"{prefix}{key}:"))
            else:
                flat[f"{prefix}{key}"] = value
        return flat

    old, new = leaves(recorded), leaves(current)
    changed = [key for key in {**old, **new} if old.get(key, "missing") != new.get(key, "missing")]
    lines = ["trained on another scan" if key == "scan_sha256" else
             "another slice-profile file" if key == "slice_profile_sha256" else
             f"{key} {old.get(key, 'missing')} -> {new.get(key, 'missing')}" for key in changed]
    return lines[:most] + ([f"{len(lines) - most} more"] if len(lines) > most else [])


def forget_basicsr_logger() -> None:
    """BasicSR sets its ``basicsr`` logger up once per process (a stream and the first experiment's log file,
    :func:`basicsr.utils.get_root_logger`): a second training in this process would log into the first one's
    file. Its handlers are closed and the set-up forgotten, so that this training logs into its own folder."""
    import logging

    from basicsr.utils import logger as basicsr_logger

    if basicsr_logger.initialized_logger.pop("basicsr", None) is None:
        return
    log = logging.getLogger("basicsr")
    for handler in [h for h in log.handlers if isinstance(h, logging.StreamHandler)]:
        log.removeHandler(handler)
        handler.close()

"""BasicSR's ``basicsr.train.load_resume_state`` maps every storage with ``storage.cuda(...)`` (resume crashes
without a GPU; on a GPU Adam's step counters land there and cost a host sync per tensor and step), takes the newest
``.state`` even when it is truncated, and searches ``experiments/<name>`` relative to the working directory rather
than the experiment root that ``parse_options`` computed from ``root_path`` (auto-resume of a plugin whose root lies
elsewhere finds nothing, archives the experiment and restarts from iteration 0). Replaced by
:func:`load_resume_state`."""

from __future__ import annotations

import inspect
import logging
import os
from os import path as osp

from medsr_se.errors import CheckpointError

log = logging.getLogger(__name__)


def needed() -> bool:
    import basicsr.train

    upstream = inspect.getsource(basicsr.train)  # the module file: upstream code, whatever was patched since
    return "storage.cuda" in upstream or "osp.join('experiments'" in upstream


def state_files(states_dir: str) -> list[str]:
    """Paths of the ``<iter>.state`` files in ``states_dir``, newest iteration first."""
    if not osp.isdir(states_dir):
        return []
    iters = sorted((int(name[: -len(".state")]) for name in os.listdir(states_dir)
                    if name.endswith(".state") and name[: -len(".state")].isdigit()), reverse=True)
    return [osp.join(states_dir, f"{iteration}.state") for iteration in iters]


class ResumeStateError(CheckpointError):
    """A resume state that cannot be used; the message names the file."""


def read_state(state_path: str, opt: dict) -> dict:
    """A training state and the network files of its iteration, checked; ResumeStateError naming what is wrong.

    Loaded onto the CPU whatever the device: BasicSR's ``resume_training`` hands it to ``Optimizer.load_state_dict``,
    which moves each moment tensor to its parameter's device and keeps Adam's ``step`` counters on the CPU (on
    the GPU they would cost a host synchronisation per parameter tensor and step).
    """
    import torch

    from medsr_se.checkpoint_format import TORCH_LOAD_ERRORS

    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except TORCH_LOAD_ERRORS as error:  # truncated, empty, not a torch file (programming errors surface)
        reason = " ".join(str(error).split())[:200]
        raise ResumeStateError(f"{state_path}: unreadable training state ({type(error).__name__}: {reason})") from error
    if not isinstance(state, dict) or "iter" not in state:
        raise ResumeStateError(f"{state_path}: unreadable training state (a {type(state).__name__} without 'iter': "
                               "not a BasicSR training state)")
    iteration = state["iter"]
    models = opt["path"].get("models")
    for network in (key for key in opt if key.startswith("network_")):
        weights = osp.join(models, f"net_{network[len('network_'):]}_{iteration}.pth") if models else None
        if weights is not None and not osp.isfile(weights):
            raise ResumeStateError(f"{state_path}: its network file {weights} is missing")
    return state


def load_resume_state(opt: dict) -> dict | None:
    """BasicSR's ``load_resume_state`` contract, on any device and for any ``root_path``.

    With ``--auto_resume`` the newest *usable* state is taken from ``opt['path']['training_states']`` (the
    experiment root that ``parse_options`` derived from ``root_path``): a newer one that does not load or lacks a
    network file is skipped with a warning naming it. An explicit ``path:resume_state`` that cannot be used is an
    error naming the file.
    """
    from basicsr.utils import check_resume  # not get_root_logger: BasicSR's pipeline must set it up first (log file)

    if opt["auto_resume"]:
        for state_path in state_files(opt["path"]["training_states"]):
            try:
                state = read_state(state_path, opt)
            except ResumeStateError as error:
                log.warning("--auto_resume skips %s; trying the previous state", error)
                continue
            opt["path"]["resume_state"] = state_path
            check_resume(opt, state["iter"])
            return state
        return None
    state_path = opt["path"].get("resume_state")
    if state_path is None:
        return None
    if not osp.isfile(state_path):
        raise FileNotFoundError(f"resume_state file not found: {state_path} (option path:resume_state)")
    state = read_state(state_path, opt)
    check_resume(opt, state["iter"])
    return state


def apply() -> None:
    import basicsr.train

    basicsr.train.load_resume_state = load_resume_state

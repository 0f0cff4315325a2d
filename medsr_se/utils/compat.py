"""Make basicsr 1.4.2 (the newest release) work on the current torch / torchvision stack.

Each fix is a pair of functions: ``_<name>_needed()`` looks at the installed basicsr / torchvision and says
whether the upstream bug is still there, and ``_<name>_apply()`` patches it. ``apply()`` runs every needed fix
once (it is idempotent); a basicsr release that fixes a bug upstream simply stops needing the fix.

The fixes, all of them observable with basicsr 1.4.2, torch 2.14, torchvision 0.29:

``functional_tensor``
    ``basicsr.data.degradations`` imports ``torchvision.transforms.functional_tensor``, renamed to
    ``_functional_tensor`` in torchvision 0.17: ``import basicsr`` fails. Fixed before basicsr is imported by
    aliasing the new module under the old name.
``resume_state``
    ``basicsr.train.load_resume_state`` maps every storage with ``storage.cuda(...)`` (resume crashes without a
    GPU; on a GPU Adam's step counters land there and cost a host sync per tensor and step), takes the newest
    ``.state`` even when it is truncated, and searches ``experiments/<name>`` relative to the working directory
    rather than the experiment root that ``parse_options`` computed from ``root_path`` (auto-resume of a plugin
    whose root lies elsewhere finds nothing, archives the experiment and restarts from iteration 0). Replaced by
    :func:`load_resume_state`.
``dist_cpu``
    ``init_dist`` does ``set_device(rank % num_gpus)`` (division by zero on CPU) and hard-codes NCCL (also for a
    ``num_gpu: 0`` run on a GPU host, whose CPU models NCCL cannot serve);
    ``BaseModel.model_to_device`` passes ``device_ids=[cuda.current_device()]`` to DDP. Without CUDA both now use
    gloo and CPU DDP; with CUDA BasicSR's own code runs unchanged.
``local_rank``
    ``python -m torch.distributed.launch`` (torch >= 2) passes ``--local-rank=N``; BasicSR's parser only knows
    ``--local_rank``. The hyphenated spelling is rewritten before BasicSR parses ``sys.argv``.
``safe_yaml``
    BasicSR's option loader (``basicsr.utils.options.ordered_yaml``) is PyYAML's full ``Loader``: an option file
    with a ``!!python/object/apply:os.system [...]`` tag runs the command while it is being read. Replaced by
    :class:`medsr_se.utils.options.SafeOrderedLoader` (plain data only, order kept), so every BasicSR entry point that
    reads option files (``parse_options`` of train.py and test.py) refuses such tags and runs nothing.
``vgg_path``
    BasicSR's ``VGGFeatureExtractor`` looks for ``experiments/pretrained_models/vgg19-dcbb9e9d.pth`` relative to
    the working directory and otherwise downloads (fails offline). When that file is missing but torch's hub
    cache holds the same file, BasicSR is pointed at it.
``option_fixups``
    Not an upstream bug but the one place medsr-se's option fix-ups reach every entry point: BasicSR's
    ``parse_options`` (of ``basicsr.utils.options``, ``basicsr.train`` and ``basicsr.test``) resolves a recipe
    name after ``-opt`` and applies :func:`medsr_se.utils.options.fix_options` (``persistent_workers`` off where a
    loader has no workers, the slow-bfloat16 warning), so ``python basicsr/train.py`` with the autoload hook gets
    exactly what ``python -m medsr_se.train`` gets.
``network_options``
    Ours too: BasicSR's ``BaseModel.save_network`` stores only the weights, so a ``net_g`` checkpoint of its own
    ``SRModel`` / ``SRGANModel`` / ``ESRGANModel`` cannot be rebuilt without the option file. With the plugin
    loaded, ``net_g_*.pth`` also gets the ``network_g`` options and the training-data record (the entries our
    models add, :mod:`medsr_se.models.atomic_save`), so ``load_generator`` / ``medsr-evaluate`` / ``medsr-infer`` /
    ``medsr-export`` load any BasicSR generator on its own. Our models add them themselves and are skipped.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import os
import sys
from collections.abc import Callable
from os import path as osp
from pathlib import Path

APPLIED: list[str] = []
log = logging.getLogger(__name__)  # under the "medsr_se" logger (printed as "warning: ..." on stderr, see apply)


# --------------------------------------------------------------------------------------------- functional_tensor
def _functional_tensor_needed() -> bool:
    if "torchvision.transforms.functional_tensor" in sys.modules:
        return False
    try:
        return importlib.util.find_spec("torchvision.transforms.functional_tensor") is None
    except ModuleNotFoundError:  # torchvision itself missing: nothing we can do, basicsr will say so
        return False


def _functional_tensor_apply() -> None:
    import torchvision.transforms._functional_tensor as renamed

    sys.modules["torchvision.transforms.functional_tensor"] = renamed


# --------------------------------------------------------------------------------------------- resume_state
def _resume_state_needed() -> bool:
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


class ResumeStateError(ValueError):
    """A resume state that cannot be used; the message names the file."""


def read_state(state_path: str, opt: dict) -> dict:
    """A training state and the network files of its iteration, checked; ResumeStateError naming what is wrong.

    Loaded onto the CPU whatever the device: BasicSR's ``resume_training`` hands it to ``Optimizer.load_state_dict``,
    which moves each moment tensor to its parameter's device and keeps Adam's ``step`` counters on the CPU (on
    the GPU they would cost a host synchronisation per parameter tensor and step).
    """
    import torch

    from medsr_se.inference.checkpoint import TORCH_LOAD_ERRORS

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


def _resume_state_apply() -> None:
    import basicsr.train

    basicsr.train.load_resume_state = load_resume_state


# --------------------------------------------------------------------------------------------- dist_cpu
def option_file_wants_cpu(argv: list[str]) -> bool:
    """True when the ``-opt`` file of this command line says ``num_gpu: 0`` (read before BasicSR's init_dist)."""
    from medsr_se.utils.options import OptionFileError, load_yaml, option_file_argument

    path = option_file_argument(argv)
    try:
        return path is not None and load_yaml(path).get("num_gpu", "auto") == 0
    except OptionFileError:
        return False


def _dist_cpu_needed() -> bool:
    from basicsr.models import base_model
    from basicsr.utils import dist_util

    return ("torch.cuda.set_device(rank % num_gpus)" in inspect.getsource(dist_util)
            or "device_ids=[torch.cuda.current_device()]" in inspect.getsource(base_model))


def _dist_cpu_apply() -> None:
    import torch
    import torch.distributed as dist
    from basicsr.models.base_model import BaseModel
    from basicsr.utils import dist_util

    cuda_init_dist = dist_util._init_dist_pytorch
    cuda_model_to_device = BaseModel.model_to_device

    def init_dist_pytorch(backend: str = "nccl", **kwargs) -> None:
        if torch.cuda.is_available() and not option_file_wants_cpu(sys.argv):
            cuda_init_dist(backend, **kwargs)
        else:  # no GPU, or a num_gpu: 0 run on a GPU host: its models live on the CPU, which NCCL cannot serve
            dist.init_process_group(backend="gloo", **kwargs)

    def model_to_device(self, net: torch.nn.Module) -> torch.nn.Module:
        if self.opt["dist"] and self.device.type == "cpu":
            find_unused = self.opt.get("find_unused_parameters", False)
            return torch.nn.parallel.DistributedDataParallel(net.to(self.device), find_unused_parameters=find_unused)
        return cuda_model_to_device(self, net)

    dist_util._init_dist_pytorch = init_dist_pytorch
    BaseModel.model_to_device = model_to_device


# --------------------------------------------------------------------------------------------- local_rank
def _local_rank_needed() -> bool:
    from basicsr.utils import options

    return "'--local-rank'" not in inspect.getsource(options)


def normalise_local_rank_argv(argv: list[str]) -> list[str]:
    """``--local-rank=3`` / ``--local-rank 3`` (torch >= 2 launchers) -> BasicSR's ``--local_rank`` spelling."""
    return [("--local_rank" + arg[len("--local-rank"):]) if arg.startswith("--local-rank") else arg for arg in argv]


def _local_rank_apply() -> None:
    import basicsr.test
    import basicsr.train
    from basicsr.utils import options

    upstream_parse_options = options.parse_options

    def parse_options(root_path: str, is_train: bool = True):
        sys.argv[:] = normalise_local_rank_argv(sys.argv)
        return upstream_parse_options(root_path, is_train)

    for module in (options, basicsr.train, basicsr.test):
        module.parse_options = parse_options


# --------------------------------------------------------------------------------------------- safe_yaml
def _safe_yaml_needed() -> bool:
    import yaml
    from basicsr.utils import options

    return not issubclass(options.ordered_yaml()[0], yaml.SafeLoader)


def _safe_yaml_apply() -> None:
    from basicsr.utils import options

    from medsr_se.utils.options import SafeOrderedLoader

    dumper = options.ordered_yaml()[1]

    def ordered_yaml():
        """BasicSR's (Loader, Dumper) pair, with a loader that builds plain data only."""
        return SafeOrderedLoader, dumper

    options.ordered_yaml = ordered_yaml


# --------------------------------------------------------------------------------------------- vgg_path
def _vgg_path_needed() -> bool:
    """BasicSR's path is missing but a local copy exists elsewhere (else there is nothing to point BasicSR at)."""
    from basicsr.archs import vgg_arch

    from medsr_se.losses.vgg_features import find_vgg_weights

    return not osp.isfile(vgg_arch.VGG_PRETRAIN_PATH) and find_vgg_weights("vgg19") is not None


def _vgg_path_apply() -> None:
    from basicsr.archs import vgg_arch

    from medsr_se.losses.vgg_features import find_vgg_weights

    vgg_arch.VGG_PRETRAIN_PATH = find_vgg_weights("vgg19")


# --------------------------------------------------------------------------------------------- option_fixups
def _option_fixups_needed() -> bool:
    """Ours, not an upstream bug: medsr-se's recipes and option fix-ups must reach BasicSR's entry points too."""
    from basicsr.utils import options

    return not getattr(options.parse_options, "medsr_se_fixups", False)


def _option_fixups_apply() -> None:
    import basicsr.test
    import basicsr.train
    from basicsr.utils import options

    from medsr_se.utils.options import fix_options, resolve_option_argument

    inner = options.parse_options  # upstream, or the local_rank fix's wrapper of it

    def parse_options(root_path: str, is_train: bool = True):
        """BasicSR's parse_options with a recipe name after ``-opt`` resolved and :func:`fix_options` applied."""
        sys.argv[:] = resolve_option_argument(sys.argv)
        opt, args = inner(root_path, is_train)
        return fix_options(opt), args

    parse_options.medsr_se_fixups = True
    for module in (options, basicsr.train, basicsr.test):
        module.parse_options = parse_options


# --------------------------------------------------------------------------------------------- network_options
def _network_options_needed() -> bool:
    """Ours, not an upstream bug: BasicSR's net_g checkpoints do not say which network they hold."""
    from basicsr.models.base_model import BaseModel

    return not getattr(BaseModel.save_network, "medsr_se_network_options", False)


def add_network_options(model, net_label: str, current_iter) -> None:
    """Add ``network_g`` and the training-data record to the ``net_g`` file ``save_network`` just wrote (rewritten
    atomically). Nothing for other networks, on the processes other than rank 0 (BasicSR's save_network writes on
    rank 0 only: another rank could read the file half-written, or the previous ``latest``, and rename its copy
    over the new one), or when the save itself failed (BasicSR has logged that)."""
    import torch
    from basicsr.utils.dist_util import get_dist_info

    from medsr_se.inference.checkpoint import DATA_KEY, NETWORK_OPTIONS_KEY
    from medsr_se.io.atomic import write_atomically
    from medsr_se.models.atomic_save import AtomicSaveMixin, training_data_record
    from medsr_se.utils.options import plain

    if net_label != "net_g" or isinstance(model, AtomicSaveMixin) or not model.opt.get("network_g"):
        return
    if get_dist_info()[0] != 0:
        return
    label = "latest" if current_iter == -1 else current_iter
    path = osp.join(model.opt["path"]["models"], f"{net_label}_{label}.pth")
    if not osp.isfile(path):
        return
    saved = torch.load(path, map_location="cpu", weights_only=True)
    saved.update({NETWORK_OPTIONS_KEY: plain(model.opt["network_g"]), DATA_KEY: training_data_record(model.opt)})
    write_atomically(Path(path), lambda temporary: torch.save(saved, temporary))


def _network_options_apply() -> None:
    from basicsr.models.base_model import BaseModel

    inner = BaseModel.save_network

    def save_network(self, net, net_label, current_iter, param_key="params"):
        """BasicSR's save_network, then :func:`add_network_options`."""
        inner(self, net, net_label, current_iter, param_key)
        add_network_options(self, net_label, current_iter)

    save_network.medsr_se_network_options = True
    BaseModel.save_network = save_network


# --------------------------------------------------------------------------------------------- driver
BEFORE_IMPORT: dict[str, tuple[Callable[[], bool], Callable[[], None]]] = {
    "functional_tensor": (_functional_tensor_needed, _functional_tensor_apply),
}
AFTER_IMPORT: dict[str, tuple[Callable[[], bool], Callable[[], None]]] = {
    "resume_state": (_resume_state_needed, _resume_state_apply),
    "dist_cpu": (_dist_cpu_needed, _dist_cpu_apply),
    "local_rank": (_local_rank_needed, _local_rank_apply),
    "safe_yaml": (_safe_yaml_needed, _safe_yaml_apply),
    "vgg_path": (_vgg_path_needed, _vgg_path_apply),
    "option_fixups": (_option_fixups_needed, _option_fixups_apply),  # after local_rank: it wraps that wrapper
    "network_options": (_network_options_needed, _network_options_apply),
}


def _run(fixes: dict[str, tuple[Callable[[], bool], Callable[[], None]]]) -> None:
    for name, (needed, apply_fix) in fixes.items():
        if name not in APPLIED and needed():
            apply_fix()
            APPLIED.append(name)


def apply_before_import() -> None:
    """The fixes that must be in place before ``import basicsr`` runs (safe to call at any time)."""
    _run(BEFORE_IMPORT)


def default_logging() -> None:
    """medsr_se's log records (these fixes' warnings, the library's notes) print as ``warning: ...`` / ``note: ...``
    on stderr unless the ``medsr_se`` logger has a handler already: the commands set theirs from ``-q`` / ``-v``
    (:func:`medsr_se.cli.console.log_to_stderr`, which replaces this one); training through BasicSR's entry points
    has no such flag, and BasicSR's own logger must not be touched before its pipeline sets it up."""
    from medsr_se.cli.console import PACKAGE_LOGGER, log_to_stderr

    if not logging.getLogger(PACKAGE_LOGGER).handlers:
        log_to_stderr()


def apply() -> None:
    """Apply every fix that the installed basicsr still needs; importing basicsr on the way. Idempotent."""
    default_logging()
    apply_before_import()
    import basicsr  # noqa: F401  (the import itself is what the first fix makes possible)

    _run(AFTER_IMPORT)

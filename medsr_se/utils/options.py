"""Option files: finding the shipped recipes, loading YAML safely, and deriving variants from a recipe.

The recipes are the YAML files of ``options/`` (``x4``, ``x8``, ``x16``, ``pretrain_x4``, ``test_x4``, ...), the one
source of every setting. Demos, tests and benchmarks start from one of them and override only what they must
(:func:`derive`), never from a hand-written copy.

Loading is safe: :class:`SafeOrderedLoader` is PyYAML's ``SafeLoader`` (plain data only: a ``!!python/...`` tag is
an error, nothing is constructed or run) keeping the order of mappings as BasicSR's own loader does.
:mod:`medsr_se.integration.patches.safe_yaml` installs it as BasicSR's ``ordered_yaml`` loader, so BasicSR's
entry points load option files safely too once medsr-se is installed.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Mapping
from os import path as osp
from pathlib import Path

import yaml

from medsr_se import errors

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # medsr_se/
OPTIONS_DIR = PACKAGE_DIR.parent / "options"  # the recipes of a clone or an editable install
PACKAGED_DIR = PACKAGE_DIR / "recipes"  # the same files, copied into a wheel by setup.py


class OptionFileError(errors.OptionError):
    """An option file that cannot be found or parsed; the message names it."""


class SafeOrderedLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader (no Python objects, no code) whose mappings are OrderedDicts, like BasicSR's loader."""


def _construct_ordered_mapping(loader: SafeOrderedLoader, node: yaml.MappingNode) -> OrderedDict:
    loader.flatten_mapping(node)
    return OrderedDict(loader.construct_pairs(node))


SafeOrderedLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_ordered_mapping)


def load_yaml(path: str | Path) -> dict:
    """The mapping in an option file, parsed safely; :class:`OptionFileError` naming the file otherwise."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=SafeOrderedLoader)
    except OSError as error:
        raise OptionFileError(f"{path}: cannot read the option file ({error.strerror or error})") from error
    except yaml.YAMLError as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        if isinstance(error, yaml.constructor.ConstructorError):
            reason = f"{reason.strip()} {getattr(error, 'problem', '') or ''}".strip()
            reason += " (option files hold plain data only; Python tags are refused)"
        raise OptionFileError(f"{path}: not a valid option file: {reason}") from error
    if not isinstance(data, dict):
        raise OptionFileError(f"{path}: an option file must be a YAML mapping")
    return data


def resolve_option_argument(argv: list[str]) -> list[str]:
    """``argv`` with a recipe name after ``-opt`` (``-opt x4``) replaced by the shipped file's path; an existing
    file or an unknown name is left for the option reader (which names it in its error)."""
    value = option_file_argument(argv)
    if value is None or Path(value).is_file():
        return argv
    try:
        path = str(recipe_path(value))
    except OptionFileError:
        return argv
    return [path if arg == value else f"-opt={path}" if arg == f"-opt={value}" else arg for arg in argv]


def option_file_argument(argv: list[str]) -> str | None:
    """The value of ``-opt`` in a BasicSR command line (``-opt FILE`` or ``-opt=FILE``)."""
    for index, arg in enumerate(argv):
        if arg == "-opt" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("-opt="):
            return arg[len("-opt="):]
    return None


def recipe_dirs() -> list[Path]:
    """Where the shipped recipes are: ``options/`` of a clone (or editable install), else the wheel's copy."""
    return [folder for folder in (OPTIONS_DIR, PACKAGED_DIR) if folder.is_dir()]


RECIPE_SUBDIRS = ("baselines",)  # recipes named with their folder: ``baselines/edsr_x4``


def recipe_names() -> list[str]:
    """Names of the shipped recipes (``x4``, ``pretrain_x4``, ..., ``baselines/edsr_x4``, ...)."""
    return sorted({path.relative_to(folder).with_suffix("").as_posix() for folder in recipe_dirs()
                   for sub in (".", *RECIPE_SUBDIRS) for path in (folder / sub).glob("*.yml")})


def recipe_summary(name: str) -> str:
    """The first comment line of a recipe (what it is for)."""
    for line in recipe_path(name).read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def recipe_path(name_or_path: str | Path) -> Path:
    """An existing option file path as given, else the shipped recipe of that name (``x4`` or ``x4.yml``)."""
    candidate = Path(osp.expanduser(str(name_or_path)))
    if candidate.is_file():
        return candidate
    name = candidate.name[:-4] if candidate.name.endswith(".yml") else candidate.name
    parent = Path(*candidate.parent.parts[1:]) if candidate.parent.parts[:1] == ("options",) else candidate.parent
    if parent == Path(".") or parent.as_posix() in RECIPE_SUBDIRS:
        for folder in recipe_dirs():
            if (folder / parent / f"{name}.yml").is_file():
                return folder / parent / f"{name}.yml"
    raise OptionFileError(f"{name_or_path}: no such option file, and not a recipe name "
                          f"(recipes: {', '.join(recipe_names()) or 'none found'})")


def load_recipe(name_or_path: str | Path) -> dict:
    """A recipe's options (ordered mapping), by name (``x4``) or path."""
    return load_yaml(recipe_path(name_or_path))


def deep_update(options: dict, overrides: Mapping) -> dict:
    """Merge ``overrides`` into ``options`` in place: nested mappings are merged, anything else replaces."""
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(options.get(key), dict):
            deep_update(options[key], value)
        else:
            options[key] = copy.deepcopy(value)
    return options


def derive(recipe: str | Path, overrides: Mapping) -> dict:
    """``load_recipe(recipe)`` with ``overrides`` merged in (see :func:`deep_update`)."""
    return deep_update(load_recipe(recipe), overrides)


def for_in_process_model(options: dict, root: str | Path) -> dict:
    """What BasicSR's ``parse_options`` adds for ``basicsr.models.build_model`` in this process: one CPU process,
    not resuming, every output path under ``root``."""
    root = str(root)
    options.update(num_gpu=0, is_train=True, dist=False, rank=0, world_size=1, auto_resume=False)
    options.setdefault("path", {}).update(experiments_root=root, models=osp.join(root, "models"),
                                          training_states=osp.join(root, "training_states"), log=root,
                                          visualization=osp.join(root, "visualization"))
    return options


def plain(value):
    """Nested OrderedDicts (what the ordered loader gives) as plain dicts and lists, for ``yaml.safe_dump``."""
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def dump_yaml(options: Mapping, path: str | Path) -> Path:
    """Write ``options`` as a plain YAML option file (loadable by BasicSR and by :func:`load_yaml`)."""
    Path(path).write_text(yaml.safe_dump(plain(options), sort_keys=False), encoding="utf-8")
    return Path(path)


# ---------------------------------------------------------------------------------------------- checks before training
OUR_MODELS = ("RelativisticGANModel", "SEEDSRModel")


class OptionError(errors.OptionError):
    """An option that cannot work; the message names it (``datasets:train:gt_size: ...``)."""


def _first_hr_shape(folder: str, backend: str) -> tuple[int, int] | None:
    """(height, width) of the first HR image of a dataset folder or LMDB, None when it cannot be told cheaply."""
    if backend == "lmdb":
        meta = Path(folder) / "meta_info.txt"
        first = meta.read_text().split("\n", 1)[0] if meta.is_file() else ""
        try:
            height, width = (int(v) for v in first.split(" ")[1].strip("()").split(",")[:2])
        except (IndexError, ValueError):
            return None
        return height, width
    import cv2

    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and cv2.haveImageReader(str(p)))
    image = cv2.imread(str(files[0]), cv2.IMREAD_UNCHANGED) if files else None
    return None if image is None else image.shape[:2]


def _check_dataset(phase: str, dataset: Mapping, scale: int | None) -> None:
    backend = (dataset.get("io_backend") or {}).get("type", "disk")
    for key in ("dataroot_gt", "dataroot_lq"):
        root = dataset.get(key)
        if root is None:
            continue
        where = f"datasets:{phase}:{key}"
        if not osp.isdir(root):
            raise OptionError(f"{where}: no such folder {root} (prepare the data first: medsr-prepare, "
                              "see datasets/README.md)")
        if backend == "lmdb" and not osp.isfile(osp.join(root, "meta_info.txt")):
            raise OptionError(f"{where}: {root} is not a BasicSR LMDB (no meta_info.txt)")
    gt_size = dataset.get("gt_size")
    if not phase.startswith("train") or gt_size is None:
        return
    if scale and gt_size % scale:
        raise OptionError(f"datasets:{phase}:gt_size: {gt_size} is not a multiple of scale {scale}")
    shape = _first_hr_shape(dataset["dataroot_gt"], backend) if dataset.get("dataroot_gt") else None
    if shape is not None and gt_size > min(shape):
        raise OptionError(f"datasets:{phase}:gt_size: {gt_size} is larger than the training images "
                          f"({shape[1]}x{shape[0]} in {dataset['dataroot_gt']})")


# ------------------------------------------------------------------------------------------- fix-ups, every entry point
def fix_options(opt: dict) -> dict:
    """The option fix-ups, applied in place to what BasicSR's ``parse_options`` returns, on every entry point
    (``medsr_se.train`` / ``medsr_se.test`` and BasicSR's own train.py / test.py / ``train_pipeline`` through the
    autoload hook: :mod:`medsr_se.integration.patches.parse_options` installs one ``parse_options`` that calls
    this; there is no other copy):

    - ``persistent_workers`` is turned off where a loader has no worker processes (PyTorch refuses it:
      "persistent_workers option needs num_workers > 0"): a training set with ``num_worker_per_gpu: 0``, and every
      validation / test set (BasicSR builds those with 0 workers whatever the option says);
    - ``train:precision: bf16`` on a CPU without native bfloat16 gets one warning, with the reason
      (:func:`medsr_se.utils.precision.warn_slow_bf16`).
    """
    for phase, dataset in (opt.get("datasets") or {}).items():
        if not isinstance(dataset, dict) or not dataset.get("persistent_workers"):
            continue
        if dataset.get("phase", str(phase).split("_")[0]) != "train" or not dataset.get("num_worker_per_gpu", 0):
            dataset["persistent_workers"] = False  # nothing to keep without worker processes
    precision = (opt.get("train") or {}).get("precision") if opt.get("is_train", True) else None
    if precision == "bf16" and opt.get("num_gpu") == 0:
        from medsr_se.utils.precision import warn_slow_bf16

        warn_slow_bf16("cpu", "train:precision bf16")
    return opt


def check_training_options(opt: Mapping) -> None:
    """The mistakes that otherwise surface deep in training (a missing dataset, ``network_g:upscale`` != ``scale``,
    a ``gt_size`` the data cannot give), as one :class:`OptionError` naming the option. Only for our models."""
    if opt.get("model_type") not in OUR_MODELS:
        return
    scale = opt.get("scale")
    upscale = (opt.get("network_g") or {}).get("upscale")
    if scale is not None and upscale is not None and upscale not in (scale, [scale, 1]):
        raise OptionError(f"network_g:upscale is {upscale} but scale is {scale}: they must be equal (or [scale, 1] "
                          "for a through-plane network)")
    for phase, dataset in (opt.get("datasets") or {}).items():
        _check_dataset(phase, dataset, scale)

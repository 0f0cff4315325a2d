"""Reading a trained generator from a BasicSR network checkpoint (``net_g_*.pth``): any architecture of BasicSR's
ARCH_REGISTRY (ours included).

A BasicSR ``net_g_*.pth`` holds ``params`` (and ``params_ema`` when EMA was on). Checkpoints written with the plugin
loaded also hold ``medsr_se_network_g``, the ``network_g`` options the generator was built from: every constructor
argument, ``res_scale`` included, which cannot be read off the weights. Without it the options come from the option
file the user gives (``options``: :func:`network_option_file`); for a SEEDSRGenerator without either (checkpoints
of earlier versions) the architecture is read off the tensors themselves (channels, width, depth, scale, SE
reduction, image skip, SE present or not) and ``res_scale`` is assumed 1.0; ``se: plain`` has the same tensors as
``se: improved`` and is only known from the stored options. Options given for a checkpoint that stores its
network_g must agree with it (the stored one is what the weights were trained with); every message says where a
value came from (the stored network_g, the option file, the layout of the weights), and an error about the options
given carries ``parameter="options"``.

The weights: ``params_ema``, else ``params``, else the file itself when it is a bare state dict
(``torch.save(model.state_dict(), path)``); the ``module.`` of a DataParallel / DDP state dict is removed as BasicSR's
``load_network`` removes it. A whole pickled model (``torch.save(model)``) is not unpickled (that can run code): it
is named, with how to save a state dict instead. A built network is tried once on a small input, so that options
that cannot run (or give another scale than they name) are refused at load, in one line.
Writing checkpoints is the models' business (:mod:`medsr_se.models.atomic_save`).
"""

from __future__ import annotations

import inspect
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

from medsr_se.archs.seedsr_arch import IMG_RESIDUAL_KEY, SEEDSRGenerator
from medsr_se.checkpoint_format import (
    DATA_KEY,
    NETWORK_OPTIONS_KEY,
    CheckpointError,
    one_line,
    quietly,
    read_checkpoint,
)
from medsr_se.inference.window import any_size, input_multiple
from medsr_se.io.intensity import IntensityModel


@dataclass(frozen=True)
class TrainingData:
    """What a checkpoint of our models records about its training set (:data:`DATA_KEY`, written by
    :func:`medsr_se.models.atomic_save.training_data_record` from the prepared dataset's ``manifest.json``).
    Every field is None for a checkpoint without the record (other BasicSR models, earlier versions)."""

    modality: str | None = None  # DICOM modality of the training volumes ('CT', 'MR'); None for photographs
    intensity: dict | None = None  # the training set's IntensityModel.to_dict()
    dataset: str | None = None  # folder of the prepared dataset

    @classmethod
    def from_checkpoint(cls, saved: object) -> TrainingData:
        """The record of a loaded checkpoint dict; empty fields where it is absent or not a record."""
        record = saved.get(DATA_KEY) if isinstance(saved, dict) else None
        if not isinstance(record, dict):
            return cls()
        intensity = record.get("intensity")
        return cls(modality=record.get("modality"), intensity=intensity if isinstance(intensity, dict) else None,
                   dataset=record.get("dataset"))

    def intensity_model(self) -> IntensityModel | None:
        """The recorded intensity model; None when none was recorded or only the stored type's full range
        (``kind: dtype``, which inference derives from each input itself)."""
        if not self.intensity or self.intensity.get("kind") == "dtype":
            return None
        return IntensityModel.from_dict(self.intensity)


def load_training_data(path: str) -> TrainingData:
    """What the checkpoint ``path`` records about its training set (:class:`TrainingData`)."""
    return TrainingData.from_checkpoint(read_checkpoint(path))


def generator_config(state: dict[str, torch.Tensor]) -> dict:
    """SEEDSRGenerator keyword arguments that reproduce the layout of ``state``."""
    try:
        conv_first, conv_last = state["conv_first.weight"], state["conv_last.weight"]
        state["conv_after_body.weight"], state["upsample.0.conv.weight"]  # noqa: B018  (RRDBNet, EDSR lack them)
        num_feat = conv_first.shape[0]
        has_se = "se_first.fc1.weight" in state
        return {
            "num_in_ch": conv_first.shape[1], "num_out_ch": conv_last.shape[0], "num_feat": num_feat,
            "num_block": len({m.group(1) for key in state if (m := re.match(r"body\.(\d+)\.", key))}),
            "upscale": upscale_of(state, num_feat),
            "reduction": num_feat // state["se_first.fc1.weight"].shape[0] if has_se else 16,
            "img_residual": IMG_RESIDUAL_KEY in state,
            "se": "improved" if has_se else "none",
        }
    except KeyError as error:
        raise CheckpointError(f"not a SEEDSRGenerator state dict (missing {error})") from error


def upscale_of(state: dict[str, torch.Tensor], num_feat: int) -> int | list[int]:
    """The ``upscale`` of a state dict, from its upsampling convolutions: 4F outputs = an isotropic x2 stage,
    f·F with f prime = a stage of f along the height (``upscale: [r, 1]``, r the product of the stages)."""
    stages = sorted({int(m.group(1)) for key in state if (m := re.match(r"upsample\.(\d+)\.conv\.weight", key))})
    factors = [state[f"upsample.{index}.conv.weight"].shape[0] // num_feat for index in stages]
    if all(factor == 4 for factor in factors):
        return 2 ** len(factors)
    return [math.prod(factors), 1]


SEEDSR_TYPE = "SEEDSRGenerator"
SCALE_KEYS = ("upscale", "scale")  # what BasicSR's generators call their scale (EDSR / MSRResNet, RRDBNet)
DDP_PREFIX = "module."  # what DataParallel / DistributedDataParallel put before every key of their state dict
STORED = "its stored network_g"  # the source of a network_g read from the checkpoint itself
WEIGHTS = "the layout of its weights"  # the source of a SEEDSRGenerator's options read off its tensors


class NetworkOptions(dict):
    """A ``network_g`` with where it came from, for messages (``source``: "the option file x4.yml"). ``fallback``:
    for checkpoints that store no network_g only (medsr-evaluate's one option file for every model), so a stored
    one is used without comparing."""

    def __init__(self, options: Mapping, source: str, fallback: bool = False) -> None:
        super().__init__(options)
        self.source = source
        self.fallback = fallback


def option_source(options: Mapping) -> str:
    return getattr(options, "source", "the network_g given")


def network_options(path: str, saved, options: Mapping | None) -> NetworkOptions | None:
    """The ``network_g`` options to build the checkpoint's generator from, with their source: those stored in it,
    else ``options`` (its option file's ``network_g``, or the whole option file), else None. Options given for this
    checkpoint that contradict its stored ones are an error naming both (:func:`check_agreement`)."""
    stored = saved.get(NETWORK_OPTIONS_KEY) if isinstance(saved, dict) else None
    given = options.get("network_g", options) if options is not None else None
    given = NetworkOptions(given, option_source(options), getattr(options, "fallback", False)) \
        if isinstance(given, Mapping) else None
    if isinstance(stored, Mapping):
        if given is not None and not given.fallback:
            check_agreement(path, stored, given)
        return NetworkOptions(stored, STORED)
    return given


REGISTRY_SUFFIX = "basicsr"  # BasicSR registers SRVGGNetCompact as SRVGGNetCompact_basicsr; its get() finds both


def registered_name(kind: object) -> str | None:
    """The name under which BasicSR's ARCH_REGISTRY holds the architecture ``kind``: itself, or with the suffix
    its ``Registry.get`` falls back to (without its print); None when it holds neither."""
    from basicsr.utils.registry import ARCH_REGISTRY

    names = [kind, f"{kind}_{REGISTRY_SUFFIX}"] if isinstance(kind, str) else []
    return next((name for name in names if name in ARCH_REGISTRY), None)


def constructor_defaults(kind: str | None) -> dict:
    """Keyword defaults of the registered architecture ``kind`` ({} when it is not registered)."""
    from basicsr.utils.registry import ARCH_REGISTRY

    name = registered_name(kind)
    if name is None:
        return {}
    parameters = inspect.signature(ARCH_REGISTRY.get(name)).parameters.values()
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def plain(value):
    """``value`` with tuples as lists (YAML and torch.save keep sequences in either form)."""
    return [plain(item) for item in value] if isinstance(value, (list, tuple)) else value


def check_agreement(path: str, stored: Mapping, given: NetworkOptions) -> None:
    """The stored ``network_g`` (what the weights were trained with) against options given for the checkpoint:
    every key either sets, a missing one at the architecture's default; one line naming the first differences
    and both sources when they disagree (``parameter="options"``)."""
    kind, given_kind = stored.get("type", SEEDSR_TYPE), given.get("type", SEEDSR_TYPE)
    defaults = constructor_defaults(kind)

    def value(options: Mapping, key: str):
        return plain(options.get(key, defaults.get(key)))

    differing = [f"type: {kind} stored, {given_kind} in {given.source}"] if given_kind != kind else [
        f"{key}: {value(stored, key)} stored, {value(given, key)} in {given.source}"
        for key in sorted((set(stored) | set(given)) - {"type"}) if value(stored, key) != value(given, key)]
    if differing:
        raise CheckpointError(f"{path}: {STORED} and {given.source} disagree ({'; '.join(differing[:3])}"
                              f"{'; ...' if len(differing) > 3 else ''}); the stored one is what its weights were "
                              "trained with: leave the option file out (it is for checkpoints that store none) or "
                              "give the matching one", parameter="options")


def network_option_file(path: str | None, fallback: bool = False) -> NetworkOptions | None:
    """The ``network_g`` of an option file (``path``: a path or a recipe name), None for None, for
    :func:`load_generator`'s ``options``; an error naming the file when it cannot be read or has no ``network_g``
    (``parameter="path"``). ``fallback``: see :class:`NetworkOptions`."""
    if path is None:
        return None
    from medsr_se.utils.options import load_recipe

    options = load_recipe(path)
    network = options.get("network_g") if isinstance(options, Mapping) else None
    if not isinstance(network, Mapping) or "type" not in network:
        raise CheckpointError(f"{path}: has no network_g with a type (give the option file the checkpoint was "
                              "trained with)", parameter="path")
    return NetworkOptions(network, f"the option file {path}", fallback)


def without_type(options: Mapping) -> dict:
    return {key: value for key, value in options.items() if key != "type"}


def network_scale(options: Mapping) -> int | None:
    """The scale in a ``network_g`` (``upscale`` or ``scale``), None when it names none."""
    return next((options[key] for key in SCALE_KEYS if key in options), None)


def check_expected(path: str, values: Mapping, source: str, expected: Mapping) -> None:
    """``expected`` (e.g. upscale=4, what a command was asked for) against ``values`` read from ``source``: one
    line naming both, "trained with" only for what the checkpoint itself says (its stored network_g, the layout of
    its weights), else the option file that says it."""
    for key, value in expected.items():
        recorded = values.get(key)
        if value is not None and recorded != value:
            through_plane = isinstance(recorded, (list, tuple)) and key == "upscale"
            said = f"{source} says {'it was trained with ' if source in (STORED, WEIGHTS) else ''}{key}={recorded}"
            raise CheckpointError(f"{path}: {said}, but {key}={value} was asked for"
                                  + (" (a through-plane model, for through-plane SR: medsr-selfsr or "
                                     "medsr_se.throughplane)" if through_plane else ""))


def build_basicsr_generator(path: str, network: NetworkOptions, state: dict[str, torch.Tensor],
                            expected: Mapping) -> torch.nn.Module:
    """Any generator of BasicSR's ARCH_REGISTRY (ours included) from ``network`` (``type`` + keyword arguments),
    its weights loaded strictly; errors name the file and where the options came from."""
    from basicsr.archs import build_network

    kind = network["type"]
    name = registered_name(kind)
    if name is None:
        raise CheckpointError(f"{path}: type {kind!r} is not a registered BasicSR architecture (named by "
                              f"{network.source})")
    scale = network_scale(network)
    if scale is None:
        raise CheckpointError(f"{path}: {network.source} ({kind}) names no upscale / scale")
    check_expected(path, {**network, "upscale": scale}, network.source, expected)

    def build() -> torch.nn.Module:
        net = build_network({**network, "type": name})
        net.load_state_dict(state)
        return net

    try:
        net = quietly(build)
    except (RuntimeError, TypeError, ValueError, KeyError) as error:
        raise CheckpointError(f"{path}: its weights do not fit {kind}({without_type(network)}) of "
                              f"{network.source} ({state_dict_mismatch(error)})") from error
    net.upscale = scale
    net.scale_hw = (scale, scale)
    net.medsr_se_in_channels = network_channels(network)
    return check_forward(path, any_size(net.eval()), network)


CHANNEL_KEYS = ("num_in_ch", "in_chans")  # what BasicSR's generators call their input channels (SwinIR: in_chans)


def network_channels(network: Mapping) -> int | None:
    """The input channels a ``network_g`` names (its architecture's default when it leaves them out), else None."""
    defaults = constructor_defaults(network.get("type"))
    return next((value for key in CHANNEL_KEYS if isinstance(value := network.get(key, defaults.get(key)), int)),
                None)


PROBE_SIDE = 16  # LR pixels of the input a loaded network is tried on (rounded up to its attention window)


def probe_input(net: torch.nn.Module) -> torch.Tensor:
    """A small zero input (1, C, h, w) of unequal sides, multiples of what the network's input needs, in the
    network's dtype and on its device."""
    from medsr_se.inference.halo import round_up
    from medsr_se.inference.upscale import input_channels

    multiple = input_multiple(net) or 1
    height = round_up(PROBE_SIDE, multiple)
    parameter = next(net.parameters())
    return torch.zeros(1, input_channels(net), height, height + round_up(PROBE_SIDE // 2, multiple),
                       dtype=parameter.dtype, device=parameter.device)


@torch.no_grad()
def probe_forward(net: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, output) of one forward pass of ``net`` on :func:`probe_input` (library warnings: :func:`quietly`);
    the RuntimeError of a network that cannot run so goes to the caller."""
    probe = probe_input(net)
    return probe, quietly(lambda: net(probe))


def check_forward(path: str, net: torch.nn.Module, network: NetworkOptions) -> torch.nn.Module:
    """``net`` after one forward pass on a small zero input of unequal sides (:func:`probe_forward`): a network_g
    that builds but cannot run (a 1-channel BasicSR EDSR, whose 3-value mean broadcasts the input to 3 channels; a
    SwinIR with ``ape``, whose position embedding fixes its input size) or whose output is not the scale it names
    (BasicSR's RRDBNet returns x4 for ``scale: 8``) is one line naming the file and the options' source, here
    rather than in the middle of a folder."""
    try:
        probe, out = probe_forward(net)
    except RuntimeError as error:
        shape = probe_input(net).shape
        raise CheckpointError(f"{path}: {type(net).__name__} built from {network.source} fails on a "
                              f"{shape[1]}-channel {shape[3]}x{shape[2]} input ({one_line(error)})") from error
    factors = (out.shape[-2] / probe.shape[-2], out.shape[-1] / probe.shape[-1])
    if factors != tuple(map(float, net.scale_hw)):
        raise CheckpointError(f"{path}: {type(net).__name__} built from {network.source} upscales "
                              f"x{factors[0]:g}, not the x{net.upscale} it names")
    return net


LAYOUT_KEYS = ("num_in_ch", "num_out_ch", "num_feat", "num_block", "upscale", "img_residual")


def check_recorded_layout(path: str, config: dict, source: str, state: dict[str, torch.Tensor]) -> None:
    """The network options given with a checkpoint (``source``: stored, or an option file) against the layout its
    weights have: one line naming the first disagreement (a recorded upscale=4 with the weights of an x2 network,
    say); ``parameter="options"`` when the options given are at fault."""
    try:
        weights = generator_config(state)
    except CheckpointError:
        return  # load_state_dict says what is missing
    for key in LAYOUT_KEYS:
        if key in config and config[key] != weights[key]:
            fix = ("the checkpoint is inconsistent (re-save it from the training run)" if source == STORED else
                   "give the option file it was trained with, or none")
            raise CheckpointError(f"{path}: {source} says {key}={config[key]}, but its weights are those of "
                                  f"{key}={weights[key]}; {fix}", parameter=None if source == STORED else "options")


def state_dict_mismatch(error: Exception) -> str:
    """torch's multi-line load_state_dict text in one line: the counts and the first key of each kind."""
    text = str(error)
    parts = []
    for label in ("Missing key(s)", "Unexpected key(s)", "size mismatch"):
        found = re.findall(r'"([^"]+)"', text.split(label, 1)[1].split("\n", 1)[0]) if label in text else []
        if label == "size mismatch":
            found = re.findall(r"size mismatch for ([^:]+):", text)
        if found:
            parts.append(f"{len(found)} {label.lower()}, e.g. {found[0]}")
    return "; ".join(parts) or one_line(error)


TRAINING_STATE_KEYS = {"iter", "optimizers"}  # a BasicSR training state (training_states/*.state) holds these


def network_state(path: str, saved: object, param_key: str) -> dict[str, torch.Tensor]:
    """The state dict in a loaded checkpoint: ``saved[param_key]`` (``params_ema``), else ``saved['params']``
    (as BasicSR's ``load_network`` falls back), else ``saved`` itself when it is a bare state dict; with the
    ``module.`` prefix of a DataParallel / DDP state dict removed (:func:`without_ddp_prefix`). One line naming
    the file when there is none."""
    if not isinstance(saved, dict):
        raise CheckpointError(f"{path}: holds a {type(saved).__name__}, not a BasicSR network checkpoint (a dict "
                              "with params / params_ema)")
    key = param_key if param_key in saved else "params" if "params" in saved else None
    state = saved[key] if key is not None else saved
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        keys = ", ".join(map(str, list(saved)[:5])) + (", ..." if len(saved) > 5 else "")
        hint = (" (a BasicSR training state: give the net_g_*.pth of the experiment's models/ folder)"
                if TRAINING_STATE_KEYS <= set(saved) else "")
        where = f"its {key} holds" if key is not None else f"it has no params / params_ema, and its keys ({keys}) are"
        raise CheckpointError(f"{path}: {where} no network weights{hint}")
    return without_ddp_prefix(path, state)


def without_ddp_prefix(path: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with the ``module.`` that DataParallel / DistributedDataParallel put before its keys removed from
    every key that has it, as BasicSR's ``BaseModel.load_network`` does (by torch's
    ``consume_prefix_in_state_dict_if_present``); a key present both with and without it is an error."""
    prefixed = [key for key in state if key.startswith(DDP_PREFIX)]
    clashing = [key for key in prefixed if key[len(DDP_PREFIX):] in state]
    if clashing:
        raise CheckpointError(f"{path}: holds both {clashing[0]} and {clashing[0][len(DDP_PREFIX):]}; which one is "
                              "the network's cannot be told")
    if not prefixed:
        return state
    state = dict(state)
    consume_prefix_in_state_dict_if_present(state, DDP_PREFIX)
    return state


def load_generator(path: str, param_key: str = "params_ema", device: str | torch.device = "cpu",
                   options: Mapping | str | os.PathLike | None = None, **expected) -> torch.nn.Module:
    """The generator in ``path`` (``params_ema`` if present, else ``params``), in eval mode.

    Any BasicSR generator loads: it is built from the ``network_g`` options stored in the checkpoint (every
    checkpoint our models write, and those of BasicSR's own models trained with the plugin loaded), else from
    ``options`` (the ``network_g`` of the option file it was trained with, or that file: a path or a recipe name,
    read by :func:`network_option_file`), else, for a SEEDSRGenerator only, from the layout of its weights.
    Options given for a checkpoint that stores its own must agree with them (else an error naming both,
    ``parameter="options"``). ``net.upscale`` is its scale whatever the architecture calls it (RRDBNet: ``scale``;
    EDSR: ``upscale``), ``net.scale_hw`` its (height, width) factors. A network that takes multiples of a size
    only (SwinIR's window, RRDBNet's pixel unshuffle at scale 2 / 1) takes inputs of any size
    (:func:`medsr_se.inference.window.any_size`). A DataParallel / DDP state dict (``module.`` keys) loads as
    BasicSR's ``load_network`` loads it.

    What the checkpoint records about its training set: :func:`load_training_data`.

    ``expected`` (e.g. ``upscale=4``) is checked against the checkpoint, with an error naming the file and where
    the value came from.
    """
    if isinstance(options, (str, os.PathLike)):
        try:
            options = network_option_file(os.fspath(options))
        except CheckpointError as error:  # the file came in as options=, not as network_option_file's path=
            raise CheckpointError(str(error), parameter="options") from error
    saved = read_checkpoint(path)
    state = network_state(path, saved, param_key)
    network = network_options(path, saved, options)
    if network is not None and network.get("type", SEEDSR_TYPE) != SEEDSR_TYPE:
        net = build_basicsr_generator(path, network, state, expected)
        return net.eval().to(device)
    if network is None:
        try:
            config, source = generator_config(state), WEIGHTS
        except CheckpointError as error:
            raise CheckpointError(f"{path}: {error}; if it is another BasicSR generator, give the option file it "
                                  "was trained with (options=FILE)", parameter="options") from error
    else:
        config, source = without_type(network), network.source
    check_expected(path, config, source, expected)
    if network is not None:
        check_recorded_layout(path, config, source, state)
    try:
        net = quietly(lambda: SEEDSRGenerator(**config))
        net.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: its weights do not fit SEEDSRGenerator({config}) of {source} "
                              f"({state_dict_mismatch(error)})") from error
    return net.eval().to(device)

"""What load_generator makes of the checkpoint files people have (issue 31, defects 8, 9, 10): a pickled model,
a DataParallel / DDP state dict, an --opt that contradicts the stored network_g or supplies the scale, and the
variants around them (params_ema / params / neither, a training state, a truncated file, prefixes on some keys).
Oracles: BasicSR's own network built from the options with the weights loaded by hand, and torch's own text."""

from __future__ import annotations

import argparse
import warnings

import pytest
import torch
from basicsr.archs import build_network

from medsr_se.cli import export, infer
from medsr_se.inference.checkpoint import NETWORK_OPTIONS_KEY, CheckpointError, load_generator, network_option_file
from medsr_se.utils.options import dump_yaml
from tests.helpers import trained_looking

EDSR = {"type": "EDSR", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_block": 1, "upscale": 2}


def edsr(options: dict = EDSR) -> torch.nn.Module:
    """BasicSR's network of ``options`` (EDSR by default), its weights moved off their initial values."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's meshgrid deprecation when SwinIR is built
        return trained_looking(build_network(dict(options)))


def same_output(net: torch.nn.Module, reference: torch.nn.Module) -> bool:
    x = torch.rand(1, 3, 9, 11, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return torch.equal(net(x), reference(x))


def option_file(path, network: dict) -> str:
    dump_yaml({"network_g": network}, path)
    return str(path)


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("legacy", [False, True])
def test_a_pickled_model_is_named_with_how_to_save_a_state_dict(tmp_path, capsys, legacy):
    """Defect 8: torch.save(model) was refused with torch's text cut at 200 characters, ANSI bold codes included,
    and its advice to load it unsafely."""
    torch.save(edsr(), tmp_path / "model.pth", _use_new_zipfile_serialization=not legacy)
    assert export.main(["--model", str(tmp_path / "model.pth"), "-o", str(tmp_path / "g.onnx")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "model.pth: holds a whole pickled model (EDSR, saved with torch.save(model)), not a state dict" in line
    assert "torch.save(model.state_dict(), path)" in line and "{'params': model.state_dict()}" in line
    assert "\x1b" not in line and "weights_only=False" not in line and "trust" not in line


def test_other_pickled_objects_and_corrupt_files_are_one_clean_line(tmp_path):
    torch.save({"params": {"conv.weight": torch.zeros(1)}, "args": argparse.Namespace(a=1)}, tmp_path / "object.pth")
    with pytest.raises(CheckpointError, match=r"object\.pth: holds pickled Python objects \(argparse\.Namespace\)"):
        load_generator(str(tmp_path / "object.pth"))
    good = tmp_path / "good.pth"
    torch.save({"params": edsr().state_dict(), NETWORK_OPTIONS_KEY: EDSR}, good)
    (tmp_path / "truncated.pth").write_bytes(good.read_bytes()[:3000])
    with pytest.raises(CheckpointError) as caught:
        load_generator(str(tmp_path / "truncated.pth"))
    with pytest.raises(RuntimeError) as original:  # torch's own text, the oracle of the quote
        torch.load(tmp_path / "truncated.pth", weights_only=True)
    torch_text = " ".join(str(original.value).split())
    head = f"{tmp_path / 'truncated.pth'}: cannot be read as a torch checkpoint ("
    message = str(caught.value)
    assert message.startswith(head) and message.endswith(" ...)") and "\n" not in message
    quoted = message[len(head):-len(" ...)")]
    assert torch_text.startswith(quoted + " ")  # cut where a word ends, not inside one


def test_a_ddp_state_dict_loads_as_basicsr_loads_it(tmp_path, capsys):
    """Defect 9: 'module.' before every key (torch.save(ddp.state_dict())) was refused as missing / unexpected
    keys; BasicSR's load_network strips it, key by key."""
    net = edsr()
    state = net.state_dict()
    ddp = {f"module.{key}": value for key, value in state.items()}
    torch.save({"params": ddp, NETWORK_OPTIONS_KEY: EDSR}, tmp_path / "ddp.pth")
    assert same_output(load_generator(str(tmp_path / "ddp.pth")), net)
    torch.save({"params": ddp}, tmp_path / "bare_ddp.pth")  # no stored options: with --opt
    opt = option_file(tmp_path / "edsr.yml", EDSR)
    assert same_output(load_generator(str(tmp_path / "bare_ddp.pth"), options=network_option_file(opt)), net)
    some = {(f"module.{key}" if index % 2 else key): value for index, (key, value) in enumerate(state.items())}
    torch.save({"params_ema": some, NETWORK_OPTIONS_KEY: EDSR}, tmp_path / "some.pth")
    assert same_output(load_generator(str(tmp_path / "some.pth")), net)  # BasicSR strips it wherever it is
    torch.save({"params": {**state, "module.conv_first.weight": state["conv_first.weight"]},
                NETWORK_OPTIONS_KEY: EDSR}, tmp_path / "both.pth")
    with pytest.raises(CheckpointError, match=r"both\.pth: holds both module\.conv_first\.weight and "
                                              r"conv_first\.weight"):
        load_generator(str(tmp_path / "both.pth"))


def test_params_ema_params_or_a_bare_state_dict(tmp_path):
    ema, plain = edsr(), edsr({**EDSR})
    with torch.no_grad():
        next(plain.parameters()).add_(1.0)
    cases = {"both": {"params": plain.state_dict(), "params_ema": ema.state_dict()},
             "ema_only": {"params_ema": ema.state_dict()}, "params_only": {"params": plain.state_dict()}}
    for name, saved in cases.items():
        torch.save({**saved, NETWORK_OPTIONS_KEY: EDSR}, tmp_path / f"{name}.pth")
    assert same_output(load_generator(str(tmp_path / "both.pth")), ema)  # params_ema first, as BasicSR's test
    assert same_output(load_generator(str(tmp_path / "both.pth"), param_key="params"), plain)
    assert same_output(load_generator(str(tmp_path / "ema_only.pth")), ema)
    assert same_output(load_generator(str(tmp_path / "params_only.pth")), plain)
    torch.save(ema.state_dict(), tmp_path / "bare.pth")  # torch.save(model.state_dict(), path)
    assert same_output(load_generator(str(tmp_path / "bare.pth"), options=EDSR), ema)


@pytest.mark.parametrize("saved,expected", [
    ({"iter": 5, "epoch": 0, "optimizers": [], "schedulers": []},
     r"it has no params / params_ema, and its keys \(iter, epoch, optimizers, schedulers\) are no network weights "
     r"\(a BasicSR training state: give the net_g_\*\.pth"),
    ({"params": {}}, r"its params holds no network weights"),
    ({"params_ema": {"a": 1}}, r"its params_ema holds no network weights"),
    ([1, 2], r"holds a list, not a BasicSR network checkpoint"),
])
def test_files_without_weights_are_one_line(tmp_path, saved, expected):
    torch.save(saved, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match=r"x\.pth: " + expected):
        load_generator(str(tmp_path / "x.pth"), options=EDSR)


def test_values_from_opt_are_named_as_such(tmp_path, capsys):
    """Defect 10: with no stored network_g, a scale that came from --opt was reported as what the checkpoint 'was
    trained with'."""
    torch.save({"params": edsr().state_dict()}, tmp_path / "bare.pth")
    x4 = option_file(tmp_path / "x4.yml", {**EDSR, "upscale": 4})
    image = tmp_path / "in" / "a.png"
    image.parent.mkdir()
    import cv2
    import numpy as np

    cv2.imwrite(str(image), np.zeros((8, 8, 3), np.uint8))
    assert infer.main(["-i", str(image), "-o", str(tmp_path / "o"), "--model", str(tmp_path / "bare.pth"),
                       "--opt", x4, "--scale", "2"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"bare.pth: the option file {x4} says upscale=4, but upscale=2 was asked for" in line
    assert "trained with" not in line
    assert infer.main(["-i", str(image), "-o", str(tmp_path / "o"), "--model", str(tmp_path / "bare.pth"),
                       "--opt", x4]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "bare.pth: its weights do not fit EDSR(" in line and f"of the option file {x4} (" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("change,difference", [
    ({"upscale": 4}, "upscale: 2 stored, 4 in the option file"),
    ({"num_feat": 16}, "num_feat: 8 stored, 16 in the option file"),
    ({"type": "MSRResNet"}, "type: EDSR stored, MSRResNet in the option file"),
    ({"res_scale": 0.5}, "res_scale: 1 stored, 0.5 in the option file"),  # absent from the stored one: the default
])
def test_an_opt_contradicting_the_stored_network_g_is_refused(tmp_path, capsys, change, difference):
    """Defect 10: an --opt that contradicts the checkpoint's stored network_g was ignored without a word."""
    torch.save({"params": edsr().state_dict(), NETWORK_OPTIONS_KEY: EDSR}, tmp_path / "stored.pth")
    opt = option_file(tmp_path / "other.yml", {**EDSR, **change})
    assert export.main(["--model", str(tmp_path / "stored.pth"), "--opt", opt, "-o", str(tmp_path / "g.onnx")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"stored.pth: its stored network_g and the option file {opt} disagree ({difference}" in line
    assert "the stored one is what its weights were trained with" in line and not (tmp_path / "g.onnx").exists()


def test_errors_about_the_options_given_name_the_parameter_not_a_flag(tmp_path):
    """Called from Python, load_generator's errors about the options given carry ``parameter="options"`` and name
    the option file, never the commands' --opt (they said "--opt FILE ... leave --opt out"); network_option_file's
    own refusal names its ``path``."""
    torch.save({"params": edsr().state_dict(), NETWORK_OPTIONS_KEY: EDSR}, tmp_path / "stored.pth")
    opt = option_file(tmp_path / "other.yml", {**EDSR, "num_feat": 16})
    with pytest.raises(CheckpointError) as raised:
        load_generator(str(tmp_path / "stored.pth"), options=network_option_file(opt))
    message = str(raised.value)
    assert message.startswith(f"{tmp_path / 'stored.pth'}: its stored network_g and the option file {opt} disagree "
                              "(num_feat: 8 stored, 16 in the option file")
    assert "leave the option file out" in message and "--" not in message and raised.value.parameter == "options"
    torch.save({"params": edsr().state_dict()}, tmp_path / "bare.pth")
    x4 = option_file(tmp_path / "x4.yml", {**EDSR, "num_feat": 16})
    with pytest.raises(CheckpointError, match="weights do not fit") as raised:
        load_generator(str(tmp_path / "bare.pth"), options=network_option_file(x4))
    assert f"of the option file {x4} (" in str(raised.value) and "--" not in str(raised.value)
    dump_yaml({"train": {}}, tmp_path / "none.yml")
    with pytest.raises(CheckpointError) as raised:
        network_option_file(str(tmp_path / "none.yml"))
    assert str(raised.value) == (f"{tmp_path / 'none.yml'}: has no network_g with a type (give the option file the "
                                 "checkpoint was trained with)")
    assert raised.value.parameter == "path"
    with pytest.raises(CheckpointError, match="none.yml: has no network_g") as raised:
        load_generator(str(tmp_path / "bare.pth"), options=tmp_path / "none.yml")  # the file itself as options=
    assert raised.value.parameter == "options"


def test_an_opt_agreeing_with_the_stored_network_g_is_fine(tmp_path):
    """Keys the option file leaves out, or sets to BasicSR's defaults, or spells as a list, agree."""
    net = edsr()
    torch.save({"params": net.state_dict(), NETWORK_OPTIONS_KEY: EDSR}, tmp_path / "stored.pth")
    opt = option_file(tmp_path / "same.yml", {**EDSR, "res_scale": 1, "img_range": 255.0})
    assert same_output(load_generator(str(tmp_path / "stored.pth"), options=network_option_file(opt)), net)
    fallback = network_option_file(option_file(tmp_path / "x4.yml", {**EDSR, "upscale": 4}), fallback=True)
    assert same_output(load_generator(str(tmp_path / "stored.pth"), options=fallback), net)  # evaluate's --opt FILE


@pytest.mark.parametrize("network,message", [
    ({**EDSR, "num_in_ch": 1, "num_out_ch": 1},
     r"EDSR built from its stored network_g fails on a 1-channel 24x16 input"),
    ({"type": "RRDBNet", "num_in_ch": 3, "num_out_ch": 3, "num_feat": 8, "num_block": 1, "num_grow_ch": 4,
      "scale": 8}, r"RRDBNet built from its stored network_g upscales x4, not the x8 it names"),
    ({"type": "SwinIR", "upscale": 2, "img_size": 16, "window_size": 8, "depths": [2], "embed_dim": 12,
      "num_heads": [2], "mlp_ratio": 2, "upsampler": "pixelshuffle", "ape": True},
     r"SwinIR built from its stored network_g fails on a 3-channel 24x16 input"),  # its position embedding: 16x16
])
def test_a_network_g_that_cannot_run_as_named_is_refused_at_load(tmp_path, network, message):
    """Probed: a 1-channel BasicSR EDSR (its 3-value mean broadcasts the input to 3 channels) and a SwinIR with an
    absolute position embedding (ape: its img_size only) failed with a RuntimeError traceback at the first image;
    BasicSR's RRDBNet with scale 8 returns x4."""
    torch.save({"params": edsr(network).state_dict(), NETWORK_OPTIONS_KEY: network}, tmp_path / "n.pth")
    with pytest.raises(CheckpointError, match=r"n\.pth: " + message):
        load_generator(str(tmp_path / "n.pth"))

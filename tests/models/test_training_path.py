"""Mixed precision and the training-path defects (checkpoints, resume, VGG features, options, loop overhead)."""

from __future__ import annotations

import errno
import re

import pytest
import torch
from basicsr.models import build_model

from medsr_se.inference.checkpoint import load_generator
from medsr_se.losses.vgg_features import VGGFeatures
from medsr_se.models.atomic_save import CheckpointWriteError
from medsr_se.utils import compat
from medsr_se.utils.options import OptionError, load_recipe
from tests.helpers import run_python, tiny_gan_options, write_options
from tests.models.test_relativistic_gan_model import build_tiny_model

BATCH = {"lq": torch.rand(2, 3, 16, 16), "gt": torch.rand(2, 3, 64, 64)}


def saved_root(model, tmp_path):
    root = tmp_path / "experiments" / "unit"
    (root / "models").mkdir(parents=True, exist_ok=True)
    (root / "training_states").mkdir(exist_ok=True)
    return root


# ------------------------------------------------------------------------------------------------ precision
def test_bf16_step_on_cpu_is_finite_and_keeps_fp32_weights(pairs_x4, tmp_path):
    torch.manual_seed(0)
    model = build_tiny_model(pairs_x4, tmp_path, precision="bf16")
    for iteration in (1, 2):
        model.feed_data(BATCH)
        model.optimize_parameters(iteration)
    log = model.get_current_log()
    assert all(torch.isfinite(torch.tensor(value)) for value in log.values()) and "l_g_total" in log
    assert all(p.dtype == torch.float32 for p in model.net_g.parameters())
    assert all(p.dtype == torch.float32 for p in model.net_g_ema.parameters())


def test_bf16_changes_the_forward_precision(pairs_x4, tmp_path):
    """The option reaches the forward pass: bf16 and fp32 steps from the same weights give different losses."""
    logs = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = build_tiny_model(pairs_x4, tmp_path / precision, precision=precision)
        model.feed_data(BATCH)
        model.optimize_parameters(1)
        logs[precision] = model.get_current_log()["l_g_total"]
    assert logs["fp32"] != logs["bf16"] and abs(logs["fp32"] - logs["bf16"]) < 0.05 * abs(logs["fp32"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_fp16_is_refused_on_cpu_and_unknown_precisions_are_named(pairs_x4, tmp_path):
    with pytest.raises(OptionError, match="train:precision fp16 needs a CUDA GPU"):
        build_tiny_model(pairs_x4, tmp_path, precision="fp16")
    with pytest.raises(OptionError, match="train:precision must be one of"):
        build_tiny_model(pairs_x4, tmp_path, precision="half")


def test_bf16_run_through_the_command_checkpoints_in_fp32_and_resumes(pairs_x4, tmp_path):
    options = tiny_gan_options(pairs_x4, "bf16_run", total_iter=4, checkpoint_every=2, val_every=4)
    options["train"]["precision"] = "bf16"
    options["logger"]["print_freq"] = 1
    path = write_options(options, tmp_path / "bf16.yml")
    first = run_python(["-m", "medsr_se.train", "-opt", str(path)], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    experiment = tmp_path / "experiments" / "bf16_run"
    log = next(experiment.glob("train_*.log")).read_text()
    losses = [float(v) for v in re.findall(r"l_g_total: ([-+0-9.e]+|nan|inf)", log)]
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    net = load_generator(str(experiment / "models" / "net_g_4.pth"))
    assert all(p.dtype == torch.float32 for p in net.parameters())
    options["train"]["total_iter"] = 6
    write_options(options, path)
    second = run_python(["-m", "medsr_se.train", "-opt", str(path), "--auto_resume"], cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-2000:]
    assert (experiment / "training_states" / "6.state").exists()
    resumed_log = sorted(experiment.glob("train_*.log"))[-1].read_text()
    assert "Resuming training from epoch" in resumed_log and "iter: 4" in resumed_log


def test_gradient_scaler_state_is_saved_and_restored(pairs_x4, tmp_path):
    model = build_tiny_model(pairs_x4, tmp_path)
    model.grad_scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)  # what fp16 training carries
    root = saved_root(model, tmp_path)
    model.save(epoch=0, current_iter=3)
    state = torch.load(root / "training_states" / "3.state", weights_only=True)
    assert state["grad_scaler"]["scale"] == 1024.0
    resumed = build_tiny_model(pairs_x4, tmp_path / "again")
    resumed.grad_scaler = torch.amp.GradScaler("cpu", init_scale=2.0)
    resumed.resume_training(state)
    assert resumed.grad_scaler.get_scale() == 1024.0


# ------------------------------------------------------------------------------------------------ checkpoints
def test_a_network_file_that_was_never_written_publishes_nothing(pairs_x4, tmp_path, monkeypatch):
    model = build_tiny_model(pairs_x4, tmp_path)
    root = saved_root(model, tmp_path)
    model.save(epoch=0, current_iter=5)
    real_save = torch.save

    def disk_full_for_net_d(obj, path, *args, **kwargs):  # raises before the file exists (BasicSR logs it)
        if "net_d" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", disk_full_for_net_d)
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    with pytest.raises(CheckpointWriteError, match=r"net_d_9\.pth"):
        model.save(epoch=0, current_iter=9)
    assert [p.name for p in (root / "training_states").iterdir()] == ["5.state"]
    assert sorted(p.name for p in (root / "models").iterdir()) == ["net_d_5.pth", "net_g_5.pth"]


def resume_options(root) -> dict:
    return {"auto_resume": True, "num_gpu": 0, "network_g": {}, "network_d": {},
            "path": {"training_states": str(root / "training_states"), "models": str(root / "models"),
                     "resume_state": None}}


def fake_checkpoint(root, iteration: int, state_bytes: bytes | None = None) -> None:
    for label in ("net_g", "net_d"):
        torch.save({"params": {}}, root / "models" / f"{label}_{iteration}.pth")
    state = root / "training_states" / f"{iteration}.state"
    if state_bytes is None:
        torch.save({"iter": iteration, "epoch": 0, "optimizers": [], "schedulers": []}, state)
    else:
        state.write_bytes(state_bytes)


def test_auto_resume_skips_an_unreadable_newest_state(tmp_path, capsys):
    (tmp_path / "models").mkdir()
    (tmp_path / "training_states").mkdir()
    fake_checkpoint(tmp_path, 10)
    fake_checkpoint(tmp_path, 20, state_bytes=b"PK\x03\x04 truncated")
    opt = resume_options(tmp_path)
    state = compat.load_resume_state(opt)
    assert state["iter"] == 10 and opt["path"]["resume_state"].endswith("10.state")
    assert opt["path"]["pretrain_network_g"].endswith("net_g_10.pth")
    assert "20.state: unreadable training state" in capsys.readouterr().err


def test_auto_resume_skips_a_state_without_its_networks(tmp_path, capsys):
    (tmp_path / "models").mkdir()
    (tmp_path / "training_states").mkdir()
    fake_checkpoint(tmp_path, 10)
    fake_checkpoint(tmp_path, 20)
    (tmp_path / "models" / "net_d_20.pth").unlink()
    assert compat.load_resume_state(resume_options(tmp_path))["iter"] == 10
    assert "net_d_20.pth is missing" in capsys.readouterr().err


def test_an_explicit_unreadable_state_is_an_error_naming_it(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "training_states").mkdir()
    fake_checkpoint(tmp_path, 20, state_bytes=b"garbage")
    opt = resume_options(tmp_path)
    opt.update(auto_resume=False)
    opt["path"]["resume_state"] = str(tmp_path / "training_states" / "20.state")
    with pytest.raises(compat.ResumeStateError, match=r"20\.state: unreadable"):
        compat.load_resume_state(opt)


def test_resume_state_stays_on_the_cpu_even_for_gpu_runs(tmp_path, monkeypatch):
    """Adam's step counters must not be mapped to the GPU (a host sync per tensor and step)."""
    (tmp_path / "models").mkdir()
    (tmp_path / "training_states").mkdir()
    fake_checkpoint(tmp_path, 10)
    opt = resume_options(tmp_path)
    opt["num_gpu"] = 1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    seen = {}
    real_load = torch.load

    def spy(*args, **kwargs):
        seen["map_location"] = kwargs.get("map_location")
        return real_load(*args, **{**kwargs, "map_location": "cpu"})

    monkeypatch.setattr(torch, "load", spy)
    compat.load_resume_state(opt)
    assert str(seen["map_location"]) == "cpu"


# ------------------------------------------------------------------------------------------------ VGG, options
def test_vgg_conv_features_are_the_layers_own_output(tmp_path):
    from basicsr.archs import vgg_arch
    from torchvision.models import vgg19

    torch.manual_seed(0)
    torch.save(vgg19(weights=None).state_dict(), tmp_path / "vgg19.pth")  # random weights, torchvision's layout
    ours = VGGFeatures(["conv2_2", "relu2_2"], weights_path=str(tmp_path / "vgg19.pth"))
    vgg_arch.VGG_PRETRAIN_PATH = str(tmp_path / "vgg19.pth")
    theirs = vgg_arch.VGGFeatureExtractor(["conv2_2", "relu2_2"], vgg_type="vgg19", use_input_norm=True)
    x = torch.rand(1, 3, 32, 32)
    got, expected = ours(x), theirs(x)
    assert expected["conv2_2"].min() < 0  # a conv output has negatives; after ReLU it would not
    for name in ("conv2_2", "relu2_2"):
        torch.testing.assert_close(got[name], expected[name])


def test_res_scale_and_every_generator_option_travel_with_the_checkpoint(pairs_x4, tmp_path):
    options_override = {"network_g": {"res_scale": 0.1}}
    model = build_tiny_model(pairs_x4, tmp_path)
    model.opt["network_g"].update(options_override["network_g"])
    root = saved_root(model, tmp_path)
    model.save(epoch=0, current_iter=2)
    net = load_generator(str(root / "models" / "net_g_2.pth"))
    assert all(block.res_scale == 0.1 for block in net.body)
    legacy = tmp_path / "legacy.pth"  # a checkpoint without the entry still loads (architecture from the tensors)
    saved = torch.load(root / "models" / "net_g_2.pth", weights_only=True)
    torch.save({"params": saved["params"]}, legacy)
    assert load_generator(str(legacy)).body[0].res_scale == 1.0


def test_unused_basicsr_loss_options_are_an_error_naming_them(pairs_x4, tmp_path):
    with pytest.raises(OptionError, match=r"train:pixel_opt, train:gan_opt: not used by RelativisticGANModel"):
        build_tiny_model(pairs_x4, tmp_path, pixel_opt={"type": "L1Loss", "loss_weight": 1.0},
                         gan_opt={"type": "GANLoss", "gan_type": "vanilla", "loss_weight": 0.005})


def test_x16_recipe_crops_inside_its_sub_images():
    from medsr_se.cli.prepare_stare import build_parser

    crop = build_parser().parse_args(["x"]).crop_size
    for recipe in ("x16", "pretrain_x16"):
        gt_size = load_recipe(recipe)["datasets"]["train"]["gt_size"]
        assert gt_size < crop and gt_size % 16 == 0 and crop % 16 == 0


# ------------------------------------------------------------------------------------------------ loop overhead
def test_losses_are_read_only_when_logged(pairs_x4, tmp_path, monkeypatch):
    model = build_tiny_model(pairs_x4, tmp_path)
    model.feed_data(BATCH)
    model.optimize_parameters(1)  # creates the optimizers' state
    step_counters = {id(state["step"]) for optimizer in model.optimizers for state in optimizer.state.values()}
    calls = {"item": 0}
    real_item = torch.Tensor.item

    def counting_item(self):  # torch's Adam reads its own (CPU) step counters; those are not the point here
        calls["item"] += id(self) not in step_counters
        return real_item(self)

    monkeypatch.setattr(torch.Tensor, "item", counting_item)
    for iteration in (2, 3, 4):
        model.feed_data(BATCH)
        model.optimize_parameters(iteration)
    assert calls["item"] == 0
    log = model.get_current_log()
    assert calls["item"] == len(log) and "l_g_total" in log


def test_ema_is_the_running_average(pairs_x4, tmp_path):
    model = build_tiny_model(pairs_x4, tmp_path)
    before = [p.detach().clone() for p in model.net_g_ema.parameters()]
    with torch.no_grad():
        for param in model.net_g.parameters():
            param.add_(1.0)
    model.model_ema(decay=0.9)
    for old, new, current in zip(before, model.net_g_ema.parameters(), model.net_g.parameters()):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * current)


def test_milestones_given_as_fractions_follow_total_iter(pairs_x4, tmp_path):
    opt = tiny_gan_options(pairs_x4, "schedule", total_iter=40)
    opt["train"]["scheduler"]["milestones"] = [0.5, 0.75]
    opt.update(is_train=True, dist=False, rank=0, world_size=1, auto_resume=False)
    root = tmp_path / "schedule"
    opt["path"].update(experiments_root=str(root), models=str(root), training_states=str(root), log=str(root),
                       visualization=str(root))
    model = build_model(opt)
    assert all(sorted(scheduler.milestones) == [20, 30] for scheduler in model.schedulers)
    assert load_recipe("x4")["train"]["scheduler"]["milestones"] == [0.5, 0.75]


def test_recipes_keep_their_workers_across_epochs():
    for recipe in ("x4", "x8", "x16", "x4_gray", "pretrain_x4"):
        train = load_recipe(recipe)["datasets"]["train"]
        assert train["persistent_workers"] is True and train["pin_memory"] is True


def test_a_cpu_run_on_a_gpu_host_uses_gloo(tmp_path, monkeypatch):
    import torch.distributed as dist
    from basicsr.utils import dist_util

    path = write_options({"name": "x", "num_gpu": 0}, tmp_path / "cpu.yml")
    monkeypatch.setattr("sys.argv", ["train", "-opt", str(path), "--launcher", "pytorch"])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    chosen = {}
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kwargs: chosen.setdefault("backend", backend))
    dist_util._init_dist_pytorch("nccl")
    assert chosen["backend"] == "gloo"


def test_compile_option_trains_the_same_modules(pairs_x4, tmp_path, monkeypatch):
    compiled_names = []
    real_compile = torch.compile

    def eager_compile(module, **kwargs):  # the option's wiring, without inductor's minutes on two cores
        compiled_names.append(type(module).__name__)
        return real_compile(module, backend="aot_eager", **kwargs)

    monkeypatch.setattr(torch, "compile", eager_compile)
    torch.manual_seed(0)
    model = build_tiny_model(pairs_x4, tmp_path, compile=True)
    before = [p.detach().clone() for p in model.net_g.parameters()]
    model.feed_data(BATCH)
    model.optimize_parameters(1)
    assert sorted(compiled_names) == ["FusionSEDiscriminator", "SEEDSRGenerator"]
    assert any(not torch.equal(b, p) for b, p in zip(before, model.net_g.parameters()))
    assert all(torch.isfinite(torch.tensor(v)) for v in model.get_current_log().values())

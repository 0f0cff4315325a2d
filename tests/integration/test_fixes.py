"""Each patch to BasicSR (medsr_se.integration): that it is in place, that it works, and that upstream basicsr still
needs it."""

from __future__ import annotations

import sys

import pytest
import torch

from medsr_se.integration import fixes
from medsr_se.integration.patches import parse_options as parse_options_patch
from medsr_se.integration.patches import resume_state, vgg_path
from tests.helpers import REPO_ROOT, resume_options, run_python, write_checkpoint


def test_every_fix_applied_once_and_apply_is_idempotent():
    import basicsr.train

    assert fixes.APPLIED[:3] == ["functional_tensor", "resume_state", "dist_cpu"]
    assert "parse_options" in fixes.APPLIED and "network_options" in fixes.APPLIED
    before = list(fixes.APPLIED)
    fixes.apply()
    fixes.apply()
    assert fixes.APPLIED == before
    assert basicsr.train.load_resume_state is resume_state.load_resume_state


# A clean interpreter without our hook (MEDSR_SE_NO_AUTOLOAD), launched once for both probes that need one: is
# torchvision's old module name gone (printed first), and does ``import basicsr`` then fail on it (the traceback).
CLEAN_PROBE = ("import importlib.util as u\n"
               "print(u.find_spec('torchvision.transforms.functional_tensor') is None, flush=True)\n"
               "import basicsr\n")


@pytest.fixture(scope="module")
def clean_interpreter():
    return run_python(["-c", CLEAN_PROBE], cwd=REPO_ROOT, MEDSR_SE_NO_AUTOLOAD="1")


# The upstream probes: when one of these fails, basicsr (or torchvision) fixed the bug and the fix can go.
@pytest.mark.slow
@pytest.mark.parametrize("fix", ["functional_tensor", "resume_state", "dist_cpu", "local_rank"])
def test_upstream_still_needs_fix(fix, request):
    if fix == "functional_tensor":  # judged in a clean interpreter, before our alias exists
        probe = request.getfixturevalue("clean_interpreter")
        assert probe.stdout.splitlines()[:1] == ["True"], probe.stderr
    elif fix == "local_rank":  # part of the parse_options wrapper: BasicSR's parser knows --local_rank only
        import inspect

        from basicsr.utils import options

        assert "'--local-rank'" not in inspect.getsource(options), "basicsr parses --local-rank now: drop the rewrite"
    else:
        assert fixes.AFTER_IMPORT[fix].needed(), (f"basicsr no longer needs the {fix} patch: remove "
                                                  f"medsr_se/integration/patches/{fix}.py")


@pytest.mark.slow
def test_plain_basicsr_import_fails_without_the_fix(clean_interpreter):
    run = clean_interpreter
    assert run.returncode != 0 and "functional_tensor" in run.stderr


def test_functional_tensor_alias():
    import torchvision.transforms.functional_tensor as old_name
    from basicsr.data import degradations

    assert old_name.rgb_to_grayscale is degradations.rgb_to_grayscale


def test_local_rank_spellings():
    assert parse_options_patch.normalise_local_rank_argv(["x.py", "--local-rank=3", "-opt", "a.yml"]) == \
        ["x.py", "--local_rank=3", "-opt", "a.yml"]
    assert parse_options_patch.normalise_local_rank_argv(["--local-rank", "2"]) == ["--local_rank", "2"]


def test_parse_options_accepts_hyphenated_local_rank(tmp_path, monkeypatch):
    from basicsr.utils.options import parse_options

    options = tmp_path / "o.yml"
    options.write_text("name: t\nmodel_type: SRModel\nnum_gpu: 0\nmanual_seed: 1\ndatasets: {}\npath: {}\n"
                       "logger: {print_freq: 1, save_checkpoint_freq: 1}\n")
    monkeypatch.setattr(sys, "argv", ["train.py", "-opt", str(options), "--local-rank=1"])
    opt, args = parse_options(str(tmp_path), is_train=True)
    assert args.local_rank == 1 and opt["path"]["experiments_root"] == str(tmp_path / "experiments" / "t")


def _opt(tmp_path, auto_resume, resume_state=None):
    return resume_options(tmp_path / "elsewhere" / "experiments" / "run", auto_resume, resume_state, num_gpu=1)


def test_auto_resume_uses_experiment_root_not_cwd_and_maps_to_cpu(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # cwd has no experiments/: upstream would find nothing here
    opt = _opt(tmp_path, auto_resume=True)
    states = tmp_path / "elsewhere" / "experiments" / "run" / "training_states"
    for iteration in (5, 40, 15):  # a published checkpoint has its networks beside its state
        write_checkpoint(states.parent, iteration, tensor=torch.ones(2))
    (states / "notes.txt").write_text("ignored")
    state = resume_state.load_resume_state(opt)
    assert state["iter"] == 40 and state["tensor"].device.type == "cpu"
    assert opt["path"]["resume_state"] == str(states / "40.state")
    assert opt["path"]["pretrain_network_g"].endswith("models/net_g_40.pth")


def test_no_state_means_fresh_start(tmp_path):
    assert resume_state.load_resume_state(_opt(tmp_path, auto_resume=True)) is None
    assert resume_state.load_resume_state(_opt(tmp_path, auto_resume=False)) is None


def test_missing_resume_state_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.state"):
        resume_state.load_resume_state(_opt(tmp_path, auto_resume=False, resume_state=str(tmp_path / "nope.state")))


def test_cpu_init_dist_uses_gloo(monkeypatch):
    from basicsr.utils import dist_util

    calls = {}
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda **kw: calls.update(kw))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("RANK", "1")
    dist_util._init_dist_pytorch("nccl")
    assert calls == {"backend": "gloo"}


def test_vgg_path_points_basicsr_at_hub_cache(tmp_path, monkeypatch):
    from basicsr.archs import vgg_arch

    weights = tmp_path / "checkpoints" / "vgg19-dcbb9e9d.pth"
    weights.parent.mkdir()
    weights.write_bytes(b"x")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(vgg_arch, "VGG_PRETRAIN_PATH", "experiments/pretrained_models/vgg19-dcbb9e9d.pth")
    monkeypatch.chdir(tmp_path)
    assert vgg_path.needed()
    vgg_path.apply()
    assert vgg_arch.VGG_PRETRAIN_PATH == str(weights)


def _parse(tmp_path, monkeypatch, *argv: str) -> dict:
    import basicsr.train

    monkeypatch.setattr(sys, "argv", ["train.py", *argv])
    opt, _ = basicsr.train.parse_options(str(tmp_path), is_train=True)
    return opt


def test_every_entry_point_parses_through_the_one_option_fix_up(tmp_path, monkeypatch):
    """Issue 22 (18): BasicSR's train.py, test.py and medsr_se.train share one parse_options, which applies
    medsr_se.utils.options.fix_options: persistent_workers goes off for a training set without workers and for every
    validation set (BasicSR builds those with 0 workers); a training set with workers keeps it."""
    import basicsr.test
    import basicsr.train
    from basicsr.utils import options as basicsr_options

    from medsr_se.utils.options import derive, dump_yaml

    assert basicsr.train.parse_options is basicsr.test.parse_options is basicsr_options.parse_options
    assert getattr(basicsr.train.parse_options, parse_options_patch.MARK)
    recipe = derive("x4", {"num_gpu": 0, "datasets": {"train": {"num_worker_per_gpu": 0},
                                                       "val": {"num_worker_per_gpu": 2, "persistent_workers": True}}})
    opt = _parse(tmp_path, monkeypatch, "-opt", str(dump_yaml(recipe, tmp_path / "a.yml")))
    assert opt["datasets"]["train"]["persistent_workers"] is False
    assert opt["datasets"]["val"]["persistent_workers"] is False
    recipe["datasets"]["train"]["num_worker_per_gpu"] = 2
    opt = _parse(tmp_path, monkeypatch, "-opt", str(dump_yaml(recipe, tmp_path / "b.yml")))
    assert opt["datasets"]["train"]["persistent_workers"] is True


def test_basicsr_entry_points_take_recipe_names(tmp_path, monkeypatch):
    from medsr_se.utils.options import load_recipe

    opt = _parse(tmp_path, monkeypatch, "-opt", "x4")
    assert opt["name"] == load_recipe("x4")["name"] and sys.argv[2].endswith("x4.yml")


def _basicsr_model_saving(tmp_path):
    """A bare BasicSR BaseModel (not one of ours) with EDSR options and a models folder."""
    from basicsr.archs.edsr_arch import EDSR
    from basicsr.models.base_model import BaseModel

    model = BaseModel.__new__(BaseModel)
    (tmp_path / "models").mkdir()
    model.opt = {"network_g": {"type": "EDSR", "num_in_ch": 1, "num_out_ch": 1, "num_feat": 4, "num_block": 1,
                               "upscale": 2}, "path": {"models": str(tmp_path / "models")}}
    return model, EDSR(1, 1, num_feat=4, num_block=1, upscale=2)


@pytest.mark.parametrize("rank", [0, 1])
def test_network_options_added_on_rank_0_only(tmp_path, monkeypatch, rank):
    """BasicSR's save_network writes on rank 0 only; under DDP another rank rewriting the file could publish a
    half-written or the previous net_g_latest over the new one. Rank 0 adds the options; rank 1 leaves the file
    byte for byte as it is (oracle: the file's bytes)."""
    from basicsr.utils import dist_util

    from medsr_se.inference.checkpoint import NETWORK_OPTIONS_KEY

    model, net = _basicsr_model_saving(tmp_path)
    path = tmp_path / "models" / "net_g_latest.pth"
    torch.save({"params": net.state_dict()}, path)  # what rank 0 wrote (or the previous latest)
    before = path.read_bytes()
    monkeypatch.setattr(dist_util, "get_dist_info", lambda: (rank, 2))
    model.save_network(net, "net_g", -1)
    saved = torch.load(path, weights_only=True)
    if rank == 0:
        assert saved[NETWORK_OPTIONS_KEY]["type"] == "EDSR"
    else:
        assert path.read_bytes() == before and NETWORK_OPTIONS_KEY not in saved
    assert sorted(p.name for p in path.parent.iterdir()) == ["net_g_latest.pth"]  # no temporary left

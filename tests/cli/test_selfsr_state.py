"""medsr-selfsr's output folder: a saved training state is resumed only for the scan and options it was trained on
(another scan or slice thickness trains afresh, the old experiment moved aside by BasicSR); a read-only -o, a
failing disk and early mistakes are one ``error:`` line with nothing left behind; warnings are one line each."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import re
import subprocess
import warnings

import nibabel
import numpy as np
import pytest
import torch

from medsr_se.cli import selfsr
from medsr_se.integration.experiment_state import FINGERPRINT_KEY
from medsr_se.io import publish
from medsr_se.utils.options import derive, dump_yaml, load_yaml
from tests.cli.test_selfsr import thick_scan, tiny_recipe

NAME = "base_selfsr_x3"


def md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def newest_log(experiment) -> str:
    return max(experiment.glob("train_*.log"), key=lambda p: p.stat().st_mtime).read_text()


@pytest.fixture
def scans(tmp_path):
    """Two different tiny scans both called base.nii.gz (B: A mirrored along x), and a 4-iteration recipe."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = thick_scan(tmp_path / "a" / "base.nii.gz")
    image = nibabel.load(str(a))
    b = tmp_path / "b" / "base.nii.gz"
    nibabel.save(nibabel.Nifti1Image(np.asarray(image.dataobj)[::-1].copy(), image.affine, image.header), str(b))
    return a, b, tiny_recipe(tmp_path / "tiny.yml", total_iter=4, checkpoint_every=2)


@pytest.fixture
def untrained_x3(tmp_path):
    """An untrained through-plane generator for r = 3 (no training needed to reach the write)."""
    from medsr_se.archs.seedsr_arch import SEEDSRGenerator

    torch.save({"params": SEEDSRGenerator(1, 1, 8, 1, [3, 1], img_residual=True).state_dict()}, tmp_path / "g3.pth")
    return tmp_path / "g3.pth"


def selfsr_main(scan, out, recipe, *extra) -> int:
    """medsr-selfsr with the recipe's 4 iterations unless ``extra`` says how long (on a CPU the default would be a
    4-minute budget)."""
    budget = [] if {"--iterations", "--time"} & set(extra) else ["--iterations", "4"]
    return selfsr.main(["-i", str(scan), "-o", str(out), "-opt", str(recipe), "--device", "cpu", *budget, *extra])


def parameters(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["params"]


@pytest.mark.slow
def test_another_scan_or_thickness_in_the_same_folder_trains_afresh(tmp_path, scans, capsys):
    """Issue 31.1: scan A trained into out/, its result removed, then scan B (same file name) into out/: B's network
    is trained on B from iteration 0 (was: "Resuming training from ... iter: 4" and A's network, same md5); A's
    experiment is kept aside (BasicSR's _archived_<time>). The same for B with another --slice-thickness.
    Oracle: BasicSR's own training log and the saved network files."""
    a, b, recipe = scans
    out = tmp_path / "out"
    experiment = out / "experiments" / NAME
    assert selfsr_main(a, out, recipe) == 0
    model_a = md5(experiment / "models" / "net_g_latest.pth")
    params_a = parameters(experiment / "models" / "net_g_latest.pth")
    (out / f"{NAME}.nii.gz").unlink()
    capsys.readouterr()

    assert selfsr_main(b, out, recipe) == 0
    model_b = experiment / "models" / "net_g_latest.pth"
    assert md5(model_b) != model_a
    params_b = parameters(model_b)
    assert any(not torch.equal(params_a[key], params_b[key]) for key in params_a)
    log = newest_log(experiment)
    assert "Start training from epoch: 0, iter: 0" in log and "Resuming training" not in log
    archived = list((out / "experiments").glob(f"{NAME}_archived_*"))
    assert len(archived) == 1 and md5(archived[0] / "models" / "net_g_latest.pth") == model_a  # A's, kept aside
    err = capsys.readouterr().err
    assert "trained on another scan" in err and "from iteration 0" in err

    (out / f"{NAME}.nii.gz").unlink()
    assert selfsr_main(b, out, recipe, "--slice-thickness", "9") == 0
    err = capsys.readouterr().err
    assert re.search(r"datasets:train:slice_thickness [0-9.]+ -> 9\.0", err), err  # the scan's thickness -> 9
    assert len(list((out / "experiments").glob(f"{NAME}_archived_*"))) == 2
    log = newest_log(experiment)
    assert "Start training from epoch: 0, iter: 0" in log and "Resuming training" not in log
    recorded = load_yaml(experiment / f"{NAME}.yml")[FINGERPRINT_KEY]  # BasicSR's copy of the options
    assert recorded["datasets:train"]["slice_thickness"] == 9.0


@pytest.mark.slow
def test_the_same_scan_and_options_resume(tmp_path, scans):
    """The same scan content (here copied to another path) and options, more --iterations: the rerun resumes from
    the saved state (BasicSR's log says so) and nothing is moved aside."""
    a, _, recipe = scans
    out = tmp_path / "out"
    experiment = out / "experiments" / NAME
    assert selfsr_main(a, out, recipe, "-q") == 0
    (out / f"{NAME}.nii.gz").unlink()
    (tmp_path / "c").mkdir()
    copy = tmp_path / "c" / "base.nii.gz"
    copy.write_bytes(a.read_bytes())
    assert selfsr_main(copy, out, recipe, "-q", "--iterations", "6") == 0
    assert "Resuming training from epoch: 0, iter: 4." in newest_log(experiment)
    assert not list((out / "experiments").glob("*archived*"))
    assert (experiment / "models" / "net_g_4.pth").exists() and (experiment / "models" / "net_g_6.pth").exists()


@contextlib.contextmanager
def immutable(folder):
    """``chattr +i``: even root cannot create anything in ``folder`` (tests run as root, which ignores modes)."""
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
        pytest.skip("chattr +i does not work here")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), lines
    assert not any("Traceback" in line for line in lines)
    return lines[-1]


@pytest.mark.parametrize("access_lies", [False, True])
def test_a_read_only_output_folder_is_one_line(tmp_path, scans, untrained_x3, capsys, monkeypatch, access_lies):
    """Issue 31.4: -o in a folder nobody may write to, with and without --model (was: a PermissionError traceback
    from the options file / from mkdir). Also when os.access says yes (NFS, ACLs): the OSError is caught at the
    write, still one line naming -o."""
    a, _, recipe = scans
    if access_lies:
        monkeypatch.setattr(publish.os, "access", lambda *args, **kwargs: True)
    locked = tmp_path / "locked"
    locked.mkdir()
    with immutable(locked):
        for out, extra in ((locked, []), (locked / "sub", []), (locked / "sub", ["--model", str(untrained_x3)]),
                           (locked, ["--model", str(untrained_x3)])):
            assert selfsr_main(a, out, recipe, *extra) == 2
            line = error_line(capsys)
            assert f"-o {out}: cannot write" in line, line
            assert not list(locked.iterdir())


def test_warnings_are_one_line_each(tmp_path, untrained_x3, capsys, monkeypatch):
    """Issue 31.12: a warning while writing (the NIfTI's dim_info slice timing cleared) is one ``warning: ...``
    line (was: Python's format, ``selfsr.py:174: UserWarning:`` and the source line); another package's warning
    before a refusal (torch's, on several lines) is one line too, shown with -v only (medsr_se.utils.logs)."""
    image = nibabel.load(str(thick_scan(tmp_path / "thick.nii.gz")))
    image.header.set_dim_info(slice=2)
    nibabel.save(image, str(tmp_path / "dim.nii.gz"))
    out = tmp_path / "out"
    assert selfsr.main(["-i", str(tmp_path / "dim.nii.gz"), "-o", str(out), "--model", str(untrained_x3),
                        "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "dim_info" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: "), err
    assert "dim.nii.gz: the NIfTI slice dimension" in lines[0]
    assert "UserWarning" not in err and "write_nifti_through_plane(" not in err

    def warns_then_refuses(*args):
        warnings.warn("TypedStorage is deprecated.\n  It will be removed.", UserWarning, stacklevel=1)
        raise selfsr.UsageError("--model g3.pth: refused")

    monkeypatch.setattr(selfsr, "load_through_plane_model", warns_then_refuses)
    command = ["-i", str(tmp_path / "thick.nii.gz"), "-o", str(tmp_path / "o2"), "--model", str(untrained_x3),
               "--device", "cpu", "--scale", "3"]
    assert selfsr.main([*command, "-v"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-2:] == ["TypedStorage is deprecated. It will be removed.", "error: --model g3.pth: refused"]
    warnings.resetwarnings()  # Python shows a warning once per place: let it be shown (and hidden) again
    assert selfsr.main(command) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["error: --model g3.pth: refused"]
    assert not (tmp_path / "o2").exists()


def test_early_mistakes_create_nothing_in_o(tmp_path, scans, capsys):
    """Issue 31.12: -opt nonexistent and a recipe whose validation set is missing: one error line, -o (two levels
    deep) not created (was: an empty -o; for the recipe a stray options file and two error lines)."""
    a, _, _ = scans
    out = tmp_path / "new" / "deeper"
    assert selfsr.main(["-i", str(a), "-o", str(out), "-opt", "nonexistent"]) == 2
    assert "-opt nonexistent: " in error_line(capsys) and not (tmp_path / "new").exists()
    recipe = dump_yaml(derive("selfsr", {"datasets": {"val": {
        "name": "v", "type": "PairedImageDataset", "dataroot_gt": str(tmp_path / "missing"),
        "dataroot_lq": str(tmp_path / "missing"), "io_backend": {"type": "disk"}}}}), tmp_path / "val.yml")
    assert selfsr.main(["-i", str(a), "-o", str(out), "-opt", str(recipe), "--device", "cpu"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert [line for line in lines if line.startswith("error:")] == [lines[-1]]
    assert "datasets:val:dataroot_gt: no such folder" in lines[-1] and not (tmp_path / "new").exists()


def test_a_failure_after_o_was_made_removes_only_what_this_run_made(tmp_path, scans, capsys, monkeypatch):
    """A training that stops before BasicSR made the experiment folder: the options file this run wrote and the
    folders it created are removed; an -o that was there keeps what it held (was: an empty -o, a stray .yml)."""
    import medsr_se.integration.pipeline

    a, _, recipe = scans

    def stops(*args) -> int:
        print("error: datasets:train: something BasicSR refused", file=__import__("sys").stderr)
        return 2

    monkeypatch.setattr(medsr_se.integration.pipeline, "run_pipeline", stops)
    out = tmp_path / "new" / "out"
    assert selfsr_main(a, out, recipe) == 2
    assert "training stopped" in error_line(capsys) and not (tmp_path / "new").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "mine.txt").write_text("mine")
    assert selfsr_main(a, kept, recipe) == 2
    assert [p.name for p in kept.iterdir()] == ["mine.txt"]


def test_a_failing_disk_while_writing_the_result(tmp_path, scans, untrained_x3, capsys, monkeypatch):
    """ENOSPC at the final rename of the result: one line naming the result, nothing of it left, and the -o this
    run created removed."""
    import os

    a, _, _ = scans

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)  # the atomic writer's publishing rename
    out = tmp_path / "out"
    assert selfsr.main(["-i", str(a), "-o", str(out), "--model", str(untrained_x3), "--device", "cpu", "-q"]) == 2
    line = error_line(capsys)
    assert f"{NAME}.nii.gz: cannot" in line and "(No space left on device)" in line and not out.exists()


def test_an_existing_sheet_is_not_overwritten(tmp_path, scans, untrained_x3, capsys):
    """The --sheet PNG is a result too: a rerun whose result was removed but whose sheet is still there stops
    before anything is done, the sheet untouched (was: silently replaced)."""
    a, _, _ = scans
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{NAME}_sheet.png").write_bytes(b"keep me")
    assert selfsr.main(["-i", str(a), "-o", str(out), "--model", str(untrained_x3), "--sheet", "--device", "cpu"]) == 2
    assert f"{NAME}_sheet.png: exists" in error_line(capsys)
    assert (out / f"{NAME}_sheet.png").read_bytes() == b"keep me" and not (out / f"{NAME}.nii.gz").exists()

"""Preparation under concurrency, kills, bad options, damaged output and unwritable places (README "Safety")."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.lib.stare_like import write_stare_tar, write_stare_zip
from medsr_se.cli import prepare as prepare_cli
from medsr_se.io.publish import LockedError, exclusive_lock, recover_directory
from medsr_se.prepare import PrepareError, prepare
from medsr_se.prepare.verify import verify
from tests.helpers import STARE_PARAMS, subprocess_env


def dataset_copy(prepared, where: Path, marker: str) -> Path:
    """A complete dataset (the prepared fixture's) at ``where``, told apart by ``marker`` in its manifest."""
    root, _ = prepared
    shutil.copytree(root, where)
    manifest = json.loads((where / "manifest.json").read_text())
    manifest["source"] = marker
    (where / "manifest.json").write_text(json.dumps(manifest))
    return where


def source_of(dataset: Path) -> str:
    return json.loads((dataset / "manifest.json").read_text())["source"]


@pytest.mark.slow
def test_a_second_run_is_refused_while_one_is_running(stare_images, tmp_path):
    archive = write_stare_zip(stare_images, tmp_path / "a.zip")
    output = tmp_path / "STARE"
    running_partial = tmp_path / ".STARE.partial-running"
    running_partial.mkdir()  # what the first run is busy writing
    with exclusive_lock(output, "medsr-prepare"):  # the first run holds the lock
        with pytest.raises(LockedError, match=rf"another medsr-prepare \(pid {os.getpid()}\) is writing"):
            prepare(archive, output, STARE_PARAMS, n_test=2, workers=1, progress=False)
    assert running_partial.is_dir() and not output.exists()


def notes(caplog) -> list[str]:
    """What the preparation logged at INFO (its ``note:`` lines), under the package's logger."""
    return [record.getMessage() for record in caplog.records
            if record.name.startswith("medsr_se.") and record.levelno == logging.INFO]


def test_kill_between_the_publishing_renames_publishes_the_complete_new_dataset(prepared, tmp_path, caplog):
    output = tmp_path / "STARE"
    dataset_copy(prepared, tmp_path / ".STARE.old-11111111", "old")
    dataset_copy(prepared, tmp_path / ".STARE.partial-22222222", "new")  # complete: has its manifest
    caplog.set_level(logging.INFO, logger="medsr_se")
    with exclusive_lock(output, "medsr-prepare"):
        recover_directory(output, complete=lambda folder: (folder / "manifest.json").is_file())
    assert source_of(output) == "new" and verify(output) == []
    assert sorted(path.name for path in tmp_path.iterdir()) == ["STARE"]
    assert notes(caplog) == [f"publishing {tmp_path / '.STARE.partial-22222222'}, a complete result left by an "
                             "interrupted run"]


def test_kill_before_the_new_dataset_was_complete_restores_the_old_one(prepared, tmp_path, caplog):
    output = tmp_path / "STARE"
    old = dataset_copy(prepared, tmp_path / ".STARE.old-11111111", "old")
    incomplete = dataset_copy(prepared, tmp_path / ".STARE.partial-22222222", "new")
    (incomplete / "manifest.json").unlink()
    caplog.set_level(logging.INFO, logger="medsr_se")
    with exclusive_lock(output, "medsr-prepare"):
        recover_directory(output, complete=lambda folder: (folder / "manifest.json").is_file())
    assert source_of(output) == "old"
    assert notes(caplog) == [f"removing {incomplete}, an incomplete result left by an interrupted run",
                             f"restoring {output} from {old} (an interrupted replacement)"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["STARE"]


def test_kill_after_both_renames_keeps_the_new_and_removes_the_old(prepared, tmp_path, stare_images):
    output = dataset_copy(prepared, tmp_path / "STARE", "new")
    dataset_copy(prepared, tmp_path / ".STARE.old-11111111", "old")
    archive = write_stare_zip(stare_images, tmp_path / "a.zip")
    with pytest.raises(PrepareError, match="already exists"):  # the next run repairs first, then checks
        prepare(archive, output, STARE_PARAMS, n_test=2, workers=1, progress=False)
    assert source_of(output) == "new"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["STARE", "a.zip"]


def run_verify(root: Path, capsys) -> tuple[int, str]:
    code = prepare_cli.main(["--verify", str(root)])
    return code, capsys.readouterr().err


def test_verify_reports_a_garbage_meta_line(prepared, tmp_path, capsys):
    root = dataset_copy(prepared, tmp_path / "STARE", "x")
    with open(root / "train" / "HR.lmdb" / "meta_info.txt", "a") as handle:
        handle.write("garbage line\n")
    code, err = run_verify(root, capsys)
    assert code == 1 and "problem:" in err and "meta_info.txt line" in err and "Traceback" not in err


def test_verify_reports_a_truncated_data_mdb(prepared, tmp_path, capsys):
    root = dataset_copy(prepared, tmp_path / "STARE", "x")
    data = root / "train" / "HR.lmdb" / "data.mdb"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 3])
    code, err = run_verify(root, capsys)
    assert code == 1 and f"problem: {root / 'train' / 'HR.lmdb'}" in err and "Traceback" not in err


def test_skip_bad_cannot_produce_a_dataset_without_test_images(stare_images, tmp_path):
    archive = write_stare_tar(stare_images, tmp_path / "s.tar", truncate={"im0001"})
    with pytest.raises(PrepareError, match="no test image is left"):
        prepare(archive, tmp_path / "STARE", STARE_PARAMS, test_list=["im0001"], skip_bad=True, workers=1,
                progress=False)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["s.tar"]


def test_verify_calls_an_empty_test_split_a_problem(prepared, tmp_path):
    root = dataset_copy(prepared, tmp_path / "STARE", "x")
    for folder in (root / "test").iterdir():
        for image in folder.iterdir():
            image.unlink()
    assert any("no test images" in problem for problem in verify(root))


@pytest.mark.parametrize("crop", ["0", "-256"])
def test_non_positive_crop_size_is_one_error(stare_images, tmp_path, crop, capsys):
    archive = write_stare_zip(stare_images, tmp_path / "a.zip")
    assert prepare_cli.main([str(archive), "-o", str(tmp_path / "S"), f"--crop-size={crop}"]) == 2
    assert "error: --crop-size" in capsys.readouterr().err


def test_unwritable_places_are_one_error(stare_images, tmp_path, capsys):
    archive = write_stare_zip(stare_images, tmp_path / "a.zip")
    (tmp_path / "file").write_text("x")
    assert prepare_cli.main([str(archive), "-o", str(tmp_path / "file" / "STARE"), "--n-test", "2"]) == 2
    (tmp_path / "ro").mkdir()
    subprocess.run(["chattr", "+i", str(tmp_path / "ro")], check=True)
    try:
        assert prepare_cli.main([str(archive), "-o", str(tmp_path / "ro" / "STARE"), "--n-test", "2"]) == 2
    finally:
        subprocess.run(["chattr", "-i", str(tmp_path / "ro")], check=True)
    assert capsys.readouterr().err.splitlines() == [  # one line each, naming the place and the system's reason
        f"error: {tmp_path / 'file'}: cannot write the dataset (File exists); nothing was published",
        f"error: {tmp_path / 'ro' / '.STARE.lock'}: cannot write the dataset (Operation not permitted); nothing was "
        "published"]


def test_overwrite_onto_a_regular_file_is_refused_and_leaves_nothing(stare_images, tmp_path, capsys):
    archive = write_stare_zip(stare_images, tmp_path / "a.zip")
    (tmp_path / "STARE").write_text("not a dataset")
    assert prepare_cli.main([str(archive), "-o", str(tmp_path / "STARE"), "--n-test", "2", "--overwrite"]) == 2
    assert "is a file" in capsys.readouterr().err
    assert (tmp_path / "STARE").read_text() == "not a dataset"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["STARE", "a.zip"]


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_workers_die_with_a_killed_preparation(retina, tmp_path):
    from benchmarks.lib.stare_like import stare_like_images

    archive = write_stare_zip(stare_like_images(retina, 40), tmp_path / "big.zip")
    process = subprocess.Popen([sys.executable, "-m", "medsr_se.cli.prepare", str(archive), "-o",
                                str(tmp_path / "STARE"), "--n-test", "2", "--workers", "2"],
                               env=subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        workers: set[int] = set()
        while time.time() < deadline and len(workers) < 3:  # the forkserver and its two workers
            time.sleep(0.2)
            workers = descendants(process.pid)
        assert len(workers) >= 3, "the pool did not start"
        process.send_signal(signal.SIGKILL)
        process.wait()
        deadline = time.time() + 30  # on a loaded machine the forkserver takes seconds to notice
        while time.time() < deadline and any(alive(pid) for pid in workers):
            time.sleep(0.2)
        assert not any(alive(pid) for pid in workers)
    finally:
        if process.poll() is None:
            process.kill()

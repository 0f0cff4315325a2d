"""The STARE preparation on STARE-shaped archives built here from real fundus pixels."""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path

import cv2
import lmdb
import numpy as np
import pytest
from basicsr.data import build_dataset

from benchmarks.lib.stare_like import write_stare_tar, write_stare_zip
from medsr_se.cli import prepare as prepare_cli
from medsr_se.prepare import Params, PrepareError, make_split, prepare, writing
from medsr_se.prepare.verify import verify
from medsr_se.utils.bicubic import matlab_bicubic, mod_crop
from tests.helpers import STARE_PARAMS as PARAMS


def run(source, output, **kwargs):
    return prepare(source, output, kwargs.pop("params", PARAMS), n_test=kwargs.pop("n_test", 2),
                   workers=kwargs.pop("workers", 1), progress=False, **kwargs)


def test_split_is_deterministic_and_stare_sized():
    stems = [f"im{n:04d}" for n in range(1, 403) if n not in (17, 100, 200, 300, 400)]
    first, second = make_split(stems, 20, 0, None), make_split(list(reversed(stems)), 20, 0, None)
    assert first == second
    assert (len(first["train"]), len(first["test"])) == (377, 20)
    assert not set(first["train"]) & set(first["test"])
    assert make_split(stems, 20, 1, None) != first
    assert make_split(stems, 20, 0, ["im0002", "im0001"])["test"] == ["im0001", "im0002"]
    with pytest.raises(PrepareError, match="^test_list names images that are not in the input: im9999") as raised:
        make_split(stems, 20, 0, ["im9999"])
    assert raised.value.parameter == "test_list"
    with pytest.raises(PrepareError, match="^n_test=500: must be between 1 and 396") as raised:  # not the flag
        make_split(stems, 500, 0, None)
    assert raised.value.parameter == "n_test"


def test_layout_manifest_and_verify(prepared):
    output, manifest = prepared
    assert (output / "train" / "HR.lmdb" / "meta_info.txt").is_file()
    for scale in (4, 8, 16):
        assert (output / "train" / f"LR_x{scale}.lmdb" / "meta_info.txt").is_file()
        assert len(list((output / "test" / f"LR_x{scale}").glob("*.png"))) == 2
    assert manifest == json.loads((output / "manifest.json").read_text())
    assert manifest["counts"]["test_images"] == 2 and manifest["counts"]["train_images"] == 4
    assert manifest["ignored_files"] == ["README.txt"]
    assert len(manifest["source_sha256"]) == 6 and manifest["versions"]["basicsr"]
    # 700x605 -> mod 16 -> 688x592; sub-images of 256 every 192: 3 x 4 per image
    assert manifest["counts"]["train_pieces"] == 4 * 3 * 4
    meta = (output / "train" / "HR.lmdb" / "meta_info.txt").read_text().splitlines()
    assert meta[0] == f"{manifest['split']['train'][0]}_s000.png (256,256,3) 1"
    lr_keys = [line.split(".")[0] for line in (output / "train" / "LR_x16.lmdb" / "meta_info.txt").read_text()
               .splitlines()]
    assert lr_keys == [line.split(".")[0] for line in meta] and all("." not in key for key in lr_keys)
    assert verify(output) == []
    assert prepare_cli.main(["--verify", str(output)]) == 0


def test_lr_is_matlab_bicubic_of_mod_cropped_hr(prepared, stare_images):
    output, manifest = prepared
    stem = manifest["split"]["test"][0]
    hr = cv2.imread(str(output / "test" / "HR" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(hr, mod_crop(stare_images[stem], 16))
    assert hr.shape == (592, 688, 3)
    for scale in (4, 8, 16):
        lr = cv2.imread(str(output / "test" / f"LR_x{scale}" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(lr, matlab_bicubic(hr, 1 / scale))
    # a training sub-image is the same crop of the whole-image LR
    train_stem = manifest["split"]["train"][0]
    full_hr = mod_crop(stare_images[train_stem], 16)
    env = lmdb.open(str(output / "train" / "LR_x8.lmdb"), readonly=True, lock=False)
    with env.begin() as txn:
        piece = cv2.imdecode(np.frombuffer(txn.get(f"{train_stem}_s001".encode()), np.uint8), cv2.IMREAD_UNCHANGED)
    env.close()
    # window 1 starts at row 0, column 192 (HR pixels)
    np.testing.assert_array_equal(piece, matlab_bicubic(full_hr, 1 / 8)[0:32, 24:56])


@pytest.mark.parametrize("scale,gt_size", [(4, 128), (8, 128), (16, 256)])
def test_basicsr_paired_dataset_reads_the_lmdbs(prepared, scale, gt_size):
    output, manifest = prepared
    dataset = build_dataset({
        "name": "stare", "type": "PairedImageDataset", "phase": "train", "scale": scale,
        "dataroot_gt": str(output / "train" / "HR.lmdb"), "dataroot_lq": str(output / "train" / f"LR_x{scale}.lmdb"),
        "io_backend": {"type": "lmdb"}, "gt_size": gt_size, "use_hflip": True, "use_rot": True})
    assert len(dataset) == manifest["counts"]["train_pieces"]
    sample = dataset[3]
    assert sample["gt"].shape == (3, gt_size, gt_size)
    assert sample["lq"].shape == (3, gt_size // scale, gt_size // scale)


@pytest.mark.slow
def test_zip_of_ppm_gives_the_same_data(stare_images, prepared, tmp_path):
    output, manifest = prepared
    archive = write_stare_zip(stare_images, tmp_path / "all-images.zip")
    zipped = run(archive, tmp_path / "from_zip", workers=2)
    assert zipped["split"] == manifest["split"] and zipped["source_sha256"] == manifest["source_sha256"]
    stem = manifest["split"]["test"][1]
    for folder in ("HR", "LR_x4"):
        assert (output / "test" / folder / f"{stem}.png").read_bytes() == \
            (tmp_path / "from_zip" / "test" / folder / f"{stem}.png").read_bytes()


@pytest.mark.slow
def test_truncated_member_is_named_and_nothing_is_written(stare_images, tmp_path, capsys):
    archive = write_stare_tar(stare_images, tmp_path / "stare.tar", truncate={"im0003"})
    output = tmp_path / "STARE"
    with pytest.raises(PrepareError, match=r"stare\.tar:im0003\.ppm\.gz: truncated or corrupt"):
        run(archive, output)
    assert not output.exists() and not list(tmp_path.glob(".STARE*"))
    assert prepare_cli.main([str(archive), "-o", str(output), "--n-test", "2", "--workers", "2"]) == 2
    message = capsys.readouterr().err
    assert "im0003.ppm.gz: truncated or corrupt" in message and "--skip-bad" in message


def test_skip_bad_records_and_keeps_the_split(stare_images, prepared, tmp_path):
    _, clean = prepared
    archive = write_stare_tar(stare_images, tmp_path / "stare.tar", truncate={"im0003"})
    manifest = run(archive, tmp_path / "STARE", skip_bad=True)
    assert manifest["split"] == clean["split"]
    assert [entry["stem"] for entry in manifest["skipped"]] == ["im0003"]
    assert "im0003.ppm.gz" in manifest["skipped"][0]["error"]
    assert verify(tmp_path / "STARE") == []


def test_existing_output_needs_overwrite(prepared, stare_images, tmp_path):
    archive = write_stare_zip(dict(list(stare_images.items())[:4]), tmp_path / "a.zip")
    output = tmp_path / "STARE"
    run(archive, output)
    marker = output / "manifest.json"
    before = marker.read_text()
    with pytest.raises(PrepareError, match="already exists; pass overwrite=True") as raised:
        run(archive, output)
    assert raised.value.parameter == "output"
    assert marker.read_text() == before
    run(archive, output, overwrite=True, seed=5)
    assert json.loads(marker.read_text())["parameters"]["seed"] == 5


def test_interrupted_run_leaves_nothing_that_looks_complete(stare_images, tmp_path, monkeypatch):
    archive = write_stare_zip(dict(list(stare_images.items())[:4]), tmp_path / "a.zip")
    output = tmp_path / "STARE"
    calls = []

    def interrupted(self, result):
        calls.append(result.stem)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(writing.OutputWriter, "add", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(archive, output)
    assert not output.exists() and not list(tmp_path.glob(".STARE.partial-*"))
    # a hard kill (no cleanup possible) leaves only a hidden partial folder, removed by the next run
    stale = tmp_path / ".STARE.partial-deadbeef"
    (stale / "train").mkdir(parents=True)
    monkeypatch.undo()
    run(archive, output)
    assert not stale.exists() and verify(output) == []


def test_verify_finds_damage(prepared, tmp_path):
    import shutil

    output, manifest = prepared
    damaged = tmp_path / "damaged"
    shutil.copytree(output, damaged)
    key = f"{manifest['split']['train'][1]}_s002".encode()
    env = lmdb.open(str(damaged / "train" / "LR_x4.lmdb"), map_size=1 << 30)
    with env.begin(write=True) as txn:
        txn.put(key, b"not a png")
    env.close()
    (damaged / "test" / "LR_x16" / f"{manifest['split']['test'][0]}.png").unlink()
    problems = verify(damaged)
    assert any("does not decode" in p and key.decode() in p for p in problems)
    assert any("test/LR_x16" in p for p in problems)
    assert prepare_cli.main(["--verify", str(damaged)]) == 1
    assert verify(tmp_path / "nothing") == [f"{tmp_path / 'nothing' / 'manifest.json'}: missing (not a finished "
                                            "preparation)"]


def test_folder_input_odd_files_gray_and_16_bit(retina, tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()
    gray16 = (cv2.cvtColor(retina[:400, :480], cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257)
    for index in range(4):
        cv2.imwrite(str(folder / f"ct{index}.png"), np.roll(gray16, index * 7, axis=1))
    (folder / "notes.txt").write_text("not an image")
    small = Params(scales=(4,), crop_size=256, step=128, gray=True, keep_depth=True)
    manifest = run(folder, tmp_path / "CT", params=small, n_test=1)
    assert manifest["ignored_files"] == [str(folder / "notes.txt")]
    hr = cv2.imread(str(next((tmp_path / "CT" / "test" / "HR").glob("*.png"))), cv2.IMREAD_UNCHANGED)
    assert hr.dtype == np.uint16 and hr.ndim == 2 and hr.shape == (400, 480)
    assert verify(tmp_path / "CT") == []
    # default: converted to 8-bit, 3 channels, with a note for each image
    default = run(folder, tmp_path / "CT8", params=Params((4,), 256, 128, False, False), n_test=1)
    assert "16-bit converted to 8-bit" in " ".join(default["notes"]["ct0"])
    hr8 = cv2.imread(str(next((tmp_path / "CT8" / "test" / "HR").glob("*.png"))), cv2.IMREAD_UNCHANGED)
    assert hr8.dtype == np.uint8 and hr8.shape == (400, 480, 3)
    # the command line says so too
    assert prepare_cli.main([str(folder), "-o", str(tmp_path / "CT8b"), "--scales", "4", "--crop-size", "256",
                               "--step", "128", "--n-test", "1", "--workers", "1"]) == 0
    assert "note: 4 image(s): 16-bit converted to 8-bit" in capsys.readouterr().err


def test_notes_are_logged_and_quiet_is_the_logger_level(retina, tmp_path, capsys, caplog):
    """Before: the notes were print()s to stderr, and -q redirected all of stderr away while preparing."""
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(3):
        cv2.imwrite(str(folder / f"im{index}.png"), np.roll(retina[:300, :300], index * 11, axis=1))
    (folder / "notes.txt").write_text("not an image")
    options = ["--scales", "4", "--crop-size", "256", "--step", "128", "--n-test", "1", "--workers", "1"]
    caplog.set_level(logging.INFO, logger="medsr_se")
    assert prepare_cli.main([str(folder), "-o", str(tmp_path / "a"), *options]) == 0
    note = f"ignoring {folder / 'notes.txt'} (not an image)"
    assert f"note: {note}\n" in capsys.readouterr().err  # the same text as before, on stderr
    assert [(r.name, r.getMessage()) for r in caplog.records if r.name.startswith("medsr_se")] == [
        ("medsr_se.prepare.orchestration", note)]
    assert prepare_cli.main([str(folder), "-o", str(tmp_path / "b"), *options, "-q"]) == 0
    assert capsys.readouterr().err == ""
    assert logging.getLogger("medsr_se").getEffectiveLevel() == logging.ERROR  # -q: the level, not a redirect


def test_duplicate_stems_and_bad_names_are_rejected(stare_images, tmp_path):
    image = next(iter(stare_images.values()))
    with zipfile.ZipFile(tmp_path / "dup.zip", "w") as archive:
        archive.writestr("a/im0001.ppm", cv2.imencode(".ppm", image)[1].tobytes())
        archive.writestr("b/im0001.png", cv2.imencode(".png", image)[1].tobytes())
    with pytest.raises(PrepareError, match="two images with the stem 'im0001'"):
        run(tmp_path / "dup.zip", tmp_path / "out")
    with pytest.raises(PrepareError, match="not a folder, zip or tar"):
        run(Path(__file__), tmp_path / "out")
    with pytest.raises(PrepareError, match=r"^crop_size=250 and step=192 must be positive multiples") as raised:
        run(tmp_path / "dup.zip", tmp_path / "out", params=Params((4, 8, 16), 250, 192, False, False))
    assert raised.value.parameter == "crop_size"


def test_images_smaller_than_crop_and_lmdb_growth(retina, tmp_path):
    folder = tmp_path / "small"
    folder.mkdir()
    for index in range(3):
        cv2.imwrite(str(folder / f"s{index}.png"), retina[500 + index * 10:700, 500:700])
    manifest = prepare(folder, tmp_path / "out", Params((4,), 384, 192, False, False), n_test=1, workers=1,
                       progress=False, initial_map_size=1 << 14)  # 16 KiB: must grow, never MapFullError
    assert manifest["counts"]["train_pieces"] == 2
    assert verify(tmp_path / "out") == []

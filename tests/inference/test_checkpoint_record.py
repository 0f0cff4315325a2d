"""Reading a checkpoint (issue 23, points 3 and 4): the training-data record comes back typed
(:class:`TrainingData`, :func:`load_training_data`), damaged files are one :class:`CheckpointError` naming the file,
and a programming error inside the read surfaces as itself instead of "cannot be read"."""

from __future__ import annotations

import pickle
import zipfile

import pytest
import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.cli import infer
from medsr_se.inference import checkpoint
from medsr_se.inference.checkpoint import DATA_KEY, CheckpointError, TrainingData, load_generator, load_training_data
from tests.medical import ct_series

WINDOW = {"kind": "window", "low": 0.0, "high": 500.0, "unit": "HU", "name": "custom"}


def tiny_checkpoint(path, record=None, channels: int = 1) -> str:
    torch.manual_seed(0)
    net = SEEDSRGenerator(channels, channels, num_feat=8, num_block=1, upscale=2, img_residual=True)
    saved = {"params": net.state_dict()}
    if record is not None:
        saved[DATA_KEY] = record
    torch.save(saved, path)
    return str(path)


def test_the_record_comes_back_as_a_typed_value(tmp_path):
    path = tiny_checkpoint(tmp_path / "ct.pth", {"modality": "CT", "intensity": WINDOW, "dataset": "/data/ct"})
    data = load_training_data(path)
    assert data == TrainingData(modality="CT", intensity=WINDOW, dataset="/data/ct")
    assert data.intensity_model().low == 0.0 and data.intensity_model().name == "custom"
    with pytest.raises(AttributeError):  # frozen: what the checkpoint says cannot be changed on the way
        data.modality = "MR"
    # the Python API of the README is unchanged: load_generator still returns the module
    assert isinstance(load_generator(path), SEEDSRGenerator)


@pytest.mark.parametrize("record", [None, {}, "CT", {"modality": "MR", "intensity": "junk"},
                                    {"modality": None, "intensity": {"kind": "dtype", "low": 0, "high": 255}}])
def test_absent_or_partial_records_give_empty_fields(tmp_path, record):
    data = load_training_data(tiny_checkpoint(tmp_path / "x.pth", record))
    expected_modality = record.get("modality") if isinstance(record, dict) else None
    assert data.modality == expected_modality
    assert data.intensity_model() is None  # none recorded, not a dict, or just the stored type's range


def test_infer_uses_the_typed_record(tmp_path, capsys):
    """medsr-infer maps a CT series with the checkpoint's window and warns about the recorded modality."""
    model = tiny_checkpoint(tmp_path / "mr.pth", {"modality": "MR", "intensity": WINDOW, "dataset": "x"})
    ct_series(tmp_path / "in", volumes=1, slices=2)
    assert infer.main(["-i", str(tmp_path / "in" / "patient0"), "-o", str(tmp_path / "out"), "--model", model]) == 0
    err = capsys.readouterr().err
    assert "intensity window custom [0, 500] HU" in err
    assert "the model was trained on MR, this volume is CT" in err


def damaged_files(folder) -> dict[str, str]:
    good = tiny_checkpoint(folder / "good.pth")
    data = open(good, "rb").read()
    files = {"truncated": data[: len(data) // 2], "empty": b"", "text": b"not a checkpoint\n" * 20,
             "pickle of a class": pickle.dumps(zipfile.ZipFile)}
    paths = {}
    for name, content in files.items():
        paths[name] = str(folder / f"{name.replace(' ', '_')}.pth")
        open(paths[name], "wb").write(content)
    paths["zip, not torch"] = str(folder / "other.pth")
    with zipfile.ZipFile(paths["zip, not torch"], "w") as archive:
        archive.writestr("notes.txt", "hello")
    return paths


def test_damaged_files_are_one_error_naming_the_file(tmp_path):
    for kind, path in damaged_files(tmp_path).items():
        for read in (load_generator, load_training_data):
            with pytest.raises(CheckpointError, match="cannot be read as a torch checkpoint") as caught:
                read(path)
            assert path in str(caught.value) and "\n" not in str(caught.value), kind
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_generator(str(tmp_path))  # a directory


def test_a_programming_error_inside_the_read_surfaces(tmp_path, monkeypatch):
    path = tiny_checkpoint(tmp_path / "good.pth")

    def broken_load(*args, **kwargs):
        raise TypeError("a bug, not a damaged file")

    monkeypatch.setattr(checkpoint.torch, "load", broken_load)
    for read in (load_generator, load_training_data):
        with pytest.raises(TypeError, match="a bug"):
            read(path)


def test_a_through_plane_model_asked_for_an_isotropic_scale_points_to_selfsr(tmp_path):
    """medsr-evaluate asks load_generator for upscale=4; a medsr-selfsr model (upscale [4, 1]) is then one line
    that says what it is and what takes it (the command and the module; it named a flag, --model); an isotropic
    mismatch keeps the plain message."""
    path = tmp_path / "through_plane.pth"
    torch.save({"params": SEEDSRGenerator(1, 1, num_feat=8, num_block=1, upscale=[4, 1]).state_dict()}, path)
    with pytest.raises(CheckpointError, match=r"upscale=\[4, 1\], but upscale=4 was asked for \(a through-plane "
                                              r"model, for through-plane SR: medsr-selfsr or "
                                              r"medsr_se\.throughplane\)$"):
        load_generator(str(path), upscale=4)
    isotropic = tmp_path / "x2.pth"
    torch.save({"params": SEEDSRGenerator(1, 1, num_feat=8, num_block=1, upscale=2).state_dict()}, isotropic)
    with pytest.raises(CheckpointError, match=r"upscale=2, but upscale=4 was asked for$"):
        load_generator(str(isotropic), upscale=4)

"""medsr-infer and tiled inference."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.cli import infer
from medsr_se.inference import CheckpointError, load_generator, upscale
from tests.helpers import trained_looking


def save_checkpoint(net: SEEDSRGenerator, path) -> str:
    torch.save({"params": net.state_dict(), "params_ema": net.state_dict()}, path)
    return str(path)


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(peak ** 2 / mse)


def test_cli_rgb_8bit_and_tiling(retina, tmp_path):
    net = trained_looking(SEEDSRGenerator(num_feat=16, num_block=2, upscale=4))
    checkpoint = save_checkpoint(net, tmp_path / "net_g.pth")
    image = np.ascontiguousarray(retina[400:497, 500:571, ::-1])  # odd size
    cv2.imwrite(str(tmp_path / "in.png"), image)
    for tile, folder in ((0, "whole"), (24, "tiled")):
        assert infer.main(["-i", str(tmp_path / "in.png"), "-o", str(tmp_path / folder), "--model", checkpoint,
                           "--scale", "4", "--tile", str(tile)]) == 0
    whole = cv2.imread(str(tmp_path / "whole" / "in.png"), cv2.IMREAD_UNCHANGED)
    tiled = cv2.imread(str(tmp_path / "tiled" / "in.png"), cv2.IMREAD_UNCHANGED)
    assert whole.shape == (97 * 4, 71 * 4, 3) and whole.dtype == np.uint8
    assert np.abs(tiled.astype(int) - whole).max() <= 1  # rounding of the last grey level only


def test_cli_gray_16bit_keeps_depth_and_channels(retina, tmp_path):
    gray16 = (cv2.cvtColor(retina[300:360, 300:348], cv2.COLOR_RGB2GRAY).astype(np.uint16) * 257)
    (tmp_path / "in").mkdir()  # results may not go inside the (recursively read) input folder
    cv2.imwrite(str(tmp_path / "in" / "ct.png"), gray16)
    one_channel = trained_looking(SEEDSRGenerator(1, 1, num_feat=8, num_block=1, upscale=2, img_residual=True))
    rgb = trained_looking(SEEDSRGenerator(num_feat=8, num_block=1, upscale=2, img_residual=True))
    for name, net in (("gray_model", one_channel), ("rgb_model", rgb)):
        checkpoint = save_checkpoint(net, tmp_path / f"{name}.pth")
        assert infer.main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / name), "--model", checkpoint,
                           "--tile", "16"]) == 0
        out = cv2.imread(str(tmp_path / name / "ct.png"), cv2.IMREAD_UNCHANGED)
        assert out.dtype == np.uint16 and out.shape == (120, 96)
        assert out.max() > 255  # 16-bit values, not an 8-bit image stored in 16 bits


def test_untrained_skip_model_on_16_bit_is_bicubic(tmp_path):
    net = SEEDSRGenerator(1, 1, num_feat=8, num_block=1, upscale=4, img_residual=True)
    image = (np.random.default_rng(0).random((20, 24)) * 65535).astype(np.uint16)
    expected = torch.nn.functional.interpolate(torch.from_numpy(image / 65535.0)[None, None].float(),
                                               scale_factor=4, mode="bicubic", align_corners=False)
    expected = np.round(expected.clamp(0, 1).numpy()[0, 0] * 65535).astype(np.uint16)
    assert np.abs(upscale(image, net).astype(int) - expected.astype(int)).max() <= 1


def test_clear_errors(tmp_path, capsys):
    net = SEEDSRGenerator(num_feat=8, num_block=1, upscale=4)
    checkpoint = save_checkpoint(net, tmp_path / "x4.pth")
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8, 3), np.uint8))
    assert infer.main(["-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--model", checkpoint,
                       "--scale", "8"]) == 2
    assert "trained with upscale=4" in capsys.readouterr().err
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pth"):
        load_generator(str(tmp_path / "junk.pth"))
    torch.save({"params": {"conv.weight": torch.zeros(1)}}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="other.pth: not a SEEDSRGenerator"):
        load_generator(str(tmp_path / "other.pth"))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG broken")
    assert infer.main(["-i", str(tmp_path / "broken.png"), "-o", str(tmp_path / "o"), "--model", checkpoint]) == 2
    assert "broken.png: cannot read" in capsys.readouterr().err
    gray_model = save_checkpoint(SEEDSRGenerator(1, 1, num_feat=8, num_block=1, upscale=4), tmp_path / "g.pth")
    assert infer.main(["-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--model", gray_model]) == 2
    assert "1-channel images, this one has 3" in capsys.readouterr().err
    assert infer.main(["-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--model", checkpoint,
                       "--fp16", "--device", "cpu"]) == 2
    assert "--fp16 needs a CUDA device" in capsys.readouterr().err


def write_dicom(pixels: np.ndarray, path) -> None:
    """A minimal CT slice as a scanner stores it: 16-bit MONOCHROME2, signed when ``pixels`` is int16."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
    dataset.Modality = "CT"
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.PixelSpacing = [0.8, 0.8]
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit = 16, 16, 15
    dataset.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    # signed pixels store HU directly; unsigned ones are shifted by the usual intercept
    dataset.RescaleIntercept, dataset.RescaleSlope = (0 if pixels.dtype == np.int16 else -1024), 1
    dataset.PixelData = np.ascontiguousarray(pixels).tobytes()
    dataset.save_as(str(path), enforce_file_format=True)


@pytest.mark.parametrize("dtype", [np.uint16, np.int16])
def test_cli_dicom_in_dicom_out(retina, tmp_path, capsys, dtype):
    import pydicom

    base = cv2.cvtColor(retina[600:640, 600:656], cv2.COLOR_RGB2GRAY).astype(np.int32) * 8
    slice_ = (base - 1000).astype(dtype) if dtype == np.int16 else base.astype(dtype)  # signed: air below 0
    write_dicom(slice_, tmp_path / "slice.dcm")
    net = SEEDSRGenerator(1, 1, num_feat=8, num_block=1, upscale=2, img_residual=True)
    checkpoint = save_checkpoint(net, tmp_path / "ct.pth")
    assert infer.main(["-i", str(tmp_path / "slice.dcm"), "-o", str(tmp_path / "out"), "--model", checkpoint]) == 0
    written = pydicom.dcmread(str(tmp_path / "out" / "slice.dcm"))
    out = written.pixel_array
    assert out.dtype == dtype and out.shape == (80, 112)
    assert (written.Rows, written.Columns) == (80, 112) and float(written.PixelSpacing[0]) == pytest.approx(0.4)
    assert written.RescaleIntercept == (0 if dtype == np.int16 else -1024)
    assert written.SOPInstanceUID != pydicom.dcmread(str(tmp_path / "slice.dcm")).SOPInstanceUID
    # the untrained skip model is bicubic: the mean level survives, sign included
    assert abs(float(out.mean()) - float(slice_.mean())) < 0.02 * abs(float(slice_.mean())) + 2
    (tmp_path / "bad.dcm").write_bytes(b"DICM? no")
    assert infer.main(["-i", str(tmp_path / "bad.dcm"), "-o", str(tmp_path / "out"), "--model", checkpoint]) == 2
    assert "bad.dcm: cannot read the DICOM" in capsys.readouterr().err


def test_bf16_inference_on_cpu_is_close_and_16_bit_images_stay_fp32(retina, tmp_path, capsys):
    net = trained_looking(SEEDSRGenerator(num_feat=16, num_block=2, upscale=2, img_residual=True))
    checkpoint = save_checkpoint(net, tmp_path / "net_g.pth")
    (tmp_path / "in").mkdir()
    image8 = np.ascontiguousarray(retina[400:464, 500:560, ::-1])
    cv2.imwrite(str(tmp_path / "in" / "eight.png"), image8)
    cv2.imwrite(str(tmp_path / "in" / "sixteen.png"), image8.astype(np.uint16) * 257)
    for precision, folder in (("fp32", "full"), ("bf16", "half")):
        assert infer.main(["-i", str(tmp_path / "in"), "-o", str(tmp_path / folder), "--model", checkpoint,
                           "--precision", precision, "--device", "cpu"]) == 0
    assert "sixteen.png: 16-bit image, computed in fp32" in capsys.readouterr().err
    full, half = (cv2.imread(str(tmp_path / f / "eight.png")) for f in ("full", "half"))
    assert 40 <= psnr(half, full, 255) < float("inf")  # reduced precision, and close to fp32
    sixteen = [cv2.imread(str(tmp_path / f / "sixteen.png"), cv2.IMREAD_UNCHANGED) for f in ("full", "half")]
    np.testing.assert_array_equal(sixteen[0], sixteen[1])


def test_a_checkpoint_whose_recorded_upscale_disagrees_with_its_weights_is_one_line(tmp_path, capsys):
    """Issue 22 (13): torch's multi-line "Missing key(s) in state_dict" text inside the error."""
    from medsr_se.inference.checkpoint import NETWORK_OPTIONS_KEY

    net = SEEDSRGenerator(1, 1, num_feat=8, num_block=1, upscale=2)
    options = {"type": "SEEDSRGenerator", "num_in_ch": 1, "num_out_ch": 1, "num_feat": 8, "num_block": 1,
               "upscale": 4}
    torch.save({"params": net.state_dict(), NETWORK_OPTIONS_KEY: options}, tmp_path / "x4.pth")
    with pytest.raises(CheckpointError, match=r"x4.pth: .*upscale=4.*weights.*upscale=2") as caught:
        load_generator(str(tmp_path / "x4.pth"))
    assert "\n" not in str(caught.value)
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8), np.uint8))
    assert infer.main(["-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--model",
                       str(tmp_path / "x4.pth")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "x4.pth" in err
    broken = net.state_dict()
    broken["body.0.conv1.weight"] = torch.zeros(3, 3, 3, 3)  # a shape no SEEDSRGenerator config explains
    torch.save({"params": broken}, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match="odd.pth: ") as caught:
        load_generator(str(tmp_path / "odd.pth"))
    assert "\n" not in str(caught.value)


def test_a_through_plane_model_is_one_line_pointing_to_selfsr(tmp_path, capsys):
    """A medsr-selfsr model (upscale [4, 1]) in medsr-infer: one line naming it and the command that takes it,
    exit 2, no output folder (it was a TypeError traceback from the memory planner)."""
    net = SEEDSRGenerator(1, 1, num_feat=8, num_block=1, upscale=[4, 1])
    checkpoint = tmp_path / "through_plane.pth"
    torch.save({"params": net.state_dict()}, checkpoint)
    cv2.imwrite(str(tmp_path / "slice.png"), np.zeros((8, 6), np.uint8))
    assert infer.main(["-i", str(tmp_path / "slice.png"), "-o", str(tmp_path / "o"), "--model",
                       str(checkpoint)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --model ") and "through_plane.pth" in err
    assert "medsr-selfsr" in err and not (tmp_path / "o").exists()

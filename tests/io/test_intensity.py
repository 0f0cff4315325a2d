"""The intensity model (medsr_se.io.intensity) and upscale() on arrays of physical values."""

import logging

import numpy as np
import pytest
import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.errors import DataError, OptionError
from medsr_se.inference import upscale
from medsr_se.io.intensity import CT_WINDOWS, IntensityModel, choose, ct_window, measured, replace_nonfinite
from tests.logged import logs_no_warning, warnings_of
from tests.medical import pydicom_file, torch_bicubic

UPSCALE_LOGGER = "medsr_se.inference.upscale"
INTENSITY_LOGGER = "medsr_se.io.intensity"


@pytest.fixture(scope="module")
def ct_hu() -> np.ndarray:
    """pydicom's CT_small.dcm in Hounsfield units (int16, -896 ... 1167)."""
    import pydicom

    dataset = pydicom.dcmread(str(pydicom_file("CT_small.dcm")))
    return (dataset.pixel_array.astype(np.int32) * int(dataset.RescaleSlope) + int(dataset.RescaleIntercept)).astype(
        np.int16)


@pytest.fixture(scope="module")
def skip_net() -> SEEDSRGenerator:
    torch.manual_seed(0)
    return SEEDSRGenerator(1, 1, num_feat=8, num_block=1, upscale=2, img_residual=True).eval()


def test_windows_and_round_trip():
    window = ct_window("soft-tissue")
    assert (window.low, window.high, window.unit) == (-160, 240, "HU")
    assert ct_window("-100,300").high == 300 and set(CT_WINDOWS) >= {"full", "lung", "bone", "soft-tissue"}
    values = np.array([-160.0, 40.0, 240.0])
    np.testing.assert_allclose(window.to_unit(values), [0, 0.5, 1])
    np.testing.assert_allclose(window.from_unit(window.to_unit(values)), values, atol=1e-4)
    assert IntensityModel.from_dict(window.to_dict()) == window
    with pytest.raises(ValueError, match="LOW,HIGH"):
        ct_window("mediastinum-ish")
    with pytest.raises(ValueError, match="low < high"):
        IntensityModel("window", 10, 10)


def test_ct_slice_spans_the_network_range_unlike_the_old_offset(ct_hu):
    """The old mapping ((raw + 32768) / 65535) put CT_small into 0.502 ... 0.533 of [0, 1]."""
    unit = ct_window("full").to_unit(ct_hu)
    assert unit.max() - unit.min() > 0.45
    soft = np.clip(ct_window("soft-tissue").to_unit(ct_hu), 0, 1)
    assert soft.min() == 0 and soft.max() == 1
    mr = measured(np.linspace(0, 1000, 10001))
    assert mr.kind == "percentile" and mr.low == pytest.approx(5) and mr.high == pytest.approx(995)
    assert choose(None, "CT").name == "full" and choose(None, "MR", np.arange(100.0)).kind == "percentile"


def test_upscale_int16_keeps_negative_hounsfield_units(ct_hu, skip_net):
    """Before: int16 raised or came back 0 ... 1194 (negatives clipped)."""
    sr = upscale(ct_hu, skip_net, intensity=ct_window("full"))
    assert sr.dtype == np.int16 and sr.shape == (256, 256)
    expected = ct_window("full").from_unit(np.clip(torch_bicubic(ct_window("full").to_unit(ct_hu), 2), 0, 1))
    np.testing.assert_allclose(sr, np.round(expected), atol=1)
    assert sr.min() < -800  # air stays air


def test_upscale_float_arrays_and_tensors(ct_hu, skip_net):
    """Before: float32 failed with "Invalid integer data type 'f'"."""
    hu = ct_hu.astype(np.float32)
    window = ct_window("full")
    sr = upscale(hu, skip_net, intensity=window)
    assert sr.dtype == np.float32 and sr.min() < -800
    tensor = upscale(torch.from_numpy(hu), skip_net, intensity=window)
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32
    np.testing.assert_allclose(tensor.numpy(), sr, atol=1e-3)
    chw = upscale(torch.from_numpy(hu)[None], skip_net, intensity=window)
    assert chw.shape == (1, 256, 256)
    assert upscale(hu, skip_net, intensity=window, out_dtype=np.int16).dtype == np.int16
    with pytest.raises(ValueError, match="no implied intensity range"):
        upscale(hu, skip_net)


def test_nothing_is_clipped_silently(ct_hu, skip_net, caplog):
    """Each clipping is a warning of upscale's logger (not a Python warning): counted, never silent."""
    outside = int(np.count_nonzero((ct_hu < -160) | (ct_hu > 240)))  # the oracle: counted here
    with caplog.at_level(logging.WARNING, logger=UPSCALE_LOGGER):
        sr = upscale(ct_hu, skip_net, intensity=ct_window("soft-tissue"))
    assert sr.min() >= -160 and sr.max() <= 240  # documented: the result lies in the window
    assert warnings_of(caplog, UPSCALE_LOGGER) == [
        f"{outside} of {ct_hu.size} values lie outside the intensity window [-160, 240] HU (window soft-tissue): the "
        "network sees them clipped to the window"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=UPSCALE_LOGGER):
        upscale(np.full((8, 8), 280.0, np.float32), skip_net, intensity=IntensityModel("minmax", 0, 300),
                out_dtype=np.uint8)
    assert [message for message in warnings_of(caplog, UPSCALE_LOGGER) if "beyond the uint8 range [0, 255] were "
            "clipped to it" in message]
    with logs_no_warning(caplog):
        upscale(ct_hu, skip_net, intensity=ct_window("full"))  # inside the window: no warning


def test_gray_image_through_a_colour_model_warns(ct_hu, caplog):
    colour = SEEDSRGenerator(3, 3, num_feat=8, num_block=1, upscale=2, img_residual=True).eval()
    with caplog.at_level(logging.WARNING, logger=UPSCALE_LOGGER):
        assert upscale(ct_hu, colour, intensity=ct_window("full")).shape == (256, 256)
    assert [message for message in warnings_of(caplog, UPSCALE_LOGGER) if "trained on 3-channel" in message]


def test_the_outside_warning_says_window_once(ct_hu, skip_net, caplog):
    """Issue 22 (17): it read "outside the intensity window window soft-tissue [-160, 240] HU"."""
    with caplog.at_level(logging.WARNING, logger=UPSCALE_LOGGER):
        upscale(ct_hu, skip_net, intensity=ct_window("soft-tissue"))
    message, = warnings_of(caplog, UPSCALE_LOGGER)
    assert "outside the intensity window [-160, 240] HU (window soft-tissue)" in message
    assert "window window" not in message


def test_upscale_refuses_non_finite_values_or_replaces_them_on_request(ct_hu, skip_net, caplog):
    """Issue 22 (6): one NaN made the whole result NaN (the SE squeeze pools over the image), without a word."""
    hu = ct_hu.astype(np.float32)
    hu[10, 20], hu[30, 40], hu[50, 60] = np.nan, np.inf, -np.inf
    with pytest.raises(ValueError, match=r"3 non-finite value\(s\) of 16384 \(1 NaN, 1 \+inf, 1 -inf\)"):
        upscale(hu, skip_net, intensity=ct_window("full"))
    with pytest.raises(ValueError, match=r"non-finite"):
        upscale(torch.from_numpy(hu), skip_net, intensity=ct_window("full"))
    with caplog.at_level(logging.WARNING, logger=INTENSITY_LOGGER):
        sr = upscale(hu, skip_net, intensity=ct_window("full"), nonfinite=-1000.0)
    assert warnings_of(caplog, INTENSITY_LOGGER) == [
        "image: 3 non-finite value(s) of 16384 (1 NaN, 1 +inf, 1 -inf) replaced by -1000"]
    replaced = np.where(np.isfinite(hu), hu, -1000.0).astype(np.float32)
    np.testing.assert_array_equal(sr, upscale(replaced, skip_net, intensity=ct_window("full")))


def test_upscale_a_bfloat16_tensor_computes_in_float32_and_returns_bfloat16(ct_hu, skip_net):
    """Issue 22 (12): torch's TypeError from .numpy() on a bfloat16 tensor."""
    hu = torch.from_numpy(ct_hu.astype(np.float32))
    sr = upscale(hu.to(torch.bfloat16), skip_net, intensity=ct_window("full"))
    assert sr.dtype == torch.bfloat16 and sr.shape == (256, 256)
    reference = upscale(hu.to(torch.bfloat16).float(), skip_net, intensity=ct_window("full"))
    torch.testing.assert_close(sr, reference.to(torch.bfloat16))
    chw = upscale(hu.to(torch.bfloat16)[None], skip_net, intensity=ct_window("full"))
    assert chw.dtype == torch.bfloat16 and chw.shape == (1, 256, 256)


def test_errors_name_the_python_parameter_not_a_command_flag(skip_net):
    """Library errors name the parameter a value came in through (``window=...``, ``error.parameter``), never a
    command's flag (they read "window 'x'", "--nonfinite VALUE of medsr-infer"); a command maps the parameter to its
    flag (errors.for_command)."""
    from medsr_se.errors import for_command

    with pytest.raises(OptionError) as raised:
        ct_window("mediastinum-ish")
    assert str(raised.value).startswith("window='mediastinum-ish': use one of full,")
    assert raised.value.parameter == "window"
    assert for_command(raised.value, {"window": "--window"}).startswith("--window 'mediastinum-ish': use one of")
    with pytest.raises(OptionError, match=r"^window='300,100': needs finite LOW < HIGH$") as raised:
        ct_window("300,100")
    assert raised.value.parameter == "window"
    with pytest.raises(OptionError, match=r"^kind='median': use percentile or minmax") as raised:
        measured(np.arange(10.0), "median")
    assert raised.value.parameter == "kind"
    with pytest.raises(DataError, match="no finite values"):
        measured(np.array([np.nan]))
    values = np.array([1.0, np.nan])
    with pytest.raises(DataError) as raised:
        replace_nonfinite(values, "scan.nii")
    message = str(raised.value)
    assert message.startswith("scan.nii: 1 non-finite value(s) of 2 (1 NaN, 0 +inf, 0 -inf)")
    assert "nonfinite=VALUE" in message and "--" not in message and raised.value.parameter == "nonfinite"
    assert for_command(raised.value, {"nonfinite": "--nonfinite"}).endswith("--nonfinite VALUE")
    with pytest.raises(OptionError, match=r"^nonfinite=inf: the replacement must be a finite number$") as raised:
        replace_nonfinite(values, "scan.nii", np.inf)
    assert raised.value.parameter == "nonfinite"
    with pytest.raises(OptionError, match=r"^a float32 array has no implied intensity range: pass intensity=") \
            as raised:
        upscale(np.zeros((8, 8), np.float32), skip_net)
    assert raised.value.parameter == "intensity"
    with pytest.raises(DataError, match=r"^the model takes 1-channel images, this one has 3 channels$"):
        upscale(np.zeros((8, 8, 3), np.uint8), skip_net)  # the image is at fault, not an option: a DataError
    with pytest.raises(DataError, match=r"^a tensor image is \(H, W\) or \(C, H, W\)"):
        upscale(torch.zeros(1, 1, 8, 8), skip_net)

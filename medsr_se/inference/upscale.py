"""``upscale``: super-resolving a numpy image (or a tensor) with a trained ``SEEDSRGenerator``.

It keeps the image's dtype and channel count and can tile (:mod:`medsr_se.inference.tiling`).
Arrays of physical values (CT in HU as int16 or float, MRI as float, ...) need their intensity mapping spelled out
(:mod:`medsr_se.io.intensity`), e.g. for a CT slice in HU:

    from medsr_se.io.intensity import ct_window
    sr_hu = upscale(hu_slice, net, intensity=ct_window("full"))     # int16 in, int16 out, negative values kept
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch

from medsr_se.archs.seedsr_arch import SEEDSRGenerator
from medsr_se.errors import DataError, OptionError
from medsr_se.inference.global_reads import read_count
from medsr_se.inference.halo import first_convolution, reach, tile_for
from medsr_se.inference.window import check_size, input_multiple
from medsr_se.io.intensity import IntensityModel, for_dtype, replace_nonfinite
from medsr_se.utils.bicubic import matlab_bicubic

logger = logging.getLogger(__name__)


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W) or (H, W, C) BGR uint8/uint16 -> (1, C, H, W) RGB float in [0, 1]."""
    return unit_to_tensor(image.astype(np.float32) / float(np.iinfo(image.dtype).max))


def unit_to_tensor(array: np.ndarray) -> torch.Tensor:
    """(H, W) or (H, W, C) BGR float32 values in [0, 1] -> (1, C, H, W) RGB."""
    if array.ndim == 2:
        array = array[:, :, None]
    elif array.shape[2] == 3:
        array = array[:, :, ::-1]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).unsqueeze(0)


def tensor_to_image(tensor: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    """Inverse of :func:`image_to_tensor`, rounded and clipped to ``dtype``. The arithmetic runs where the tensor
    is (on a GPU only the integer pixels cross to the host; round-half-to-even like numpy)."""
    peak = float(np.iinfo(dtype).max)
    integer = torch.uint8 if np.dtype(dtype) == np.uint8 else torch.int32
    pixels = torch.round(tensor.squeeze(0).detach().float().clamp(0, 1) * peak).to(integer)
    array = pixels.cpu().numpy().transpose(1, 2, 0)
    if array.shape[2] == 3:
        array = array[:, :, ::-1]
    elif array.shape[2] == 1:
        array = array[:, :, 0]
    return array.astype(dtype)


NETWORK_DTYPES = (np.uint8, np.uint16)


def input_channels(model: torch.nn.Module) -> int:
    """The channels a generator takes: those its network_g names (``num_in_ch`` / ``in_chans``, recorded by
    :func:`~medsr_se.inference.checkpoint.load_generator`: RRDBNet at scale 2 folds them 4-fold before its first
    convolution), else its first convolution's (:func:`medsr_se.inference.halo.first_convolution`)."""
    return getattr(model, "medsr_se_in_channels", None) or first_convolution(model).in_channels


def check_image(shape: tuple[int, ...], dtype: np.dtype, model: torch.nn.Module,
                intensity: IntensityModel | None = None) -> None:
    """What :func:`upscale` refuses about an image of ``shape`` and ``dtype``, checked without computing anything
    (a command checks every input so before any work): a DataError (an OptionError naming ``intensity=`` for a
    missing intensity model; both ValueErrors) naming the first problem. An integer type other than uint8 / uint16
    (or a float) needs ``intensity``; the channels must be the model's (a gray image
    through a 3-channel model is converted; a 4th channel is alpha, kept aside); a network that takes multiples
    of a size only (SwinIR's window) needs each side long enough to be padded to one
    (:func:`medsr_se.inference.window.check_size`)."""
    if len(shape) not in (2, 3) or min(shape[:2]) < 1:
        raise DataError(f"an image is (H, W) or (H, W, C), got shape {tuple(shape)}")
    if intensity is None and np.dtype(dtype) not in NETWORK_DTYPES:
        raise OptionError(f"a {np.dtype(dtype)} array has no implied intensity range: pass intensity= (e.g. "
                          "medsr_se.io.intensity.ct_window('full') for CT in HU, or measured(array) for MRI)",
                          parameter="intensity")
    channels = 1 if len(shape) == 2 else shape[2]
    colour = 3 if channels == 4 else channels  # BGRA: the colour goes through the network
    wanted = input_channels(model)
    if colour != wanted and not (colour == 1 and wanted == 3):
        raise DataError(f"the model takes {wanted}-channel images, this one has {channels} channels")
    multiple = input_multiple(model)
    if multiple is not None:
        check_size(shape[0], shape[1], multiple, type(model).__name__)


@torch.no_grad()
def upscale(image: np.ndarray | torch.Tensor, model: SEEDSRGenerator, tile: int = 0, tile_pad: int = 4,
            intensity: IntensityModel | None = None, out_dtype: np.dtype | None = None,
            progress: Callable[[int], Callable[[], None]] | None = None,
            nonfinite: float | None = None) -> np.ndarray | torch.Tensor:
    """Super-resolve one image or slice; dtype and channel count are kept (or ``out_dtype``).

    ``image``: numpy (H, W) or (H, W, C) BGR, or a torch tensor (H, W) or (C, H, W) RGB (returned as a tensor of
    the same layout, dtype and device). uint8 / uint16 images map their type's full range to the network's [0, 1]
    unless ``intensity`` says otherwise; int16, int32 and float arrays need ``intensity`` (an
    :class:`~medsr_se.io.intensity.IntensityModel`, e.g. ``ct_window("full")`` for HU), because no range is implied
    by their type. Values outside the intensity window reach the network clipped, with a warning that counts them;
    results beyond ``out_dtype``'s range are clipped with a warning: nothing is clipped silently (the warnings are
    logged, ``logging.getLogger("medsr_se.inference.upscale")``).

    ``tile`` > 0 processes LR tiles of that size with
    :func:`medsr_se.inference.tiling.tiled_forward`, which gives the whole-image result with far less memory.
    A gray image through a 3-channel model is converted and back (with a warning: that model was trained on colour
    photographs). 16-bit and float images on CUDA are computed without TF32. A 4-channel (BGRA) image keeps its
    alpha: the colour goes through the network, the alpha channel is resized with MATLAB-style bicubic.

    ``progress``, if given, is called once with the number of steps (output tiles, or for a whole image its residual
    blocks and upsampling stages) and returns the function to call after each step.

    NaN and ±inf values are a DataError that counts them, naming ``nonfinite=`` (the SE squeeze averages over the
    whole image, so one would turn the whole result NaN), unless ``nonfinite`` gives the finite value that replaces
    them (a warning).
    A bfloat16 tensor (numpy has no bfloat16) is computed as float32 and returned as bfloat16.
    """
    if isinstance(image, torch.Tensor):
        return _upscale_tensor(image, model, tile, tile_pad, intensity, out_dtype, nonfinite)
    check_image(image.shape, image.dtype, model, intensity)
    image = replace_nonfinite(image, "image", nonfinite)
    if image.ndim == 3 and image.shape[2] == 4:
        colour = upscale(np.ascontiguousarray(image[:, :, :3]), model, tile, tile_pad, intensity, out_dtype,
                         progress)
        return np.dstack([colour, matlab_bicubic(np.ascontiguousarray(image[:, :, 3]), model.upscale)])
    if intensity is None:
        if out_dtype is None or np.dtype(out_dtype) == image.dtype:
            return _upscale_quantised(image, model, tile, tile_pad, progress)
        intensity = for_dtype(image.dtype)
    return _upscale_physical(image, model, tile, tile_pad, intensity, np.dtype(out_dtype or image.dtype), progress)


def _network_channels(pixels: np.ndarray, model: SEEDSRGenerator) -> tuple[np.ndarray, bool]:
    """``pixels`` with the model's channel count (checked by :func:`check_image`), and whether a gray image was
    replicated to 3 channels."""
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    if channels == 1 and input_channels(model) == 3:
        logger.warning("a gray image through a model trained on 3-channel (colour) images: the result is the mean "
                       "of its three outputs and may show artefacts; a gray model (options/x4_gray.yml) suits it")
        return np.repeat(pixels.reshape(*pixels.shape[:2], 1), 3, axis=2), True
    return pixels, False


def _run(model: SEEDSRGenerator, lr: torch.Tensor, tile: int, tile_pad: int, sink, full_precision: bool,
         progress: Callable[[int], Callable[[], None]] | None = None) -> None:
    """tiled_forward into ``sink``; TF32 off on CUDA when the output needs more than 8 bits; ``progress`` per output
    tile (another network's: per tile forward, the passes that measure its whole-image reads included), or per
    residual block and upsampling stage of a whole-image pass (forward hooks: the computation is the same with or
    without them)."""
    from medsr_se.inference.tiling import tiled_forward, tiles

    hooks = []
    if progress is not None:
        if tile > 0 and not isinstance(model, SEEDSRGenerator):  # every tile forward of every pass: global_reads
            count = sum(1 for _ in tiles(lr.shape[-2], lr.shape[-1], tile_for(model, tile), tile_pad))
            step = progress(count * (read_count(model) + 1) if count > 1 else 1)
            reach(model, lr.shape[1])  # its probe forward (once per network) before the counting starts
            hooks = [model.register_forward_pre_hook(lambda *_: step())]
        elif tile > 0:
            step = progress(sum(1 for _ in tiles(lr.shape[-2], lr.shape[-1], tile, tile_pad)))
            inner = sink

            def sink(rows: slice, cols: slice, values: torch.Tensor) -> None:
                inner(rows, cols, values)
                step()
        else:
            stages = [*model.body, *model.upsample] if isinstance(model, SEEDSRGenerator) else [model]
            step = progress(len(stages))
            hooks = [stage.register_forward_hook(lambda *_: step()) for stage in stages]
    # TF32 convolutions (cuDNN's default on Ampere and newer) keep 10 mantissa bits: too few for 16-bit outputs
    full_precision = full_precision and lr.device.type == "cuda"
    try:
        with torch.backends.cudnn.flags(enabled=torch.backends.cudnn.enabled, allow_tf32=not full_precision):
            tiled_forward(model, lr, tile, tile_pad, sink=sink)
    finally:
        for hook in hooks:
            hook.remove()


def _upscale_quantised(image: np.ndarray, model: SEEDSRGenerator, tile: int, tile_pad: int,
                       progress: Callable[[int], Callable[[], None]] | None = None) -> np.ndarray:
    """uint8 / uint16 in and out, the type's full range as the network's [0, 1]; tiles quantised as they come."""
    parameter = next(model.parameters())
    pixels, replicated = _network_channels(image, model)
    lr = image_to_tensor(pixels).to(device=parameter.device, dtype=parameter.dtype)
    scale = model.upscale
    output = np.empty((pixels.shape[0] * scale, pixels.shape[1] * scale) + pixels.shape[2:], image.dtype)

    def write_tile(rows: slice, cols: slice, values: torch.Tensor) -> None:
        output[rows, cols] = tensor_to_image(values, image.dtype)

    _run(model, lr, tile, tile_pad, write_tile, image.dtype == np.uint16, progress)
    if replicated:
        output = np.round(output.astype(np.float64).mean(axis=2)).astype(image.dtype)
    return output


def _upscale_physical(image: np.ndarray, model: SEEDSRGenerator, tile: int, tile_pad: int,
                      intensity: IntensityModel, out_dtype: np.dtype,
                      progress: Callable[[int], Callable[[], None]] | None = None) -> np.ndarray:
    """Any numeric array through ``intensity`` to [0, 1], the network, and back (see :func:`upscale`)."""
    outside = intensity.outside(image)
    if outside:
        logger.warning("%d of %d values lie outside the intensity window %s: the network sees them clipped to the "
                       "window", outside, image.size, intensity.range_text())
    unit, replicated = _network_channels(np.clip(intensity.to_unit(image), 0.0, 1.0), model)
    parameter = next(model.parameters())
    lr = unit_to_tensor(unit).to(device=parameter.device, dtype=parameter.dtype)
    scale = model.upscale
    output = np.empty((unit.shape[0] * scale, unit.shape[1] * scale) + unit.shape[2:], np.float32)

    def write_tile(rows: slice, cols: slice, values: torch.Tensor) -> None:
        array = values.squeeze(0).detach().float().clamp(0, 1).cpu().numpy().transpose(1, 2, 0)
        output[rows, cols] = array[:, :, ::-1] if array.shape[2] == 3 else array.reshape(output[rows, cols].shape)

    _run(model, lr, tile, tile_pad, write_tile, True, progress)
    if replicated:
        output = output.mean(axis=2)
    return cast_checked(intensity.from_unit(output), out_dtype)


def cast_checked(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``values`` as ``dtype``: rounded for integer types; values beyond the type's range are clipped with a
    warning that counts them."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return values.astype(dtype)
    info = np.iinfo(dtype)
    rounded = np.round(values)
    outside = int(np.count_nonzero((rounded < info.min) | (rounded > info.max)))
    if outside:
        logger.warning("%d result value(s) beyond the %s range [%d, %d] were clipped to it", outside, dtype, info.min,
                       info.max)
    return np.clip(rounded, info.min, info.max).astype(dtype)


def _upscale_tensor(image: torch.Tensor, model: SEEDSRGenerator, tile: int, tile_pad: int,
                    intensity: IntensityModel | None, out_dtype, nonfinite: float | None = None) -> torch.Tensor:
    """A (H, W) or (C, H, W) RGB tensor through :func:`upscale`, returned in the same layout, dtype and device
    (bfloat16, which numpy lacks, goes through float32)."""
    if image.ndim not in (2, 3):
        raise DataError(f"a tensor image is (H, W) or (C, H, W), got shape {tuple(image.shape)}")
    bfloat16 = image.dtype == torch.bfloat16
    array = (image.detach().float() if bfloat16 else image.detach()).cpu().numpy()
    if array.ndim == 3:
        array = array.transpose(1, 2, 0)
        array = array[:, :, ::-1] if array.shape[2] == 3 else array
        array = np.ascontiguousarray(array if array.shape[2] > 1 else array[:, :, 0])
    result = upscale(array, model, tile, tile_pad, intensity, out_dtype, nonfinite=nonfinite)
    if image.ndim == 3:
        result = result[:, :, None] if result.ndim == 2 else result
        result = result[:, :, ::-1] if result.shape[2] == 3 else result
        result = np.ascontiguousarray(result.transpose(2, 0, 1))
    tensor = torch.from_numpy(np.ascontiguousarray(result))
    return (tensor.to(torch.bfloat16) if bfloat16 and out_dtype is None else tensor).to(image.device)

"""Tiny BasicSR SwinIR networks for the windowed-attention tests, and the oracle they are checked against: BasicSR's
own network (built afresh from the options, the saved weights loaded) on the input padded by numpy's reflection
to a multiple of the window, its output cropped back (what BasicSR's ``SwinIRModel.test`` does)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from basicsr.archs import build_network

from medsr_se.inference.checkpoint import NETWORK_OPTIONS_KEY
from tests.helpers import trained_looking


def swinir_options(window: int = 8, depths: tuple[int, ...] = (2,), upscale: int = 2, channels: int = 3,
                   upsampler: str = "pixelshuffle") -> dict:
    """A SwinIR of a few thousand parameters (embed_dim 12, 2 heads, img_size two windows)."""
    return {"type": "SwinIR", "upscale": upscale, "in_chans": channels, "img_size": 2 * window,
            "window_size": window, "img_range": 1.0, "depths": list(depths), "embed_dim": 12,
            "num_heads": [2] * len(depths), "mlp_ratio": 2, "upsampler": upsampler}


def built(options: dict, seed: int = 0) -> torch.nn.Module:
    """BasicSR's network for ``options``, every weight moved off its initial value (eval mode)."""
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's meshgrid deprecation inside SwinIR
        return trained_looking(build_network(dict(options)), seed)


def save_swinir(path: Path, options: dict, seed: int = 0, stored: bool = True) -> Path:
    """A checkpoint of :func:`built` (``params``; the options stored in it unless ``stored`` is False)."""
    saved = {"params": built(options, seed).state_dict()}
    if stored:
        saved[NETWORK_OPTIONS_KEY] = options
    torch.save(saved, path)
    return path


def reference(path: Path, options: dict) -> torch.nn.Module:
    """The oracle's network: BasicSR's, built afresh, with the weights saved in ``path``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = build_network(dict(options))
    net.load_state_dict(torch.load(path, weights_only=True)["params"])
    return net.eval()


@torch.no_grad()
def padded_forward(net: torch.nn.Module, x: torch.Tensor, window: int) -> torch.Tensor:
    """(N, C, h, w) -> the network's output for ``x`` reflected (numpy) to multiples of ``window``, cropped back."""
    height, width = x.shape[-2:]
    padded = np.pad(x.numpy(), ((0, 0), (0, 0), (0, -height % window), (0, -width % window)), mode="reflect")
    out = net(torch.from_numpy(padded))
    scale = out.shape[-1] // padded.shape[-1]
    return out[..., :height * scale, :width * scale]


def reference_image(net: torch.nn.Module, bgr: np.ndarray, window: int) -> np.ndarray:
    """uint8 BGR (or gray) in, the oracle's uint8 result out (rounded like medsr-infer)."""
    rgb = bgr[:, :, ::-1] if bgr.ndim == 3 else bgr[:, :, None]
    x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().div(255).unsqueeze(0)
    out = torch.round(padded_forward(net, x, window).clamp(0, 1) * 255).squeeze(0).numpy().transpose(1, 2, 0)
    return np.ascontiguousarray(out[:, :, ::-1] if bgr.ndim == 3 else out[:, :, 0]).astype(np.uint8)

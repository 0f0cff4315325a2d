"""Tiny HATSR / DATSR / DRCTSR / ATDSR options for the tests (a few thousand trunk parameters, windows of 4 pixels),
and the oracle they are checked against: spandrel's own class, built here from its own keyword arguments."""

from __future__ import annotations

import importlib

import torch

# trunk options per type; every tiny network takes inputs of any size (padded to multiples of WINDOW)
TINY = {
    "HATSR": {"img_size": 16, "window_size": 4, "embed_dim": 12, "depths": [2], "num_heads": [2],
              "compress_ratio": 3, "squeeze_factor": 4},
    "DATSR": {"img_size": 16, "split_size": [2, 4], "embed_dim": 32, "depths": [2], "num_heads": [2],
              "expansion_factor": 2},
    "DRCTSR": {"img_size": 16, "window_size": 4, "embed_dim": 12, "depths": [1], "num_heads": [2], "gc": 6},
    "ATDSR": {"img_size": 16, "window_size": 4, "embed_dim": 12, "depths": [2], "num_heads": [2],
              "category_size": 16, "num_tokens": 8, "reducted_dim": 4},
}
WINDOW = 4  # the input multiple of every tiny network (DAT: lcm of its split_size 2 x 4)
TYPES = tuple(TINY)

# the same tiny networks as spandrel's own constructors spell them (DAT: ``depth``; in_chans; the upsampler)
SPANDREL = {
    "HATSR": ("HAT", {"img_size": 16, "window_size": 4, "embed_dim": 12, "depths": [2], "num_heads": [2],
                      "compress_ratio": 3, "squeeze_factor": 4, "mlp_ratio": 2.0}),
    "DATSR": ("DAT", {"img_size": 16, "split_size": [2, 4], "embed_dim": 32, "depth": [2], "num_heads": [2],
                      "expansion_factor": 2}),
    "DRCTSR": ("DRCT", {"img_size": 16, "window_size": 4, "embed_dim": 12, "depths": [1], "num_heads": [2],
                        "gc": 6, "mlp_ratio": 2.0, "upsampler": "pixelshuffle"}),
    "ATDSR": ("ATD", {"img_size": 16, "window_size": 4, "embed_dim": 12, "depths": [2], "num_heads": [2],
                      "category_size": 16, "num_tokens": 8, "reducted_dim": 4, "upsampler": "pixelshuffle"}),
}


def tiny_options(kind: str, upscale: int = 2, channels: int = 3) -> dict:
    """A ``network_g`` of the tiny ``kind`` network."""
    return {"type": kind, "num_in_ch": channels, "num_out_ch": channels, "upscale": upscale, **TINY[kind]}


def spandrel_network(kind: str, upscale: int = 2, channels: int = 3) -> torch.nn.Module:
    """spandrel's own network of the same size as :func:`tiny_options` (eval mode)."""
    name, options = SPANDREL[kind]
    architecture = getattr(importlib.import_module(f"spandrel.architectures.{name}"), name)
    return architecture(in_chans=channels, upscale=upscale, **options).eval()

"""Inference: loading a trained generator and super-resolving images with it.

    from medsr_se.inference import load_generator, upscale
    net = load_generator("experiments/SEEDSR_GAN_x4/models/net_g_latest.pth")
    sr = upscale(image, net, tile=128)

``checkpoint`` (reading ``net_g_*.pth``, the keys our models add), ``upscale`` (numpy / tensor in, same dtype out),
``tiling`` (exact tiles for SEEDSR), ``halo`` (halo tiles for other generators), ``window`` (windowed-attention
networks such as SwinIR on any image size), ``memory`` (whole image or tiles, from the device's free memory).
"""

from medsr_se.inference.checkpoint import CheckpointError, load_generator
from medsr_se.inference.memory import AUTO_TILE, memory_budget, plan_tile
from medsr_se.inference.upscale import image_to_tensor, tensor_to_image, upscale

__all__ = ["AUTO_TILE", "CheckpointError", "image_to_tensor", "load_generator", "memory_budget", "plan_tile",
           "tensor_to_image", "upscale"]

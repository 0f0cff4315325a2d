"""Inference: loading a trained generator and super-resolving images with it.

    from medsr_se.inference import load_generator, upscale
    net = load_generator("experiments/SEEDSR_GAN_x4/models/net_g_latest.pth")
    sr = upscale(image, net, tile=128)

``checkpoint`` (reading ``net_g_*.pth``, the keys our models add), ``upscale`` (numpy / tensor in, same dtype out),
``tiling`` (exact tiles for SEEDSR), ``halo`` (halo tiles for other generators), ``window`` (windowed-attention
networks such as SwinIR on any image size), ``memory`` (whole image or tiles, from the device's free memory),
``through_plane`` (a through-plane network over a volume's slices), ``onnx_export`` (a checked ONNX graph).

What ``medsr-infer`` does with them, as library functions a script can call the same way: ``jobs`` (the inputs: an
image, a NIfTI file, one DICOM series), ``output_policy`` (which results may be written: never over an input, a
whole derived series or none), ``volume_intensity`` (the intensity model a volume is mapped with, and from where),
``model_copies`` (reduced-precision copies), ``upscale_jobs`` (checking every job, then running it), ``reports``
(naming the file in the log lines of its job).
"""

from medsr_se.inference.checkpoint import CheckpointError, load_generator
from medsr_se.inference.memory import AUTO_TILE, memory_budget, plan_tile
from medsr_se.inference.upscale import image_to_tensor, tensor_to_image, upscale

__all__ = ["AUTO_TILE", "CheckpointError", "image_to_tensor", "load_generator", "memory_budget", "plan_tile",
           "tensor_to_image", "upscale"]

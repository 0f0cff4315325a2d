"""The networks one inference run uses: the float32 generator, and for ``precision`` bf16 / fp16 a reduced-precision
copy that runs the 8-bit images (:func:`load_models`); 16-bit images always go through float32, whose 24
significant bits carry their 65,536 levels where float16 (11) and bfloat16 (8) cannot (:func:`network_for`).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping

import numpy as np
import torch

from medsr_se.checkpoint_format import one_line
from medsr_se.errors import CheckpointError, OptionError
from medsr_se.inference.checkpoint import load_generator, probe_forward

__all__ = ["PRECISIONS", "load_models", "network_for"]

logger = logging.getLogger(__name__)

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def load_models(checkpoint: str, device: str | torch.device = "cpu", options: Mapping | None = None,
                scale: int | None = None, precision: str = "fp32") -> dict[str, torch.nn.Module]:
    """``{"fp32": generator}``, plus ``"reduced"``, its copy in ``precision``, unless that is fp32.

    ``options``: the network_g of the option file for a checkpoint that stores none
    (:func:`~medsr_se.inference.checkpoint.network_option_file`); ``scale``: the scale expected (checked against
    the checkpoint). A through-plane generator (upscale [r, 1]) is a CheckpointError naming ``checkpoint=`` (it
    works on whole thick-slice scans); a network that cannot run in ``precision`` (SwinIR's float32 attention mask
    meets bf16 values) an OptionError naming ``precision=``, found by one forward pass here rather than at the
    first image."""
    model = load_generator(checkpoint, device=device, options=options, upscale=scale)
    height_scale, width_scale = getattr(model, "scale_hw", (model.upscale, model.upscale))
    if height_scale != width_scale:
        raise CheckpointError(f"checkpoint={checkpoint}: a through-plane model (upscale [{height_scale}, "
                              f"{width_scale}]) works on whole thick-slice scans: medsr-selfsr -i SCAN -o OUT --model "
                              f"{checkpoint} (Python: medsr_se.throughplane)", parameter="checkpoint")
    models = {"fp32": model}
    if precision != "fp32":
        models["reduced"] = copy.deepcopy(model).to(PRECISIONS[precision])
        try:
            probe_forward(models["reduced"])
        except RuntimeError as error:
            raise OptionError(f"precision={precision}: {type(model).__name__} cannot run in {precision} "
                              f"({one_line(error)}); use fp32", parameter="precision") from error
    return models


def network_for(image: np.ndarray, models: dict[str, torch.nn.Module], name: object = None) -> torch.nn.Module:
    """The reduced-precision network for 8-bit images, float32 for 16-bit ones (module docstring); a note naming
    ``name`` when a 16-bit image goes to float32 although a reduced copy exists (none without ``name``)."""
    if image.dtype == np.uint16 and "reduced" in models:
        if name is not None:
            logger.info("%s: 16-bit image, computed in fp32 (reduced precision would lose depth)", name)
        return models["fp32"]
    return models.get("reduced", models["fp32"])

"""The held-out fundus protocol of quality / ablation / baselines / precision / discriminator.

Data: scikit-image's fundus photograph (1411 x 1411, RGB), as BGR uint8, mod-cropped to 1408. Columns [0, 896)
train, columns [896, 1408) are held out (it includes the dark border, so whole-image and FOV metrics differ). LR =
MATLAB-style bicubic of each region (medsr_se.utils.bicubic.matlab_bicubic), as the STARE preparation does.
Evaluation on the held-out region: BasicSR PSNR/SSIM (crop_border = scale), Y channel, FOV-masked, vessel F1
(:func:`medsr_se.evaluation.image_metrics`); bicubic is the MATLAB-style upsampling of the same LR.
"""

from __future__ import annotations

import numpy as np
import torch

from medsr_se.evaluation import image_metrics
from medsr_se.inference import image_to_tensor, tensor_to_image
from medsr_se.utils.bicubic import matlab_bicubic, mod_crop

TRAIN_COLUMNS = 896


def fundus_regions(scale: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'train': (hr, lr), 'test': (hr, lr)} as uint8 BGR."""
    from skimage import data

    photo = mod_crop(np.ascontiguousarray(data.retina()[:, :, ::-1]), 16)
    regions = {"train": photo[:, :TRAIN_COLUMNS], "test": photo[:, TRAIN_COLUMNS:]}
    return {name: (np.ascontiguousarray(hr), matlab_bicubic(np.ascontiguousarray(hr), 1 / scale))
            for name, hr in regions.items()}


@torch.no_grad()
def evaluate(model: torch.nn.Module | None, regions, scale: int) -> dict:
    """``image_metrics`` of ``model``'s output (None: MATLAB-style bicubic) for the held-out LR against its HR."""
    hr, lr = regions["test"]
    output = matlab_bicubic(lr, scale) if model is None else tensor_to_image(model.eval()(image_to_tensor(lr)),
                                                                               np.uint8)
    return image_metrics(output, hr, scale)


def centre_crop(hr: np.ndarray, lr: np.ndarray, size: int, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """A centred size x size HR crop and its LR (size a multiple of scale)."""
    top, left = (hr.shape[0] - size) // (2 * scale) * scale, (hr.shape[1] - size) // (2 * scale) * scale
    hr_crop = hr[top:top + size, left:left + size]
    lr_crop = lr[top // scale:(top + size) // scale, left // scale:(left + size) // scale]
    return np.ascontiguousarray(hr_crop), np.ascontiguousarray(lr_crop)

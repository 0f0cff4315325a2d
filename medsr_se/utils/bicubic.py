"""MATLAB-style bicubic resizing of integer images, the one resize used for LR data and bicubic baselines.

Wraps ``basicsr.utils.matlab_functions.imresize`` (MATLAB's ``imresize``: bicubic kernel a = -0.5, antialiasing
when shrinking) for uint8 / uint16 images of shape (H, W) or (H, W, C), rounding and clipping back to the input
dtype, so every LR image and every bicubic figure in this project comes from the same arithmetic.
"""

from __future__ import annotations

import numpy as np
from basicsr.utils.matlab_functions import imresize


def matlab_bicubic(image: np.ndarray, scale: float) -> np.ndarray:
    """Resize ``image`` by ``scale`` (< 1 shrinks) like MATLAB ``imresize(image, scale, 'bicubic')``."""
    if image.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"matlab_bicubic expects uint8 or uint16 pixels, got {image.dtype}")
    resized = imresize(image.astype(np.float64), scale)
    info = np.iinfo(image.dtype)
    return np.clip(np.round(resized), info.min, info.max).astype(image.dtype)


def mod_crop(image: np.ndarray, modulus: int) -> np.ndarray:
    """Crop the bottom/right so that height and width are multiples of ``modulus``."""
    height, width = image.shape[:2]
    return image[: height - height % modulus, : width - width % modulus]

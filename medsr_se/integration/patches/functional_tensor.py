"""``basicsr.data.degradations`` imports ``torchvision.transforms.functional_tensor``, renamed to
``_functional_tensor`` in torchvision 0.17: ``import basicsr`` fails. Fixed before basicsr is imported by aliasing
the new module under the old name."""

from __future__ import annotations

import importlib.util
import sys

OLD_NAME = "torchvision.transforms.functional_tensor"


def needed() -> bool:
    if OLD_NAME in sys.modules:
        return False
    try:
        return importlib.util.find_spec(OLD_NAME) is None
    except ModuleNotFoundError:  # torchvision itself missing: nothing we can do, basicsr will say so
        return False


def apply() -> None:
    import torchvision.transforms._functional_tensor as renamed

    sys.modules[OLD_NAME] = renamed

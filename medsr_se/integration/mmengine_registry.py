"""mmengine registry ``medsr_se`` (child of mmengine's root ``MODELS``).

``mmengine.registry.MODELS.build(dict(type='medsr_se.SEEDSRGenerator', upscale=4))`` builds our archs and loss in
the OpenMMLab ecosystem; BasicSR's registries remain the ones BasicSR's loop uses.
"""

from __future__ import annotations

from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

MODELS = Registry("medsr_se", parent=MMENGINE_MODELS, scope="medsr_se")


def register(*modules: type) -> None:
    """Register classes under their own names; registering the same class again is a no-op."""
    for module in modules:
        if MODELS.get(module.__name__) is not module:
            MODELS.register_module(module=module, force=True)

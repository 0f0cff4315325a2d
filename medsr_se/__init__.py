"""medsr-se: the improved-SE super-resolution GAN for medical images, as a BasicSR plugin.

``import medsr_se`` makes basicsr importable on the current torch stack (:mod:`medsr_se.utils.compat`) and registers
``SEEDSRGenerator``, ``FusionSEDiscriminator`` (ARCH_REGISTRY, from ``medsr_se.archs``), ``FusionLoss``
(LOSS_REGISTRY, ``medsr_se.losses``), ``RelativisticGANModel`` and ``SEEDSRModel`` (MODEL_REGISTRY,
``medsr_se.models``), ``PairedMedicalImageDataset`` (DATASET_REGISTRY, ``medsr_se.data``) and the FOV metrics
(METRIC_REGISTRY, ``medsr_se.metrics``).
"""

from medsr_se.utils import compat
from medsr_se.version import __version__

compat.apply()

from medsr_se.utils.registration import register_all  # noqa: E402  (basicsr is importable only after compat.apply)

register_all()

__all__ = ["__version__", "register_all"]

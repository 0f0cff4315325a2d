"""medsr-se: the improved-SE super-resolution GAN for medical images, as a BasicSR plugin.

``import medsr_se`` makes basicsr importable on the current torch stack (:mod:`medsr_se.integration.fixes`) and
registers ``SEEDSRGenerator``, ``FusionSEDiscriminator`` and the baselines' networks (ARCH_REGISTRY, from
``medsr_se.archs``), ``FusionLoss`` (LOSS_REGISTRY, ``medsr_se.losses``), ``RelativisticGANModel`` and
``SEEDSRModel`` (MODEL_REGISTRY, ``medsr_se.models``), ``PairedMedicalImageDataset`` and
``ThroughPlaneVolumeDataset`` (DATASET_REGISTRY, ``medsr_se.data``) and the FOV and vessel metrics
(METRIC_REGISTRY, ``medsr_se.metrics``).
"""

from medsr_se.integration import fixes
from medsr_se.version import __version__

fixes.apply()

from medsr_se.integration.registration import register_all  # noqa: E402  (basicsr is importable only after fixes)

register_all()

__all__ = ["__version__", "register_all"]

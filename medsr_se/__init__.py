"""medsr-se: the improved-SE super-resolution GAN for medical images, as a BasicSR plugin.

``import medsr_se`` makes basicsr importable on the current torch stack (:mod:`medsr_se.compat`) and registers
``SEEDSRGenerator``, ``FusionSEDiscriminator`` (ARCH_REGISTRY), ``FusionLoss`` (LOSS_REGISTRY),
``RelativisticGANModel`` and ``SEEDSRModel`` (MODEL_REGISTRY).
"""

from medsr_se import compat

compat.apply()

from medsr_se.registration import register_all  # noqa: E402  (basicsr is importable only after compat.apply)

register_all()

__version__ = "0.1.0"

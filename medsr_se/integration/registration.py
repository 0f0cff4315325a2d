"""Put medsr_se's classes into BasicSR's registries (and mmengine's), once and by their class names.

The one place that knows every registered class: archs, losses, models, datasets and metrics are plain modules
(no registration decorators, no imports back into this module), so there is no import cycle and registering
twice is a no-op (:func:`register_all` runs on ``import medsr_se``).
"""

from __future__ import annotations

from basicsr.utils.registry import (
    ARCH_REGISTRY,
    DATASET_REGISTRY,
    LOSS_REGISTRY,
    METRIC_REGISTRY,
    MODEL_REGISTRY,
    Registry,
)


def register_once(registry: Registry, obj: type) -> None:
    """BasicSR asserts on a second registration; a repeat of the very same object is skipped, a clash raises."""
    name = obj.__name__
    if name in registry:
        existing = registry.get(name)
        if existing is obj or (existing.__module__, existing.__qualname__) == (obj.__module__, obj.__qualname__):
            return
        raise KeyError(f"{registry._name} registry already holds another {name!r} ({existing.__module__})")
    registry.register(obj)


def register_all() -> None:
    from medsr_se.archs.fusion_discriminator_arch import FusionSEDiscriminator
    from medsr_se.archs.large_scale_msrresnet_arch import LargeScaleMSRResNet
    from medsr_se.archs.large_scale_rrdbnet_arch import LargeScaleRRDBNet
    from medsr_se.archs.pgan_arch import PGANGenerator
    from medsr_se.archs.seedsr_arch import SEEDSRGenerator
    from medsr_se.archs.srcnn_arch import SRCNN
    from medsr_se.archs.transformer_archs import TRANSFORMER_ARCHS  # spandrel: imported when one is built
    from medsr_se.archs.vdsr_arch import VDSR
    from medsr_se.data.paired_medical_image_dataset import PairedMedicalImageDataset
    from medsr_se.data.through_plane_dataset import ThroughPlaneVolumeDataset
    from medsr_se.integration import mmengine_registry as mm_registry
    from medsr_se.losses.fusion_loss import FusionLoss
    from medsr_se.metrics.fov_metrics import calculate_psnr_fov, calculate_ssim_fov
    from medsr_se.metrics.vessel_metrics import calculate_vessel_f1
    from medsr_se.models.relativistic_gan_model import RelativisticGANModel
    from medsr_se.models.seedsr_model import SEEDSRModel

    for arch in (SEEDSRGenerator, FusionSEDiscriminator, SRCNN, VDSR, PGANGenerator, LargeScaleRRDBNet,
                 LargeScaleMSRResNet, *TRANSFORMER_ARCHS):
        register_once(ARCH_REGISTRY, arch)
    register_once(LOSS_REGISTRY, FusionLoss)
    for dataset in (PairedMedicalImageDataset, ThroughPlaneVolumeDataset):
        register_once(DATASET_REGISTRY, dataset)
    for model in (RelativisticGANModel, SEEDSRModel):
        register_once(MODEL_REGISTRY, model)
    for metric in (calculate_psnr_fov, calculate_ssim_fov, calculate_vessel_f1):
        register_once(METRIC_REGISTRY, metric)
    mm_registry.register(SEEDSRGenerator, FusionSEDiscriminator, FusionLoss)

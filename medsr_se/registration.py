"""Put medsr_se's classes into BasicSR's registries (and mmengine's), once and by their class names."""

from __future__ import annotations

from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY, Registry


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
    from medsr_se import fov_metrics, mm_registry
    from medsr_se.fusion_discriminator_arch import FusionSEDiscriminator
    from medsr_se.fusion_loss import FusionLoss
    from medsr_se.medical_dataset import PairedMedicalImageDataset
    from medsr_se.relativistic_gan_model import RelativisticGANModel, SEEDSRModel
    from medsr_se.seedsr_arch import SEEDSRGenerator

    for arch in (SEEDSRGenerator, FusionSEDiscriminator):
        register_once(ARCH_REGISTRY, arch)
    register_once(LOSS_REGISTRY, FusionLoss)
    register_once(DATASET_REGISTRY, PairedMedicalImageDataset)
    for model in (RelativisticGANModel, SEEDSRModel):
        register_once(MODEL_REGISTRY, model)
    fov_metrics.register()
    mm_registry.register(SEEDSRGenerator, FusionSEDiscriminator, FusionLoss)

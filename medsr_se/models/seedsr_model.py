"""``SEEDSRModel``: BasicSR's ``SRModel`` (pixel / perceptual losses) with crash-safe checkpoints.

The PSNR-oriented stage of the recipe (``options/pretrain_x*.yml``): the generator alone, trained with L1. Every
option is ``SRModel``'s; only saving differs (:class:`medsr_se.models.atomic_save.AtomicSaveMixin`).
"""

from __future__ import annotations

from basicsr.models.sr_model import SRModel

from medsr_se.models.atomic_save import AtomicSaveMixin


class SEEDSRModel(AtomicSaveMixin, SRModel):
    """BasicSR's ``SRModel`` (pixel / perceptual losses, for the PSNR-oriented stage) with atomic checkpoints."""

"""Networks (BasicSR's ``ARCH_REGISTRY``): ``improved_se`` (the block), ``seedsr_arch`` (generator),
``fusion_discriminator_arch`` (discriminator). Their SE-exact tiled inference is :mod:`medsr_se.inference.tiling`.
The baselines BasicSR lacks: ``srcnn_arch``, ``vdsr_arch``, ``pgan_arch``, ``large_scale_*_arch`` (x8 / x16) and
``transformer_archs`` (HAT, DAT, DRCT, ATD from spandrel, imported only when one is built)."""

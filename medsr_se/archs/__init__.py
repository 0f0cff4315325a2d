"""Networks (BasicSR's ``ARCH_REGISTRY``): ``improved_se`` (the block), ``seedsr_arch`` (generator),
``fusion_discriminator_arch`` (discriminator). Their SE-exact tiled inference is :mod:`medsr_se.inference.tiling`."""

"""Networks (BasicSR's ``ARCH_REGISTRY``): ``improved_se`` (the block), ``seedsr_arch`` (generator),
``seedsr_tiling`` (its SE-exact tiled inference), ``fusion_discriminator_arch`` (discriminator)."""

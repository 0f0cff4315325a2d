"""Model classes (BasicSR's ``MODEL_REGISTRY``): ``relativistic_gan_model`` (GAN stage), ``seedsr_model``
(PSNR-oriented stage), ``atomic_save`` (crash-safe checkpoint writing shared by both)."""

"""Model classes (BasicSR's ``MODEL_REGISTRY``): ``relativistic_gan_model`` (GAN stage), ``seedsr_model``
(PSNR-oriented stage), with what both share: ``atomic_save`` (crash-safe checkpoints), ``mixed_precision``,
``schedule`` (milestones as fractions of total_iter), ``lean_loop`` (loop overhead removed) and
``discriminator_watch`` (is the discriminator learning?)."""

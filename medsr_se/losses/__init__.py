"""Losses (BasicSR's ``LOSS_REGISTRY``): ``fusion_loss`` (the paper's loss and RaGAN terms), ``vgg_features``."""

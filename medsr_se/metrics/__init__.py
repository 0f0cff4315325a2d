"""Metrics (BasicSR's ``METRIC_REGISTRY``): ``fov_metrics`` (PSNR / SSIM inside a fundus field of view),
``vessel_metrics`` (vessel F1: do the retinal vessels survive super-resolution, are none invented?)."""

"""Metrics (BasicSR's ``METRIC_REGISTRY``): ``fov_metrics`` (PSNR / SSIM inside a fundus field of view)."""

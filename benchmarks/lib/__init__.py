"""What the benchmark scripts share, one module per concern (importing this package imports none of them):

- :mod:`~benchmarks.lib.timing`: interleaved medians of wall time, median CPU seconds per call;
- :mod:`~benchmarks.lib.reports`: the JSON report every script writes (``write_report``);
- :mod:`~benchmarks.lib.fundus`: the held-out fundus protocol (scikit-image's retina, columns 896+ held out) and
  its evaluation;
- :mod:`~benchmarks.lib.training`: the one L1 training loop, the recipes made ready for in-process CPU training, the
  networks and GAN models shared by quality / ablation / baselines / precision / gan_iteration;
- :mod:`~benchmarks.lib.memory`: resident memory, the recipe's training iteration measured, a case in a fresh process;
- :mod:`~benchmarks.lib.stare_like`: STARE-shaped archives of real fundus pixels (also used by the tests).
- :mod:`~benchmarks.lib.thick_slices`: thick slices simulated as medsr-selfsr models them, and the through-plane
  metrics (PSNR / SSIM inside the head, LR consistency).
"""

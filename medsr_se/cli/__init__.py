"""Console commands, one module each: ``infer`` (medsr-infer), ``export`` (medsr-export), ``evaluate``
(medsr-evaluate), ``demo`` (medsr-demo), ``prepare`` (medsr-prepare, alias medsr-prepare-stare), ``plot``
(medsr-plot), ``selfsr`` (medsr-selfsr), and what they share: ``console`` (-q / -v, notes, progress).
``medsr_se.train`` and ``medsr_se.test`` sit at the package top, as in BasicSR and Real-ESRGAN
(``python -m medsr_se.train``)."""

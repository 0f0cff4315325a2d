"""Everything that touches BasicSR's machinery, in one room above the library: the patches to basicsr
(:mod:`~medsr_se.integration.fixes`, one module each in :mod:`~medsr_se.integration.patches`), registering
medsr_se's classes into BasicSR's registries (:mod:`~medsr_se.integration.registration`) and running BasicSR's
pipelines as commands (:mod:`~medsr_se.integration.pipeline`). A basicsr upgrade is a review of this room."""

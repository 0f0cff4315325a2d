"""Plumbing: option files (``options``), fixes for basicsr 1.4.2 on today's stack (``compat``), numeric precision
(``precision``), the MATLAB bicubic of the preparation (``bicubic``), and registration into BasicSR's and
mmengine's registries (``registration``, ``mmengine_registry``)."""

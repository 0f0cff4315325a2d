"""The bottom room, importing no other: option files and recipes (``options``), numeric precision
(``precision``), the MATLAB bicubic of the preparation (``bicubic``), the ``medsr_se`` logger's stderr lines
(``logs``). What touches BasicSR's machinery (patches, registration) is :mod:`medsr_se.integration`."""

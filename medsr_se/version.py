"""The one place the version is written: ``setup.py`` reads it from this file, ``medsr_se.__version__`` imports it."""

__version__ = "0.2.0"

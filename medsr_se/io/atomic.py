"""The earlier name of :mod:`medsr_se.io.publish` (kept while callers move)."""

from medsr_se.io.publish import WriteError, write_atomically

__all__ = ["WriteError", "write_atomically"]

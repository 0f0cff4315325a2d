"""Data preparation: STARE (or any folder of fundus / medical images) -> BasicSR-ready paired LMDBs and test
folders (``prepare_stare``), with ``sources`` (archives), ``lmdb_writer``, ``verify`` and ``stare_like`` (STARE-shaped
archives from real pixels for tests and benchmarks)."""

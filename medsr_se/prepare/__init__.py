"""Data preparation: STARE (or any folder of fundus / medical images) -> BasicSR-ready paired LMDBs and test
folders (``prepare_stare``), with ``sources`` (archives), ``volume_slices`` (CT / MRI volumes as slices),
``lmdb_writer`` and ``verify``."""

"""Data preparation: any folder or archive of fundus / medical images, or CT / MRI volumes -> BasicSR-ready paired
LMDBs and test folders (``medsr-prepare``).

    orchestration   prepare(): the run (lock, recovery, split, build, publish)
    split           the train / test split (by image or by volume)
    pieces          one image in a worker: decode, normalise, mod-crop, bicubic LR, cut into PNG pieces
    workers         the process pool
    writing         the LMDBs, test folders and manifest
    sources         archives and folders of images
    volume_slices   CT / MRI volumes as 16-bit slices through one intensity model
    lmdb_writer     BasicSR-compatible LMDB writing
    verify          re-read a prepared dataset and check it
"""

from medsr_se.prepare.orchestration import DEFAULT_OUTPUT, prepare
from medsr_se.prepare.pieces import Params
from medsr_se.prepare.split import PrepareError, make_split

__all__ = ["DEFAULT_OUTPUT", "Params", "PrepareError", "make_split", "prepare"]

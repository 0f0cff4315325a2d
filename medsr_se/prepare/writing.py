"""The output of a preparation, streamed as results arrive: ``train/HR.lmdb`` and ``train/LR_x{s}.lmdb`` (identical
key sets), ``test/HR/`` and ``test/LR_x{s}/`` PNG folders; ``manifest.json`` is written last, so a folder holding
it is a complete dataset (:data:`medsr_se.io.publish.MANIFEST`, :func:`medsr_se.io.publish.holds_manifest`)."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from medsr_se.prepare.lmdb_writer import LmdbWriter
from medsr_se.prepare.pieces import PNG_LEVEL, ImageResult


class OutputWriter:
    """Streams pieces into ``<tmp>/train/*.lmdb`` and ``<tmp>/test/*/`` as results arrive."""

    def __init__(self, root: Path, scales: tuple[int, ...], initial_map_size: int) -> None:
        self.root = root
        self.scales = scales
        (root / "train").mkdir(parents=True)
        self.lmdbs = {"HR": LmdbWriter(root / "train" / "HR.lmdb", initial_map_size, compress_level=PNG_LEVEL)}
        for scale in scales:
            self.lmdbs[f"LR_x{scale}"] = LmdbWriter(root / "train" / f"LR_x{scale}.lmdb", initial_map_size,
                                                     compress_level=PNG_LEVEL)
            (root / "test" / f"LR_x{scale}").mkdir(parents=True)
        (root / "test" / "HR").mkdir(parents=True)
        self.counts = {"train_images": 0, "train_pieces": 0, "test_images": 0}

    def add(self, result: ImageResult) -> None:
        if result.split == "train":
            for piece in result.pieces:
                self.lmdbs["HR"].put(piece.key, piece.hr_png, piece.hr_shape)
                for scale in self.scales:
                    self.lmdbs[f"LR_x{scale}"].put(piece.key, piece.lr_png[scale], piece.lr_shape[scale])
            self.counts["train_images"] += 1
            self.counts["train_pieces"] += len(result.pieces)
        else:
            (piece,) = result.pieces
            (self.root / "test" / "HR" / f"{piece.key}.png").write_bytes(piece.hr_png)
            for scale in self.scales:
                (self.root / "test" / f"LR_x{scale}" / f"{piece.key}.png").write_bytes(piece.lr_png[scale])
            self.counts["test_images"] += 1

    def close(self) -> None:
        for writer in self.lmdbs.values():
            writer.close()


def versions() -> dict[str, str]:
    import basicsr
    import lmdb

    from medsr_se.version import __version__

    return {"medsr_se": __version__, "basicsr": basicsr.__version__, "opencv": cv2.__version__,
            "numpy": np.__version__, "lmdb": lmdb.__version__, "python": sys.version.split()[0]}

"""Writing BasicSR's LMDB layout: PNG-encoded values, ASCII keys, and ``meta_info.txt``.

BasicSR's ``PairedImageDataset`` (``io_backend: {type: lmdb}``) reads ``<name>.lmdb/meta_info.txt`` lines of the
form ``<key>.png (h,w,c) <png compression level>`` and takes the key as the text before the first dot, so keys
must not contain dots. The layout is exactly that of BasicSR's ``basicsr.utils.lmdb_util.LmdbMaker`` (the same
keys, values and ``meta_info.txt``; tests/prepare/test_lmdb_writer.py compares the two), which is not used itself
because this writer does more:

- the map size starts small and is doubled whenever LMDB reports it full (a batch that did not fit is written again
  in full); LmdbMaker maps a fixed size (1 TiB by default) and fails with ``MapFullError`` beyond it;
- keys are checked (ASCII, no dot) and gray ``(h, w)`` shapes are recorded as ``(h,w,1)`` (LmdbMaker needs three);
- an existing folder is not a ``sys.exit(1)`` inside the library: the preparation writes into a fresh hidden folder
  and publishes the whole dataset at the end (:mod:`medsr_se.prepare.orchestration`).
"""

from __future__ import annotations

from pathlib import Path

import lmdb


class LmdbWriter:
    def __init__(self, path: Path, initial_map_size: int = 1 << 28, batch: int = 64, compress_level: int = 1) -> None:
        self.path = path
        self.env = lmdb.open(str(path), map_size=initial_map_size)
        self.batch = batch
        self.compress_level = compress_level
        self.pending: list[tuple[bytes, bytes]] = []
        self.meta_lines: list[str] = []

    def put(self, key: str, png: bytes, shape: tuple[int, ...]) -> None:
        if "." in key or not key.isascii():
            raise ValueError(f"LMDB key {key!r}: BasicSR needs ASCII keys without dots")
        height, width = shape[:2]
        channels = shape[2] if len(shape) == 3 else 1
        self.pending.append((key.encode("ascii"), png))
        self.meta_lines.append(f"{key}.png ({height},{width},{channels}) {self.compress_level}\n")
        if len(self.pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        while self.pending:
            try:
                with self.env.begin(write=True) as txn:  # aborted as a whole on MapFullError
                    for key, value in self.pending:
                        txn.put(key, value)
                self.pending = []
            except lmdb.MapFullError:
                self.env.set_mapsize(self.env.info()["map_size"] * 2)

    def close(self) -> None:
        self.flush()
        self.env.close()
        (self.path / "meta_info.txt").write_text("".join(self.meta_lines))

"""The LMDB writer against BasicSR's own LmdbMaker: the same layout, byte for byte, also when the map must grow."""

from __future__ import annotations

import cv2
import lmdb
import numpy as np
from basicsr.utils.lmdb_util import LmdbMaker

from medsr_se.prepare.lmdb_writer import LmdbWriter


def contents(path) -> dict[bytes, bytes]:
    with lmdb.open(str(path), readonly=True, lock=False) as env, env.begin() as txn:
        return dict(txn.cursor())


def test_the_layout_is_basicsrs_lmdb_maker(retina, tmp_path):
    images = {"im0001_s001": retina[:96, :128], "im0001_s002": cv2.cvtColor(retina[96:160, :80], cv2.COLOR_RGB2GRAY),
              "im0002_s001": np.ascontiguousarray(retina[200:264, 300:364])}
    ours = LmdbWriter(tmp_path / "ours.lmdb", initial_map_size=1 << 12, batch=2)  # 4 KiB: must grow
    theirs = LmdbMaker(str(tmp_path / "theirs.lmdb"), map_size=1 << 26, batch=2)
    for key, image in images.items():
        png = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes()
        ours.put(key, png, image.shape)
        theirs.put(png, key, image.shape if image.ndim == 3 else (*image.shape, 1))
    ours.close()
    theirs.close()
    assert (tmp_path / "ours.lmdb" / "meta_info.txt").read_text() == \
        (tmp_path / "theirs.lmdb" / "meta_info.txt").read_text()
    assert contents(tmp_path / "ours.lmdb") == contents(tmp_path / "theirs.lmdb")
    assert len(contents(tmp_path / "ours.lmdb")) == 3

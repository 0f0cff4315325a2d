"""``medsr-prepare --verify DIR``: re-read everything a preparation wrote and check it.

Checks: ``manifest.json`` is there and complete; every LMDB's keys equal its ``meta_info.txt`` keys and are the
same across HR and every LR; every value decodes to the shape ``meta_info.txt`` states; HR = scale x LR for every
pair; the test folders hold the same stems as the manifest's test split, decodable and in scale; the counts match.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import lmdb
import numpy as np

from medsr_se.io.publish import MANIFEST


def _shape(pixels: np.ndarray) -> tuple[int, int, int]:
    return (pixels.shape[0], pixels.shape[1], 1 if pixels.ndim == 2 else pixels.shape[2])


def _read_meta(lmdb_dir: Path, problems: list[str]) -> dict[str, tuple[int, int, int]]:
    """``meta_info.txt`` as key -> (h, w, c); a line that does not parse is a problem, not an exception."""
    shapes = {}
    for number, line in enumerate((lmdb_dir / "meta_info.txt").read_text(errors="replace").splitlines(), 1):
        try:
            name, shape, _level = line.split(" ")
            height, width, channels = (int(v) for v in shape.strip("()").split(","))
        except ValueError:
            problems.append(f"{lmdb_dir}/meta_info.txt line {number}: not '<key>.png (h,w,c) <level>': {line[:80]!r}")
            continue
        shapes[name.split(".")[0]] = (height, width, channels)
    return shapes


def _check_lmdb(lmdb_dir: Path, problems: list[str]) -> dict[str, tuple[int, int, int]]:
    """Shapes of every decodable value in one LMDB (problems appended)."""
    if not (lmdb_dir / "meta_info.txt").is_file():
        problems.append(f"{lmdb_dir}: missing (or no meta_info.txt)")
        return {}
    meta = _read_meta(lmdb_dir, problems)
    shapes = {}
    try:
        env = lmdb.open(str(lmdb_dir), readonly=True, lock=False, readahead=False)
    except lmdb.Error as error:
        problems.append(f"{lmdb_dir}: cannot be opened as an LMDB ({error})")
        return {}
    # reading past the end of a truncated data.mdb is a SIGBUS (memory-mapped), not an exception: check first
    needed = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    size = (lmdb_dir / "data.mdb").stat().st_size
    if size < needed:
        env.close()
        problems.append(f"{lmdb_dir}/data.mdb: truncated ({size} bytes, its pages need {needed})")
        return {}
    try:
        with env.begin() as txn:
            for raw_key, value in txn.cursor():
                key = raw_key.decode("ascii", errors="replace")
                pixels = cv2.imdecode(np.frombuffer(value, np.uint8), cv2.IMREAD_UNCHANGED)
                if pixels is None:
                    problems.append(f"{lmdb_dir}: value of {key} does not decode")
                    continue
                shapes[key] = _shape(pixels)
                if key in meta and meta[key] != shapes[key]:
                    problems.append(f"{lmdb_dir}: {key} is {shapes[key]}, meta_info.txt says {meta[key]}")
    except lmdb.Error as error:
        problems.append(f"{lmdb_dir}: damaged LMDB ({error})")
    finally:
        env.close()
    if set(meta) != set(shapes):
        problems.append(f"{lmdb_dir}: keys differ from meta_info.txt "
                        f"({len(set(meta) - set(shapes))} missing, {len(set(shapes) - set(meta))} extra)")
    return shapes


def _check_pairs(where: str, hr: dict, lr: dict, scale: int, problems: list[str]) -> None:
    if set(hr) != set(lr):
        problems.append(f"{where}: LR_x{scale} keys differ from HR keys")
    for key in sorted(set(hr) & set(lr)):
        expected = (lr[key][0] * scale, lr[key][1] * scale, lr[key][2])
        if hr[key] != expected:
            problems.append(f"{where}: {key} HR {hr[key]} is not {scale} x LR {lr[key]}")


def _folder_shapes(folder: Path, problems: list[str]) -> dict[str, tuple[int, int, int]]:
    shapes = {}
    for path in sorted(folder.glob("*.png")):
        pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if pixels is None:
            problems.append(f"{path}: does not decode")
        else:
            shapes[path.stem] = _shape(pixels)
    return shapes


def verify(root: Path) -> list[str]:
    """Every problem found in a prepared dataset (empty list: all good)."""
    problems: list[str] = []
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        return [f"{manifest_path}: missing (not a finished preparation)"]
    try:
        manifest = json.loads(manifest_path.read_text())
        scales, split, counts = manifest["parameters"]["scales"], manifest["split"], manifest["counts"]
        split["train"], split["test"], counts["train_pieces"]  # noqa: B018  (present, or the manifest is broken)
        skipped = {entry.get("stem") for entry in manifest.get("skipped", [])} - {None}  # None: a skipped file
    except (ValueError, KeyError, TypeError) as error:
        return [f"{manifest_path}: unreadable ({error})"]

    hr_train = _check_lmdb(root / "train" / "HR.lmdb", problems)
    for scale in scales:
        lr_train = _check_lmdb(root / "train" / f"LR_x{scale}.lmdb", problems)
        _check_pairs(f"train/LR_x{scale}.lmdb", hr_train, lr_train, scale, problems)
    if len(hr_train) != counts["train_pieces"]:
        problems.append(f"train/HR.lmdb: {len(hr_train)} images, manifest says {counts['train_pieces']}")
    train_stems = {key.rsplit("_s", 1)[0] for key in hr_train}
    if train_stems != set(split["train"]) - skipped:
        problems.append("train/HR.lmdb: images differ from the manifest's train split")

    hr_test = _folder_shapes(root / "test" / "HR", problems)
    if not hr_test:
        problems.append(f"{root / 'test' / 'HR'}: no test images (nothing to validate or evaluate on)")
    if set(hr_test) != set(split["test"]) - skipped:
        problems.append("test/HR: images differ from the manifest's test split")
    for scale in scales:
        lr_test = _folder_shapes(root / "test" / f"LR_x{scale}", problems)
        _check_pairs(f"test/LR_x{scale}", hr_test, lr_test, scale, problems)
    return problems

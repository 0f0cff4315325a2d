"""``PairedMedicalImageDataset``: BasicSR's paired dataset for 1-channel and 16-bit images (CT / MRI slices).

BasicSR's ``PairedImageDataset`` decodes every image as 8-bit, 3-channel BGR. This subclass decodes what is stored
(``medsr-prepare --gray --keep-depth`` writes 1-channel 16-bit PNGs into the LMDBs and test folders) and
scales by the type's maximum, so a uint16 slice becomes float32 in [0, 1] with its full precision; everything else
(paths, LMDB/disk backends, random crop, flips/rotations, tensors) is BasicSR's. Returns tensors of shape
(C, H, W) with C the stored channel count (RGB order for 3 channels).
"""

from __future__ import annotations

import cv2
import numpy as np
from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.data.transforms import augment, paired_random_crop
from basicsr.utils import FileClient, img2tensor


class PairedMedicalImageDataset(PairedImageDataset):
    """Options as BasicSR's PairedImageDataset (``type: PairedMedicalImageDataset``)."""

    def _read(self, path: str, client_key: str) -> np.ndarray:
        """(H, W, C) float32 in [0, 1], C as stored."""
        raw = self.file_client.get(path, client_key)
        pixels = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
        if pixels is None:
            raise ValueError(f"{path}: cannot decode the image")
        if pixels.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"{path}: unsupported pixel type {pixels.dtype}")
        peak = float(np.iinfo(pixels.dtype).max)
        pixels = pixels.astype(np.float32) / peak
        return pixels[:, :, None] if pixels.ndim == 2 else pixels

    def __getitem__(self, index: int) -> dict:
        if self.file_client is None:
            self.file_client = FileClient(self.io_backend_opt.pop("type"), **self.io_backend_opt)
        scale = self.opt["scale"]
        gt_path, lq_path = self.paths[index]["gt_path"], self.paths[index]["lq_path"]
        img_gt, img_lq = self._read(gt_path, "gt"), self._read(lq_path, "lq")
        if self.opt["phase"] == "train":
            img_gt, img_lq = paired_random_crop(img_gt, img_lq, self.opt["gt_size"], scale, gt_path)
            img_gt, img_lq = augment([img_gt, img_lq], self.opt["use_hflip"], self.opt["use_rot"])
        else:
            img_gt = img_gt[: img_lq.shape[0] * scale, : img_lq.shape[1] * scale]
        img_gt, img_lq = (img if img.ndim == 3 else img[:, :, None] for img in (img_gt, img_lq))
        img_gt, img_lq = img2tensor([np.ascontiguousarray(img_gt), np.ascontiguousarray(img_lq)], bgr2rgb=True,
                                    float32=True)
        return {"lq": img_lq, "gt": img_gt, "lq_path": lq_path, "gt_path": gt_path}

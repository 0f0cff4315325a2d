"""The process pool of a preparation: fresh worker processes (forkserver), one thread each, that die with their
parent, and the processed images streamed back in order."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from collections.abc import Iterator

import cv2

from medsr_se.prepare.pieces import ImageResult, process_image


def _die_with_parent() -> None:
    """Linux: ask the kernel to end this worker when its parent (the pool's process) dies, so a killed preparation
    leaves no workers running on."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    if os.getppid() == 1:  # the parent died before the request was made: the kernel will not signal any more
        os._exit(1)


def _init_worker() -> None:
    _die_with_parent()  # first: a kill during the slow imports below must not leave this worker behind
    import torch

    torch.set_num_threads(1)  # one image per process; basicsr's imresize runs on torch
    cv2.setNumThreads(1)
    # decoding errors are reported by us, with the member's name, not by OpenCV's logger
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def results_in_order(tasks: list, workers: int) -> Iterator[ImageResult]:
    """Processed images in order, from a pool of fresh worker processes (or in this process for one worker)."""
    if workers <= 1:
        yield from map(process_image, tasks)
        return
    # fresh workers: a fork of a process whose OpenMP / OpenCV thread pools already ran can deadlock
    context = multiprocessing.get_context("forkserver" if sys.platform.startswith("linux") else "spawn")
    with context.Pool(workers, initializer=_init_worker) as pool:
        yield from pool.imap(process_image, tasks, chunksize=2)

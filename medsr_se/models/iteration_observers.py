"""Who watches BasicSR's training loop from outside it (a command's progress bar), without a copy of the loop.

BasicSR's ``train_pipeline`` calls ``model.update_learning_rate(current_iter, warmup_iter)`` once per iteration,
just before that iteration's step, and nowhere else. :class:`IterationObserversMixin` (in our models' bases) tells
every observer registered with :func:`observing_iterations` that iteration ``current_iter`` begins: all iterations
before it (since the start or the resumed state) are done.

    with observing_iterations(lambda current_iter: ...):
        basicsr.train.train_pipeline(root)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

_observers: list[Callable[[int], None]] = []


@contextlib.contextmanager
def observing_iterations(observer: Callable[[int], None]) -> Iterator[None]:
    """While inside, ``observer(current_iter)`` is called as each training iteration of our models begins."""
    _observers.append(observer)
    try:
        yield
    finally:
        _observers.remove(observer)


class IterationObserversMixin:
    """Put before the BasicSR model class in the bases; nothing to call."""

    def update_learning_rate(self, current_iter: int, warmup_iter: int = -1) -> None:
        for observer in list(_observers):
            observer(current_iter)
        super().update_learning_rate(current_iter, warmup_iter)

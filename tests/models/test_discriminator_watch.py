"""The learning check on the discriminator's logits (medsr_se.models.discriminator_watch)."""

from __future__ import annotations

import torch

from medsr_se.models.discriminator_watch import DiscriminatorWatch, separation


def test_separation_against_a_hand_count():
    d_hr, d_sr = torch.tensor([[2.0], [0.0]]), torch.tensor([[1.0], [0.0]])
    gap, ranked = separation(d_hr, d_sr)
    # pairs (2,1) (2,0) right, (0,1) wrong, (0,0) a tie: (2 + 0.5) / 4
    assert float(gap) == 0.5 and float(ranked) == 0.625


def feed(watch: DiscriminatorWatch, ranked: float, start: int, count: int) -> int:
    for iteration in range(start, start + count):
        watch.observe(torch.tensor(ranked), iteration)
    return start + count - 1


def test_warns_once_after_patience_at_chance_and_never_when_learning():
    watch = DiscriminatorWatch(patience=30)
    assert watch.review(feed(watch, 0.5, 1, 10)) is None
    assert watch.review(feed(watch, 0.52, 11, 10)) is None
    message = watch.review(feed(watch, 0.49, 21, 10))
    assert message and "inactive" in message and "from iteration 1 to 30" in message
    assert watch.review(feed(watch, 0.5, 31, 100)) is None  # once

    learning = DiscriminatorWatch(patience=30)
    assert all(learning.review(feed(learning, 0.9, 1 + 10 * k, 10)) is None for k in range(10))
    interrupted = DiscriminatorWatch(patience=30)  # chance, learning, chance again: the count starts afresh
    interrupted.review(feed(interrupted, 0.5, 1, 20))
    interrupted.review(feed(interrupted, 0.8, 21, 10))
    assert interrupted.review(feed(interrupted, 0.5, 31, 20)) is None
    assert DiscriminatorWatch(patience=0).review(0) is None

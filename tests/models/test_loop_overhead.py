"""The training loop's overhead: losses are read (host syncs) only when logged; the EMA is the running average."""

from __future__ import annotations

import torch

from tests.helpers import build_tiny_model

BATCH = {"lq": torch.rand(2, 3, 16, 16), "gt": torch.rand(2, 3, 64, 64)}


def test_losses_are_read_only_when_logged(pairs_x4, tmp_path, monkeypatch):
    model = build_tiny_model(pairs_x4, tmp_path)
    model.feed_data(BATCH)
    model.optimize_parameters(1)  # creates the optimizers' state
    step_counters = {id(state["step"]) for optimizer in model.optimizers for state in optimizer.state.values()}
    calls = {"item": 0}
    real_item = torch.Tensor.item

    def counting_item(self):  # torch's Adam reads its own (CPU) step counters; those are not the point here
        calls["item"] += id(self) not in step_counters
        return real_item(self)

    monkeypatch.setattr(torch.Tensor, "item", counting_item)
    for iteration in (2, 3, 4):
        model.feed_data(BATCH)
        model.optimize_parameters(iteration)
    assert calls["item"] == 0
    log = model.get_current_log()
    assert calls["item"] == len(log) and "l_g_total" in log


def test_ema_is_the_running_average(pairs_x4, tmp_path):
    model = build_tiny_model(pairs_x4, tmp_path)
    before = [p.detach().clone() for p in model.net_g_ema.parameters()]
    with torch.no_grad():
        for param in model.net_g.parameters():
            param.add_(1.0)
    model.model_ema(decay=0.9)
    for old, new, current in zip(before, model.net_g_ema.parameters(), model.net_g.parameters()):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * current)

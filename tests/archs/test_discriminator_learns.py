"""The discriminator learns (issue 26): its logit depends on its input, and trained alone it tells HR fundus patches
from their bicubic reconstruction. The 0.1.x layout (no BN) is the control each test must tell apart."""

from __future__ import annotations

import pytest
import torch

from benchmarks import discriminator as bench  # the same data and loop as its table
from medsr_se.archs.fusion_discriminator_arch import FusionSEDiscriminator, OutdatedDiscriminatorState

# Bounds from benchmarks/discriminator.py at test size (F = 16, 32-px patches, 16 + 16 per batch, x8 bicubic):
# pairs ranked 0.77-0.80 after 40 iterations and 0.88 after 60 for se improved / none; the 0.1.x layout 0.50-0.52.
ITERATIONS = 60
LEARNED = 0.7
CHANCE = 0.6


@pytest.fixture(scope="module")
def fundus_x8():
    return bench.fundus_pairs(scale=8)


def held_out(pairs, count: int = 16):
    import numpy as np

    return bench.patch_batch(pairs["test"], count, 32, np.random.default_rng(123))


def test_initial_logits_depend_on_the_input(fundus_x8):
    """At initialisation the logit's spread over inputs is not negligible against its mean (0.1.x: 1e-5 of 0.09)."""
    real, fake = held_out(fundus_x8)
    inputs = (real, fake, 0.5 * real)  # photographs, bicubic, half the brightness
    torch.manual_seed(0)
    spreads = {}
    for name, model in (("today", FusionSEDiscriminator(num_feat=16)),
                        ("0.1.x", bench.without_batch_norm(FusionSEDiscriminator(num_feat=16)))):
        with torch.no_grad():
            logits = model.train()(torch.cat(inputs)).flatten()
        spreads[name] = float(logits.std() / logits.mean().abs())
    assert spreads["today"] > 0.01, spreads
    assert spreads["0.1.x"] < 1e-3, spreads  # the control: the test tells the broken layout apart


@pytest.mark.slow
@pytest.mark.parametrize("se", ["improved", "plain", "none"])
def test_trained_alone_it_separates_hr_from_bicubic(se, fundus_x8):
    torch.manual_seed(0)
    run = bench.train_alone(FusionSEDiscriminator(num_feat=16, se=se), fundus_x8, ITERATIONS, 16, 32, ITERATIONS, 0)
    final = run["records"][-1]
    assert final["pairs_ranked"] >= LEARNED and final["separation"] > 0, run["records"]


@pytest.mark.slow
def test_the_0_1_layout_stays_at_chance(fundus_x8):
    """The same loop on the 0.1.x layout: what the test above would have seen before the fix."""
    torch.manual_seed(0)
    model = bench.without_batch_norm(FusionSEDiscriminator(num_feat=16))
    run = bench.train_alone(model, fundus_x8, ITERATIONS, 16, 32, ITERATIONS, 0)
    assert run["records"][-1]["pairs_ranked"] < CHANCE, run["records"]


def test_an_outdated_state_is_refused_with_the_reason():
    old_state = bench.without_batch_norm(FusionSEDiscriminator(num_feat=8)).state_dict()
    for strict in (True, False):
        with pytest.raises(OutdatedDiscriminatorState, match=r"0\.1\.x.*did not learn.*pretrain_network_d"):
            FusionSEDiscriminator(num_feat=8).load_state_dict(old_state, strict=strict)
    FusionSEDiscriminator(num_feat=8).load_state_dict(FusionSEDiscriminator(num_feat=8).state_dict())

"""Is the adversarial term doing anything? A learning check on the discriminator's logits, for the GAN models.

For one batch of discriminator logits on HR images ``d_hr`` (N, 1) and on SR images ``d_sr`` (N, 1):

    separation   = mean d_hr − mean d_sr                          (logits; 0 when D cannot tell them apart)
    pairs_ranked = mean over all (i, j) of [d_hr_i > d_sr_j] + ½[d_hr_i = d_sr_j]     (0.5 = chance, 1 = perfect)

Both are logged at ``logger:print_freq`` (``d_separation``, ``d_pairs_ranked``). :class:`DiscriminatorWatch`
averages ``pairs_ranked`` over each logging window on the device (no host synchronisation per iteration) and warns
once, through BasicSR's logger, when it has stayed within ``CHANCE_MARGIN`` of 0.5 for ``train:warn_d_chance_iters``
iterations (default 1000; 0 switches the check off): a discriminator at chance gives the generator a relativistic
gradient that carries no information about realism, so the run is an L1/MSE/VGG run whatever its name says.
"""

from __future__ import annotations

import torch

CHANCE_MARGIN = 0.05  # pairs_ranked in [0.45, 0.55] counts as chance
DEFAULT_PATIENCE = 1000  # iterations at chance before the warning


def separation(d_hr: torch.Tensor, d_sr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean d_hr − mean d_sr, fraction of (HR, SR) pairs ranked right, ties counting half), both 0-d tensors."""
    d_hr, d_sr = d_hr.detach().flatten().float(), d_sr.detach().flatten().float()
    above = d_hr[:, None] - d_sr[None, :]
    ranked = (above > 0).float().mean() + 0.5 * (above == 0).float().mean()
    return d_hr.mean() - d_sr.mean(), ranked


def chance_message(ranked: float, since: int, current: int) -> str:
    return (f"the adversarial term is inactive: the discriminator has ranked HR above SR for {100 * ranked:.1f} % of "
            f"pairs (chance: 50 %) from iteration {since} to {current}, so the generator's GAN gradient carries no "
            "information. From the start of a run this means D does not learn (network_d, optim_d); late in a run, "
            "that G fools it.")


class DiscriminatorWatch:
    """Accumulates ``pairs_ranked`` per logging window; :meth:`review` at each log says whether to warn (once).

    Args:
        patience: iterations at chance before the warning (0: never warn).
    """

    def __init__(self, patience: int = DEFAULT_PATIENCE) -> None:
        self.patience = int(patience)
        self.window_sum: torch.Tensor | None = None
        self.window_count = 0
        self.window_start: int | None = None
        self.chance_since: int | None = None
        self.warned = False

    def observe(self, ranked: torch.Tensor, current_iter: int) -> None:
        """Add one iteration's ``pairs_ranked`` (stays on the device)."""
        self.window_sum = ranked.detach() if self.window_sum is None else self.window_sum + ranked.detach()
        self.window_count += 1
        if self.window_start is None:
            self.window_start = current_iter

    def review(self, current_iter: int) -> str | None:
        """Close the window; the warning text the first time D has been at chance for ``patience`` iterations."""
        if self.window_sum is None or self.patience <= 0:
            return None
        mean_ranked = float(self.window_sum) / self.window_count
        start = self.window_start
        self.window_sum, self.window_count, self.window_start = None, 0, None
        if abs(mean_ranked - 0.5) > CHANCE_MARGIN:
            self.chance_since = None
            return None
        if self.chance_since is None:
            self.chance_since = start
        if not self.warned and current_iter - self.chance_since + 1 >= self.patience:
            self.warned = True
            return chance_message(mean_ranked, self.chance_since, current_iter)
        return None

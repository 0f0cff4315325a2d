"""``train:scheduler:milestones`` as fractions of ``train:total_iter``, for our BasicSR models.

Milestones given as fractions of ``total_iter`` (every value in (0, 1)) become iterations,
``milestone = max(1, round(fraction · total_iter))``, so shortening ``total_iter`` (e.g. divided by the number of
GPUs) keeps the schedule's shape; absolute milestones (BasicSR's spelling) are used unchanged.
"""

from __future__ import annotations


def milestones_in_iterations(milestones: list, total_iter: int) -> list:
    """Fractions of total_iter (every value in (0, 1)) -> iterations; absolute milestones unchanged."""
    if milestones and all(isinstance(m, float) and 0 < m < 1 for m in milestones):
        return [max(1, round(m * total_iter)) for m in milestones]
    return list(milestones)


class FractionalMilestonesMixin:
    """Put before the BasicSR model class in the bases; the milestones are resolved before BasicSR's
    ``setup_schedulers`` (inside its ``init_training_settings``) without the model calling anything."""

    def init_training_settings(self) -> None:
        self.resolve_schedule()
        super().init_training_settings()

    def resolve_schedule(self) -> None:
        train_opt = self.opt["train"]
        scheduler = train_opt.get("scheduler") or {}
        if "milestones" in scheduler:
            scheduler["milestones"] = milestones_in_iterations(scheduler["milestones"], int(train_opt["total_iter"]))

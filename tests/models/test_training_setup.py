"""The models' precision / schedule set-up cannot be forgotten (issue 23, point 4): a model class made of our mixins
and a BasicSR model, with no code of its own, gets ``train:precision`` and milestones given as fractions."""

from __future__ import annotations

import torch
from basicsr.models.sr_model import SRModel

from medsr_se.models.mixed_precision import MixedPrecisionMixin
from medsr_se.models.schedule import FractionalMilestonesMixin
from medsr_se.models.seedsr_model import SEEDSRModel
from medsr_se.utils.options import derive


def tiny_options(tmp_path, precision: str = "bf16") -> dict:
    opt = derive("pretrain_x4", {
        "num_gpu": 0, "network_g": {"num_feat": 8, "num_block": 1},
        "train": {"precision": precision, "total_iter": 40, "scheduler": {"milestones": [0.5, 0.75]}},
    })
    root = str(tmp_path)
    opt.update(is_train=True, dist=False, rank=0, world_size=1, auto_resume=False)
    opt["path"].update(experiments_root=root, models=root, training_states=root, log=root, visualization=root)
    return opt


class PrecisionOnly(MixedPrecisionMixin, SRModel):
    """A new model written as the mixin's docstring says: nothing of its own."""


class ScheduleOnly(FractionalMilestonesMixin, SRModel):
    pass


class SEEDSRSubclass(SEEDSRModel):
    """A subclass adding set-up of its own and calling super() as BasicSR's models do."""

    def init_training_settings(self) -> None:
        super().init_training_settings()
        self.extra = True


def test_a_model_with_the_precision_mixin_trains_in_that_precision(tmp_path):
    model = PrecisionOnly(tiny_options(tmp_path))
    assert model.precision == "bf16" and model.autocast_dtype == torch.bfloat16
    with model.autocast():
        assert model.net_g.conv_first(torch.rand(1, 3, 8, 8)).dtype == torch.bfloat16


def test_a_model_with_the_schedule_mixin_turns_fractions_into_iterations(tmp_path):
    model = ScheduleOnly(tiny_options(tmp_path, "fp32"))
    assert [sorted(scheduler.milestones) for scheduler in model.schedulers] == [[20, 30]]


def test_a_subclass_of_our_model_gets_both(tmp_path):
    model = SEEDSRSubclass(tiny_options(tmp_path))
    assert model.extra and model.precision == "bf16"
    assert [sorted(scheduler.milestones) for scheduler in model.schedulers] == [[20, 30]]

"""Ours, not an upstream bug: BasicSR's ``BaseModel.save_network`` stores only the weights, so a ``net_g``
checkpoint of its own ``SRModel`` / ``SRGANModel`` / ``ESRGANModel`` cannot be rebuilt without the option file. With
the plugin loaded, ``net_g_*.pth`` also gets the ``network_g`` options and the training-data record (the entries
our models add, :mod:`medsr_se.models.atomic_save`), so ``load_generator`` / ``medsr-evaluate`` / ``medsr-infer`` /
``medsr-export`` load any BasicSR generator on its own. Our models add them themselves and are skipped."""

from __future__ import annotations

from os import path as osp
from pathlib import Path


def needed() -> bool:
    """Ours, not an upstream bug: BasicSR's net_g checkpoints do not say which network they hold."""
    from basicsr.models.base_model import BaseModel

    return not getattr(BaseModel.save_network, "medsr_se_network_options", False)


def add_network_options(model, net_label: str, current_iter) -> None:
    """Add ``network_g`` and the training-data record to the ``net_g`` file ``save_network`` just wrote (rewritten
    atomically). Nothing for other networks, on the processes other than rank 0 (BasicSR's save_network writes on
    rank 0 only: another rank could read the file half-written, or the previous ``latest``, and rename its copy
    over the new one), or when the save itself failed (BasicSR has logged that)."""
    import torch
    from basicsr.utils.dist_util import get_dist_info

    from medsr_se.checkpoint_format import DATA_KEY, NETWORK_OPTIONS_KEY
    from medsr_se.io.publish import write_atomically
    from medsr_se.models.atomic_save import AtomicSaveMixin, training_data_record
    from medsr_se.utils.options import plain

    if net_label != "net_g" or isinstance(model, AtomicSaveMixin) or not model.opt.get("network_g"):
        return
    if get_dist_info()[0] != 0:
        return
    label = "latest" if current_iter == -1 else current_iter
    path = osp.join(model.opt["path"]["models"], f"{net_label}_{label}.pth")
    if not osp.isfile(path):
        return
    saved = torch.load(path, map_location="cpu", weights_only=True)
    saved.update({NETWORK_OPTIONS_KEY: plain(model.opt["network_g"]), DATA_KEY: training_data_record(model.opt)})
    write_atomically(Path(path), lambda temporary: torch.save(saved, temporary))


def apply() -> None:
    from basicsr.models.base_model import BaseModel

    inner = BaseModel.save_network

    def save_network(self, net, net_label, current_iter, param_key="params"):
        """BasicSR's save_network, then :func:`add_network_options`."""
        inner(self, net, net_label, current_iter, param_key)
        add_network_options(self, net_label, current_iter)

    save_network.medsr_se_network_options = True
    BaseModel.save_network = save_network

"""BasicSR's ``init_dist`` does ``set_device(rank % num_gpus)`` (division by zero on CPU) and hard-codes NCCL (also
for a ``num_gpu: 0`` run on a GPU host, whose CPU models NCCL cannot serve); ``BaseModel.model_to_device`` passes
``device_ids=[cuda.current_device()]`` to DDP. Without CUDA both now use gloo and CPU DDP; with CUDA BasicSR's own
code runs unchanged."""

from __future__ import annotations

import inspect
import sys


def option_file_wants_cpu(argv: list[str]) -> bool:
    """True when the ``-opt`` file of this command line says ``num_gpu: 0`` (read before BasicSR's init_dist)."""
    from medsr_se.utils.options import OptionFileError, load_yaml, option_file_argument

    path = option_file_argument(argv)
    try:
        return path is not None and load_yaml(path).get("num_gpu", "auto") == 0
    except OptionFileError:
        return False


def needed() -> bool:
    from basicsr.models import base_model
    from basicsr.utils import dist_util

    return ("torch.cuda.set_device(rank % num_gpus)" in inspect.getsource(dist_util)
            or "device_ids=[torch.cuda.current_device()]" in inspect.getsource(base_model))


def apply() -> None:
    import torch
    import torch.distributed as dist
    from basicsr.models.base_model import BaseModel
    from basicsr.utils import dist_util

    cuda_init_dist = dist_util._init_dist_pytorch
    cuda_model_to_device = BaseModel.model_to_device

    def init_dist_pytorch(backend: str = "nccl", **kwargs) -> None:
        if torch.cuda.is_available() and not option_file_wants_cpu(sys.argv):
            cuda_init_dist(backend, **kwargs)
        else:  # no GPU, or a num_gpu: 0 run on a GPU host: its models live on the CPU, which NCCL cannot serve
            dist.init_process_group(backend="gloo", **kwargs)

    def model_to_device(self, net: torch.nn.Module) -> torch.nn.Module:
        if self.opt["dist"] and self.device.type == "cpu":
            find_unused = self.opt.get("find_unused_parameters", False)
            return torch.nn.parallel.DistributedDataParallel(net.to(self.device), find_unused_parameters=find_unused)
        return cuda_model_to_device(self, net)

    dist_util._init_dist_pytorch = init_dist_pytorch
    BaseModel.model_to_device = model_to_device

"""Distributed data parallel: the few collective operations the engine and the methods need.

Everything here is a no-op in a single process, so the single-process path stays the reference.
``torchrun --nproc-per-node N -m lt_bench train ...`` sets WORLD_SIZE, RANK and LOCAL_RANK; the
engine joins the process group (NCCL on GPU, gloo on CPU) from them.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def is_main() -> bool:
    return rank() == 0


def init_from_environment(device: torch.device) -> torch.device:
    """Join torchrun's process group when WORLD_SIZE > 1; return this rank's device."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    if not is_distributed():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place (and return it)."""
    if is_distributed():
        dist.all_reduce(tensor)
    return tensor



def global_mean(total: torch.Tensor, count: int) -> float:
    """The mean over every process of a running sum ``total`` of ``count`` values (each process
    its own): what a method's per-epoch diagnostic logs."""
    both = torch.stack([total.float(), total.new_tensor(float(count), dtype=torch.float32)])
    all_reduce_sum(both)
    return float(both[0] / both[1])


def average_gradients(parameters) -> None:
    """Average gradients over ranks for parameters outside the DDP-wrapped network (a method's)."""
    if not is_distributed():
        return
    for p in parameters:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= world_size()


def gather_objects(obj) -> list:
    """Every rank's ``obj``, in rank order (a one-element list in a single process)."""
    if not is_distributed():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def shutdown() -> None:
    """Leave the process group (after a run under torchrun)."""
    if is_distributed():
        dist.destroy_process_group()


def is_main_process_of_launch() -> bool:
    """Rank 0 of torchrun's launch (or a plain process), also after the group is gone."""
    return int(os.environ.get("RANK", "0")) == 0

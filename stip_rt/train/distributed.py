"""Several processes with DDP, as ``torchrun`` launches them (one process per GPU; gloo on the CPU).

``torchrun --nproc_per_node 2 -m stip_rt.cli train ...`` sets ``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them and joins
the process group (NCCL for CUDA devices, gloo otherwise). Without them training runs in one process.
"""

from __future__ import annotations

import datetime
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from ..errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands.

    Attributes:
        rank: global rank (0 logs, validates and writes checkpoints).
        world_size: number of processes.
        local_rank: rank on this machine (picks the GPU).
        owns_group: this run created the process group (and destroys it at the end).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str) -> tuple[DistInfo, str]:
    """Join the ``torchrun`` process group when the environment describes one.

    Args:
        device: the configured device; ``cuda`` becomes ``cuda:LOCAL_RANK`` under torchrun.

    Returns:
        (this process's :class:`DistInfo`, the device it trains on).

    Raises:
        ConfigError: an incomplete torchrun environment.
    """
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local = int(os.environ.get("LOCAL_RANK", rank))
        return DistInfo(rank, world, local, False), _device_for(device, local, world)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), device
    try:
        rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    except KeyError as e:
        raise ConfigError(
            f"distributed training: WORLD_SIZE={world} but {e.args[0]} is not set (launch with torchrun)"
        ) from None
    dev = _device_for(device, local, world)
    backend = "nccl" if dev.startswith("cuda") else "gloo"
    if dev.startswith("cuda"):
        torch.cuda.set_device(torch.device(dev))
    # long timeout: the other ranks wait while rank 0 validates (COCO val takes a while on one GPU)
    dist.init_process_group(backend=backend, rank=rank, world_size=world, timeout=datetime.timedelta(hours=2))
    log.info("rank %d/%d joined the %s process group on %s", rank, world, backend, dev)
    return DistInfo(rank, world, local, True), dev


def _device_for(device: str, local_rank: int, world: int) -> str:
    if device == "cuda" and world > 1:
        return f"cuda:{local_rank}"
    return device


def all_mean(values: list[float], info: DistInfo, device: str) -> list[float]:
    """The mean over ranks of each value (the values themselves in one process)."""
    if not info.distributed:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return (t / info.world_size).tolist()


def any_rank(flag: bool, info: DistInfo, device: str) -> bool:
    """True when ``flag`` is set on any rank (every rank then stops at the same step)."""
    if not info.distributed:
        return flag
    t = torch.tensor([int(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def gather(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj`` (a one-item list in one process)."""
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    """Wait for every rank."""
    if info.distributed:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    """Leave the process group if this run created it."""
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()

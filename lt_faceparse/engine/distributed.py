"""Process-group setup and the few collectives the engine needs.

The launcher is torchrun: it sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (and the rendezvous
address); :func:`init_distributed` reads them and joins the group (NCCL on GPU, gloo on CPU). A
plain ``python`` run is a world of one and needs no process group at all. On several nodes
(``torchrun --nnodes=N``) ``RANK`` is global and ``LOCAL_RANK`` numbers the processes of one node:
devices are chosen by ``LOCAL_RANK``, files are written by global rank 0.
"""

from __future__ import annotations

import logging
import os
import random
import socket
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

import numpy as np
import torch
import torch.distributed as dist

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: its rank, the world size, and the device it drives."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group announced by torchrun's environment (no-op for a world of one).

    ``device``: ``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"``. On CUDA each rank
    drives ``cuda:LOCAL_RANK`` and the backend is NCCL; on CPU the backend is gloo.
    """
    rank = int(os.environ.get("RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but CUDA is not available")
        dev = torch.device("cuda", local_rank if device == "cuda" else torch.device(device).index or 0)
        torch.cuda.set_device(dev)
    elif device == "cpu":
        dev = torch.device("cpu")
    else:
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda[:N]', got {device!r}")
    if world_size > 1 and not dist.is_initialized():
        if rank == 0 and shared_store_breaks_restarts():
            _LOG.warning("torchrun --max-restarts is set but TORCH_DISABLE_SHARE_RDZV_TCP_STORE is not 1: torchrun "
                         "then keeps one store for every restart, and restarted workers can read the previous "
                         "attempt's addresses and fail to connect; launch torchrun with "
                         "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 and --rdzv_backend=c10d")
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size,
                                device_id=dev if dev.type == "cuda" else None)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def shared_store_breaks_restarts() -> bool:
    """Whether torchrun may restart this worker while it shares one TCP store across restarts.

    With that store (the default of torchrun's c10d rendezvous since torch 2.4, and always with its
    static rendezvous) a restarted worker can read the connection addresses that the previous attempt
    left there, and process-group set-up then fails ("Connection refused"; observed with gloo in
    torch 2.14, see pytorch/pytorch#135712 for NCCL). ``TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1`` in
    torchrun's environment makes the c10d rendezvous create a fresh store for every attempt.
    """
    env = os.environ
    restarts = env.get("TORCHELASTIC_MAX_RESTARTS", "0")
    return restarts.isdigit() and int(restarts) > 0 and env.get("TORCH_DISABLE_SHARE_RDZV_TCP_STORE") != "1"


def shutdown_distributed() -> None:
    """Leave the process group if this process joined one."""
    if dist.is_initialized():
        dist.destroy_process_group()


def current_rank_world() -> tuple[int, int]:
    """(rank, world size) of the joined process group, or (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place (identity without a process group); returns it."""
    if dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order."""
    if not dist.is_initialized():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj`` on every rank (picklable; identity without a process group)."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


T = TypeVar("T")


def rank0_first_then_each_node(make: Callable[[], T], info: DistInfo) -> T:
    """Call ``make`` on every rank: global rank 0 first, then the first process of each other node,
    then the other processes, with a barrier between the stages.

    ``make`` must create something on disk only when it is missing (e.g. ``ensure_synthface``). On a
    filesystem shared by all nodes, rank 0 creates it and everyone else finds it; on a node-local
    filesystem, each node's first process creates its own copy. Either way no two processes create
    the same folder at once, and nothing has to know which kind of filesystem it is.
    """
    result = make() if info.is_main else None
    barrier()
    if info.local_rank == 0 and not info.is_main:
        result = make()
    barrier()
    if info.local_rank != 0:
        result = make()
    return result


def launch_environment() -> dict[str, Any]:
    """How this process was launched, for the run log: host, node rank, processes per node, torchrun's
    restart count and run id, SLURM's job id and requeue count (None where not set)."""
    env = os.environ

    def number(key: str) -> int | None:
        return int(env[key]) if env.get(key, "").isdigit() else None

    return {
        "host": socket.gethostname(),
        "node_rank": number("GROUP_RANK"),
        "local_world_size": number("LOCAL_WORLD_SIZE"),
        "restart_count": number("TORCHELASTIC_RESTART_COUNT") or 0,
        "max_restarts": number("TORCHELASTIC_MAX_RESTARTS"),
        "torchelastic_run_id": env.get("TORCHELASTIC_RUN_ID"),
        "slurm_job_id": env.get("SLURM_JOB_ID"),
        "slurm_restart_count": number("SLURM_RESTART_COUNT"),
    }


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (every CUDA device too)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)

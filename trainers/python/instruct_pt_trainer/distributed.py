"""One process group per torchrun rank, the same for every entry point of the package."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_distributed() -> tuple[int, int, torch.device]:
    """NCCL on GPUs (one per local rank), gloo on CPU; a process started without torchrun is rank 0 of 1.
    Returns (rank, world size, device)."""
    if "RANK" not in os.environ:
        os.environ.update({"RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": os.environ.get("MASTER_PORT", "29517")})
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}") if backend == "nccl" else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return dist.get_rank(), dist.get_world_size(), device


def finish_distributed() -> None:
    """Leaves the process group together: a rank that tore its group down while another still used it made that one
    abort in gloo's threads ("terminate called without an active exception")."""
    dist.barrier()
    dist.destroy_process_group()

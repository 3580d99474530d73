"""Data-parallel training through torchrun: who am I, and the few collective calls training needs.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them everything here is a no-op for one
process, so the trainer has a single code path. PyTorch's own engine does the work:
DistributedDataParallel all-reduces gradients, torch.distributed carries the small values below.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from seq2seq.device import resolve_device


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def setup(device_name: str = "auto") -> tuple[World, torch.device]:
    """Join the process group torchrun describes (NCCL on CUDA, gloo on CPU) and pick the device."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    world = World(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")))
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if world.distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return world, device


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def all_sum(values: list[float], world: World, device: torch.device) -> list[float]:
    """Element-wise sum over ranks of a few numbers (token counts, losses)."""
    if not world.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def broadcast(obj, world: World, device: torch.device, src: int = 0):
    """Rank `src`'s value of a small JSON-able object, on every rank (sent as JSON, never pickled)."""
    if not world.distributed:
        return obj
    data = json.dumps(obj).encode() if world.rank == src else b""
    size = torch.tensor([len(data)], dtype=torch.int64, device=device)
    dist.broadcast(size, src=src)
    buf = _bytes_tensor(data, int(size.item()), device)
    dist.broadcast(buf, src=src)
    return _from_bytes_tensor(buf)


def all_gather(obj, world: World, device: torch.device) -> list:
    """Every rank's value of a small JSON-able object, in rank order, on every rank (as JSON)."""
    if not world.distributed:
        return [obj]
    data = json.dumps(obj).encode()
    sizes = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(world.size)]
    dist.all_gather(sizes, torch.tensor([len(data)], dtype=torch.int64, device=device))
    sizes = [int(s.item()) for s in sizes]
    bufs = [torch.zeros(max(sizes), dtype=torch.uint8, device=device) for _ in range(world.size)]
    dist.all_gather(bufs, _bytes_tensor(data, max(sizes), device))
    return [_from_bytes_tensor(buf[:size]) for buf, size in zip(bufs, sizes)]


def _bytes_tensor(data: bytes, size: int, device: torch.device) -> torch.Tensor:
    """`data` in a uint8 tensor of `size` bytes (zero-padded)."""
    buf = torch.zeros(size, dtype=torch.uint8, device=device)
    if data:
        buf[:len(data)] = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    return buf


def _from_bytes_tensor(buf: torch.Tensor):
    return json.loads(buf.cpu().numpy().tobytes().decode())

"""Data-parallel training through torchrun: who am I, and the few collective calls training needs.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; without them everything here is a no-op for one
process, so the trainer has a single code path. PyTorch's own engine does the work:
DistributedDataParallel all-reduces gradients, torch.distributed carries the small values below.

Some work is done by rank 0 alone (vocabularies, validation, writing the model directory) while
the others wait in a collective call, for at most `training.dist_timeout_minutes`. An error in
such work must not leave the others waiting: `settle` is where the ranks meet afterwards, and
where an error on any rank ends every rank with its message. A collective call that fails (a
rank gone, or silent past the timeout) is a one-line UserError too.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from seq2seq.device import resolve_device
from seq2seq.errors import UserError, one_line


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    timeout_minutes: float = 60.0  # how long a collective call waits for every rank

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def setup(device_name: str = "auto", timeout_minutes: float = 60.0) -> tuple[World, torch.device]:
    """Join the process group torchrun describes (NCCL on CUDA, gloo on CPU) and pick the device;
    a collective call waits `timeout_minutes` for every rank (training.dist_timeout_minutes)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    world = World(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")),
                  timeout_minutes)
    device = resolve_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if world.distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                timeout=timedelta(minutes=timeout_minutes))
        atexit.register(teardown)  # after an error: once it is printed (see teardown)
    return world, device


# Set by settle once the ranks learnt of an error together: each is on its way out with it.
_failing_together = False


def teardown(together: bool = False) -> None:
    """Leave the process group. `together`: every rank gets here (a run that ended well), so first
    wait for all of them: none closes its connections while another still uses them. After an error
    that every rank learnt of (settle), wait too, for every rank to get past printing the error:
    torchrun stops the others as soon as one exits."""
    if dist.is_initialized():
        if together or _failing_together:
            with contextlib.suppress(RuntimeError):
                dist.barrier()
        gc.collect()  # what still holds the group (a released DDP's reducer) goes first, here
        dist.destroy_process_group()


@contextlib.contextmanager
def _collective(world: World):
    """Around a collective call: its failure (a rank gone, or past the timeout) is a UserError."""
    try:
        yield
    except RuntimeError as e:  # torch.distributed's errors (DistError) are RuntimeErrors
        first = (str(e).strip().splitlines() or [""])[0]
        first = first.rpartition("] ")[2] if first.startswith("[") else first  # (a source location)
        raise UserError(f"rank {world.rank}: no answer from the other processes ({first}); one of them "
                        f"stopped (see its output) or worked alone for longer than "
                        f"training.dist_timeout_minutes ({world.timeout_minutes:g})") from None


def settle(error: BaseException | None, world: World, device: torch.device) -> None:
    """Where the ranks meet after work that may have failed on some of them (`error`: this rank's
    failure, or None). If any rank failed, every rank raises: a failed rank its own exception, the
    others a UserError with the first failed rank's message."""
    if not world.distributed:
        if error is not None:
            raise error
        return
    first = torch.tensor([world.rank if error is not None else world.size], dtype=torch.int64, device=device)
    with _collective(world):
        dist.all_reduce(first, op=dist.ReduceOp.MIN)
    first = int(first.item())
    if first == world.size:
        return
    message = broadcast(one_line(error) if world.rank == first else None, world, device, src=first)
    global _failing_together
    _failing_together = True
    if error is not None:
        raise error
    raise UserError(message)


@contextlib.contextmanager
def rank_zero_first(world: World, device: torch.device):
    """Run the block on rank 0, then on the others (which may read what rank 0 wrote: the
    vocabularies, the data cache). An error in the block on any rank ends every rank (settle)."""
    if not world.distributed:
        yield
        return
    if not world.is_main:
        settle(None, world, device)  # rank 0's turn; raises if it failed
    error = None
    try:
        yield
    except Exception as e:  # (handed to every rank by settle, which raises it here)
        error = e
    if world.is_main:
        settle(error, world, device)  # the others wait for this
    settle(error, world, device)  # everyone's turn is over


def all_sum(values: list[float], world: World, device: torch.device) -> list[float]:
    """Element-wise sum over ranks of a few numbers (token counts, losses)."""
    if not world.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    with _collective(world):
        dist.all_reduce(t)
    return t.tolist()


def broadcast(obj, world: World, device: torch.device, src: int = 0):
    """Rank `src`'s value of a small JSON-able object, on every rank (sent as JSON, never pickled)."""
    if not world.distributed:
        return obj
    data = json.dumps(obj).encode() if world.rank == src else b""
    size = torch.tensor([len(data)], dtype=torch.int64, device=device)
    with _collective(world):
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
    with _collective(world):
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

"""Data-parallel training and sharded estimation under ``torchrun``.

``torchrun --nproc_per_node N -m workbench template train ...`` starts N processes; each calls
:func:`init_from_env`, which joins the process group (gloo on CPU, nccl on CUDA). Outside
``torchrun`` every helper here is a no-op for a single process, so library code calls them
unconditionally.

The global batch is the same whatever the number of processes: each optimisation step takes the
next ``batch_size`` examples of the (seed, epoch) permutation and process ``r`` of ``N`` takes
the ``r``-th of its ``N`` equal slices (see :class:`ShardedBatchSampler`), so N processes see the
same examples per step as one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

__all__ = [
    "init_from_env", "is_distributed", "rank", "world_size", "is_main", "barrier",
    "all_reduce_sum", "all_gather_objects", "ShardedBatchSampler", "shard", "device_for_rank", "local",
]

_local_depth = 0


def init_from_env(device: str = "cpu") -> bool:
    """Join the process group that ``torchrun`` describes in the environment (``WORLD_SIZE``,
    ``RANK``, ``MASTER_ADDR``...). Returns True when running distributed. Backend: nccl for CUDA,
    gloo otherwise."""
    if dist.is_available() and dist.is_initialized():
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if not dist.is_available():  # pragma: no cover - every supported torch build has it
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    return True


def device_for_rank(device: str) -> str:
    """``cuda`` becomes ``cuda:LOCAL_RANK`` under torchrun; other devices are kept."""
    if device == "cuda" and is_distributed():
        return f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    return device


def is_distributed() -> bool:
    if _local_depth:
        return False
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@contextlib.contextmanager
def local():
    """Inside this block each process works alone (no data parallelism, no collectives): for
    work that is shared out by task, such as one stand-alone training per process."""
    global _local_depth
    _local_depth += 1
    try:
        yield
    finally:
        _local_depth -= 1


def task_rank() -> tuple[int, int]:
    """(rank, world size) of this process in the process group, even inside :func:`local`."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def all_reduce_sum(values: Sequence[float]) -> list[float]:
    """Element-wise sum of ``values`` over all processes (float64)."""
    if not is_distributed():
        return [float(v) for v in values]
    t = torch.tensor([float(v) for v in values], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return t.cpu().tolist()


def all_gather_objects(obj) -> list:
    """``obj`` of every process, in rank order (a one-element list for a single process).
    Only for objects this program made itself (they travel between its own processes)."""
    if not is_distributed():
        return [obj]
    out: list = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def shard(items: Sequence, r: int | None = None, n: int | None = None) -> list[int]:
    """Indices of ``items`` that process ``r`` of ``n`` handles: ``r, r + n, r + 2n, ...``."""
    r = rank() if r is None else r
    n = world_size() if n is None else n
    return list(range(r, len(items), n))


class ShardedBatchSampler(Sampler[list[int]]):
    """Global batches of a (seed, epoch)-seeded permutation, sliced for one process.

    Step ``i`` covers examples ``perm[i*B:(i+1)*B]`` of the global permutation; process ``r`` of
    ``n`` yields the ``r``-th of ``n`` contiguous parts of it. ``B`` must be divisible by ``n``. The
    last short global batch is split as evenly as possible (kept unless ``drop_last``, or unless it
    has fewer examples than there are processes).
    """

    def __init__(self, size: int, batch_size: int, *, seed: int, shuffle: bool = True,
                 drop_last: bool = False, rank: int = 0, world_size: int = 1) -> None:
        if batch_size % world_size:
            raise ValueError(
                f"the global batch size {batch_size} is not divisible by the {world_size} processes; "
                f"choose a multiple of {world_size}"
            )
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.shuffle, self.drop_last = shuffle, drop_last
        self.rank, self.world = rank, world_size

    def _order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.size))
        g = torch.Generator()
        g.manual_seed(self.seed)
        return torch.randperm(self.size, generator=g).tolist()

    def __iter__(self) -> Iterator[list[int]]:
        order = self._order()
        for start in range(0, self.size, self.batch_size):
            batch = order[start:start + self.batch_size]
            if len(batch) < self.batch_size and (self.drop_last or len(batch) < self.world):
                return  # too short to give every process an example: dropped on all of them
            n = len(batch)
            yield batch[self.rank * n // self.world:(self.rank + 1) * n // self.world]

    def __len__(self) -> int:
        full, rest = divmod(self.size, self.batch_size)
        if self.drop_last or rest < self.world:
            return full
        return full + 1

    def global_size(self, step: int) -> int:
        """Examples in global batch ``step`` (all processes together)."""
        return min(self.batch_size, self.size - step * self.batch_size)

"""Which process am I: rank helpers for runs under ``accelerate launch`` / ``torchrun``.

One process (``WORLD_SIZE`` unset or 1) is rank 0 of 1 and every helper is a no-op, so the
single-process path pays nothing. Under a launcher, every process runs the same command;
the run folder, selection records, adapters and metrics are written by the main process
only (:func:`main_first`), and scoring is split across ranks (:func:`shard`) and put back
together in input order (:func:`gather`, :func:`unshard`). The process group is accelerate's
(``PartialState``: NCCL on GPUs, gloo on CPUs), the same one transformers' Trainer uses.

>>> world().size, world().rank, world().main
(1, 0, True)
>>> shard(list("abcde"))
['a', 'b', 'c', 'd', 'e']
>>> main_first(lambda: 42)
42
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from llmrec.errors import LlmrecError

T = TypeVar("T")

__all__ = ["World", "world", "launched", "barrier", "gather", "shard", "unshard", "main_first"]


@dataclass(frozen=True)
class World:
    """This process's place among the launched processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    """Whether a launcher started several processes (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


def _state():
    """accelerate's process state; initializes the process group on first use (gloo without CUDA)."""
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def world() -> World:
    """The rank, world size and local rank of this process (rank 0 of 1 when not launched)."""
    if not launched():
        return World()
    state = _state()
    return World(state.process_index, state.num_processes, state.local_process_index)


def barrier() -> None:
    """Wait until every process gets here (nothing to wait for in one process)."""
    if launched():
        _state().wait_for_everyone()


def _all_gather(obj: Any) -> list[Any]:
    import torch.distributed as dist

    _state()
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def gather(obj: T) -> list[T]:
    """Every process's ``obj``, by rank, on every process (``[obj]`` in one process)."""
    return _all_gather(obj) if launched() else [obj]


def shard(items: Sequence[T], w: World | None = None) -> list[T]:
    """This rank's share of ``items``: a contiguous block, the first ones one longer (all of them in one process).

    Contiguous blocks keep neighbours together (the candidates of one list share a KV-cached context).

    >>> shard(list("abcde"), World(rank=1, size=2))
    ['d', 'e']
    """
    w = w or world()
    size, extra = divmod(len(items), w.size)
    start = w.rank * size + min(w.rank, extra)
    return list(items[start : start + size + (w.rank < extra)])


def unshard(parts: Sequence[Sequence[T]]) -> list[T]:
    """Put the per-rank shards of :func:`shard` back in input order.

    >>> unshard([["a", "b", "c"], ["d", "e"]])
    ['a', 'b', 'c', 'd', 'e']
    """
    return [x for part in parts for x in part]


def main_first(fn: Callable[[], T]) -> T:
    """Run ``fn`` on the main process only and give its result (or its error) to every process.

    Used for what creates or checks a folder: the others never write, and an error on the main
    process (a run folder with another config, say) stops every process with the same message
    instead of leaving them waiting.
    """
    if not launched():
        return fn()
    result: tuple[str, Any] = ("ok", None)
    if world().main:
        try:
            result = ("ok", fn())
        except LlmrecError as exc:
            result = ("error", exc)
    import torch.distributed as dist

    box = [result]
    dist.broadcast_object_list(box, src=0)
    status, value = box[0]
    if status == "error":
        raise value
    return value

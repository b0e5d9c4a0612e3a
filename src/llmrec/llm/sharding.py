"""Models whose parameters are sharded across processes (DeepSpeed ZeRO-3, FSDP).

Under ZeRO-3 a parameter outside its module's forward is an empty placeholder (the data
lives in shards on every rank); under FSDP2 it is a ``DTensor``; under FSDP1 the model is
wrapped in ``FullyShardedDataParallel`` and its parameters are views into flat shards. The
Yes/No scorer reads two rows of the LM head directly, which needs the full rows:

* ZeRO-3: read them inside ``deepspeed.zero.GatheredParameters`` (every rank gathers, once);
* FSDP: the model's own forward unshards what it needs, so the scorer uses its ``head="full"``
  path (the whole model with ``logits_to_keep``) instead of calling the decoder directly.

And every rank must run the same forwards (a sharded forward is a collective), so scoring a
sharded model is not split across ranks.

>>> import torch
>>> sharding(torch.nn.Linear(2, 2)) is None
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["sharding", "full_rows"]


def _is_dtensor(tensor) -> bool:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # pragma: no cover - torch without distributed
        return False
    return isinstance(tensor, DTensor)


def _fsdp_classes() -> tuple[type, ...]:
    try:
        from torch.distributed.fsdp import FSDPModule, FullyShardedDataParallel
    except ImportError:  # pragma: no cover - torch without distributed
        return ()
    return (FSDPModule, FullyShardedDataParallel)


def sharding(model) -> str | None:
    """``"zero3"``, ``"fsdp"`` or ``None`` (every parameter is whole on this process)."""
    fsdp = _fsdp_classes()
    if fsdp and any(isinstance(m, fsdp) for m in model.modules()):
        return "fsdp"
    for p in model.parameters():
        if hasattr(p, "ds_id"):
            return "zero3"
        if _is_dtensor(p) or type(p).__name__ == "FlatParameter":
            return "fsdp"
    return None


@contextlib.contextmanager
def _gathered(weight) -> Iterator:
    """``weight`` whole for the duration (ZeRO-3: gathered on every rank; DTensor: its full tensor)."""
    if hasattr(weight, "ds_id"):
        import deepspeed

        with deepspeed.zero.GatheredParameters([weight], modifier_rank=None):
            yield weight
    elif _is_dtensor(weight):
        yield weight.full_tensor()
    else:
        yield weight


def full_rows(weight, ids) -> object:
    """``weight[ids]`` as a float32 copy, whatever shards ``weight`` lives in.

    >>> import torch
    >>> full_rows(torch.arange(6.0).view(3, 2), torch.tensor([2, 0])).tolist()
    [[4.0, 5.0], [0.0, 1.0]]
    """
    with _gathered(weight) as whole:
        return whole.detach().index_select(0, ids.to(whole.device)).float().clone()

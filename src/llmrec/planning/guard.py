"""The launch-time guard: before ``train`` / ``evaluate`` load a model onto a CUDA device, compare the step's plan
with the memory free there (``torch.cuda.mem_get_info``) and stop with the plan's advice instead of an
out-of-memory error 40 minutes in.

It runs only where it can help and never blocks a run it cannot judge: on a CUDA device, in a single process (a
launcher's processes may shard), for a model whose shape a plan knows; ``LLMREC_NO_PLAN_GUARD=1`` turns it off.

>>> from llmrec.planning.devices import DEVICES
>>> guard_device(DEVICES["h100"], free_bytes=20 * 2**30).memory_gib
20.0
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace

from llmrec.errors import ConfigError, LlmrecError
from llmrec.planning.devices import DEVICES, Device

__all__ = ["check_fits", "guard_device"]


def guard_device(like: Device, free_bytes: int) -> Device:
    """``like`` with the memory free now."""
    return replace(like, name=f"{like.name} ({free_bytes / 2**30:.1f} GiB free)", memory_gib=free_bytes / 2**30)


def _cuda_free(device) -> int | None:
    import torch

    if getattr(device, "type", None) != "cuda" or not torch.cuda.is_available():
        return None
    free, _total = torch.cuda.mem_get_info(device)
    return int(free)


def check_fits(kind: str, config, device, *, world_size: int = 1, free_bytes: Callable[[object], int | None] = _cuda_free,
               log: Callable[[str], None] = print) -> None:
    """Raise an LlmrecError with the plan's advice when step ``kind`` (train, evaluate) of ``config`` does not fit
    in the memory free on ``device`` (a torch device); nothing on a CPU, under a launcher, or with
    ``LLMREC_NO_PLAN_GUARD=1``."""
    if os.environ.get("LLMREC_NO_PLAN_GUARD") == "1" or world_size > 1:
        return
    free = free_bytes(device)
    if free is None:
        return
    from llmrec.planning.steps import plan_config

    try:
        rows = plan_config(kind, config, guard_device(DEVICES["h100"], free))
    except ConfigError as exc:  # a model whose shape no plan knows: the run goes ahead, unjudged
        log(f"plan guard: no plan ({exc}); starting without the memory check")
        return
    for row in rows:
        if not row.fits:
            raise LlmrecError(f"{kind}: {row.part} would need {row.estimate.gib:.1f} GiB on {device}, "
                              f"{free / 2**30:.1f} GiB are free ({row.advice.split('; ', 1)[-1]}); "
                              "llmrec plan shows the whole plan, LLMREC_NO_PLAN_GUARD=1 skips this check")

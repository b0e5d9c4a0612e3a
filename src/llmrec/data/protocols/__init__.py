"""Protocol builders: an explicit registry of name -> (config class, builder).

>>> sorted(PROTOCOLS)
['rella', 'tallrec', 'trsr']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from llmrec.data.protocols.base import PreparedData
from llmrec.data.protocols.rella import RellaConfig, build_rella
from llmrec.data.protocols.tallrec import TallrecConfig, build_tallrec, few_shot_sample
from llmrec.data.protocols.trsr import TrsrConfig, build_trsr
from llmrec.data.schema import RecData


@dataclass(frozen=True)
class Protocol:
    name: str
    config: type[BaseModel]
    build: Callable[[RecData, BaseModel], PreparedData]
    summary: str


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in [
        Protocol("tallrec", TallrecConfig, build_tallrec, "10-item history windows, most recent 10,000, 8:1:1 by time"),
        Protocol("rella", RellaConfig, build_rella, "history >= 5, global time split 8:1:1, full prior history kept"),
        Protocol("trsr", TrsrConfig, build_trsr, "users with 10-25 interactions, last item target, 1:1 / 1:20 negatives"),
    ]
}

__all__ = [
    "PROTOCOLS",
    "PreparedData",
    "Protocol",
    "RellaConfig",
    "TallrecConfig",
    "TrsrConfig",
    "build_rella",
    "build_tallrec",
    "build_trsr",
    "few_shot_sample",
]

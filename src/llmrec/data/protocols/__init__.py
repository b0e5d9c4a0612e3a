"""Protocols: one record each (config, builder, prompt defaults), in an explicit registry.

Everything that depends on the protocol reads its record: the CLI choices, ``PrepareConfig``,
the default template per domain and the default number of history items per prompt. A new
protocol is one :func:`register_protocol` call.

>>> sorted(PROTOCOLS)
['instruction', 'rella', 'tallrec', 'trsr']
>>> buildable()
['tallrec', 'rella', 'trsr']
>>> PROTOCOLS["tallrec"].template_for("book"), PROTOCOLS["rella"].history_k
('tallrec_book', 15)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel

from llmrec.data.prepared import PreparedData
from llmrec.data.protocols.rella import RellaConfig, build_rella
from llmrec.data.protocols.tallrec import TallrecConfig, build_tallrec, few_shot_sample
from llmrec.data.protocols.trsr import TrsrConfig, build_trsr
from llmrec.data.schema import RecData
from llmrec.registry import Registry


@dataclass(frozen=True)
class Protocol:
    """A protocol: how samples are built and how they are shown to a model by default."""

    name: str
    summary: str
    kind: str  # "ctr" (one target), "ranking" (candidate lists) or "instruction" (ready prompts)
    templates: dict[str, str] = field(default_factory=dict)  # item domain -> shipped template; "*": any other
    history_k: int | None = None  # history items per prompt (None: all kept in the sample)
    config: type[BaseModel] | None = None  # builder settings (None: imported, not built)
    build: Callable[[RecData, BaseModel], PreparedData] | None = None
    time_ordered: bool = False  # samples in time order unless the folder's config says ``order``; the audit checks it
    disjoint_users: bool = False  # splits by user (no user in two splits) instead of by time; the audit checks it
    needs_ratings: bool = False  # labels are rating > threshold: implicit feedback (no ratings) is refused

    def template_for(self, domain: str) -> str:
        """The shipped template for items of ``domain`` ("movie", "book", ...)."""
        return self.templates.get(domain, self.templates["*"])


PROTOCOLS: Registry[Protocol] = Registry(
    "protocol", key="protocol",
    describe=lambda p: p.summary + ("; needs ratings" if p.needs_ratings else ""))


def register_protocol(protocol: Protocol) -> Protocol:
    """Add (or replace) a protocol under its name."""
    return PROTOCOLS.register(protocol)


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``, or a ConfigError listing the known ones."""
    return PROTOCOLS[name]


def buildable() -> list[str]:
    """Names of the protocols that ``llmrec data prepare`` builds."""
    return PROTOCOLS.names(lambda p: p.build is not None)


register_protocol(Protocol(
    "tallrec", "10-item history windows, most recent 10,000, 8:1:1 by time", "ctr",
    templates={"book": "tallrec_book", "*": "tallrec_movie"}, history_k=None, config=TallrecConfig, build=build_tallrec,
    needs_ratings=True))
# K=15: where zero-shot Vicuna-13B peaked on ML-1M in the ReLLa paper
register_protocol(Protocol(
    "rella", "history >= 5, global time split 8:1:1, full prior history kept", "ctr",
    templates={"book": "rella_book", "*": "rella_movie"}, history_k=15, config=RellaConfig, build=build_rella,
    time_ordered=True, needs_ratings=True))
register_protocol(Protocol(
    "trsr", "users with 10-25 interactions, last item target, 1:1 / 1:20 negatives; ratings or implicit feedback", "ranking",
    templates={"*": "trsr"}, history_k=None, config=TrsrConfig, build=build_trsr,
    time_ordered=True, disjoint_users=True))
register_protocol(Protocol(
    "instruction", "ready-made instruction prompts (TALLRec's released splits, llmrec data import-tallrec)",
    "instruction", templates={"*": "alpaca"}))

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
    "buildable",
    "few_shot_sample",
    "get_protocol",
    "register_protocol",
]

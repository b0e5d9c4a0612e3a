"""The two summarizers of LLM-TRSR, batched across users, on any :class:`~llmrec.llm.generation.Generator`.

* **hierarchical**: every block of every user is summarized in one round, then the summaries
  of each user are merged ``fan_in`` at a time, round after round, until one is left;
* **recurrent**: round 1 summarizes every user's first block; round t updates every user's
  summary with block t (users with fewer blocks are finished).

Each round sends all its prompts to the generator at once (it batches them by length);
prompts already in the :class:`~llmrec.summarize.cache.SummaryCache` are not generated again,
and every ``checkpoint_every`` new summaries (and about every ``checkpoint_seconds`` of generation) are
journaled, so a killed run resumes where it stopped. A history of one block gets that block's summary in both modes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmrec.errors import ConfigError
from llmrec.llm.generation import Generator
from llmrec.runs import Pace
from llmrec.summarize.cache import SummaryCache
from llmrec.summarize.plan import blocks, groups, hierarchy_levels
from llmrec.summarize.templates import SummaryTemplate


@dataclass
class Trace:
    """One history's summary and how it came about."""

    summary: str | None
    steps: list[str] = field(default_factory=list)  # every generated text, round by round
    levels: list[int] = field(default_factory=list)  # prompts per round (hierarchical) / 1 per step (recurrent)


@dataclass
class RoundStats:
    prompts: int = 0
    cached: int = 0
    generated: int = 0


class Summarizer:
    """Summaries of many histories (lists of item texts, oldest first) with a frozen model."""

    def __init__(self, generator: Generator, encode: Callable[[str], list[int]], template: SummaryTemplate,
                 cache: SummaryCache, *, mode: str = "hierarchical", block_size: int = 5, fan_in: int | None = None,
                 max_prompt_tokens: int = 1536, checkpoint_every: int = 64, checkpoint_seconds: float | None = None,
                 variables: dict[str, Any] | None = None, progress: Callable[[int], None] | None = None) -> None:
        if mode not in ("hierarchical", "recurrent"):
            raise ConfigError(f"mode: {mode!r} is not a summary mode (hierarchical, recurrent)")
        self.generator, self.encode, self.template, self.cache = generator, encode, template, cache
        self.mode, self.block_size, self.max_prompt_tokens = mode, block_size, max_prompt_tokens
        self.checkpoint_every, self.checkpoint_seconds = checkpoint_every, checkpoint_seconds
        self.variables = variables or {}
        self.progress = progress
        self.stats = RoundStats()
        self.fan_in = fan_in or self._fitting_fan_in()

    # ------------------------------------------------------------------ planning
    def _fitting_fan_in(self) -> int:
        """As many summaries per merge prompt as fit the token budget (each at most max_new_tokens)."""
        overhead = len(self.encode(self.template.prompt("merge", summaries=[], **self.variables)))
        per_summary = self.generator.config.max_new_tokens + 6  # the summary, its number and newline
        return max(2, (self.max_prompt_tokens - overhead) // per_summary)

    def prompt_count(self, histories: Sequence[Sequence[str]]) -> int:
        """How many prompts summarizing ``histories`` takes (cached ones included): the progress total."""
        counts = [len(blocks(h, self.block_size)) for h in histories]
        if self.mode == "recurrent":
            return sum(counts)
        return sum(sum(hierarchy_levels(n, self.fan_in)) for n in counts)

    # ------------------------------------------------------------------ running
    def run(self, histories: Sequence[Sequence[str]]) -> list[Trace]:
        """One :class:`Trace` per history, in input order (None summary for an empty history)."""
        traces = [Trace(None) for _ in histories]
        parts = [blocks(list(h), self.block_size) for h in histories]
        if self.mode == "hierarchical":
            current = self._round("block", [(u, dict(items=b)) for u, p in enumerate(parts) for b in p], traces)
            while any(len(s) > 1 for s in current.values()):
                merge = [(u, dict(summaries=g)) for u, s in current.items() if len(s) > 1 for g in groups(s, self.fan_in)]
                current.update(self._round("merge", merge, traces))
            for u, s in current.items():
                traces[u].summary = s[0]
            return traces
        summary: dict[int, str] = {}
        for t in range(max((len(p) for p in parts), default=0)):
            users = [u for u in range(len(parts)) if len(parts[u]) > t]
            if t == 0:
                step = self._round("block", [(u, dict(items=parts[u][0])) for u in users], traces)
            else:
                step = self._round("update", [(u, dict(summary=summary[u], items=parts[u][t])) for u in users], traces)
            summary.update({u: texts[0] for u, texts in step.items()})
        for u, text in summary.items():
            traces[u].summary = text
        return traces

    def _round(self, kind: str, jobs: list[tuple[int, dict[str, Any]]], traces: list[Trace]) -> dict[int, list[str]]:
        """One round: every (history, prompt variables) job generated together; each history's new texts, in order,
        also recorded in its trace (``levels`` gets the count of this round)."""
        texts = self._generate(kind, [v for _, v in jobs])
        out: dict[int, list[str]] = {}
        for (u, _), text in zip(jobs, texts):
            out.setdefault(u, []).append(text)
        for u, new in out.items():
            traces[u].steps.extend(new)
            traces[u].levels.append(len(new))
        return out

    def _generate(self, kind: str, jobs: list[dict[str, Any]]) -> list[str]:
        """Summaries for one round of prompts: cached ones looked up, the rest generated in journaled chunks."""
        texts = [self.template.prompt(kind, **self.variables, **job) for job in jobs]
        out: list[str | None] = [self.cache.get(t) for t in texts]
        self.stats.prompts += len(texts)
        cached = sum(o is not None for o in out)
        self.stats.cached += cached
        if self.progress and cached:
            self.progress(cached)
        missing: dict[str, list[int]] = {}
        for i, (text, got) in enumerate(zip(texts, out)):
            if got is None:
                missing.setdefault(text, []).append(i)  # the same prompt twice is generated once
        unique = list(missing)
        encoded = {}
        for text in unique:
            ids = self.encode(text)
            if len(ids) > self.max_prompt_tokens:
                raise ConfigError(f"a {kind} summary prompt has {len(ids)} tokens, over max_prompt_tokens="
                                  f"{self.max_prompt_tokens}; lower item_tokens, block_size or fan_in, or raise the budget")
            encoded[text] = ids
        pace = Pace(self.checkpoint_every, self.checkpoint_seconds)  # journaled by count and by time
        start = 0
        while start < len(unique):
            chunk = unique[start : start + pace.next()]
            start += len(chunk)
            t0 = time.perf_counter()
            generated = self.generator.generate([encoded[t] for t in chunk])
            pace.done(len(chunk), time.perf_counter() - t0)
            self.cache.put(zip(chunk, generated))
            self.stats.generated += len(chunk)
            for text, summary in zip(chunk, generated):
                for i in missing[text]:
                    out[i] = summary
                if self.progress:
                    self.progress(len(missing[text]))
        return [o if o is not None else "" for o in out]

"""``llmrec summarize``: a prepared folder in, the same folder with a ``summary`` per sample out.

Every kept sample's history (``history_items``, oldest first) becomes item texts (the summary
template's ``item``, cut to ``item_tokens`` tokens each), blocks of ``block_size`` and one
summary (:mod:`llmrec.summarize.engine`). The output keeps the schema and adds a ``summary``
column; ``limits`` keeps a seeded subset of a split (the CPU tables summarize a subset of the
training users and every test user). Beside the data:

* ``summaries.json``: mode, template, model, generation settings, block size, fan-in, the
  source folder's content hash, per-split counts, prompts generated / taken from the cache,
  generated tokens and seconds;
* ``summaries.parquet``: every sample's intermediate summaries, round by round (for reading
  them, and for the report's case studies).

``meta.json``'s config gains a ``summary`` entry (mode and ``recent_items``: the default
number of history items a recommendation prompt shows beside the summary).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from tqdm.auto import tqdm

from llmrec.data.prepared import PreparedData, check_prepared_target
from llmrec.data.sampling import sample_indices, subset_rows
from llmrec.errors import ConfigError, DataError
from llmrec.llm import LoadedModel, check_model, load_model
from llmrec.llm.fingerprint import model_fingerprint
from llmrec.llm.generation import Generator, make_generator
from llmrec.prompts.build import domain_of
from llmrec.summarize.cache import SummaryCache, digest
from llmrec.summarize.config import SummarizeConfig
from llmrec.summarize.engine import Summarizer
from llmrec.summarize.templates import SummaryTemplate, load_summary_template


def check_summarizable(prepared: PreparedData, config: SummarizeConfig) -> None:
    """Refuse folders and settings summarize cannot work with, naming what is wrong."""
    where = config.data
    if "summary" in prepared.config:
        raise DataError("this folder already holds summaries; summarize the original prepared folder", path=where)
    for name in prepared.splits:  # the footers' column names: no data is read
        if "history_items" not in prepared.column_names(name):
            raise DataError(f"split {name}: no history_items column (instruction rows have no history to summarize)",
                            path=where)
    for name, n in config.limits.items():
        if name not in prepared.splits:
            raise ConfigError(f"limits: {where} has no split {name!r} (has: {', '.join(prepared.splits)})")
        if n < 1:
            raise ConfigError(f"limits.{name}: keep at least 1 sample")


def choose_template(config: SummarizeConfig, tokenizer) -> tuple[SummaryTemplate, bool]:
    """The summary template and whether prompts are wrapped in the chat template."""
    has_chat = getattr(tokenizer, "chat_template", None) is not None
    chat = config.chat == "on" or (config.chat == "auto" and has_chat)
    if chat and not has_chat:
        raise ConfigError("chat: on, but the tokenizer has no chat template; use chat: off (a base model) or an "
                          "instruct model")
    name = config.template or ("summary_instruct" if chat else "summary_fewshot")
    return load_summary_template(name), chat


def prompt_encoder(tokenizer, chat: bool) -> Callable[[str], list[int]]:
    """Text -> token ids of a summary prompt (the user turn of the chat template when ``chat``)."""
    def encode(text: str) -> list[int]:
        if chat:
            return list(tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=True,
                                                      add_generation_prompt=True, return_dict=False))
        return list(tokenizer(text, add_special_tokens=True)["input_ids"])
    return encode


class ItemTexts:
    """Item id -> its summary text (the template's ``item``, cut to a token budget), computed once per item."""

    def __init__(self, items: pd.DataFrame, template: SummaryTemplate, tokenizer, max_tokens: int) -> None:
        self.rows = {r["item"]: r for r in items.fillna("").astype(str).to_dict("records")}
        self.template, self.tokenizer, self.max_tokens = template, tokenizer, max_tokens
        self._done: dict[str, str] = {}

    def __call__(self, item: str) -> str:
        text = self._done.get(item)
        if text is None:
            try:
                fields = self.rows[item]
            except KeyError:
                raise DataError(f"history item {item!r} is not in items.parquet", field="history_items") from None
            text = self.template.item_text(fields)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            if len(ids) > self.max_tokens:
                text = self.tokenizer.decode(ids[: self.max_tokens], skip_special_tokens=True).rstrip() + "…"
            self._done[item] = text
        return text


def kept_rows(prepared: PreparedData, config: SummarizeConfig) -> dict[str, np.ndarray]:
    """Per split the row indices kept (a seeded subset where ``limits`` names the split).

    The training split's subset is the one ``llmrec train`` draws for ``train_samples``, every other
    split's the one ``llmrec evaluate`` scores for ``limit`` (same seed, same N, same rows).
    """
    out = {}
    for name in prepared.splits:
        rows = prepared.num_rows(name)
        n = config.limits.get(name)
        n = min(n, rows) if n else None
        out[name] = (sample_indices(rows, n, config.seed) if name == "train"
                     else np.asarray(subset_rows(rows, n, config.seed), dtype=np.int64))
    return out


@dataclass(frozen=True)
class SummarizePlan:
    """What :func:`check_summarize` settled; :func:`summarize` runs from it."""

    config: SummarizeConfig
    source: PreparedData
    keep: dict[str, np.ndarray]  # per split, the rows summarized


def check_summarize(config: SummarizeConfig, *, model: bool = True) -> SummarizePlan:
    """Every cheap check of a summarize config (the folder, its splits and limits, the template, the model), before
    anything loads; returns the plan :func:`summarize` runs. The output folder is checked when it is written."""
    source = PreparedData.load(config.data)
    check_summarizable(source, config)
    if config.template is not None:
        load_summary_template(config.template)
    if model:
        check_model(config.model)
    return SummarizePlan(config, source, kept_rows(source, config))


def summarize(config: SummarizeConfig | SummarizePlan, *, loaded: LoadedModel | None = None, generator: Generator | None = None,
              log: Callable[[str], None] = print, progress: bool = True) -> tuple[Path, dict[str, Any]]:
    """Write the summarized version of ``config.data`` to ``config.out``; returns the folder and the summary.

    ``loaded`` is an already loaded model (e.g. in tests); ``generator`` replaces its generator.
    Everything cheap is checked before the model loads or anything is written. Example (LLM-TRSR's
    hierarchical summaries of a folder of ``llmrec data prepare amazon-games --protocol trsr``)::

        import llmrec

        config = llmrec.SummarizeConfig(data="prepared/amazon-games-trsr", out="prepared/amazon-games-trsr-hier",
                                        mode="hierarchical")
        folder, summary = llmrec.summarize(config)
    """
    plan = config if isinstance(config, SummarizePlan) else check_summarize(config, model=loaded is None)
    config, source = plan.config, plan.source
    check_prepared_target(config.out, source.dataset, source.protocol, config.overwrite, sources=[config.data])
    own_model = loaded is None

    t_load = time.perf_counter()
    loaded = loaded or load_model(config.model)
    load_s = time.perf_counter() - t_load
    tok = loaded.tokenizer
    template, chat = choose_template(config, tok)
    gen_config = config.generation.model_copy(update={"stop": [*template.stop, *config.generation.stop]})
    generator = generator or make_generator(loaded, gen_config)
    encode = prompt_encoder(tok, chat)
    model_key = model_fingerprint(config.model) if own_model else f"loaded:{loaded.source}"
    key = {"model": model_key, "source": loaded.source,
           "generation": gen_config.model_dump(mode="json", exclude={"batch_size", "max_batch_tokens"}), "chat": chat}
    cache = SummaryCache.for_key(key)

    keep = plan.keep
    item_text = ItemTexts(source.items, template, tok, config.item_tokens)
    histories: dict[tuple[str, ...], int] = {}  # one summary per distinct history (rows of one user share it)
    row_history: dict[str, list[int]] = {}
    for name in source.splits:
        lists = source.split(name)["history_items"].take(pa.array(keep[name])).to_pylist()  # read once, kept
        row_history[name] = [histories.setdefault(tuple(h or ()), len(histories)) for h in lists]
    unique = [[item_text(i) for i in h] for h in histories]

    singular, plural = domain_of(source.dataset)
    summarizer = Summarizer(generator, encode, template, cache, mode=config.mode, block_size=config.block_size,
                            fan_in=config.fan_in, max_prompt_tokens=config.max_prompt_tokens,
                            checkpoint_every=config.checkpoint_every, checkpoint_seconds=config.checkpoint_seconds,
                            variables={"domain": singular, "domain_plural": plural})
    total = summarizer.prompt_count(unique)
    log(f"{config.mode} summaries of {len(unique):,} histories ({sum(len(k) for k in keep.values()):,} samples): "
        f"{total:,} prompts, {len(cache):,} summaries in the cache {cache.folder}")
    tokens_before = getattr(generator, "generated_tokens", 0)
    t0 = time.perf_counter()
    with tqdm(total=total, desc=f"{config.mode} summaries", unit="prompt", disable=not progress) as bar:
        summarizer.progress = bar.update
        traces = summarizer.run(unique)
    gen_s = time.perf_counter() - t0
    tokens = getattr(generator, "generated_tokens", 0) - tokens_before

    splits, detail = {}, []
    for name in source.splits:
        rows = source.split(name).take(pa.array(keep[name]))
        texts = [traces[h].summary for h in row_history[name]]
        splits[name] = rows.append_column("summary", pa.array(texts, type=pa.string()))
        for sid, user, h in zip(rows["sample_id"].to_pylist(), rows["user"].to_pylist(), row_history[name]):
            detail.append({"split": name, "sample_id": sid, "user": user, "summary": traces[h].summary,
                           "steps": traces[h].steps, "levels": traces[h].levels, "history_items": len(unique[h])})
    settings = {"mode": config.mode, "recent_items": config.recent_items, "block_size": config.block_size,
                "template": template.name}
    finals = [t.summary for t in traces]
    summary = {
        **config.settings(), "template": template.name, "template_sha256": digest(template.text()), "chat": chat,
        "fan_in": summarizer.fan_in, "recent_items": config.recent_items, "model": loaded.source,
        "model_fingerprint": key["model"], "generation": gen_config.model_dump(mode="json"),
        "source": {"folder": str(config.data), "fingerprint": source.fingerprint()},
        "samples": {name: {"kept": int(len(keep[name])), "of": int(source.num_rows(name))} for name in keep},
        "seed": config.seed, "histories": len(unique), "prompts": summarizer.stats.prompts,
        "prompts_cached": summarizer.stats.cached, "prompts_generated": summarizer.stats.generated,
        "generated_tokens_this_session": int(tokens), "empty_summaries": int(sum(not s for s in finals if s is not None)),
        "mean_summary_words": round(float(np.mean([len(s.split()) for s in finals if s])), 1) if any(finals) else 0.0,
        "levels": _level_histogram(traces), "cache": str(cache.folder),
        "seconds": {"model_load": round(load_s, 2), "generate": round(gen_s, 2)},
    }
    notes = [*source.notes, f"summary = {config.mode} summary of the sample's history (blocks of {config.block_size}, "
             f"{template.name}, {loaded.source})"]
    limited = {n: v for n, v in summary["samples"].items() if v["kept"] < v["of"]}
    if limited:
        kept = ", ".join(f"{n} {v['kept']} of {v['of']}" for n, v in limited.items())
        notes.append(f"seeded subsets (seed {config.seed}): {kept}")
    out = PreparedData(
        dataset=source.dataset, protocol=source.protocol, splits=splits, items=source.items, users=source.users,
        sequences=source.sequences, config={**source.config, "summary": settings}, notes=notes,
        provenance={"summaries.json": summary}, attachments={"summaries.parquet": pd.DataFrame(detail)},
        recipe={"made_by": "summarize", "source": summary["source"]["fingerprint"], **config.settings(),
                "template_sha256": summary["template_sha256"], "recent_items": config.recent_items,
                "model": key["model"], "seed": config.seed, "samples": summary["samples"]},
    )
    path = out.save(config.out, overwrite=config.overwrite, sources=[config.data])
    log(f"{summarizer.stats.generated:,} summaries generated, {summarizer.stats.cached:,} from the cache, "
        f"{gen_s:.1f} s -> {path}")
    return path, summary


def _level_histogram(traces) -> dict[str, int]:
    """How many histories needed 1, 2, ... rounds."""
    out: dict[str, int] = {}
    for t in traces:
        out[str(len(t.levels))] = out.get(str(len(t.levels)), 0) + 1
    return dict(sorted(out.items()))


__all__ = ["SummarizePlan", "check_summarizable", "check_summarize", "summarize"]

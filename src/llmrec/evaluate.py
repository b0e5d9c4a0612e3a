"""``llmrec evaluate``: score a prepared split with an LLM (zero-shot) into a run folder.

>>> cfg = EvaluateConfig(data="prepared/ml-1m-rella", limit=1000)
>>> cfg.split, cfg.model.name, cfg.scoring.batch_size
('test', 'default', 8)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ConfigDict, Field
from tqdm.auto import tqdm

from llmrec.data.prepared import PreparedData
from llmrec.data.sampling import subset_rows
from llmrec.distributed import barrier, gather, launched, main_first, shard, world
from llmrec.errors import ConfigError, DataError
from llmrec.io import write_parquet
from llmrec.llm import (
    AnswerTokens,
    EncodedPrompt,
    LoadedModel,
    ModelConfig,
    Scorer,
    ScoringConfig,
    check_model,
    load_model,
    load_tokenizer,
    make_scorer,
    sharding,
)
from llmrec.metrics import (
    accuracy,
    auc,
    bootstrap_ci,
    ctr_report,
    log_loss,
    ranking_per_list,
    ranking_report,
)
from llmrec.parallel import EngineSettings, map_tasks
from llmrec.prompts.settings import PromptSettings
from llmrec.runs import RunDir

__all__ = ["EvaluateConfig", "evaluate", "select_rows", "write_results"]


class EvaluateConfig(PromptSettings):
    """Everything ``llmrec evaluate`` needs (the prompt fields come from :class:`PromptSettings`)."""

    model_config = ConfigDict(extra="forbid")

    data: str = Field(description="prepared folder (llmrec data prepare)")
    split: str = "test"
    limit: int | None = Field(None, ge=1, description="score a seeded random subset of this many samples")
    sample_seed: int = 0
    model: ModelConfig = Field(default_factory=ModelConfig)
    adapter: str | None = Field(None, description="LoRA adapter folder (llmrec train) applied to the model")
    merge_adapter: bool = Field(False, description="merge the adapter into the weights before scoring")
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    run_dir: str | None = Field(None, description="run folder (default: runs/<time>-<dataset>-<protocol>-<split>)")
    resume: bool = Field(True, description="continue an interrupted run in run_dir")
    checkpoint_every: int = Field(64, ge=1, description="prompts scored between writes of partial predictions")
    engine: EngineSettings = Field(default_factory=EngineSettings, description="local, or Ray Data workers that each "
                                   "load the model and score chunks of samples (the same predictions)")

    def identity(self, data_fingerprint: str | None = None) -> dict[str, Any]:
        """The fields that determine the predictions (a resumed run must match them).

        ``data_fingerprint`` is the content hash of the prepared folder: re-preparing it in place
        with other data makes a different run.
        """
        keep = self.model_dump(mode="json", include={"data", "split", "template", "history_k", "max_prompt_tokens",
                                                     "chat", "limit", "sample_seed", "adapter"})
        keep["model"] = self.model.model_dump(mode="json", include={"name", "gguf_file", "dtype", "revision", "backend",
                                                                   "quantize"})
        keep["head"] = self.scoring.head
        if data_fingerprint:
            keep["data_fingerprint"] = data_fingerprint
        return keep


def select_rows(table, limit: int | None, seed: int) -> list[int]:
    """All row indices of ``table``, or a seeded random subset of ``limit`` of them (in table order)."""
    return subset_rows(table.num_rows, limit, seed)


def check_evaluate(config: EvaluateConfig, *, model: bool = True, adapter: bool = True) -> PreparedData:
    """Every cheap check of an evaluate config (data, split, template, model, adapter, device),
    before anything is loaded or written; returns the prepared data."""
    prepared = PreparedData.load(config.data)
    table = prepared.split(config.split)
    if table.num_rows == 0:
        raise DataError(f"{config.data}: split {config.split!r} is empty")
    config.check_template(prepared)
    if config.merge_adapter and not config.adapter:
        raise ConfigError("merge_adapter (--merge) needs an adapter (--adapter) to merge")
    if model:
        check_model(config.model, config.adapter if adapter else None)
    if config.engine.kind != "local" and launched():
        raise ConfigError("engine.kind: ray inside accelerate launch / torchrun: use one of the two (Ray workers, or "
                          "launched processes), not both")
    return prepared


def evaluate(config: EvaluateConfig, *, loaded: LoadedModel | None = None, scorer: Scorer | None = None, log=print,
             progress: bool = True) -> tuple[Path, dict]:
    """Score the split, write the run folder, return (folder, metrics).

    ``loaded`` skips loading the model (its tokenizer renders the prompts); ``scorer`` replaces
    the backend's scorer (any :class:`~llmrec.llm.Scorer`). Everything cheap (data, split,
    template, model, adapter, device) is checked before the run folder is created. Example (zero-shot, the
    default model, 200 seeded test samples)::

        import llmrec

        folder, result = llmrec.evaluate(llmrec.EvaluateConfig(data="prepared/ml-100k-tallrec", limit=200))
        result["metrics"]["auc"]
    """
    prepared = check_evaluate(config, model=loaded is None)
    table = prepared.split(config.split)
    rows_idx = select_rows(table, config.limit, config.sample_seed)
    protocol, dataset = prepared.protocol, prepared.dataset
    # the main process names, creates or checks the folder; under a launcher the others get the same RunDir
    run, finished = main_first(lambda: RunDir.open(
        config.run_dir or Path("runs") / RunDir.default_name(dataset, protocol, config.split),
        config.model_dump(mode="json"), config.identity(prepared.fingerprint()), resume=config.resume, log=log))
    if finished is not None:
        return run.path, finished

    t_load = time.perf_counter()
    if loaded is None and config.engine.kind != "local":  # the workers load the model; here it renders prompts
        loaded = load_tokenizer(config.model, adapter=config.adapter)
    elif loaded is None:
        loaded = load_model(config.model, adapter=config.adapter, merge=config.merge_adapter)
    load_s = time.perf_counter() - t_load
    tok = loaded.tokenizer
    renderer = config.renderer(prepared, tok, config.split, loaded.max_context)
    ranking = renderer.kind == "ranking"
    columns = [c for c in renderer.columns if c in table.column_names]
    rows = table.select(columns).take(rows_idx).to_pylist()
    template, chat, history_k, budget, render = (renderer.template, renderer.chat, renderer.history_k,
                                                 renderer.max_tokens, renderer.render)

    answer = AnswerTokens.for_renderer(renderer, rows[0])
    if config.engine.kind == "local":
        scorer = scorer or make_scorer(loaded, answer, config.scoring)

    done = run.done()
    per_row = len(rows[0]["candidates"]) if ranking else 1
    total = sum(len(r["candidates"]) if ranking else 1 for r in rows)
    pending = [r for r in rows if _keys(r, ranking)[0] not in done or _keys(r, ranking)[-1] not in done]
    if done:
        log(f"resuming {run.path}: {len(done)} of {total} prompts already scored")
    # under a launcher each process scores its block of every chunk and the main process writes them all;
    # a model with sharded parameters (ZeRO-3, FSDP) runs its forwards in lockstep, so every process scores all
    w = world()
    spread = w.size if w.size > 1 and not (hasattr(loaded.model, "modules") and sharding(loaded.model)) else 1
    bar = tqdm(total=total, initial=total - sum(len(r["candidates"]) if ranking else 1 for r in pending),
               desc=f"scoring {dataset}/{config.split}", unit="prompt", disable=not progress or not w.main)
    t0 = time.perf_counter()
    scored_now, token_count = 0, 0
    step = max(1, config.checkpoint_every // per_row)
    if config.engine.kind != "local":  # Ray workers score chunks of the same size; each finished chunk is appended
        chunks = [pending[i : i + step] for i in range(0, len(pending), step)]
        for _, records in map_tasks(chunks, _chunk_scorer(config), config.engine):
            run.append(records)
            bar.update(len(records))
            scored_now += len(records)
            token_count += sum(r["tokens"] for r in records)
    else:
        for start in range(0, len(pending), step * spread):
            chunk = pending[start : start + step * spread]
            mine = shard(chunk, w) if spread > 1 else chunk
            records = _score_rows(mine, render, scorer, ranking, bar.update)
            if spread > 1:
                parts = gather(records)
                bar.update(sum(map(len, parts)) - len(records))
                records = [r for part in parts for r in part]
            if w.main:
                run.append(records)
            scored_now += len(records)
            token_count += sum(r["tokens"] for r in records)
    bar.close()
    elapsed = time.perf_counter() - t0
    barrier()

    done = run.done()
    facts = {
        "model": loaded.source, "adapter": config.adapter, "device": str(loaded.device or f"{config.engine.kind} workers"),
        "dtype": str(loaded.dtype or config.model.dtype).removeprefix("torch."),
        "template": template.name, "chat_template": chat, "answer_tokens": [answer.yes_text, answer.no_text],
        "history_k": history_k, "max_prompt_tokens": budget, "samples": len(rows), "prompts": total,
        "mean_prompt_tokens": float(np.mean([done[k]["tokens"] for k in done])),
        "prompts_with_history_cut": int(sum(done[k]["history_kept"] < min(done[k]["history_total"], history_k or 10**9)
                                            for k in done)),
        "model_load_s": round(load_s, 2), "scoring_s_this_session": round(elapsed, 2),
        "prompts_per_s_this_session": round(scored_now / elapsed, 3) if scored_now and elapsed > 0 else None,
        "tokens_per_s_this_session": round(token_count / elapsed, 1) if scored_now and elapsed > 0 else None,
    }
    if w.size > 1:
        facts["processes"] = w.size
    if config.engine.kind != "local":
        facts["engine"] = {"kind": config.engine.kind, "workers": config.engine.workers}

    def finish() -> dict:
        metrics, plots = write_results(run, rows, done, ranking, f"{dataset}/{protocol}/{config.split}")
        result = {"dataset": dataset, "protocol": protocol, "split": config.split, "metrics": metrics, "run": facts,
                  "plots": plots}
        run.finish(result)
        return result

    return run.path, main_first(finish)


def _chunk_scorer(config: EvaluateConfig):
    """A worker factory for :func:`llmrec.parallel.map_tasks`: loads data and model once per worker, then
    scores chunks of rows exactly as the local loop does (same chunks, same batches, same scores)."""

    def make():
        prepared = PreparedData.load(config.data)
        loaded = load_model(config.model, adapter=config.adapter, merge=config.merge_adapter)
        renderer = config.renderer(prepared, loaded.tokenizer, config.split, loaded.max_context)
        scorers: list[Scorer] = []

        def work(rows: list[dict]) -> list[dict]:
            if not scorers:
                scorers.append(make_scorer(loaded, AnswerTokens.for_renderer(renderer, rows[0]), config.scoring))
            return _score_rows(rows, renderer.render, scorers[0], renderer.kind == "ranking", None)

        return work

    return make


def _score_rows(rows: list[dict], render, scorer: Scorer, ranking: bool, progress) -> list[dict]:
    """Score ``rows``: one record (key, score, prompt length, history kept) per prompt."""
    if not rows:
        return []
    groups = render(rows)
    prompts = [EncodedPrompt(p.context_ids, p.candidate_ids) for g in groups for p in g]
    scores = scorer.score(prompts, progress=progress)
    records, k = [], 0
    for row, group in zip(rows, groups):
        for key, p in zip(_keys(row, ranking), group):
            records.append({"key": key, "score": float(scores[k]), "tokens": len(p),
                            "history_kept": p.history_kept, "history_total": p.history_total})
            k += 1
    return records


def _keys(row: dict, ranking: bool) -> list[str]:
    if ranking:
        return [f"{row['sample_id']}:{j}" for j in range(len(row["candidates"]))]
    return [str(row["sample_id"])]


def write_results(run: RunDir, rows: list[dict], done: dict, ranking: bool, title: str) -> tuple[dict, list[str]]:
    """Write predictions.parquet and the plots of a finished scoring; return (metrics with 95% intervals, plots).

    ``done`` maps each key (``sample_id``, or ``sample_id:j`` for candidate ``j`` of a ranking row) to
    ``{"score": ...}``. Shared by every scorer that writes a run folder (LLMs and baselines).
    """
    from llmrec.plots import ctr_plots, rank_plot

    if ranking:
        recs = []
        for r in rows:
            for j, (cand, lab) in enumerate(zip(r["candidates"], r["labels"])):
                recs.append({"sample_id": r["sample_id"], "user": r["user"], "candidate": cand, "label": int(lab),
                             "score": done[f"{r['sample_id']}:{j}"]["score"]})
        preds = pd.DataFrame(recs)
        width = len(rows[0]["candidates"])
        scores = preds["score"].to_numpy().reshape(len(rows), width)
        labels = preds["label"].to_numpy().reshape(len(rows), width)
        metrics = ranking_report(scores, labels, ks=(1, 3, 5, 10))
        per_list = ranking_per_list(scores, labels, ks=(3, 5, 10), metrics=("recall", "mrr", "ndcg"))
        intervals = {key: bootstrap_ci(np.mean, rows) for key, rows in per_list.items()}
        users = _bootstrap_users(np.array([r["user"] for r in rows], dtype=object))  # one per list, in list order
        by_user = {key: bootstrap_ci(np.mean, rows, groups=users) for key, rows in per_list.items()} if users is not None else {}
        pos_rank = 1 + (scores > scores[labels == 1][:, None]).sum(axis=1)
        plots = rank_plot(pos_rank, width, run.path / "plots", title)
    else:
        preds = pd.DataFrame({"sample_id": [r["sample_id"] for r in rows], "user": [r.get("user") for r in rows],
                              "item": [r.get("item") for r in rows], "label": [int(r["label"]) for r in rows],
                              "score": [done[str(r["sample_id"])]["score"] for r in rows]})
        metrics = ctr_report(preds["label"].to_numpy(), preds["score"].to_numpy())
        y, x = preds["label"].to_numpy(), preds["score"].to_numpy()
        fns = (("auc", auc), ("logloss", log_loss), ("acc", accuracy))
        intervals = {name: bootstrap_ci(fn, y, x) for name, fn in fns}
        users = _bootstrap_users(preds["user"].to_numpy())
        by_user = {name: bootstrap_ci(fn, y, x, groups=users) for name, fn in fns} if users is not None else {}
        metrics["positive_rate"] = float(preds["label"].mean())
        metrics["mean_score"] = float(preds["score"].mean())
        plots = ctr_plots(preds["label"].to_numpy(), preds["score"].to_numpy(), run.path / "plots", title)
    write_parquet(run.path / "predictions.parquet", preds)
    metrics["ci95"] = {k: [round(lo, 6), round(hi, 6)] for k, (lo, hi) in intervals.items()}
    if by_user:  # samples of one user are not independent: the interval resampling whole users, often much wider
        metrics["ci95_by_user"] = {k: [round(lo, 6), round(hi, 6)] for k, (lo, hi) in by_user.items()}
        metrics["users"] = int(len(set(users)))
    return metrics, plots


def _bootstrap_users(users: np.ndarray) -> np.ndarray | None:
    """The user of each sample (or list) when resampling users differs from resampling samples: every sample has a
    user, there are at least two, and some user has several samples; else None.

    >>> _bootstrap_users(np.array(["a", "a", "b"])).tolist(), _bootstrap_users(np.array(["a", "b"]))
    (['a', 'a', 'b'], None)
    """
    if pd.isna(users).any():
        return None
    users = np.asarray([str(u) for u in users])
    distinct = len(set(users.tolist()))
    return users if 2 <= distinct < len(users) else None

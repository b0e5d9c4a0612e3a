"""``llmrec baseline``: train a classic model on a prepared folder's training split and score its
test split into the same run-folder format as ``llmrec evaluate`` (CTR models: a probability
per sample; sequential models: a score per candidate of each list).

Layout of the run folder (beside config.yaml, predictions.parquet, metrics.json, plots/)::

    model/features.json   the vocabularies (ids -> integers)
    model/item_text.json  with item_text: the frozen item vectors' size, fingerprint and content hash
    model/best.pt         the selected weights (best validation)
    model/checkpoint.pt   the last checkpoint (removed when the run finishes)
    training.json         validation history, selected step, timings
    train_samples.json    the training rows: split, seed of the draw, row indices and sample ids

The training rows are the split's rows, or the same seeded subset ``llmrec train`` draws for
``train_samples`` (:func:`llmrec.data.sampling.sample_indices`); the test rows are the same
seeded subset ``llmrec evaluate`` scores for ``test.limit``, so the rows line up with the LLM
runs for ``llmrec compare --paired``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from llmrec.baselines.config import BaselineConfig
from llmrec.baselines.features import CtrFeatures
from llmrec.baselines.itemtext import ITEM_TEXT_FILE, check_item_text, load_item_text
from llmrec.baselines.models import BASELINES, build_model
from llmrec.baselines.sequences import Instances, SeqFeatures
from llmrec.baselines.tasks import CtrTask, RankingTask, predict, predict_ranking
from llmrec.baselines.trainer import fit
from llmrec.data.kinds import KINDS, SampleKind, detect
from llmrec.data.prepared import PreparedData, open_prepared
from llmrec.data.sampling import TRAIN_SAMPLES_FILE, sample_indices, subset_rows, training_rows_record
from llmrec.errors import ConfigError, DataError
from llmrec.io import read_json, write_json
from llmrec.results import rows_columns, write_results
from llmrec.runs import RunDir, machine_info, run_cost
from llmrec.tracking import start_tracking

__all__ = ["run_baseline", "check_baseline", "load_baseline", "BaselinePlan", "BaselineScorer", "build_features",
           "build_task", "scored_test_rows"]


@dataclass(frozen=True)
class BaselinePlan:
    """What the checks settled: the data, the history length and the validation metric; :func:`run_baseline`
    runs from it."""

    prepared: PreparedData
    history_len: int
    metric: str
    kind: SampleKind  # the samples the baseline reads (its spec's kind)
    config: BaselineConfig
    item_vectors: str | None = None  # the fingerprint of the item_text vectors (None: no item_text)


def check_baseline(config: BaselineConfig, *, opened: dict[str, PreparedData] | None = None) -> BaselinePlan:
    """Every cheap check before anything is written; returns the plan :func:`run_baseline` runs (``opened``: the
    prepared folders this command opened already, by path)."""
    spec = BASELINES[config.model]
    prepared = open_prepared(config.data, opened)
    kind = KINDS[spec.kind]
    for name in {config.split, config.valid.split, *([config.test.split] if config.test.enabled else [])}:
        if prepared.num_rows(name) == 0:
            raise DataError(f"{config.data}/{name}.parquet: the split is empty")
        found = detect(prepared.column_names(name))
        if found is not kind:
            others = ", ".join(BASELINES.names(lambda s, found=found: s.kind == found.name)) or "none"
            raise DataError(f"{config.data}/{name}.parquet: {config.model} is a baseline for {kind.name} samples "
                            f"and needs {kind.summary}; this is a {found.name} folder (baselines for it: {others})")
    n = prepared.num_rows(config.split)
    if config.train_samples and config.train_samples > n:
        raise ConfigError(f"train_samples: cannot draw {config.train_samples} samples from {config.data}/"
                          f"{config.split}, which has {n}")
    spec.check_params({**spec.defaults, **config.params})
    if spec.history_stats and prepared.config.get("label_threshold") is None:
        raise DataError(f"{config.data}: {config.model} reads history features, which need the folder's "
                        "label_threshold (the 'liked' cut of its protocol); this folder has none")
    config.tracking.check()
    metric = config.valid.metric or kind.default_metric
    kind.check_metric(metric, "valid.metric")
    history_len = config.history_len if config.history_len is not None else spec.history_len
    if history_len is None:
        history_len = CtrFeatures.kept_history(prepared, config.split)
    reads_history = spec.history_len is None or spec.history_len > 0
    if reads_history and history_len < 1:
        raise ConfigError(f"history_len: {config.model} reads the history; give it at least 1 item")
    item_vectors = None
    if config.item_text is not None:
        if not spec.item_text:
            readers = ", ".join(BASELINES.names(lambda s: s.item_text))
            raise ConfigError(f"item_text: {config.model} does not read item vectors (the models that do: {readers})")
        item_vectors = check_item_text(prepared, config.item_text)
    return BaselinePlan(prepared, history_len, metric, kind, config, item_vectors)


def scored_test_rows(prepared: PreparedData, config: BaselineConfig) -> np.ndarray:
    """The test rows a baseline run scores: the seeded subset ``llmrec evaluate`` scores for ``test.limit``."""
    return np.asarray(subset_rows(prepared.num_rows(config.test.split), config.test.limit, config.test.sample_seed))


def build_features(plan: BaselinePlan, config: BaselineConfig, *, log: Callable[[str], None] = print,
                   progress: bool = True) -> CtrFeatures | SeqFeatures:
    """The vocabularies and lookup tables of the plan's folder (with the history features where the model reads
    them; with ``item_text``, the frozen item vectors: read from the encoding cache, or encoded)."""
    family = FAMILIES[plan.kind.name].features
    if BASELINES[config.model].history_stats:
        features = family.build(plan.prepared, plan.history_len, history_stats=True)
    else:
        features = family.build(plan.prepared, plan.history_len)
    if config.item_text is not None:
        features.item_text = load_item_text(plan.prepared, features.items, config.item_text,
                                            fingerprint=plan.item_vectors, log=log, progress=progress)
    return features


def build_task(plan: BaselinePlan, config: BaselineConfig, features, train_rows: np.ndarray,
               valid_rows: np.ndarray) -> tuple[CtrTask | RankingTask, str]:
    """The training task and a line describing it."""
    return FAMILIES[plan.kind.name].task(plan, config, features, train_rows, valid_rows)


def _ctr_task(plan: BaselinePlan, config: BaselineConfig, features: CtrFeatures, train_rows: np.ndarray,
              valid_rows: np.ndarray) -> tuple[CtrTask, str]:
    train = features.split(plan.prepared, config.split, train_rows)
    valid = features.split(plan.prepared, config.valid.split, valid_rows)
    return (CtrTask(features, train, valid, plan.metric),
            f"{len(train):,} training samples, {len(valid):,} validation samples, history "
            f"{plan.history_len} items (from the {train.source})")


def _ranking_task(plan: BaselinePlan, config: BaselineConfig, features: SeqFeatures, train_rows: np.ndarray,
                  valid_rows: np.ndarray) -> tuple[RankingTask, str]:
    prepared = plan.prepared
    train = features.split(prepared, config.split, train_rows)
    valid = features.split(prepared, config.valid.split, valid_rows)
    if BASELINES[config.model].inputs == "interactions":
        others = [features.split(prepared, name) for name in dict.fromkeys(
            [config.valid.split, *([config.test.split] if config.test.enabled else [])]) if name != config.split]
        users, items = features.interactions(train, others)
        zeros = np.zeros(len(users), dtype=np.int64)
        instances = Instances(users, zeros, zeros, items, np.zeros(0, dtype=np.int64))
        line = (f"{len(instances):,} input interactions (the {len(train):,} training sequences and the histories "
                f"of {', '.join(f'{len(o):,}' for o in others)} evaluation users), {len(valid):,} validation lists")
    else:
        instances = features.instances(train)
        line = (f"{len(instances):,} next-item instances from {len(train):,} training sequences, {len(valid):,} "
                f"validation lists, history {plan.history_len} items")
    return RankingTask(features, instances, valid, plan.metric), line


@dataclass(frozen=True)
class Family:
    """How baselines of one sample kind are fed and scored."""

    features: type  # .build(prepared, history_len) -> the vocabularies and lookup tables
    task: Callable[..., tuple[Any, str]]  # (plan, config, features, train_rows, valid_rows) -> (task, line)
    predict: Callable[..., np.ndarray]  # (model, features, split) -> a score per sample, or per candidate of a list


FAMILIES: dict[str, Family] = {"ctr": Family(CtrFeatures, _ctr_task, predict),
                               "ranking": Family(SeqFeatures, _ranking_task, predict_ranking)}


def run_baseline(config: BaselineConfig | BaselinePlan, *, log: Callable[[str], None] = print,
                 progress: bool = True) -> tuple[Path, dict[str, Any]]:
    """Train, select on validation, score the test split, write the run folder; return (folder, result).

    Example (a floor trained on the same 64 samples as a 64-shot LoRA run)::

        import llmrec

        config = llmrec.BaselineConfig(model="popularity", data="prepared/ml-100k-tallrec", train_samples=64)
        folder, result = llmrec.baseline(config)
        result["metrics"]["auc"]
    """
    plan = config if isinstance(config, BaselinePlan) else check_baseline(config)
    config = plan.config
    prepared, spec = plan.prepared, BASELINES[config.model]
    dataset, protocol = prepared.dataset, prepared.protocol
    default = Path("runs") / RunDir.default_name("baseline", config.model, dataset, protocol)
    identity = config.identity(prepared.fingerprint(), plan.item_vectors)
    run, finished = RunDir.open(config.run_dir or default, config.model_dump(mode="json"), identity,
                                resume=config.resume, log=log)
    tracking = start_tracking(config.tracking, run.path, command="baseline", identity=identity,
                              tags={"llmrec.dataset": dataset, "llmrec.protocol": protocol,
                                    "llmrec.baseline": config.model}, log=log)
    if finished is not None:
        tracking.finish(finished, curves=baseline_curves(run.path), metrics=_summary(finished),
                        artifacts=BASELINE_ARTIFACTS)
        return run.path, finished
    t0 = time.perf_counter()
    features = build_features(plan, config, log=log, progress=progress)
    seed = config.sample_seed if config.sample_seed is not None else config.seed
    train_rows = sample_indices(prepared.num_rows(config.split), config.train_samples, seed)
    write_json(run.path / TRAIN_SAMPLES_FILE, training_rows_record(prepared, config.split, train_rows, seed))
    valid_rows = np.asarray(subset_rows(prepared.num_rows(config.valid.split), config.valid.limit,
                                        config.valid.sample_seed))
    task, line = build_task(plan, config, features, train_rows, valid_rows)
    prep_s = time.perf_counter() - t0
    log(f"{config.model}: {line}")

    torch.manual_seed(config.seed)
    model = build_model(config.model, features, config.params)
    model_dir = run.path / "model"
    features.save(model_dir / "features.json")
    if features.item_text is not None:
        features.item_text.save(model_dir / ITEM_TEXT_FILE)
    t1 = time.perf_counter()
    state = fit(model, task, config.train, model_dir, seed=config.seed, log=log, progress=progress,
                report=tracking.log_metrics if tracking else None)
    train_s = time.perf_counter() - t1
    params = sum(p.numel() for p in model.parameters())
    described = features.describe()
    if hasattr(task, "train") and hasattr(task.train, "source"):
        described["history_source"] = task.train.source
    training = {"model": config.model, "library": spec.library, "kind": plan.kind.name, "parameters": int(params),
                "features": described, "train_samples": len(train_rows), "train_instances": len(task),
                "valid_samples": len(valid_rows), "selected_step": state.best_step, "valid_metric": plan.metric,
                f"valid_{plan.metric}": state.best, "steps": state.global_step, "history": state.history,
                "losses": state.losses,
                "prepare_s": round(prep_s, 2), "train_s": round(train_s, 2),
                "train_samples_per_s": round(state.global_step * config.train.batch_size / train_s, 1)
                if state.global_step and train_s > 0 else None}
    write_json(run.path / "training.json", training)
    result: dict[str, Any] = {"dataset": dataset, "protocol": protocol, "split": config.test.split,
                              "baseline": config.model, "training": {k: v for k, v in training.items()
                                                                     if k not in ("history", "losses")}}
    if config.test.enabled:
        family = FAMILIES[plan.kind.name]
        scorer = BaselineScorer.for_split(model, features, family.predict, prepared, config.test.split,
                                          name=config.model)
        names = prepared.column_names(config.test.split)
        cols = rows_columns(scorer, names)
        rows = prepared.split(config.test.split, columns=cols).take(scored_test_rows(prepared, config).tolist()).to_pylist()
        t2 = time.perf_counter()
        done = {r["key"]: r["score"] for r in scorer.score_rows(rows, plan.kind)}
        score_s = time.perf_counter() - t2
        metrics, plots = write_results(run, rows, done, plan.kind, f"{config.model} {dataset}/"
                                       f"{protocol}/{config.test.split}", segmenter=prepared.segmenter())
        result.update(metrics=metrics, plots=plots, run={"samples": len(rows), "prompts": len(done)},
                      cost=run_cost(train_s=train_s, scoring_s=score_s, samples=len(rows), prompts=len(done),
                                    device=_device(model)))
    else:
        result["metrics"] = {}
        result["cost"] = {"train_s": round(train_s, 3), "device": _device(model), "machine": machine_info()}
    (model_dir / "checkpoint.pt").unlink(missing_ok=True)
    run.finish(result)
    tracking.finish(result, curves=baseline_curves(run.path), metrics=_summary(result), artifacts=BASELINE_ARTIFACTS)
    return run.path, result


def _device(model: torch.nn.Module) -> str | None:
    """The device a model's weights are on (None: a model without weights)."""
    first = next(iter(model.parameters()), None)
    return str(first.device) if first is not None else None


# the files of a baseline run sent as artifacts by trackers (besides config.yaml and metrics.json)
BASELINE_ARTIFACTS = ["training.json", "predictions.parquet", "plots", "model/features.json"]


def baseline_curves(run: Path) -> list[tuple[int, dict[str, float]]]:
    """The curves of a baseline run folder (``training.json``: the loss of each step, the validation history) as
    ``(step, {train/loss, valid/<metric>})`` points for trackers."""
    try:
        training = read_json(Path(run) / "training.json")
    except DataError:
        return []
    points: dict[int, dict[str, float]] = {}
    for step, loss in enumerate(training.get("losses") or [], 1):
        points[step] = {"train/loss": float(loss)}
    for h in training.get("history") or []:
        if isinstance(h, dict) and isinstance(h.get("step"), int):
            points.setdefault(h["step"], {}).update({f"valid/{k}": float(v) for k, v in h.items() if k not in (
                "step", "epoch", "best") and isinstance(v, (int, float)) and not isinstance(v, bool)})
    return sorted(points.items())


def _summary(result: dict[str, Any]) -> dict[str, float]:
    """A baseline result's training facts as ``train_summary/<fact>`` numbers (the selected validation value too)."""
    return {f"train_summary/{k}": float(v) for k, v in (result.get("training") or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


@dataclass
class BaselineScorer:
    """A trained classic model over sample rows (a :class:`llmrec.results.SampleScorer`).

    :meth:`score_rows` turns row dicts into a table with the prepared split's schema, into the family's arrays
    (``from_table``), and scores them with the family's batched predict. ``llmrec baseline`` scores its test split
    through it, and ``llmrec.evaluate(plan, scorer=BaselineScorer.from_run(run_dir))`` scores a split with a
    finished run, so LLMs and classic models end in the same ``write_results``.

    >>> import torch
    >>> from llmrec.baselines.features import CtrFeatures, Vocab
    >>> from llmrec.data.kinds import KINDS
    >>> class Half(torch.nn.Module):  # a "model" that scores every sample 0.5
    ...     def scores(self, batch):
    ...         return torch.full((len(batch),), 0.5)
    >>> feats = CtrFeatures(Vocab(["i1", "i2"]), Vocab(["u1"]), Vocab([]), Vocab(["4.0"]), np.zeros(4, np.int64),
    ...                     {}, {}, None, history_len=2)
    >>> schema = pa.schema([("sample_id", pa.int64()), ("user", pa.string()), ("item", pa.string()),
    ...                     ("label", pa.int64()), ("history_items", pa.list_(pa.string())),
    ...                     ("history_ratings", pa.list_(pa.float64()))])
    >>> from llmrec.baselines.tasks import predict
    >>> scorer = BaselineScorer(Half(), feats, predict, schema)
    >>> scorer.columns
    ('sample_id', 'user', 'item', 'label', 'history_items', 'history_ratings')
    >>> scorer.score_rows([{"sample_id": 3, "user": "u1", "item": "i2", "label": 1, "history_items": ["i1"],
    ...                     "history_ratings": [4.0]}], KINDS["ctr"])
    [{'key': '3', 'score': 0.5}]

    ``schema``: the prepared split's schema of the columns the features read (rows are typed by it);
    ``source``: where CTR histories come from (None: decided from the rows scored, as ``from_table`` does).
    """

    model: torch.nn.Module
    features: Any  # CtrFeatures or SeqFeatures
    predict: Callable[..., np.ndarray]  # (model, features, split) -> a score per sample, or per candidate
    schema: pa.Schema
    source: str | None = None
    name: str = "baseline"

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.schema.names)

    @property
    def history_len(self) -> int:
        """History items the model reads at most (the newest)."""
        return self.features.history_len

    @classmethod
    def for_split(cls, model: torch.nn.Module, features: Any, predict: Callable[..., np.ndarray], prepared,
                  split: str, *, source: str | None = None, name: str = "baseline") -> BaselineScorer:
        """A scorer reading the columns of ``prepared``'s ``split`` that the features read (typed by its schema;
        histories read from the rows, ``source="samples"``, need no pointer into the chronology)."""
        schema = prepared.schema(split)
        wanted = [c for c in features.COLUMNS if not (source == "samples" and c == "history_end")]
        fields = [schema.field(c) for c in wanted if c in schema.names]
        return cls(model, features, predict, pa.schema(fields), source, name)

    @classmethod
    def from_run(cls, run_dir: str | Path, source: str | None = None) -> BaselineScorer:
        """A finished ``llmrec baseline`` run's model (selected weights) as a scorer: scores the rows of the run's
        test split exactly as the run did (its CTR histories come from where the run's test pass took them).
        ``source="samples"`` reads every history from the rows scored instead (``llmrec serve``: a request carries
        its history)."""
        model, features, config = load_baseline(run_dir)
        plan = check_baseline(config)
        family = FAMILIES[plan.kind.name]
        if source is None and config.test.enabled and hasattr(features, "history_source"):
            names = plan.prepared.column_names(config.test.split)
            cols = [c for c in ("history_items", "history_end") if c in names]
            table = plan.prepared.split(config.test.split, columns=cols).take(
                scored_test_rows(plan.prepared, config).tolist())
            source = features.history_source(table)
        return cls.for_split(model, features, family.predict, plan.prepared, config.test.split, source=source,
                             name=f"{config.model} ({run_dir})")

    def score_rows(self, rows: list[dict[str, Any]], kind: SampleKind,
                   progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
        """One record (key, score) per prompt key of each row, in order."""
        if not rows:
            return []
        missing = [c for c in self.columns if c not in rows[0]]
        if missing:
            raise DataError(f"{self.name}: the rows lack column{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(missing)} (the model reads {', '.join(self.columns)})")
        table = pa.Table.from_pylist(rows, schema=self.schema)
        split = self.features.from_table(table, f"{self.name}: the rows scored", source=self.source)
        scores = np.asarray(self.predict(self.model, self.features, split)).ravel()
        keys = [key for row in rows for key in kind.keys(row)]
        if len(keys) != len(scores):
            raise DataError(f"{self.name}: {len(scores)} scores for {len(keys)} prompts")
        if progress is not None:
            progress(len(keys))
        return [{"key": key, "score": float(s)} for key, s in zip(keys, scores)]


def load_baseline(run_dir: str | Path) -> tuple[torch.nn.Module, CtrFeatures | SeqFeatures, BaselineConfig]:
    """A finished baseline run's model (selected weights), its features and its config: scores again
    exactly what the run scored."""
    needed = ("config.yaml", "model/best.pt", "model/features.json")
    missing = [name for name in needed if not (Path(run_dir) / name).is_file()]
    if missing:
        raise DataError(f"not a finished llmrec baseline run ({', '.join(missing)} missing)", path=run_dir,
                        hint="give the run folder of a finished `llmrec baseline`")
    run = RunDir(run_dir)
    raw = {k: v for k, v in run.read_config().items() if not k.startswith("_") and k != "tracking"}  # scoring: untracked
    config = BaselineConfig.model_validate(raw)
    plan = check_baseline(config)
    features = build_features(plan, config, log=lambda m: None, progress=False)
    if not features.same_vocabularies(run.path / "model" / "features.json"):
        raise DataError(f"{config.data}: its ids differ from the ones {run_dir} was trained on")
    if features.item_text is not None:
        features.item_text.check_saved(run.path / "model" / ITEM_TEXT_FILE, run_dir)
    model = build_model(config.model, features, config.params)
    state = torch.load(run.path / "model" / "best.pt", map_location="cpu", weights_only=False)["model"]
    model.load_state_dict(state)
    model.eval()
    return model, features, config

"""Every config file shipped in configs/ must load into its typed config."""

from pathlib import Path

import pytest

from llmrec.configfile import load_config
from llmrec.data.prepare import PrepareConfig

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs" / "data").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_data_config_loads(path):
    cfg = load_config(PrepareConfig, path)
    assert cfg.protocol in path.name


def test_configs_exist():
    assert len(CONFIGS) >= 4


TALLREC = sorted(p for p in (Path(__file__).resolve().parents[1] / "configs" / "tallrec").glob("*-*.yaml")
                 if "table" not in p.name)


@pytest.mark.parametrize("path", TALLREC, ids=lambda p: p.name)
def test_tallrec_configs_load(path):
    from llmrec.evaluate import EvaluateConfig
    from llmrec.train import TrainConfig

    if "zeroshot" in path.name:
        cfg = load_config(EvaluateConfig, path)
        assert cfg.adapter is None
    else:
        cfg = load_config(TrainConfig, path)
        assert cfg.train_samples == int(path.stem.split("-")[1])
        assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout) == (8, 16, 0.05)
    assert ("ml-100k" in cfg.data) == path.name.startswith("movie")


RELLA_SUITES = sorted((Path(__file__).resolve().parents[1] / "configs" / "rella").glob("*.yaml"))


@pytest.mark.parametrize("path", [p for p in RELLA_SUITES if "\nrows:" in p.read_text()], ids=lambda p: p.name)
def test_rella_experiments_and_every_row_config_load(path):
    """Each experiment validates, and each row's config (with the row's overrides) loads into its typed config."""
    from llmrec.experiments import load_experiment, plan_experiment
    from llmrec.prompts import load_template

    load_experiment(path)
    for run in plan_experiment(path, "/tmp/llmrec-rella-plan"):  # every step resolves ("@k5") and validates
        cfg = run.config
        if run.step.kind == "retrieve":
            assert cfg.data == "prepared/ml-1m-rella" and f"{cfg.k}" in run.step.name
            continue
        assert "ml-1m" in cfg.data or cfg.data == str(run.upstream[0].folder)
        if run.step.kind == "baseline":  # the model-free floors of the curves, on the same 2,000 samples
            assert cfg.model == "history_rate" and cfg.test.limit == 2000
            continue
        if cfg.template:
            load_template(cfg.template)
        if path.name == "gpu-table.yaml":  # the paper's scale: Vicuna-13B on a GPU, K = 30, the whole test split
            assert cfg.model.device == "cuda" and "vicuna-13b" in cfg.model.name and cfg.history_k == 30
            assert (cfg.test.limit if run.step.kind == "train" else cfg.limit) is None
            if run.step.kind == "train":
                assert cfg.train_samples == (4096 if run.step.name == "half-n" else 8192)
                assert cfg.template == "rella_movie" and cfg.selection.limit == 1000
            continue
        if run.step.kind == "train":
            assert cfg.test.limit == 2000 and cfg.selection.split == "valid"
        else:
            assert cfg.limit == 2000 and cfg.sample_seed == 0


BASELINE_FILES = sorted((Path(__file__).resolve().parents[1] / "configs" / "baselines").glob("*.yaml"))


@pytest.mark.parametrize("path", BASELINE_FILES, ids=lambda p: p.name)
def test_baseline_configs_and_experiments_load(path):
    """Baseline configs load and name a registered model; experiments validate, every row's config
    (with the row's overrides) loads, and params are accepted by the model."""
    from llmrec.baselines.config import BaselineConfig
    from llmrec.baselines.models import BASELINES
    from llmrec.experiments import load_experiment

    if "\nrows:" in path.read_text():
        experiment = load_experiment(path)
        for row in experiment.steps:
            cfg = load_config(BaselineConfig, path.parent / row.source, row.set)
            spec = BASELINES[cfg.model]
            assert ("ml-1m" if spec.kind == "ctr" else "trsr") in cfg.data
            assert row.name.split("-")[0] == cfg.model
            if spec.kind == "ranking":
                assert all(m.partition("@")[0] in ("recall", "mrr", "ndcg", "hit") for m in experiment.metrics)
    else:
        cfg = load_config(BaselineConfig, path)
        assert cfg.model in BASELINES
        BASELINES[cfg.model].check_params({**BASELINES[cfg.model].defaults, **cfg.params})


def test_tallrec_table_baseline_rows_use_the_llm_rows_draws():
    from llmrec.baselines.config import BaselineConfig
    from llmrec.experiments import load_experiment
    from llmrec.train import TrainConfig

    path = Path(__file__).resolve().parents[1] / "configs" / "tallrec" / "table.yaml"
    experiment = load_experiment(path)
    rows = [r for r in experiment.steps if r.kind == "baseline"]
    floors = [r for r in rows if r.name.endswith("history_rate")]  # no model: no draw, the whole test split
    assert len(rows) == 18 + len(floors) and len(floors) == 2
    for row in rows:
        cfg = load_config(BaselineConfig, path.parent / row.source, row.set)
        if row in floors:
            llm = load_config(TrainConfig, path.parent / f"{row.name.split('-')[0]}-256.yaml")
            assert (cfg.model, cfg.data, cfg.test.limit) == ("history_rate", llm.data, llm.test.limit)
            continue
        domain, model, n = row.name.split("-")
        llm = load_config(TrainConfig, path.parent / f"{domain}-{n}.yaml")
        assert (cfg.model, cfg.train_samples, cfg.data) == (model, int(n), llm.data)
        assert cfg.valid.limit == llm.selection.limit and cfg.test.limit == llm.test.limit


TRSR_FILES = sorted((Path(__file__).resolve().parents[1] / "configs" / "trsr").rglob("*.yaml"))


@pytest.mark.parametrize("path", TRSR_FILES, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_trsr_configs_load(path):
    """LLM-TRSR: summarize configs, experiments (every row's config with its overrides), train and evaluate configs."""
    from llmrec.evaluate import EvaluateConfig
    from llmrec.experiments import load_experiment
    from llmrec.summarize import SummarizeConfig, load_summary_template
    from llmrec.train import TrainConfig

    dataset = "mind-trsr" if "mind" in path.parts else "amazon-games-trsr"
    if path.name.startswith("summarize"):
        cfg = load_config(SummarizeConfig, path)
        assert cfg.mode in path.name.replace("hier", "hierarchical").replace("rec", "recurrent")
        assert cfg.data.endswith(dataset) and cfg.out.startswith(cfg.data) and cfg.block_size == 5
        if cfg.template:
            load_summary_template(cfg.template)
    elif "\nrows:" in path.read_text():
        from llmrec.experiments import plan_experiment

        experiment = load_experiment(path)
        plan = plan_experiment(path, "/tmp/llmrec-plan-check")  # every step resolves ("@hier") and validates
        assert {r.step.name for r in plan} == {r.name for r in experiment.steps}
        for run in plan:
            cfg = run.config
            assert dataset in cfg.data or (run.upstream and cfg.data == str(run.upstream[0].folder))
            if run.step.kind == "train":
                assert cfg.selection.metric_for("ranking").startswith(("mrr@", "recall@"))
                if run.step.name in ("ft-hier", "ft-rec"):
                    assert cfg.data == str(next(u.folder for u in run.upstream))
        assert experiment.paper is not None and set(experiment.paper.values) <= {r.name for r in experiment.steps}
    else:
        cls = EvaluateConfig if "zeroshot" in path.name else TrainConfig
        cfg = load_config(cls, path)
        assert dataset in cfg.data
        if cls is TrainConfig:
            assert cfg.lora.r == 8 and ("nosummary" in path.name) == cfg.data.endswith(dataset)  # others: summaries


@pytest.mark.parametrize("name", ["table.yaml", "gpu-table.yaml"])
def test_tallrec_tables_plan(name, tmp_path):
    """The CPU and GPU TALLRec tables: every step resolves and validates (nothing runs)."""
    from llmrec.experiments import plan_experiment

    plan = plan_experiment(Path(__file__).resolve().parents[1] / "configs" / "tallrec" / name, tmp_path)
    assert {r.step.name for r in plan} >= {"movie-256", "book-256", "movie-256-on-book"}
    if name.startswith("gpu"):
        llm = [r for r in plan if r.step.kind in ("train", "evaluate")]
        assert all(r.config.model.device == "cuda" and "7b" in r.config.model.name.lower() for r in llm)


def test_quickstart_experiment_plans():
    from llmrec.experiments import plan_experiment

    root = Path(__file__).resolve().parents[1]
    plan = plan_experiment(root / "configs" / "quickstart.yaml", "/tmp/llmrec-quick-plan")
    kinds = [r.step.kind for r in plan]
    assert kinds == ["prepare", "evaluate", "train", "baseline", "baseline", "baseline"]
    tests = [r.config.limit if r.step.kind == "evaluate" else r.config.test.limit for r in plan
             if r.step.kind in ("evaluate", "train", "baseline")]
    assert set(tests) == {200}  # every arm on the same 200 seeded test samples


HYBRID_FILES = sorted(p for p in (Path(__file__).resolve().parents[1] / "configs" / "hybrid").glob("*.yaml")
                      if "\nsteps:" in p.read_text())


@pytest.mark.parametrize("path", HYBRID_FILES, ids=lambda p: p.name)
def test_hybrid_experiments_plan(path, tmp_path):
    """The hybrid experiments: every step resolves and validates, a stack fits on the validation rows its LLM
    input scored and is tested on the LLM's test rows, and every paired row names steps of the file."""
    from llmrec.experiments import load_experiment, plan_experiment

    experiment = load_experiment(path)
    plan = plan_experiment(path, tmp_path)
    names = {r.name for r in experiment.steps}
    assert {r.step.name for r in plan} == names
    assert experiment.paper is not None and set(experiment.paper.values) <= names
    assert all(p.a in names and p.b in names for p in experiment.paired)
    runs = {str(r.folder): r for r in plan}  # a stack's "@step" inputs are resolved to the steps' folders
    if path.name.startswith("gpu"):  # the paper-scale file: every LLM row on the GPU with the 7B model
        llm = [r for r in plan if r.step.kind in ("train", "evaluate")]
        assert llm and all(r.config.model.device == "cuda" and "7b" in r.config.model.name.lower() for r in llm)
        assert {r.config.train_samples for r in llm if r.step.kind == "train"} == {8192, 65536}
    for run in plan:
        if run.step.kind != "stack":
            continue
        cfg = run.config
        for item in cfg.inputs:
            if item.valid is None:
                continue
            valid, test = runs[item.valid].config, runs[item.test].config
            assert (valid.split, valid.limit) == (cfg.valid.split, cfg.valid.limit)
            scored = test.test if hasattr(test, "selection") else test
            assert (scored.split, scored.limit) == (cfg.test.split, cfg.test.limit)

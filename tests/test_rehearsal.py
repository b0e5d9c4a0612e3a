"""The CPU rehearsal of every shipped GPU experiment (``llmrec run FILE --rehearse``): the real files, end to end,
with tiny random models of the same architectures, on small samples of the real data sets.

A change that breaks a step, a row, a pair, a curve or the report of a GPU experiment fails here, on a CPU, not
after an hour on a rented GPU.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from llmrec.cli.app import main
from llmrec.experiments import load_experiment
from llmrec.experiments.rehearsal import Rehearsal, rehearsed_experiment
from llmrec.experiments.steps import STEP_KINDS
from tests.conftest import REPO, shared_data_dir

CONFIGS = REPO / "configs"
# every experiment file meant for a GPU: the ones rehearsed below (a new one must join the list)
GPU_EXPERIMENTS = ["rella/gpu-table.yaml", "rella/gpu-grid.yaml", "tallrec/gpu-table.yaml", "trsr/gpu/table.yaml",
                   "hybrid/gpu-ml1m.yaml"]


def _experiment_files() -> list[Path]:
    files = []
    for path in sorted(CONFIGS.rglob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict) and ("rows" in data or "steps" in data):
            files.append(path)
    return files


def _names_a_gpu(path: Path) -> bool:
    """The file, or a step config it names, runs a model on cuda (or the file is named for a GPU)."""
    if "gpu" in str(path.relative_to(CONFIGS)):
        return True
    experiment = load_experiment(path)
    texts = [path.read_text()] + [str(step.config_data(path)) for step in experiment.steps]
    return any("cuda" in text for text in texts)


def test_every_gpu_experiment_is_rehearsed():
    found = sorted(str(p.relative_to(CONFIGS)) for p in _experiment_files() if _names_a_gpu(p))
    assert found == sorted(GPU_EXPERIMENTS)


def test_every_step_kind_has_rehearsal_settings():
    assert {name for name, kind in STEP_KINDS.items() if kind.rehearse is None} == set()


# ------------------------------------------------------------------ the transform, without data
def test_a_rehearsal_keeps_the_file_and_shrinks_its_sizes(tmp_path):
    file = CONFIGS / "tallrec/gpu-table.yaml"
    real = load_experiment(file)
    logs: list[str] = []
    rehearsal = Rehearsal(models=tmp_path / "models", log=logs.append, texts=["Yes No"])
    rehearsed = rehearsed_experiment(real, rehearsal, experiment_file=file, extra=("optim.learning_rate=0.001",))
    assert rehearsed.name == "tallrec-gpu-table-rehearsal" and "noise" in rehearsed.description
    assert [s.name for s in rehearsed.steps] == [s.name for s in real.steps]
    assert [s.kind for s in rehearsed.steps] == [s.kind for s in real.steps]
    assert rehearsed.paired == real.paired and rehearsed.paper == real.paper
    tiny = str(tmp_path / "models" / "llama")  # Llama-2-7B: a tiny LLaMA
    for step in rehearsed.steps:
        data = step.source
        assert isinstance(data, dict) and step.set == []
        assert data["model"]["name"] == tiny and data["model"]["device"] == "cpu"
        assert data["model"]["dtype"] == "bfloat16"  # the file's dtype: the bfloat16 path runs on the CPU
        if step.kind == "train":
            assert data["train_samples"] <= 16 and data["optim"]["epochs"] == 1.0
            assert data["selection"]["limit"] <= 24 and data["test"]["limit"] == 24
            assert data["optim"]["learning_rate"] == 1e-3  # --set applies before the rehearsal
            assert step.seeds == [0, 1]
        else:
            assert data["limit"] == 24
    assert json.loads((Path(tiny) / "config.json").read_text())["model_type"] == "llama"
    assert any("building a tiny random llama model" in m for m in logs)


def test_each_model_becomes_a_tiny_model_of_its_own_architecture(tmp_path):
    logs: list[str] = []
    r = Rehearsal(models=tmp_path, log=logs.append, texts=["Yes No"])
    assert r.model({"name": "lmsys/vicuna-13b-v1.5"})["name"] == str(tmp_path / "llama")
    assert r.model({"name": "default", "backend": "vllm", "quantize": "int8"}) == {
        "name": str(tmp_path / "gemma3_text"), "device": "cpu", "gguf_file": None, "backend": "transformers"}
    assert r.model({"name": "someone/unknown-model"})["name"] == str(tmp_path / "llama")
    assert any("someone/unknown-model is not known here; a tiny LLaMA stands in" in m for m in logs)
    # an encoder that would be a download becomes a tiny LLM encoder; a vector file stays
    assert r.encoder({"kind": "sentence-transformers", "model": {"name": "all-MiniLM-L6-v2"}})["model"]["name"] \
        == str(tmp_path / "llama")
    assert r.encoder({"kind": "file", "path": "v.parquet"}) == {"kind": "file", "path": "v.parquet"}


def test_a_smoke_run_keeps_the_files_models_and_devices_with_50_samples():
    file = CONFIGS / "rella/gpu-table.yaml"
    smoke = rehearsed_experiment(load_experiment(file), Rehearsal.smoke(log=lambda m: None), experiment_file=file)
    assert smoke.name == "rella-gpu-table-smoke"
    for step in smoke.steps:
        model = step.source.get("model") or step.source["encoder"]["model"]
        assert model == {"name": "lmsys/vicuna-13b-v1.5", "device": "cuda", "dtype": "bfloat16"}
        if step.kind == "train":
            assert step.source["train_samples"] == 50 and step.source["test"]["limit"] == 50
            assert step.source["optim"]["batch_size"] == 4 and step.source["optim"]["grad_accum"] == 2
            assert step.seeds is None or len(step.seeds) == 1


def test_a_smoke_run_stops_at_the_device_check_on_a_cpu(workspace, monkeypatch, tmp_path):
    """With the data in place (the workspace), the only check a smoke run of a cuda file fails here is the device."""
    monkeypatch.chdir(workspace)
    file = CONFIGS / "rella/gpu-table.yaml"
    result = CliRunner().invoke(main, ["run", str(file), "--smoke", "--dry-run", "--out", str(tmp_path / "smoke")])
    assert result.exit_code != 0, result.output
    reasons = [ln.strip() for ln in result.output.splitlines() if ln.strip().startswith("would fail:")]
    assert reasons and all("cuda" in r.lower() for r in reasons), result.output
    assert not (tmp_path / "smoke").exists()


def test_a_rehearsal_never_runs_in_the_real_experiments_folder(tmp_path):
    out = tmp_path / "runs" / "tallrec-gpu-table"
    (out / ".steps").mkdir(parents=True)
    (out / ".steps" / "@experiment.json").write_text(json.dumps({"experiment": "tallrec-gpu-table"}))
    result = CliRunner().invoke(main, ["run", str(CONFIGS / "tallrec/gpu-table.yaml"), "--rehearse", "--out", str(out),
                                       "--dry-run"])
    assert result.exit_code != 0
    assert "holds the experiment 'tallrec-gpu-table', not 'tallrec-gpu-table-rehearsal'" in result.output
    result = CliRunner().invoke(main, ["run", str(CONFIGS / "tallrec/gpu-table.yaml"), "--rehearse", "--track", "mlflow"])
    assert result.exit_code != 0 and "a rehearsal logs to no tracker" in result.output


# ------------------------------------------------------------------ end to end, on the real data sets
@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A working folder (as the repository's root) holding the prepared folders the GPU experiments name, from the real data sets (seconds),
    and ReLLa's K=10 SUBR folder made by `llmrec retrieve` with a tiny encoder (as reit-256.yaml's header says)."""
    from llmrec.data.prepare import PrepareConfig, prepare
    from llmrec.llm.tiny import build_tiny_model
    from llmrec.retrieval import RetrievalConfig, retrieve

    root = shared_data_dir()
    if not root.exists():
        if os.environ.get("LLMREC_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"shared data required but not found at {root}")
        pytest.skip(f"no shared data at {root}")
    work = tmp_path_factory.mktemp("rehearsal")
    (work / "configs").symlink_to(CONFIGS)  # the files name configs/... from the repository's root, where they run
    for dataset, protocol in (("ml-1m", "rella"), ("ml-100k", "tallrec"), ("bookcrossing", "tallrec"),
                              ("amazon-games", "trsr")):
        prepare(PrepareConfig(dataset=dataset, protocol=protocol, data_root=str(root),
                              out=str(work / "prepared" / f"{dataset}-{protocol}")), log=lambda m: None)
    encoder = build_tiny_model("llama", work / "tiny-encoder", ["Toy Story (1995) Animation|Comedy"])
    retrieve(RetrievalConfig(data=str(work / "prepared/ml-1m-rella"), out=str(work / "prepared/ml-1m-rella-subr10"),
                             k=10, encoder={"model": {"name": str(encoder), "device": "cpu"}}),
             log=lambda m: None, progress=False)
    return work


@pytest.mark.parametrize("name", GPU_EXPERIMENTS)
def test_the_gpu_experiment_runs_end_to_end_on_the_cpu(name, workspace, monkeypatch):
    monkeypatch.chdir(workspace)
    file = CONFIGS / name
    real = load_experiment(file)
    out = workspace / "runs" / f"{real.name}-rehearsal"  # the default folder of a rehearsal
    result = CliRunner().invoke(main, ["run", str(file), "--rehearse"])
    assert result.exit_code == 0, result.output[-3000:]
    table = json.loads((out / "table.json").read_text())
    assert table["suite"] == f"{real.name}-rehearsal"
    assert list(table["rows"]) == [s.name for s in real.steps if s.in_table]  # every row, none skipped
    for row in table["rows"].values():  # every row finished with a metric value
        assert all(v.get("mean") is not None for v in row.values() if isinstance(v, dict) and "mean" in v)
    assert {(p["a"], p["b"]) for p in table["paired"]} == {(p.a, p.b) for p in real.paired}
    for curve in real.curves:
        assert (out / f"{curve.name}.png").is_file()
    assert (out / "report.html").is_file() and (out / "report.md").is_file()
    # every language model ran tiny, on the CPU, at the file's dtype
    for config in out.rglob("config.yaml"):
        model = (yaml.safe_load(config.read_text()) or {}).get("model")
        if isinstance(model, dict):
            assert Path(model["name"]).resolve().parent == (out / ".rehearsal" / "models").resolve()
            assert model["device"] == "cpu"


def _doc_value(text: str) -> tuple[float, float]:
    """A number as a page shows it and the half unit of its last digit ("14.5" -> (14.5, 0.05))."""
    decimals = len(text.split(".")[1]) if "." in text else 0
    return float(text), 0.5 * 10 ** -decimals


# the settings the runbook plans a file with (as its header says to run it)
RUNBOOK_SETTINGS = {"rella/gpu-grid.yaml": ("test.limit=null",)}


@pytest.mark.parametrize("name", GPU_EXPERIMENTS)
def test_the_runbook_shows_each_gpu_experiments_plan(name, workspace, monkeypatch):
    """docs/gpu-runbook.md lists every GPU experiment with the peak memory and hours `llmrec plan` gives on one H100
    for the real prepared data (to the digits shown, within 3%)."""
    from llmrec.experiments.resources import plan_file, totals

    monkeypatch.chdir(workspace)
    page = (REPO / "docs" / "gpu-runbook.md").read_text()
    line = next((ln for ln in page.splitlines() if ln.startswith("| ") and f"`configs/{name}`" in ln), None)
    assert line is not None, f"configs/{name} is not in the runbook's table"
    cells = [c.strip() for c in line.strip("|").split("|")]
    peak, hours = cells[3].removesuffix(" GiB"), cells[4].split(" ")[0]
    plan = totals(plan_file(CONFIGS / name, "h100", overrides=RUNBOOK_SETTINGS.get(name, ())))
    for shown, planned in ((peak, plan["peak_gib"]), (hours, plan["hours"])):
        value, half_unit = _doc_value(shown)
        assert abs(value - planned) <= half_unit + 0.03 * planned, (name, shown, planned)

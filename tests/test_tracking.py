"""Experiment tracking (docs/tracking.md): runs logged to MLflow (a SQLite store in a temporary folder, read back
with MLflow's client) and TensorBoard (event files read back with TensorBoard's EventAccumulator)."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
import yaml

pytest.importorskip("mlflow")
pytest.importorskip("sqlalchemy")
pytest.importorskip("tensorboard")

from mlflow.tracking import MlflowClient  # noqa: E402

from llmrec.baselines.config import BaselineConfig  # noqa: E402
from llmrec.baselines.run import run_baseline  # noqa: E402
from llmrec.errors import ConfigError  # noqa: E402
from llmrec.evaluate import EvaluateConfig, evaluate  # noqa: E402
from llmrec.experiments import run_experiment  # noqa: E402
from llmrec.tracking import TrackingError  # noqa: E402
from tests.tiny_models import tiny_loaded  # noqa: E402

QUIET = dict(progress=False, log=lambda m: None)


@pytest.fixture
def here(tmp_path, monkeypatch):
    """Work in a temporary folder (MLflow's default store and artifacts land there), with no tracking URI set."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def _scalars(folder) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _runs(client: MlflowClient, experiment: str):
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no MLflow experiment {experiment!r}"
    return {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}


def _artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for a in client.list_artifacts(run_id, path):
        found |= _artifacts(client, run_id, a.path) if a.is_dir else {a.path}
    return found


def test_an_experiment_is_tracked_to_mlflow_and_tensorboard(here, tiny_ml1m, tiny_model_folder):
    uri = f"sqlite:///{here / 'store' / 'mlflow.db'}"
    (here / "store").mkdir()
    model = {"name": str(tiny_model_folder), "device": "cpu"}
    exp = {
        "name": "toy-tracked", "metrics": ["auc"],
        "tracking": {"mlflow": True, "tensorboard": True, "uri": uri},
        "steps": [
            {"name": "data", "prepare": {"dataset": "ml-1m", "protocol": "tallrec", "path": str(tiny_ml1m),
                                         "tallrec": {"history_len": 5, "max_samples": 300}}},
            {"name": "zeroshot", "evaluate": {"data": "@data", "limit": 20, "model": model}},
            {"name": "lora", "train": {"data": "@data", "train_samples": 8, "model": model,
                                       "optim": {"max_steps": 3, "batch_size": 4},
                                       "selection": {"limit": 12, "every_steps": 2}, "test": {"limit": 20}}},
            {"name": "floor", "baseline": {"model": "logreg", "data": "@data", "test": {"limit": 20},
                                           "train": {"epochs": 2, "batch_size": 64}}},
        ]}
    (here / "exp.yaml").write_text(yaml.safe_dump(exp))
    out = here / "out"
    logs: list[str] = []
    run_experiment(here / "exp.yaml", out, log=logs.append, progress=False)
    assert not any(m.startswith("warning") for m in logs), logs

    client = MlflowClient(uri)
    runs = _runs(client, "toy-tracked")  # the experiment's name files every run
    names = {f"{out}", f"{out}/zeroshot", f"{out}/lora/seed-0", f"{out}/floor/seed-0"}
    assert set(runs) == names  # one MLflow run per run folder, named after it; the prepare step is no run
    parent = runs[str(out)]
    for name in names - {str(out)}:
        assert runs[name].data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert runs[name].info.status == "FINISHED"

    # evaluate: the resolved config (nested keys flattened), metrics with their intervals, the folder's files
    zs = runs[f"{out}/zeroshot"]
    metrics = json.loads((out / "zeroshot" / "metrics.json").read_text())["metrics"]
    assert zs.data.params["limit"] == "20" and zs.data.params["model.name"] == str(tiny_model_folder)
    assert zs.data.params["data"] == str(out / "data") and "tracking.mlflow" not in zs.data.params
    assert zs.data.metrics["auc"] == pytest.approx(metrics["auc"])
    assert [zs.data.metrics["auc_ci_low"], zs.data.metrics["auc_ci_high"]] == pytest.approx(metrics["ci95"]["auc"])
    assert zs.data.metrics["auc_ci_user_low"] == pytest.approx(metrics["ci95_by_user"]["auc"][0])
    assert {"config.yaml", "metrics.json", "predictions.parquet", "plots/roc.png"} <= _artifacts(client, zs.info.run_id)
    assert zs.data.tags["llmrec.command"] == "evaluate" and zs.data.tags["llmrec.protocol"] == "tallrec"

    # train: curves with their step numbers (loss per step, validation per evaluation), test metrics, files
    lora = runs[f"{out}/lora/seed-0"]
    result = json.loads((out / "lora" / "seed-0" / "metrics.json").read_text())
    loss = client.get_metric_history(lora.info.run_id, "train/loss")
    assert [m.step for m in loss] == [1, 2, 3]
    log_history = json.loads((out / "lora" / "seed-0" / "train_log.json").read_text())
    assert [m.value for m in loss] == pytest.approx([h["loss"] for h in log_history if "loss" in h])
    valid = client.get_metric_history(lora.info.run_id, "valid/auc")
    evaluations = result["selection"]["evaluations"]
    assert [m.step for m in valid] == [e["step"] for e in evaluations] == [0, 2]
    assert [m.value for m in valid] == pytest.approx([e["auc"] for e in evaluations])
    assert lora.data.metrics["auc"] == pytest.approx(result["metrics"]["auc"])
    assert lora.data.metrics["valid_best/auc"] == pytest.approx(result["selection"]["best"]["auc"])
    assert lora.data.params["optim.max_steps"] == "3" and lora.data.params["lora.target_modules"] == '["q_proj", "v_proj"]'
    assert lora.data.params["seed"] == "0"
    files = _artifacts(client, lora.info.run_id)
    assert {"config.yaml", "metrics.json", "selection.json", "train_log.json", "test/predictions.parquet"} <= files
    assert not any(f.startswith(("adapter", "checkpoints")) for f in files)  # weights stay in the run folder

    # baseline: the per-step loss and the validation curve
    floor = runs[f"{out}/floor/seed-0"]
    training = json.loads((out / "floor" / "seed-0" / "training.json").read_text())
    floor_loss = client.get_metric_history(floor.info.run_id, "train/loss")
    assert [m.step for m in floor_loss] == list(range(1, training["steps"] + 1))
    floor_valid = client.get_metric_history(floor.info.run_id, "valid/auc")
    assert [m.step for m in floor_valid] == [h["step"] for h in training["history"]]
    assert [m.value for m in floor_valid] == pytest.approx([h["auc"] for h in training["history"]])
    assert "training.json" in _artifacts(client, floor.info.run_id)

    # the experiment's own run: the table's values and files, the report (llmrec run adds it; here the table)
    assert parent.data.metrics["lora/auc"] == pytest.approx(result["metrics"]["auc"])
    assert {"table.md", "table.json"} <= _artifacts(client, parent.info.run_id)

    # TensorBoard: event files in the train and baseline run folders
    scalars = _scalars(out / "lora" / "seed-0" / "tensorboard")
    assert [s for s, _ in scalars["train/loss"]] == [1, 2, 3] and [s for s, _ in scalars["valid/auc"]] == [0, 2]
    assert scalars["auc"][0][1] == pytest.approx(result["metrics"]["auc"])
    assert "train/loss" in _scalars(out / "floor" / "seed-0" / "tensorboard")

    # run again: everything is done, nothing is logged twice
    run_experiment(here / "exp.yaml", out, **QUIET)
    again = _runs(client, "toy-tracked")
    assert set(again) == names
    assert len(client.get_metric_history(lora.info.run_id, "train/loss")) == 3
    assert len(_scalars(out / "lora" / "seed-0" / "tensorboard")["train/loss"]) == 3
    # nothing of the tracking was written outside the store's folder and the run folders
    assert not (here / "mlflow.db").exists()


def test_tracking_off_writes_nothing_and_a_finished_run_is_logged_later(here, tallrec_data):
    cfg = EvaluateConfig(data=str(tallrec_data), limit=16, run_dir=str(here / "run"))
    _, first = evaluate(cfg, loaded=tiny_loaded("llama"), **QUIET)
    assert sorted(p.name for p in here.iterdir()) == sorted(["ml-1m.zip", "tallrec", "run"])
    assert not (here / "run" / "tensorboard").exists()
    # tracking turned on later: the finished folder is logged (nothing is scored again) to the default store
    logs: list[str] = []
    tracked = cfg.model_copy(update={"tracking": {"mlflow": True, "tensorboard": True}})
    tracked = EvaluateConfig.model_validate(tracked.model_dump())
    _, again = evaluate(tracked, loaded=tiny_loaded("llama"), progress=False, log=logs.append)
    assert again == first and any("is finished" in m for m in logs)
    assert (here / "mlflow.db").is_file()  # MLflow's default: sqlite:///mlflow.db in the current folder
    client = MlflowClient("sqlite:///mlflow.db")
    (run,) = _runs(client, "llmrec-evaluate").values()  # no experiment: llmrec-<command>
    assert run.info.run_name == str(here / "run") and run.data.metrics["auc"] == pytest.approx(first["metrics"]["auc"])
    assert _scalars(here / "run" / "tensorboard")["auc"][0][1] == pytest.approx(first["metrics"]["auc"])
    # and once only
    evaluate(tracked, loaded=tiny_loaded("llama"), **QUIET)
    assert len(_runs(client, "llmrec-evaluate")) == 1


def test_a_missing_package_is_one_line_naming_the_extra(here, tallrec_data, monkeypatch):
    from click.testing import CliRunner

    from llmrec.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    cfg = EvaluateConfig(data=str(tallrec_data), limit=8, run_dir=str(here / "run"), tracking={"mlflow": True})
    with pytest.raises(ConfigError, match=r"tracking.mlflow: needs mlflow, not installed; pip install 'llmrec\[tracking\]'"):
        evaluate(cfg, **QUIET)
    assert not (here / "run").exists()  # refused before the run folder exists
    result = CliRunner().invoke(main, ["evaluate", "-d", str(tallrec_data), "--limit", "8", "--track", "mlflow"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: tracking.mlflow: needs mlflow, not installed; pip install 'llmrec[tracking]'"]


def test_a_tracking_server_that_is_down_costs_a_warning_not_the_run(here, tallrec_data, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    cfg = EvaluateConfig(data=str(tallrec_data), limit=8, run_dir=str(here / "run"), tracking={"mlflow": True})
    logs: list[str] = []
    _, result = evaluate(cfg, loaded=tiny_loaded("llama"), progress=False, log=logs.append)
    assert (here / "run" / "metrics.json").is_file() and "auc" in result["metrics"]
    warnings = [m for m in logs if m.startswith("warning: tracking: mlflow at http://127.0.0.1:9 failed")]
    assert len(warnings) == 1 and "\n" not in warnings[0], logs
    strict = EvaluateConfig(data=str(tallrec_data), limit=8, run_dir=str(here / "strict"),
                            tracking={"mlflow": True, "strict": True})
    with pytest.raises(TrackingError, match="tracking: mlflow at http://127.0.0.1:9 failed to start the run"):
        evaluate(strict, loaded=tiny_loaded("llama"), **QUIET)


def test_a_run_killed_and_resumed_is_one_mlflow_run_with_each_step_once(here, tallrec_data, monkeypatch):
    uri = f"sqlite:///{here / 'mlflow.db'}"

    def config(folder):
        return BaselineConfig.model_validate({
            "model": "logreg", "data": str(tallrec_data), "run_dir": str(folder), "seed": 0,
            "train": {"epochs": 3, "batch_size": 32, "checkpoint_every": 2},
            "tracking": {"mlflow": True, "tensorboard": True, "uri": uri}})

    real = torch.optim.Adam.step
    calls = {"n": 0}

    def dying_step(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 10:  # after the checkpoint at step 8: step 9 is trained again after the resume
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        run_baseline(config(here / "cut"), **QUIET)
    monkeypatch.setattr(torch.optim.Adam, "step", real)
    client = MlflowClient(uri)
    (killed,) = _runs(client, "llmrec-baseline").values()
    assert killed.info.status == "RUNNING"  # killed: the points sent so far (the newest may still be buffered)
    # sent points (a fast machine may still hold them all in the buffer: none) stop at the step that died
    assert max((m.step for m in client.get_metric_history(killed.info.run_id, "train/loss")), default=0) <= 9
    _, result = run_baseline(config(here / "cut"), **QUIET)
    (run,) = _runs(client, "llmrec-baseline").values()  # the same MLflow run, continued
    assert run.info.run_id == killed.info.run_id and run.info.status == "FINISHED"
    training = json.loads((here / "cut" / "training.json").read_text())
    loss = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train/loss"))
    assert [s for s, _ in loss] == list(range(1, result["training"]["steps"] + 1))  # each step once, none lost
    assert [v for _, v in loss] == pytest.approx(training["losses"])
    valid = sorted(m.step for m in client.get_metric_history(run.info.run_id, "valid/auc"))
    assert valid == [h["step"] for h in training["history"]]
    # TensorBoard hides the killed attempt's points from the resumed step on: each step shows once
    tb = [s for s, _ in _scalars(here / "cut" / "tensorboard")["train/loss"]]
    assert tb == list(range(1, result["training"]["steps"] + 1))


def test_llmrec_run_track_logs_the_table_and_the_report(here, tiny_ml1m):
    from click.testing import CliRunner

    from llmrec.cli import main

    exp = {"name": "cli-tracked", "metrics": ["auc"],
           "steps": [{"name": "data", "prepare": {"dataset": "ml-1m", "protocol": "tallrec", "path": str(tiny_ml1m),
                                                  "tallrec": {"history_len": 5, "max_samples": 200}}},
                     {"name": "floor", "baseline": {"model": "logreg", "data": "@data", "train": {"epochs": 1}}}]}
    (here / "exp.yaml").write_text(yaml.safe_dump(exp))
    result = CliRunner().invoke(main, ["run", "exp.yaml", "--out", "out", "--track", "mlflow"])
    assert result.exit_code == 0, result.output
    client = MlflowClient("sqlite:///mlflow.db")
    runs = _runs(client, "cli-tracked")
    assert set(runs) == {"out", "out/floor/seed-0"}
    assert {"table.md", "table.json", "report.md", "report.html"} <= _artifacts(client, runs["out"].info.run_id)
    assert "floor/auc" in runs["out"].data.metrics
    assert runs["out/floor/seed-0"].data.params["model"] == "logreg"
    assert not (here / "out" / "floor" / "seed-0" / "tensorboard").exists()  # only the trackers asked for

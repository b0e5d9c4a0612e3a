"""Experiments end to end with a tiny model saved as a local folder (loaded by path)."""

import json

import pytest
import yaml

from llmrec.data.prepare import PrepareConfig, prepare
from llmrec.errors import ConfigError
from llmrec.experiments import ExperimentConfig, load_experiment, run_experiment


def test_experiment_runs_steps_and_tabulates_mean_and_std(tmp_path, tiny_ml1m, tiny_model_folder):
    data = prepare(PrepareConfig(dataset="ml-1m", protocol="tallrec", path=str(tiny_ml1m), out=str(tmp_path / "d"),
                                 tallrec={"history_len": 5, "max_samples": 300}), log=lambda m: None)[1]
    model = {"name": str(tiny_model_folder), "device": "cpu"}
    (tmp_path / "zs.yaml").write_text(yaml.safe_dump({"data": str(data), "limit": 30, "model": model}))
    (tmp_path / "tr.yaml").write_text(yaml.safe_dump({
        "data": str(data), "train_samples": 8, "model": model, "optim": {"max_steps": 1, "batch_size": 8},
        "selection": {"enabled": False}, "test": {"limit": 30}}))
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump({
        "name": "toy", "metrics": ["auc"],
        "paper": {"label": "paper", "scale": 100, "values": {"shots": 60.0}},
        "rows": [{"name": "zero", "evaluate": "zs.yaml"},
                 {"name": "shots", "train": "tr.yaml", "seeds": [0, 1]},
                 {"name": "transfer", "evaluate": "zs.yaml", "adapters_from": "shots"}],
        "curves": [{"name": "auc-vs-n", "xlabel": "N", "series": {"tiny": {"zero": 0, "shots": 8}},
                    "references": {"transfer": "transfer"}}]}))
    out = tmp_path / "out"
    logs = []
    table = run_experiment(tmp_path / "suite.yaml", out, log=logs.append, progress=False)
    aucs = [json.loads((out / "shots" / f"seed-{s}" / "metrics.json").read_text())["metrics"]["auc"] for s in (0, 1)]
    row = table["rows"]["shots"]
    assert row["runs"] == 2 and row["auc"]["values"] == aucs and row["paper"] == {"auc": 0.6}
    assert table["rows"]["zero"]["runs"] == 1 and table["rows"]["transfer"]["runs"] == 2
    md = (out / "table.md").read_text()
    assert "| row | runs | auc | paper auc |" in md and "paper columns: paper." in md
    assert "| shots | 2 |" in md and "0.6000" in md and " ± " in md.split("| shots | 2 |")[1].splitlines()[0]
    zero = json.loads((out / "zero" / "metrics.json").read_text())["metrics"]
    lo, hi = zero["ci95_by_user"]["auc"]  # the toy users hold several samples each: users are resampled
    assert f"| zero | 1 | {zero['auc']:.4f} [{lo:.3f}, {hi:.3f}]† |" in md  # one run: its value and interval
    assert "| row | runs | auc |" in md
    assert table["curves"] == ["auc-vs-n.png"] and (out / "auc-vs-n.png").stat().st_size > 0
    assert "![auc-vs-n.png](auc-vs-n.png)" in md
    # finished runs are not run again
    logs.clear()
    run_experiment(tmp_path / "suite.yaml", out, log=logs.append, progress=False)
    assert sum(": done (key" in m for m in logs) == 5 and not any("is finished" in m for m in logs)


def test_experiment_configs_are_validated(tmp_path):
    with pytest.raises(ValueError, match="give exactly one of"):
        ExperimentConfig.model_validate({"name": "x", "rows": [{"name": "a"}]})
    with pytest.raises(ValueError, match="not an earlier train row"):
        ExperimentConfig.model_validate({"name": "x", "rows": [{"name": "a", "evaluate": "e.yaml", "adapters_from": "b"}]})
    with pytest.raises(ValueError, match="no row named b"):
        ExperimentConfig.model_validate({"name": "x", "rows": [{"name": "a", "evaluate": "e.yaml"}],
                                    "curves": [{"name": "c", "series": {"s": {"a": 1, "b": 2}}}]})
    with pytest.raises(ValueError, match="no row named floor"):
        ExperimentConfig.model_validate({"name": "x", "rows": [{"name": "a", "evaluate": "e.yaml"}],
                                    "curves": [{"name": "c", "series": {"s": {"a": 1}}, "references": {"f": "floor"}}]})
    (tmp_path / "s.yaml").write_text("name: x\nrows: [{name: a, train: missing.yaml}]\n")
    with pytest.raises(ConfigError, match="missing.yaml"):
        run_experiment(tmp_path / "s.yaml", tmp_path / "out", log=lambda m: None)


def test_shipped_tallrec_table_is_valid():
    experiment = load_experiment("configs/tallrec/table.yaml")
    assert {r.name for r in experiment.steps} >= {"movie-16", "movie-64", "movie-256", "book-256", "movie-256-on-book"}
    assert experiment.paper.values["movie-256"] == 71.98



# ---------------------------------------------------------------------------- the step engine
@pytest.fixture
def counted(monkeypatch):
    """Count the runs of each step kind (and optionally fail at the n-th run)."""
    import dataclasses

    from llmrec.experiments import steps

    calls: list[str] = []
    fail = {"at": None}

    for name, kind in list(steps.STEP_KINDS.items()):
        def run(config, log=print, progress=True, _kind=kind, _name=name):
            resolved = getattr(config, "config", config)  # the run gets the plan its check returned, or the config
            calls.append(f"{_name}:{getattr(resolved, _kind.output_field)}")
            if fail["at"] is not None and len(calls) == fail["at"]:
                raise KeyboardInterrupt  # killed during this step
            return _kind.run(config, log=log, progress=progress)

        monkeypatch.setitem(steps.STEP_KINDS, name, dataclasses.replace(kind, run=run))
    return calls, fail


def _experiment(tmp_path, tiny_ml1m, model_folder, *, max_samples=300, limit=20, train_steps=1):
    model = {"name": str(model_folder), "device": "cpu"}
    exp = {
        "name": "toy-experiment", "metrics": ["auc"],
        "steps": [
            {"name": "data", "prepare": {"dataset": "ml-1m", "protocol": "tallrec", "path": str(tiny_ml1m),
                                         "tallrec": {"history_len": 5, "max_samples": max_samples}}},
            {"name": "zeroshot", "evaluate": {"data": "@data", "limit": limit, "model": model}},
            {"name": "lora", "train": {"data": "@data", "train_samples": 8, "model": model,
                                       "optim": {"max_steps": train_steps, "batch_size": 8},
                                       "selection": {"enabled": False}, "test": {"limit": limit}}},
            {"name": "lora-again", "evaluate": {"data": "@data", "limit": limit, "model": model,
                                                "adapter": "@lora"}},
            {"name": "floor", "baseline": {"model": "popularity", "data": "@data", "test": {"limit": limit}},
             "seeds": [0, 1]},
        ]}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(exp))
    return path


def test_experiment_steps_reference_each_other_and_resume_without_redoing(tmp_path, tiny_ml1m, tiny_model_folder,
                                                                         counted):
    calls, fail = counted
    exp = _experiment(tmp_path, tiny_ml1m, tiny_model_folder)
    out = tmp_path / "out"
    fail["at"] = 3  # killed while training (after prepare and the zero-shot evaluation)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(exp, out, log=lambda m: None, progress=False)
    assert [c.split(":")[0] for c in calls] == ["prepare", "evaluate", "train"]
    calls.clear()
    fail["at"] = None
    table = run_experiment(exp, out, log=lambda m: None, progress=False)
    assert [c.split(":")[0] for c in calls] == ["train", "evaluate", "baseline", "baseline"]  # the rest only
    assert set(table["rows"]) == {"zeroshot", "lora", "lora-again", "floor"}  # data steps are not rows
    assert table["rows"]["floor"]["runs"] == 2 and table["rows"]["lora"]["runs"] == 1
    lora = json.loads((out / "lora" / "seed-0" / "metrics.json").read_text())
    again = json.loads((out / "lora-again" / "seed-0" / "metrics.json").read_text())  # per seed of @lora
    assert again["metrics"]["auc"] == pytest.approx(lora["metrics"]["auc"], abs=1e-6)  # "@lora" is its adapter
    cfg = yaml.safe_load((out / "zeroshot" / "config.yaml").read_text())
    assert cfg["data"] == str(out / "data")
    calls.clear()
    run_experiment(exp, out, log=lambda m: None, progress=False)
    assert calls == []  # everything done: nothing runs


def test_a_changed_step_redoes_it_and_what_depends_on_it_only(tmp_path, tiny_ml1m, tiny_model_folder, counted):
    calls, _ = counted
    out = tmp_path / "out"
    run_experiment(_experiment(tmp_path, tiny_ml1m, tiny_model_folder), out, log=lambda m: None, progress=False)
    calls.clear()
    logs = []
    run_experiment(_experiment(tmp_path, tiny_ml1m, tiny_model_folder, train_steps=2), out, log=logs.append,
              progress=False)
    assert [c.split(":")[0] for c in calls] == ["train", "evaluate"]  # lora and lora-again, not zeroshot/floor
    assert any("changed; removing" in m for m in logs)
    calls.clear()
    run_experiment(_experiment(tmp_path, tiny_ml1m, tiny_model_folder, train_steps=2, max_samples=250), out,
              log=lambda m: None, progress=False)
    assert sorted(c.split(":")[0] for c in calls) == sorted(["prepare", "evaluate", "train", "evaluate", "baseline",
                                                             "baseline"])  # the data changed: everything


def test_a_prepare_step_is_keyed_by_its_source_files_content_not_their_dates(tmp_path, tiny_ml1m, tiny_model_folder):
    """A fresh copy of the data (a new clone of ../shared/data: other modification times) keeps every key."""
    import os

    from llmrec.experiments import plan_experiment

    def keys():
        return [r.key for r in plan_experiment(_experiment(tmp_path, tiny_ml1m, tiny_model_folder), tmp_path / "out")]

    before = keys()
    os.utime(tiny_ml1m, (1_000_000_000, 1_000_000_000))  # the same bytes, another date
    assert keys() == before
    from tests.conftest import random_ratings, write_ml1m_zip

    write_ml1m_zip(tiny_ml1m, random_ratings(31, 60, (8, 40)))  # other ratings: every step that reads them
    assert all(a != b for a, b in zip(keys(), before))


def test_experiment_errors_name_the_step(tmp_path):
    with pytest.raises(ValueError, match="'@nope' is not an earlier step"):
        ExperimentConfig.model_validate({"name": "x", "steps": [{"name": "a", "evaluate": {"data": "@nope"}}]})
    with pytest.raises(ValueError, match="seeds are for train and baseline"):
        ExperimentConfig.model_validate({"name": "x", "steps": [{"name": "a", "prepare": {}, "seeds": [1]}]})
    with pytest.raises(ValueError, match="names a folder"):
        ExperimentConfig.model_validate({"name": "x", "steps": [{"name": "a/b", "evaluate": "e.yaml"}]})
    (tmp_path / "e.yaml").write_text(yaml.safe_dump({
        "name": "x", "steps": [{"name": "d", "prepare": {"dataset": "ml-1m", "protocol": "nope"}}]}))
    with pytest.raises(ConfigError, match="(?s)step 'd'.*unknown protocol 'nope'"):
        run_experiment(tmp_path / "e.yaml", tmp_path / "out", log=lambda m: None)
    assert not (tmp_path / "out").exists()


def test_run_command_dry_run_shows_each_runs_state(tmp_path, tiny_ml1m, tiny_model_folder):
    from click.testing import CliRunner

    from llmrec.cli import main

    exp = _experiment(tmp_path, tiny_ml1m, tiny_model_folder)
    res = CliRunner().invoke(main, ["run", str(exp), "--out", str(tmp_path / "out"), "--dry-run"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 6 and all(line.startswith("todo") for line in lines)  # data, zs, lora, lora-again, 2 floors
    assert not (tmp_path / "out").exists()
    res = CliRunner().invoke(main, ["run", str(exp), "--out", str(tmp_path / "out"), "--only", "zeroshot"])
    assert res.exit_code == 0, res.output
    assert "| zeroshot | 1 |" in res.output and "| lora | 0 |" in res.output
    res = CliRunner().invoke(main, ["run", str(exp), "--out", str(tmp_path / "out"), "--dry-run"])
    states = [line.split()[0] for line in res.output.strip().splitlines()]
    assert states == ["done", "done", "todo", "todo", "todo", "todo"]
    # a run that would fail its cheap checks says so, and the dry run exits non-zero
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: broken\nsteps:\n  - {name: a, evaluate: {data: " + str(tmp_path / "nowhere") + "}}\n")
    res = CliRunner().invoke(main, ["run", str(broken), "--out", str(tmp_path / "b"), "--dry-run"])
    assert res.exit_code == 1 and "would fail: step 'a': " in res.output and "nowhere" in res.output, res.output
    assert "1 run(s) would fail their checks" in res.output and not (tmp_path / "b").exists()


def test_rows_run_at_once_by_two_processes_run_the_step_they_both_read_once(tmp_path, tiny_ml1m, tiny_model_folder):
    """`llmrec run FILE --only A` and `--only B` started together (one per GPU): the prepare step both read runs
    in one of them; the other waits for it, then finds it done. Then `--table-only` tabulates both rows."""
    import fcntl
    import os
    import subprocess
    import sys
    import time

    from click.testing import CliRunner

    from llmrec.cli import main

    exp = _experiment(tmp_path, tiny_ml1m, tiny_model_folder)
    out = tmp_path / "out"
    (out / ".steps").mkdir(parents=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    logs = [tmp_path / f"{row}.log" for row in ("zeroshot", "floor")]
    with open(out / ".steps" / "data.lock", "a") as held:  # the test holds the data step until both wait for it
        fcntl.flock(held, fcntl.LOCK_EX)
        procs = [subprocess.Popen([sys.executable, "-m", "llmrec.cli", "run", str(exp), "--only", log.stem, "--out",
                                   str(out)], stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
                 for log in logs]
        deadline = time.monotonic() + 240
        while not all("another process is running it; waiting" in log.read_text() for log in logs):
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), [f.read_text() for f in logs]
            time.sleep(0.2)
    assert [p.wait(timeout=300) for p in procs] == [0, 0], [log.read_text()[-2000:] for log in logs]
    texts = [log.read_text() for log in logs]
    ran = [t for t in texts if f"== data: prepare -> {out / 'data'}\n" in t]
    assert len(ran) == 1  # one process prepared the data
    assert sum(f"== data: prepare -> {out / 'data'}: done" in t for t in texts) == 1  # the other found it done
    res = CliRunner().invoke(main, ["run", str(exp), "--out", str(out), "--table-only"])
    assert res.exit_code == 0, res.output
    table = json.loads((out / "table.json").read_text())
    assert table["rows"]["zeroshot"]["runs"] == 1 and table["rows"]["floor"]["runs"] == 2


def test_seeds_option_grows_a_table_seed_by_seed(tmp_path, tiny_ml1m, tiny_model_folder, counted):
    from click.testing import CliRunner

    from llmrec.cli import main
    from llmrec.experiments import plan_experiment

    calls, _ = counted
    exp = _experiment(tmp_path, tiny_ml1m, tiny_model_folder)
    out = tmp_path / "out"
    planned = [(r.step.name, r.seed) for r in plan_experiment(exp, out, only=("floor",), seeds=(1,))]
    assert planned == [("data", None), ("floor", 1)]  # the seed asked for and what it reads
    assert [(r.step.name, r.seed) for r in plan_experiment(exp, out, seeds=(1,))] == [
        ("data", None), ("zeroshot", None), ("floor", 1)]  # unseeded steps stay; lora has only seed 0
    with pytest.raises(ConfigError, match=r"no run of lora has seed 3 \(seeds: 0\)"):
        plan_experiment(exp, out, only=("lora",), seeds=(3,))
    res = CliRunner().invoke(main, ["run", str(exp), "--out", str(out), "--only", "floor", "--seeds", "1"])
    assert res.exit_code == 0, res.output
    assert [c.split(":")[0] for c in calls] == ["prepare", "baseline"] and "| floor | 1 |" in res.output
    calls.clear()
    run_experiment(exp, out, log=lambda m: None, progress=False)  # the rest later: seed 1 of floor is done
    assert [c.split(":")[0] for c in calls] == ["evaluate", "train", "evaluate", "baseline"]
    res = CliRunner().invoke(main, ["run", str(exp), "--out", str(out), "--seeds", "x"])
    assert res.exit_code != 0 and "--seeds" in res.output


def test_a_train_record_copied_without_its_adapter_is_retrained_only_for_a_step_that_reads_it(
        tmp_path, tiny_ml1m, tiny_model_folder, counted):
    """results/ keeps a train run's records, not its weights: a step still to run that reads the adapter
    (a cross-domain row) retrains it first ("restore"); with nothing left to read it, it stays done."""
    import shutil

    from click.testing import CliRunner

    from llmrec.cli import main

    calls, _ = counted
    exp = _experiment(tmp_path, tiny_ml1m, tiny_model_folder)
    out = tmp_path / "out"
    run_experiment(exp, out, only=("lora",), log=lambda m: None, progress=False)
    lora = out / "lora" / "seed-0"
    first = json.loads((lora / "metrics.json").read_text())["metrics"]

    def copy_records_only():
        for path in sorted(lora.rglob("*"), reverse=True):
            if path.is_file() and path.name not in ("metrics.json", "config.yaml", "selection.json"):
                path.unlink()
            elif path.is_dir() and not any(path.iterdir()):
                path.rmdir()

    copy_records_only()
    assert not (lora / "adapter").exists() and (lora / "metrics.json").exists()
    res = CliRunner().invoke(main, ["run", str(exp), "--out", str(out), "--dry-run"])
    assert res.exit_code == 0, res.output  # the check of lora-again waits for the restored adapter
    states = {line.split()[1].rstrip(":"): line.split()[0] for line in res.output.strip().splitlines()}
    assert states == {"data": "done", "zeroshot": "todo", "lora": "restore", "lora-again": "todo", "floor": "todo"}
    calls.clear()
    logs: list[str] = []
    run_experiment(exp, out, log=logs.append, progress=False)
    assert [c.split(":")[0] for c in calls] == ["evaluate", "train", "evaluate", "baseline", "baseline"]
    assert any("adapter/adapter_config.json (read by a step still to run) is not in" in m for m in logs)
    again = json.loads((lora / "metrics.json").read_text())["metrics"]
    assert again["auc"] == pytest.approx(first["auc"], abs=1e-6)  # the same run: the same result
    reread = json.loads((out / "lora-again" / "seed-0" / "metrics.json").read_text())["metrics"]
    assert reread["auc"] == pytest.approx(again["auc"], abs=1e-6)
    copy_records_only()  # nothing still to run reads it now: it stays done
    calls.clear()
    run_experiment(exp, out, log=lambda m: None, progress=False)
    assert calls == []
    shutil.rmtree(out / "lora-again")  # a downstream run lost: the adapter it reads is restored first
    calls.clear()
    run_experiment(exp, out, log=lambda m: None, progress=False)
    assert [c.split(":")[0] for c in calls] == ["train", "evaluate"]


def test_a_template_file_is_part_of_the_key_a_shipped_name_is_not(tmp_path, tiny_model_folder):
    from llmrec.experiments import plan_experiment

    template = tmp_path / "mine.yaml"
    template.write_text("name: mine\ncontext: 'A'\n")

    def key(name_or_file: str) -> str:
        exp = tmp_path / "exp.yaml"
        exp.write_text(yaml.safe_dump({"name": "t", "steps": [{"name": "zs", "evaluate": {
            "data": str(tmp_path / "data"), "template": name_or_file,
            "model": {"name": str(tiny_model_folder), "device": "cpu"}}}]}))
        return plan_experiment(exp, tmp_path / "out")[0].key

    before = key(str(template))
    assert key(str(template)) == before
    template.write_text("name: mine\ncontext: 'B'\n")  # the same path, another prompt: the run is redone
    assert key(str(template)) != before
    assert key("tallrec_movie") == key("tallrec_movie")  # shipped names: versioned with the code


def test_long_inline_texts_in_a_config_are_not_taken_for_paths():
    """A string that cannot be a path (an inline Jinja item template, a name over 255 bytes) is config text:
    planning does not stat it into an OSError."""
    from llmrec.experiments.engine import _input_fingerprints
    from llmrec.experiments.steps import STEP_KINDS

    text = "{{ title }} " * 40  # 480 characters, no slash
    assert _input_fingerprints({"encoder": {"item_template": text}, "data": "x" * 300}, STEP_KINDS["retrieve"], set()) == {}


def _scored_run(folder, labels, scores):
    """A finished CTR run folder: predictions.parquet and metrics.json (AUC and LogLoss of the same scores)."""
    import pandas as pd

    from llmrec.metrics import auc, log_loss

    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"sample_id": range(len(labels)), "label": labels, "score": scores}).to_parquet(
        folder / "predictions.parquet")
    (folder / "metrics.json").write_text(json.dumps({"metrics": {"auc": float(auc(labels, scores)),
                                                                 "logloss": float(log_loss(labels, scores))}}))


def test_paired_rows_are_compared_sample_by_sample_and_kept_in_a_copied_folder(tmp_path):
    import shutil

    import numpy as np

    from llmrec.experiments import write_table
    from llmrec.metrics import auc

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    noisy = {name: np.clip(0.5 + 0.2 * (labels - 0.5) + rng.normal(0, s, 300), 0.01, 0.99)
             for name, s in (("a", 0.1), ("b", 0.3), ("c0", 0.2), ("c1", 0.2), ("d1", 0.4), ("h", 0.2))}
    out = tmp_path / "out"
    _scored_run(out / "a", labels, noisy["a"])
    _scored_run(out / "b", labels, noisy["b"])
    _scored_run(out / "c" / "seed-0", labels, noisy["c0"])
    _scored_run(out / "c" / "seed-1", labels, noisy["c1"])
    _scored_run(out / "d" / "seed-1", labels, noisy["d1"])  # seed 0 of d not finished yet
    _scored_run(out / "h" / "seed-0", labels, noisy["h"])  # a baseline row without seeds: one run in seed-0/
    (out / "r" / "seed-0").mkdir(parents=True)
    (out / "r" / "seed-0" / "metrics.json").write_text(json.dumps({"metrics": {"recall@3": 0.5}}))
    experiment = ExperimentConfig.model_validate({
        "name": "t", "metrics": ["auc", "logloss"],
        "rows": [{"name": "a", "evaluate": {}}, {"name": "b", "evaluate": {}},
                 {"name": "c", "train": {}, "seeds": [0, 1]}, {"name": "d", "train": {}, "seeds": [0, 1]},
                 {"name": "r", "baseline": {}}, {"name": "h", "baseline": {}}, {"name": "e", "evaluate": {}}],
        "paired": [{"a": "a", "b": "b"}, {"a": "c", "b": "d"}, {"a": "r", "b": "a"}, {"a": "c", "b": "a"},
                   {"a": "c", "b": "h"}, {"a": "e", "b": "a"}]})
    table = write_table(experiment, out)
    ab, cd0, cd1, ra, ca0, ca1, ch0, ch1 = table["paired"]  # e - a: e has no run yet, nothing to show
    assert (ab["a"], ab["b"], ab["run"], ab["samples"]) == ("a", "b", None, 300)
    want = auc(labels, noisy["a"]) - auc(labels, noisy["b"])
    assert ab["auc"]["diff"] == pytest.approx(want, abs=1e-6) and ab["auc"]["ci95"][0] < want < ab["auc"]["ci95"][1]
    assert cd0 == {"a": "c", "b": "d", "run": "seed-0", "skipped": "d has no seed-0 run yet"}
    assert cd1["run"] == "seed-1" and cd1["auc"]["diff"] == pytest.approx(
        auc(labels, noisy["c1"]) - auc(labels, noisy["d1"]), abs=1e-6)  # the seeds both rows have
    assert "cannot be paired" in ra["skipped"]  # a ranking row is not paired with a CTR row
    assert (ca0["run"], ca1["run"]) == ("seed-0", "seed-1")  # each seed with the row that has no seeds
    assert ca0["auc"]["diff"] == pytest.approx(auc(labels, noisy["c0"]) - auc(labels, noisy["a"]), abs=1e-6)
    assert ca1["auc"]["diff"] == pytest.approx(auc(labels, noisy["c1"]) - auc(labels, noisy["a"]), abs=1e-6)
    assert (ch0["run"], ch1["run"]) == ("seed-0", "seed-1")  # so does a baseline row without seeds
    assert ch1["auc"]["diff"] == pytest.approx(auc(labels, noisy["c1"]) - auc(labels, noisy["h"]), abs=1e-6)
    md = (out / "table.md").read_text()
    lo, hi = ab["auc"]["ci95"]
    assert "| a - b | - | 300 | " + f"{ab['auc']['diff']:+.4f} [{lo:+.4f}, {hi:+.4f}]" in md
    assert "| c - d | seed-1 | 300 |" in md and "| c - d | seed-0 | - | not computed: d has no seed-0 run yet |" in md
    # a copied folder keeps its records (results/ has no predictions) as long as the runs are the same ...
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("predictions.parquet"))
    assert write_table(experiment, copy)["paired"] == table["paired"]
    # ... and drops a record whose runs changed (it cannot be recomputed without the predictions)
    metrics = json.loads((copy / "b" / "metrics.json").read_text())
    metrics["metrics"]["auc"] += 0.01
    (copy / "b" / "metrics.json").write_text(json.dumps(metrics))
    again = write_table(experiment, copy)["paired"]
    assert again[0]["skipped"].startswith("the predictions are not in this folder") and again[1:] == table["paired"][1:]
    # where the predictions are, a re-run with the same AUC but other scores is computed again
    _scored_run(out / "b", labels, noisy["b"] ** 3)  # same ranking, another LogLoss
    ab_again = write_table(experiment, out)["paired"][0]
    assert ab_again["auc"]["diff"] == pytest.approx(ab["auc"]["diff"], abs=1e-9)
    assert ab_again["logloss"]["diff"] != pytest.approx(ab["logloss"]["diff"], abs=1e-3)
    # a table.json written by hand or by an older version is recomputed, not a crash
    broken = json.loads((out / "table.json").read_text())
    broken["paired"][0]["auc"] = "0.1"
    (out / "table.json").write_text(json.dumps(broken))
    assert write_table(experiment, out)["paired"][0] == ab_again


def test_paired_ranking_rows_go_through_the_table(tmp_path):
    import pandas as pd

    from llmrec.experiments import write_table

    def ranking_run(folder, positive_first):
        rows = [{"sample_id": sid, "user": "u", "candidate": f"c{j}", "label": int(j == 0),
                 "score": float(j == 0) if first else float(j == 1)} for sid, first in enumerate(positive_first)
                for j in range(3)]
        folder.mkdir(parents=True)
        pd.DataFrame(rows).to_parquet(folder / "predictions.parquet")
        hits = sum(positive_first) / len(positive_first)
        (folder / "metrics.json").write_text(json.dumps({"metrics": {"recall@1": hits, "recall@3": 1.0}}))

    ranking_run(tmp_path / "out" / "x" / "seed-0", [True, True, False, True])
    ranking_run(tmp_path / "out" / "y" / "seed-0", [False, True, False, False])
    experiment = ExperimentConfig.model_validate({"name": "t", "metrics": ["recall@1", "recall@3"],
                                        "rows": [{"name": "x", "baseline": {}}, {"name": "y", "baseline": {}}],
                                        "paired": [{"a": "x", "b": "y"}]})
    (entry,) = write_table(experiment, tmp_path / "out")["paired"]
    missed = (1 / 2 + 1 / 3) / 2  # the positive tied with one negative behind the top one: rank 2 or 3
    assert entry["recall@3"]["diff"] == 0.0 and entry["mrr@3"]["diff"] == pytest.approx(2 * (1 - missed) / 4, abs=1e-6)
    assert "| x - y | seed-0 | 4 | +0.0000 [+0.0000, +0.0000] |" in (tmp_path / "out" / "table.md").read_text()
    import shutil

    shutil.copytree(tmp_path / "out", tmp_path / "copy", ignore=shutil.ignore_patterns("predictions.parquet"))
    assert write_table(experiment, tmp_path / "copy")["paired"] == [entry]  # kept by its Recall@3 values


def test_paired_rows_must_be_rows_of_the_table():
    rows = [{"name": "d", "prepare": {"dataset": "ml-100k", "protocol": "tallrec"}}, {"name": "a", "evaluate": {}}]
    with pytest.raises(ValueError, match="no row named 'x'"):
        ExperimentConfig.model_validate({"name": "t", "rows": rows, "paired": [{"a": "a", "b": "x"}]})
    with pytest.raises(ValueError, match="'d' is a prepare step, not a row of the table"):
        ExperimentConfig.model_validate({"name": "t", "rows": rows, "paired": [{"a": "d", "b": "a"}]})
    with pytest.raises(ValueError, match="paired with itself"):
        ExperimentConfig.model_validate({"name": "t", "rows": rows, "paired": [{"a": "a", "b": "a"}]})
    rows.append({"name": "b", "evaluate": {}})
    with pytest.raises(ValueError, match="listed twice"):
        ExperimentConfig.model_validate({"name": "t", "rows": rows, "paired": [{"a": "a", "b": "b"}, {"a": "a", "b": "b"}]})


def test_paired_ranking_runs_compare_list_by_list(tmp_path):
    """Ranking runs pair on the same candidate lists: Recall / MRR / NDCG differences, hand-computed."""
    import pandas as pd

    from llmrec.paired import format_paired, paired_difference

    def ranking_run(name, positive_ranks, lists=None, users=None, reverse=False):
        rows = []
        by_rank = [4.0, 3.0, 2.0, 1.0]  # the scores of ranks 1-4
        for i, (sid, rank) in enumerate(zip(lists or range(len(positive_ranks)), positive_ranks)):
            scores = [by_rank[rank - 1], *(s for i, s in enumerate(by_rank) if i != rank - 1)]  # candidate 0: positive
            rows += [{"sample_id": sid, "user": users[i] if users else "u", "candidate": f"c{j}",
                      "label": int(j == 0), "score": s} for j, s in enumerate(scores)]
        if reverse:  # the same lists, stored in another order
            rows = [r for sid in reversed(range(len(positive_ranks))) for r in rows if r["sample_id"] == sid]
        (tmp_path / name).mkdir()
        pd.DataFrame(rows).to_parquet(tmp_path / name / "predictions.parquet")
        return tmp_path / name

    a, b = ranking_run("a", [1, 1, 2]), ranking_run("b", [4, 2, 2])
    result = paired_difference(a, b, n_boot=200)
    assert result["samples"] == 3
    assert result["recall@3"]["a"] == 1.0 and result["recall@3"]["b"] == pytest.approx(2 / 3, abs=1e-6)
    assert result["mrr@3"]["diff"] == pytest.approx((1 + 1 + 1 / 2) / 3 - (0 + 1 / 2 + 1 / 2) / 3, abs=1e-6)
    assert result["recall@10"]["diff"] == 0.0 and result["recall@10"]["ci95"] == [0.0, 0.0]  # k >= the list
    assert "mrr@3" in format_paired(result)
    one_user = paired_difference(a, b, n_boot=200, by="user")  # every list is user "u": one group, no spread
    assert one_user["users"] == 1 and one_user["mrr@3"]["ci95"] == [one_user["mrr@3"]["diff"]] * 2
    with pytest.raises(ConfigError, match="ranked different lists"):
        paired_difference(a, ranking_run("c", [1, 1, 2], lists=[0, 1, 5]))
    # two users, their lists interleaved (u1: lists 0 and 2, u2: lists 1 and 3): recall@3 differs by 0 on u1's
    # lists and by 1 on u2's, so a user-level resample can only average 0, 1/2 or 1; by sample, 1/4 and 3/4 too
    users = ["u1", "u2", "u1", "u2"]
    a2 = ranking_run("a2", [1, 2, 1, 2], users=users)
    b2 = ranking_run("b2", [1, 4, 1, 4], users=users, reverse=True)
    by_user = paired_difference(a2, b2, n_boot=400, by="user")
    assert by_user["users"] == 2 and by_user["recall@3"]["diff"] == 0.5
    assert by_user["recall@3"]["ci95"] == [0.0, 1.0]
    by_sample = paired_difference(a2, b2, n_boot=400)["recall@3"]["ci95"]
    assert by_sample[0] in (0.0, 0.25) and by_sample[1] in (0.75, 1.0) and "users" not in paired_difference(a2, b2)
    (tmp_path / "ctr").mkdir()
    pd.DataFrame({"sample_id": [0, 1], "label": [0, 1], "score": [0.2, 0.7]}).to_parquet(
        tmp_path / "ctr" / "predictions.parquet")
    with pytest.raises(ConfigError, match="a CTR run and a ranking run"):
        paired_difference(a, tmp_path / "ctr")


def test_compare_paired_takes_seeds_folders_seed_by_seed(tmp_path):
    import numpy as np
    from click.testing import CliRunner

    from llmrec.cli import main

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 100)
    for row, seeds in (("lora", (0, 1, 2)), ("other", (1, 2))):
        for s in seeds:
            _scored_run(tmp_path / row / f"seed-{s}", labels, np.clip(labels * 0.3 + rng.random(100), 0, 1))
        (tmp_path / row / "summary.json").write_text(json.dumps({  # as llmrec train --seeds writes it
            "seeds": list(seeds), "metrics": {"auc": 0.6}, "metrics_std": {"auc": 0.01}, "run": {"kind": "seeds"}}))
    _scored_run(tmp_path / "zs", labels, rng.random(100))
    result = CliRunner().invoke(main, ["compare", str(tmp_path / "zs"), str(tmp_path / "lora"), "--paired"])
    assert result.exit_code == 0, result.output
    assert [f"lora/seed-{s} - zs on 100 paired samples:" in result.output for s in (0, 1, 2)] == [True] * 3
    result = CliRunner().invoke(main, ["compare", str(tmp_path / "lora"), str(tmp_path / "other"), "--paired"])
    assert result.exit_code == 0, result.output
    assert "other/seed-1 - lora/seed-1" in result.output and "other/seed-2 - lora/seed-2" in result.output
    assert "seed-0 -" not in result.output  # only the seeds both folders have
    result = CliRunner().invoke(main, ["compare", str(tmp_path / "lora" / "seed-0"), str(tmp_path / "other" / "seed-1"),
                                       "--paired"])  # two draws of a row: run folders pair as they are
    assert result.exit_code == 0 and "other/seed-1 - lora/seed-0 on 100 paired samples:" in result.output


def _users_run(folder, labels, scores, users):
    """A finished CTR run whose predictions name each sample's user."""
    import pandas as pd

    _scored_run(folder, labels, scores)
    preds = pd.read_parquet(folder / "predictions.parquet").assign(user=users)
    preds.to_parquet(folder / "predictions.parquet")


def test_paired_by_user_resamples_whole_users(tmp_path):
    """Samples of one user move together: a user-level bootstrap holds the same difference and a wider interval
    when users differ (here each user's samples share one noise draw), and a table row says "by user"."""
    import numpy as np

    from llmrec.experiments import write_table
    from llmrec.paired import format_paired, paired_difference

    rng = np.random.default_rng(3)
    users = np.repeat(np.arange(40), 10)  # 40 users, 10 samples each
    labels = rng.integers(0, 2, 400)
    user_shift = rng.normal(0, 0.3, 40)[users]  # model a is better for some users, worse for others
    a = np.clip(0.5 + 0.2 * (labels - 0.5) + user_shift * (labels - 0.5) + rng.normal(0, 0.05, 400), 0.01, 0.99)
    b = np.clip(0.5 + 0.2 * (labels - 0.5) + rng.normal(0, 0.05, 400), 0.01, 0.99)
    _users_run(tmp_path / "out" / "a", labels, a, users)
    _users_run(tmp_path / "out" / "b", labels, b, users)
    by_sample = paired_difference(tmp_path / "out" / "a", tmp_path / "out" / "b", n_boot=300)
    by_user = paired_difference(tmp_path / "out" / "a", tmp_path / "out" / "b", n_boot=300, by="user")
    assert by_user["auc"]["diff"] == by_sample["auc"]["diff"] and (by_user["by"], by_user["users"]) == ("user", 40)
    width = {name: r["auc"]["ci95"][1] - r["auc"]["ci95"][0] for name, r in (("sample", by_sample), ("user", by_user))}
    assert width["user"] > 1.3 * width["sample"], width
    assert "by" not in by_sample and "(bootstrap over 40 users)" in format_paired(by_user)
    experiment = ExperimentConfig.model_validate({"name": "t", "metrics": ["auc"],
                                        "rows": [{"name": "a", "evaluate": {}}, {"name": "b", "evaluate": {}}],
                                        "paired": [{"a": "a", "b": "b"}, {"a": "a", "b": "b", "by": "user"}]})
    plain, grouped = write_table(experiment, tmp_path / "out")["paired"]
    assert "by" not in plain and grouped["by"] == "user" and grouped["auc"]["ci95"] != plain["auc"]["ci95"]
    assert "| a - b (by user) | - | 400 |" in (tmp_path / "out" / "table.md").read_text()
    # a run without users cannot be resampled by user: one line naming it
    _scored_run(tmp_path / "out" / "nousers", labels, b)
    with pytest.raises(ConfigError, match="nousers: its predictions have no user column"):
        paired_difference(tmp_path / "out" / "a", tmp_path / "out" / "nousers", by="user")
    with pytest.raises(ConfigError, match="expected one of sample, user"):
        paired_difference(tmp_path / "out" / "a", tmp_path / "out" / "b", by="list")
    with pytest.raises(ValueError, match="by"):
        ExperimentConfig.model_validate({"name": "t", "rows": [{"name": "a", "evaluate": {}}, {"name": "b", "evaluate": {}}],
                                    "paired": [{"a": "a", "b": "b", "by": "item"}]})


def test_compare_reads_an_experiment_rows_seed_runs_and_pairs_by_user(tmp_path):
    """An experiment row's folder (seed-N runs, no summary.json) compares as mean ± std over its seeds;
    ``--by user`` needs ``--paired``."""
    import numpy as np
    from click.testing import CliRunner

    from llmrec.cli import main

    rng = np.random.default_rng(2)
    labels, users = rng.integers(0, 2, 120), np.repeat(np.arange(12), 10)
    for s in (0, 1):
        _users_run(tmp_path / "row" / f"seed-{s}", labels, np.clip(labels * 0.3 + rng.random(120), 0, 1), users)
    _users_run(tmp_path / "zs", labels, rng.random(120), users)
    result = CliRunner().invoke(main, ["compare", str(tmp_path / "zs"), str(tmp_path / "row"), "--paired", "--by", "user"])
    assert result.exit_code == 0, result.output
    assert "row (2 seeds)" in result.output and " ± " in result.output
    assert "row/seed-1 - zs on 120 paired samples (bootstrap over 12 users):" in result.output
    result = CliRunner().invoke(main, ["compare", str(tmp_path / "zs"), str(tmp_path / "row"), "--by", "user"])
    assert result.exit_code == 2 and "--by needs --paired" in result.output


def test_pairs_of_rows_tested_on_other_samples_are_refused_before_anything_runs(tmp_path):
    from llmrec.experiments.engine import plan_experiment

    def experiment(limit_b, split_b="test", seed_b=0):
        return ExperimentConfig.model_validate({"name": "t", "rows": [
            {"name": "a", "evaluate": {"data": "d", "model": {"name": "m"}, "limit": 20}},
            {"name": "b", "evaluate": {"data": "d", "model": {"name": "m"}, "limit": limit_b, "split": split_b,
                                       "sample_seed": seed_b}}],
            "paired": [{"a": "a", "b": "b"}]})

    with pytest.raises(ConfigError, match=r"paired 'a' - 'b': 'a' tests on split 'test', 20 samples drawn with "
                                          r"sample_seed 0, 'b' on split 'test', 10 samples"):
        plan_experiment(None, tmp_path, experiment=experiment(10))
    with pytest.raises(ConfigError, match="sample_seed 1"):
        plan_experiment(None, tmp_path, experiment=experiment(20, seed_b=1))
    with pytest.raises(ConfigError, match="'b' on split 'valid'"):
        plan_experiment(None, tmp_path, experiment=experiment(None, split_b="valid"))
    assert len(plan_experiment(None, tmp_path, experiment=experiment(20))) == 2
    assert len(plan_experiment(None, tmp_path, experiment=experiment(None))) == 2  # every sample of b's data: may be the same

    def train_vs_baseline(train_test, baseline_test):  # the test sections of train and baseline rows count too
        return ExperimentConfig.model_validate({"name": "t", "rows": [
            {"name": "lora", "train": {"data": "d", "model": {"name": "m"}, "test": train_test}},
            {"name": "floor", "baseline": {"model": "popularity", "data": "d", "test": baseline_test}, "seeds": [0, 1]}],
            "paired": [{"a": "lora", "b": "floor"}]})

    with pytest.raises(ConfigError, match=r"'lora' tests on split 'test', 20 samples drawn with sample_seed 0, "
                                          r"'floor' on split 'test', 30 samples"):
        plan_experiment(None, tmp_path, experiment=train_vs_baseline({"limit": 20}, {"limit": 30}))
    with pytest.raises(ConfigError, match="sample_seed 3"):
        plan_experiment(None, tmp_path, experiment=train_vs_baseline({"limit": 20}, {"limit": 20, "sample_seed": 3}))
    with pytest.raises(ConfigError, match="paired 'lora' - 'floor': 'lora' tests nothing"):
        plan_experiment(None, tmp_path, experiment=train_vs_baseline({"enabled": False}, {"limit": 20}))
    assert len(plan_experiment(None, tmp_path, experiment=train_vs_baseline({"limit": 20}, {"limit": 20}))) == 3

    # where the test split is already prepared, a limit at or above its size means every sample
    import pandas as pd

    (tmp_path / "d5").mkdir()
    pd.DataFrame({"sample_id": range(5)}).to_parquet(tmp_path / "d5" / "test.parquet")

    def on_five(limit_a, limit_b):
        return ExperimentConfig.model_validate({"name": "t", "rows": [
            {"name": n, "evaluate": {"data": str(tmp_path / "d5"), "model": {"name": "m"}, "limit": lim}}
            for n, lim in (("a", limit_a), ("b", limit_b))], "paired": [{"a": "a", "b": "b"}]})

    assert len(plan_experiment(None, tmp_path, experiment=on_five(1000, 2000))) == 2  # both: all 5 samples
    assert len(plan_experiment(None, tmp_path, experiment=on_five(5, None))) == 2
    with pytest.raises(ConfigError, match="'a' tests on split 'test', every sample \\(5\\), 'b' on split 'test', 4 samples"):
        plan_experiment(None, tmp_path, experiment=on_five(1000, 4))


def test_paired_by_user_refuses_predictions_without_a_user_for_some_samples(tmp_path):
    import numpy as np

    from llmrec.paired import paired_difference

    labels = np.array([0, 1] * 10)
    _users_run(tmp_path / "a", labels, np.linspace(0.1, 0.9, 20), [1.0] * 10 + [None] * 10)
    _users_run(tmp_path / "b", labels, np.linspace(0.9, 0.1, 20), [1.0] * 10 + [None] * 10)
    with pytest.raises(ConfigError, match="some predictions have no user"):
        paired_difference(tmp_path / "a", tmp_path / "b", by="user")


def test_a_seed_whose_test_subset_has_one_class_leaves_the_table_to_the_other_seeds(tmp_path):
    """A seeded row where one seed drew a one-class test subset (AUC undefined, NaN in its metrics.json) once
    crashed the table (statistics.stdev of a NaN); the table shows the defined seeds and counts the other.
    Mutation: ``metric_cell`` without the finite filter raises again."""
    import math

    import numpy as np

    from llmrec.experiments import write_table

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 50)
    out = tmp_path / "out"
    _scored_run(out / "c" / "seed-0", labels, np.clip(0.5 + 0.3 * (labels - 0.5) + rng.normal(0, 0.2, 50), 0.01, 0.99))
    _scored_run(out / "c" / "seed-1", labels, rng.uniform(0.01, 0.99, 50))
    one_class = out / "c" / "seed-2"  # what evaluate records for a one-class subset: AUC NaN
    one_class.mkdir(parents=True)
    (one_class / "metrics.json").write_text(json.dumps({"metrics": {"auc": float("nan"), "logloss": 0.7}}))
    experiment = ExperimentConfig.model_validate({"name": "t", "metrics": ["auc"],
                                                  "rows": [{"name": "c", "train": {}, "seeds": [0, 1, 2]}]})
    auc = write_table(experiment, out)["rows"]["c"]["auc"]
    assert math.isnan(auc["values"][2]) and auc["undefined"] == 1
    assert auc["mean"] == pytest.approx(np.mean(auc["values"][:2])) and auc["std"] > 0
    assert f"| c | 3 | {auc['mean']:.4f} ± {auc['std']:.4f} (1 of 3 undefined) |" in (out / "table.md").read_text()


def _reference_ranking_runs(tmp_path, n_lists=40, width=4, seed=5):
    """Two ranking runs on the same lists (6 users; a segment per list: cold, head, or warm for the first 5, a bucket
    too small for a difference), positive ranks drawn at random."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    users = [f"u{i % 6}" for i in range(n_lists)]
    segment = ["warm" if i < 5 else "cold" if i % 3 else "head" for i in range(n_lists)]
    runs, ranks = [], {}
    for name in ("a", "b"):
        ranks[name] = rng.integers(1, width + 1, n_lists)
        rows = []
        for sid in range(n_lists):
            scores = np.arange(width, 0, -1, dtype=float)  # rank 1 = the highest score
            order = [ranks[name][sid] - 1, *(r for r in range(width) if r != ranks[name][sid] - 1)]
            rows += [{"sample_id": sid, "user": users[sid], "candidate": f"c{j}", "label": int(j == 0),
                      "score": scores[order[j]], "segment_item_popularity": segment[sid]} for j in range(width)]
        (tmp_path / name).mkdir()
        pd.DataFrame(rows).to_parquet(tmp_path / name / "predictions.parquet")
        runs.append(tmp_path / name)
    return runs, ranks, np.array(users), np.array(segment)


def test_paired_ranking_numbers_equal_a_reference_computation(tmp_path):
    """Every number of a ranking pair equals an independent computation: each list's Recall@3 and MRR@3 from the
    positive's rank, their means, and the interval of bootstrap_ci on the per-list differences with the same
    n_boot and seed (groups = users when by user); the same call twice gives the same dict; the Recall@3 segments
    use the lists of each bucket, and a bucket of fewer than 10 lists holds its count and a note. Mutations
    caught (mutmut, llmrec.paired._paired_ranking): the seed or n_boot not passed to the bootstrap, a or b's name
    or the users not recorded, the segments dropped or computed on the second candidate's rows, the small-bucket
    test made always true or its note key renamed, the rounding changed."""
    import numpy as np

    from llmrec.metrics import bootstrap_ci
    from llmrec.paired import paired_difference

    (a, b), ranks, users, segment = _reference_ranking_runs(tmp_path)
    recall = {k: (r <= 3).astype(float) for k, r in ranks.items()}
    mrr = {k: np.where(r <= 3, 1.0 / r, 0.0) for k, r in ranks.items()}
    for by, groups in (("sample", None), ("user", users)):
        result = paired_difference(a, b, n_boot=123, seed=7, by=by)
        assert result == paired_difference(a, b, n_boot=123, seed=7, by=by)
        assert (result["a"], result["b"], result["samples"]) == (str(a), str(b), 40)
        assert (result.get("by"), result.get("users")) == ((None, None) if groups is None else ("user", 6))
        for name, per_list in (("recall@3", recall), ("mrr@3", mrr)):
            diff = per_list["a"] - per_list["b"]
            lo, hi = bootstrap_ci(np.mean, diff, n_boot=123, seed=7, groups=groups)
            assert result[name] == {"a": round(per_list["a"].mean(), 6), "b": round(per_list["b"].mean(), 6),
                                    "diff": round(diff.mean(), 6), "ci95": [round(lo, 6), round(hi, 6)]}
        assert result["recall@3"]["ci95"] != paired_difference(a, b, n_boot=123, seed=8, by=by)["recall@3"]["ci95"]
        assert result["recall@3"]["ci95"] != paired_difference(a, b, n_boot=40, seed=7, by=by)["recall@3"]["ci95"]
        buckets = result["segments"]["item_popularity"]
        assert buckets["metric"] == "recall@3" and list(buckets["buckets"]) == ["cold", "warm", "head"]
        assert buckets["buckets"]["warm"] == {"n": 5, "note": "fewer than 10 samples: no difference"}
        for bucket, r in buckets["buckets"].items():
            if bucket == "warm":
                continue
            idx = np.flatnonzero(segment == bucket)
            diff = recall["a"][idx] - recall["b"][idx]
            lo, hi = bootstrap_ci(np.mean, diff, n_boot=123, seed=7, groups=None if groups is None else groups[idx])
            assert r == {"n": len(idx), "a": round(recall["a"][idx].mean(), 6), "b": round(recall["b"][idx].mean(), 6),
                         "diff": round(diff.mean(), 6), "ci95": [round(lo, 6), round(hi, 6)]}


def test_paired_ranking_refuses_lists_that_are_not_the_same(tmp_path):
    """A pair of ranking runs is refused when one side misses a list (either side), when the labels differ on the
    same candidates, and when the lists have different lengths; each error names both runs.
    Mutations caught: the missing-list check made `and`, the candidates-and-labels check made `or`."""
    import pandas as pd

    from llmrec.paired import paired_difference

    (a, b), _, _, _ = _reference_ranking_runs(tmp_path)
    preds = pd.read_parquet(a / "predictions.parquet")
    variants = {
        "fewer": (preds[preds["sample_id"] != 3], "ranked different lists"),
        "labels": (preds.assign(label=preds["label"].where(preds["sample_id"] != 2, 1 - preds["label"])),
                   "disagree on the candidates .* or labels"),
        "candidates": (preds.assign(candidate=preds["candidate"].where(preds["sample_id"] != 2, "other")),
                       "disagree on the candidates"),
    }
    for name, (frame, match) in variants.items():
        (tmp_path / name).mkdir()
        frame.to_parquet(tmp_path / name / "predictions.parquet")
        for left, right in ((tmp_path / name, b), (b, tmp_path / name)):
            with pytest.raises(ConfigError, match=match) as err:
                paired_difference(left, right, n_boot=20)
            assert str(left) in str(err.value) and str(right) in str(err.value)
    # every list one candidate shorter on both sides but one list: lists of different lengths
    short = {}
    for name, src in (("short-a", a), ("short-b", b)):
        p = pd.read_parquet(src / "predictions.parquet")
        p = p[~((p["candidate"] == "c3") & (p["sample_id"] != 0))]
        (tmp_path / name).mkdir()
        p.to_parquet(tmp_path / name / "predictions.parquet")
        short[name] = tmp_path / name
    with pytest.raises(ConfigError, match="candidate lists of different lengths \\(3-4\\)"):
        paired_difference(short["short-a"], short["short-b"], n_boot=20)


def test_paired_ctr_numbers_equal_a_reference_computation(tmp_path):
    """Every number of a CTR pair equals an independent computation: AUC / LogLoss / ACC of each run from the
    metrics module, and each interval from bootstrap_ci on the same rows with the same n_boot and seed (groups =
    users when by user). Mutations caught (mutmut, llmrec.paired._ctr_difference): the seed not passed to the
    bootstrap (a non-default seed then gives another interval), an interval end rounded to another precision."""
    import numpy as np

    from llmrec.metrics import accuracy, auc, bootstrap_ci, log_loss
    from llmrec.paired import paired_difference

    rng = np.random.default_rng(11)
    labels, users = rng.integers(0, 2, 120), np.repeat([f"u{i}" for i in range(12)], 10)
    a = np.clip(0.5 + 0.3 * (labels - 0.5) + rng.normal(0, 0.2, 120), 0.01, 0.99)
    b = np.clip(0.5 + 0.1 * (labels - 0.5) + rng.normal(0, 0.2, 120), 0.01, 0.99)
    _users_run(tmp_path / "a", labels, a, users)
    _users_run(tmp_path / "b", labels, b, users)
    for by, groups in (("sample", None), ("user", users)):
        result = paired_difference(tmp_path / "a", tmp_path / "b", n_boot=150, seed=9, by=by)
        for name, fn in (("auc", auc), ("logloss", log_loss), ("acc", accuracy)):
            lo, hi = bootstrap_ci(lambda y, xa, xb, fn=fn: fn(y, xa) - fn(y, xb), labels, a, b, n_boot=150, seed=9,
                                  groups=groups)
            va, vb = float(fn(labels, a)), float(fn(labels, b))
            assert result[name] == {"a": round(va, 6), "b": round(vb, 6), "diff": round(va - vb, 6),
                                    "ci95": [round(lo, 6), round(hi, 6)]}, (by, name)


def test_paired_helpers_on_their_edges(tmp_path):
    """The small helpers at their boundaries: a seeds folder stands for its finished seeds only; an entry with just
    a and b is well formed; the note mentions users only when an entry resampled them; a segment table without a
    metric name shows "-". Mutations caught: seed_runs counting unfinished seeds, well_formed's ``<=`` made
    ``<``, paired_note's condition made always true, the segment table's default metric changed."""
    from llmrec.paired import PAIRED_NOTE, paired_note, paired_segment_table, seed_runs, well_formed

    for seed, finished in ((0, True), (1, False), (2, True)):
        (tmp_path / f"seed-{seed}").mkdir()
        if finished:
            (tmp_path / f"seed-{seed}" / "metrics.json").write_text("{}")
    assert [p.name for p in seed_runs(tmp_path)] == ["seed-0", "seed-2"]
    assert well_formed({"a": "x", "b": "y"}) and not well_formed({"a": "x"})
    assert paired_note([{"a": "x", "b": "y"}]) == PAIRED_NOTE
    entry = {"a": "x", "b": "y", "segments": {"history_length": {"buckets": {"short": {"n": 3, "note": "few"}}}}}
    assert paired_segment_table([entry], "history_length") == (["a - b", "run", "metric", "short"],
                                                               [["x - y", "-", "-", "- (n=3)"]])


def test_unreadable_predictions_are_one_error_naming_the_file(tmp_path):
    """A predictions file that is not Parquet: one DataError naming the file and the reader's exception type.
    Mutations caught (llmrec.paired.run_predictions): the path left out of the error, the exception type lost."""
    from llmrec.errors import DataError
    from llmrec.paired import paired_difference

    _scored_run(tmp_path / "a", [0, 1], [0.2, 0.8])
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "predictions.parquet").write_text("not parquet")
    with pytest.raises(DataError, match="cannot read predictions") as err:
        paired_difference(tmp_path / "a", tmp_path / "b", n_boot=10)
    assert "predictions.parquet" in str(err.value) and "NoneType" not in str(err.value)

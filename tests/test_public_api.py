"""The public API: ``import llmrec`` is light, and every name of ``llmrec.__all__`` resolves on first use."""

from __future__ import annotations

import ast
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import llmrec

SRC = Path(llmrec.__file__).resolve().parent
FUNCTIONS = ["prepare", "load", "retrieve", "summarize", "evaluate", "train", "baseline", "run_experiment", "plan",
             "rehearse", "report", "compare"]
CONFIGS = ["PrepareConfig", "RetrievalConfig", "SummarizeConfig", "EvaluateConfig", "TrainConfig", "BaselineConfig",
           "ExperimentConfig", "ModelConfig"]


def test_import_is_fast_and_loads_no_model_library():
    code = ("import json, sys, time\nt = time.perf_counter()\nimport llmrec\nseconds = time.perf_counter() - t\n"
            "heavy = sorted(m for m in ('torch', 'transformers', 'trl', 'peft') if m in sys.modules)\n"
            "print(json.dumps({'seconds': seconds, 'heavy': heavy, 'file': llmrec.__file__}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(SRC.parent)})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert Path(result["file"]).resolve().parent == SRC  # this source tree, not another installed copy
    assert result["heavy"] == []
    assert result["seconds"] < 0.5, result


def test_all_lists_the_functions_and_configs():
    assert set(llmrec.__all__) == {"__version__", *FUNCTIONS, *CONFIGS}


@pytest.mark.parametrize("name", FUNCTIONS + CONFIGS)
def test_every_public_name_resolves_and_is_documented_with_an_example(name):
    obj = getattr(llmrec, name)
    assert callable(obj)
    assert name in dir(llmrec)
    if name in FUNCTIONS:  # an example: a doctest, or a literal block not run (it needs a model or data)
        doc = inspect.getdoc(obj) or ""
        assert ">>>" in doc or "::" in doc, f"llmrec.{name} has no example in its docstring"
        assert f"llmrec.{name}(" in doc or ">>>" in doc, f"llmrec.{name}'s example does not call llmrec.{name}"


def test_the_names_are_the_library_objects():
    from llmrec.baselines.run import run_baseline
    from llmrec.data.prepared import PreparedData
    from llmrec.evaluate import EvaluateConfig, evaluate
    from llmrec.experiments import ExperimentConfig, run_experiment
    from llmrec.report import build_report
    from llmrec.tables import compare_table

    assert llmrec.evaluate is evaluate and llmrec.EvaluateConfig is EvaluateConfig
    assert llmrec.baseline is run_baseline and llmrec.report is build_report and llmrec.compare is compare_table
    assert llmrec.run_experiment is run_experiment and llmrec.ExperimentConfig is ExperimentConfig
    assert llmrec.load == PreparedData.load


def test_a_submodule_named_like_a_function_leaves_the_function():
    """``llmrec.evaluate`` stays the function after ``llmrec.evaluate`` the module is imported (in a fresh process:
    the module imported before the name is first used)."""
    code = ("import sys, llmrec\nimport llmrec.evaluate, llmrec.train.run, llmrec.summarize.transform, "
            "llmrec.report.render\nfrom llmrec.train import train\n"
            "print(all(callable(getattr(llmrec, n)) and not isinstance(getattr(llmrec, n), type(sys)) "
            "for n in ('evaluate', 'train', 'summarize', 'report')), train is llmrec.train, "
            "type(sys.modules['llmrec.evaluate']).__name__)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(SRC.parent)})
    assert proc.stdout.split() == ["True", "True", "module"], proc.stdout + proc.stderr


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        llmrec.nope  # noqa: B018
    assert not hasattr(llmrec, "SuiteConfig")


def test_the_type_checking_imports_match_the_lazy_map():
    """The names type checkers see (the ``if TYPE_CHECKING:`` imports) are the ones ``__getattr__`` imports."""
    tree = ast.parse((SRC / "__init__.py").read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    seen = {}
    for node in block.body:
        if isinstance(node, ast.ImportFrom):
            seen.update({a.asname or a.name: f"{node.module}:{a.name}" for a in node.names})
        elif isinstance(node, ast.Assign):  # load = PreparedData.load
            seen[node.targets[0].id] = f"{seen.pop(node.value.value.id).split(':')[0]}:{ast.unparse(node.value)}"
    assert seen == llmrec._API


def test_run_experiment_takes_a_config_and_writes_to_runs_name(tmp_path, tiny_ml1m, monkeypatch):
    """An experiment given as an ``ExperimentConfig`` (no file) runs into ``runs/<name>``; the table comes back."""
    monkeypatch.chdir(tmp_path)
    experiment = llmrec.ExperimentConfig.model_validate({"name": "api", "metrics": ["auc"], "steps": [
        {"name": "data", "prepare": {"dataset": "ml-1m", "protocol": "tallrec", "path": str(tiny_ml1m)}},
        {"name": "floor", "baseline": {"model": "popularity", "data": "@data", "train_samples": 16}}]})
    table = llmrec.run_experiment(experiment, log=lambda m: None, progress=False)
    assert table["rows"]["floor"]["runs"] == 1 and "| floor | 1 |" in table["markdown"]
    assert (tmp_path / "runs" / "api" / "table.json").is_file() and (tmp_path / "runs" / "api" / "floor").is_dir()

"""The command line end to end, on tiny archives written in the test and on the real data."""

import json

import pytest
import yaml
from click.testing import CliRunner

from llmrec import __version__
from llmrec.cli import main
from tests.conftest import random_ratings, write_ml1m_zip


def run(*args, expect=0):
    result = CliRunner().invoke(main, list(map(str, args)))
    assert result.exit_code == expect, result.output + repr(result.exception)
    return result


def test_version_and_help():
    assert __version__ in run("--version").output
    assert "prepare" in run("data", "--help").output
    out = run("data", "list").output
    assert "ml-1m" in out and "rella" in out


def test_prepare_writes_a_complete_folder(tmp_path, tiny_ml1m):
    out = tmp_path / "out"
    res = run("data", "prepare", "ml-1m", "--protocol", "rella", "--path", tiny_ml1m, "--out", out, "--set", "rella.max_history=4")
    assert "train" in res.output and "pos.rate" in res.output
    meta = json.loads((out / "meta.json").read_text())
    assert meta["config"]["max_history"] == 4 and meta["protocol"] == "rella"
    stats = json.loads((out / "stats.json").read_text())
    assert stats["splits"]["train"]["history_max"] == 4
    for name in ("train", "valid", "test", "items", "users", "sequences"):
        assert (out / f"{name}.parquet").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    assert "pos.rate" in run("data", "stats", out).output


def test_config_file_and_overrides(tmp_path, tiny_ml1m):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"dataset": "ml-1m", "protocol": "tallrec", "path": str(tiny_ml1m),
                                   "tallrec": {"history_len": 5, "max_samples": 50}}))
    res = run("data", "prepare", "--config", cfg, "--set", "tallrec.few_shot=[8]", "--seed", 3, "--print-config")
    printed = yaml.safe_load(res.output)
    assert printed["tallrec"] == {**printed["tallrec"], "history_len": 5, "max_samples": 50, "few_shot": [8], "seed": 3}
    out = tmp_path / "t"
    run("data", "prepare", "--config", cfg, "--out", out)
    stats = json.loads((out / "stats.json").read_text())
    assert stats["splits"]["train"]["samples"] == 40 and stats["splits"]["train"]["history_max"] == 5


def test_bad_inputs_give_one_clear_line(tmp_path, tiny_ml1m, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = run("data", "prepare", "ml-1m", "-p", "rella", "--path", tmp_path / "missing.zip", expect=1)
    assert "missing.zip" in res.output and "Traceback" not in res.output
    res = run("data", "prepare", "ml-1m", "-p", "rella", "--path", tiny_ml1m, "--set", "rella.max_histroy=3", expect=1)
    assert "max_histroy" in res.output
    res = run("data", "prepare", "ml-1m", "-p", "rella", "--path", tiny_ml1m, "--set", "nonsense", expect=1)
    assert "key.subkey=value" in res.output
    res = run("data", "prepare", "nope", "-p", "rella", expect=1)
    assert "unknown data set" in res.output
    run("data", "prepare", "ml-1m", expect=2)  # usage error: no protocol
    (tmp_path / "empty").mkdir()
    res = run("data", "prepare", "ml-1m", "-p", "rella", "--data-root", tmp_path / "empty", expect=1)
    assert "not found" in res.output and "--download" in res.output


def test_failed_run_leaves_previous_output_intact(tmp_path, tiny_ml1m):
    out = tmp_path / "out"
    run("data", "prepare", "ml-1m", "-p", "rella", "--path", tiny_ml1m, "--out", out)
    before = (out / "train.parquet").read_bytes()
    bad = write_ml1m_zip(tmp_path / "bad.zip", random_ratings(3, 10, (2, 3)))  # too little history
    res = run("data", "prepare", "ml-1m", "-p", "rella", "--path", bad, "--out", out, expect=1)
    assert "no samples" in res.output
    assert (out / "train.parquet").read_bytes() == before


def test_load_writes_schema_tables(tmp_path, tiny_ml1m):
    res = run("data", "load", "ml-1m", "--path", tiny_ml1m, "--out", tmp_path / "schema")
    assert "interactions" in res.output
    from llmrec.data.schema import RecData

    data = RecData.load(tmp_path / "schema")
    assert list(data.interactions.columns[:4]) == ["user", "item", "rating", "timestamp"]


@pytest.mark.shared_data
def test_readme_main_job_on_real_ml1m(tmp_path, shared_data):
    """ML-1M with the ReLLa protocol reproduces the reference output in docs/protocols.md."""
    out = tmp_path / "rella"
    run("data", "prepare", "ml-1m", "--protocol", "rella", "--data-root", shared_data, "--out", out)
    stats = json.loads((out / "stats.json").read_text())
    splits = stats["splits"]
    assert (stats["users"], stats["items"]) == (6040, 3706)
    assert [splits[s]["samples"] for s in ("train", "valid", "test")] == [776_007, 97_001, 97_001]
    assert sum(splits[s]["samples"] for s in splits) == 1_000_209 - 5 * 6_040
    assert round(splits["train"]["positive_rate"], 4) == 0.5801
    assert round(splits["test"]["positive_rate"], 4) == 0.5437


@pytest.mark.shared_data
def test_tallrec_movie_on_real_ml100k(tmp_path, shared_data):
    out = tmp_path / "tallrec"
    run("data", "prepare", "ml-100k", "-p", "tallrec", "--data-root", shared_data, "--out", out)
    splits = json.loads((out / "stats.json").read_text())["splits"]
    assert [splits[s]["samples"] for s in ("train", "valid", "test", "fewshot_16", "fewshot_64", "fewshot_256")] == [
        8000, 1000, 1000, 16, 64, 256]
    assert all(splits[s]["history_min"] == splits[s]["history_max"] == 10 for s in splits)


@pytest.mark.shared_data
def test_book_and_sequential_protocols_on_real_data(tmp_path, shared_data):
    run("data", "prepare", "bookcrossing", "-p", "tallrec", "--data-root", shared_data, "--out", tmp_path / "bx")
    splits = json.loads((tmp_path / "bx" / "stats.json").read_text())["splits"]
    # 3,440 users have >= 11 ratings in the cleaned copy: one sample each, random 8:1:1
    assert [splits[s]["samples"] for s in ("train", "valid", "test")] == [2752, 344, 344]
    run("data", "prepare", "amazon-games", "-p", "trsr", "--data-root", shared_data, "--out", tmp_path / "games")
    stats = json.loads((tmp_path / "games" / "stats.json").read_text())
    splits = stats["splits"]
    assert stats["dataset"] == "amazon-games"
    assert [splits[s]["samples"] for s in ("train", "valid", "test")] == [6230, 1000, 1000]
    assert splits["test"]["candidates_per_sample"] == 21 and splits["train"]["candidates_per_sample"] == 2
    assert 9 <= splits["test"]["history_min"] and splits["test"]["history_max"] <= 24

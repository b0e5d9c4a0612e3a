"""Bad input through the CLI, as a new user would type it: one clear line, exit != 0, no traceback,
nothing half-written, and nothing of the user's deleted. One test per case found in review."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from llmrec.cli import main
from tests.conftest import random_ratings, write_ml1m_zip
from tests.tiny_models import tiny_loaded

REPO = Path(__file__).resolve().parents[1]


def run(*args: str, env: dict | None = None):
    """Invoke the CLI; return (exit code, stdout + stderr)."""
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {type(result.exception).__name__}: {result.exception}\n{result.output}")
    return result.exit_code, result.output


def assert_clean_failure(code: int, out: str, *fragments: str) -> None:
    assert code != 0, out
    assert "Traceback" not in out, out
    lines = [ln for ln in out.strip().splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1, out
    for f in fragments:
        assert f in lines[0], f"{f!r} not in {lines[0]!r}"


@pytest.fixture
def ml1m_zip(tmp_path) -> Path:
    return write_ml1m_zip(tmp_path / "ml-1m.zip", random_ratings(30, 60, (8, 40)))


@pytest.fixture
def tallrec_dir(tmp_path, ml1m_zip) -> Path:
    out = tmp_path / "prepared"
    code, text = run("data", "prepare", "ml-1m", "-p", "tallrec", "--path", str(ml1m_zip), "-o", str(out),
                     "--set", "tallrec.history_len=5", "--set", "tallrec.max_samples=300",
                     "--set", "tallrec.few_shot=[16]")
    assert code == 0, text
    return out


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny random model + tokenizer saved as a Hugging Face folder."""
    path = tmp_path_factory.mktemp("tiny-model")
    loaded = tiny_loaded("llama")
    loaded.model.save_pretrained(path)
    loaded.tokenizer.save_pretrained(path)
    return path


# ---------------------------------------------------------------- data loss


def test_prepare_refuses_a_folder_that_holds_the_users_files(tmp_path, ml1m_zip):
    data = tmp_path / "data"
    data.mkdir()
    src = data / "ml-1m.zip"
    src.write_bytes(ml1m_zip.read_bytes())
    code, out = run("data", "prepare", "ml-1m", "-p", "tallrec", "--data-root", str(data), "-o", str(data))
    assert_clean_failure(code, out, str(data))
    assert src.read_bytes() == ml1m_zip.read_bytes()  # never deleted

    notes = tmp_path / "mine"
    notes.mkdir()
    (notes / "notes.txt").write_text("do not delete")
    for cmd in (["data", "prepare", "ml-1m", "-p", "rella", "--path", str(ml1m_zip), "-o", str(notes)],
                ["data", "load", "ml-1m", "--path", str(ml1m_zip), "-o", str(notes)]):
        code, out = run(*cmd, "--overwrite")
        assert_clean_failure(code, out, "notes.txt")
        assert (notes / "notes.txt").read_text() == "do not delete"


def test_import_tallrec_refuses_a_foreign_folder(tmp_path):
    (tmp_path / "train.json").write_text(json.dumps([{"instruction": "i", "input": "x", "output": "Yes."}]))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "keep.txt").write_text("x")
    code, out = run("data", "import-tallrec", str(tmp_path / "train.json"), "-o", str(out_dir))
    assert_clean_failure(code, out, "keep.txt")
    assert (out_dir / "keep.txt").exists()


def test_prepared_folders_are_replaced_only_when_they_are_the_same_kind(tmp_path, ml1m_zip, tallrec_dir):
    code, out = run("data", "prepare", "ml-1m", "-p", "tallrec", "--path", str(ml1m_zip), "-o", str(tallrec_dir),
                    "--set", "tallrec.history_len=5", "--set", "tallrec.max_samples=300")
    assert code == 0, out  # the same data set and protocol: prepared again
    code, out = run("data", "prepare", "ml-1m", "-p", "rella", "--path", str(ml1m_zip), "-o", str(tallrec_dir))
    assert_clean_failure(code, out, "--overwrite")
    code, out = run("data", "prepare", "ml-1m", "-p", "rella", "--path", str(ml1m_zip), "-o", str(tallrec_dir),
                    "--overwrite")
    assert code == 0, out


@pytest.mark.parametrize("target", [".", "parent-is-file/out"])
def test_unusable_output_folders(tmp_path, ml1m_zip, target, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "parent-is-file").write_text("x")
    code, out = run("data", "prepare", "ml-1m", "-p", "tallrec", "--path", str(ml1m_zip), "-o", target)
    assert_clean_failure(code, out)
    assert ml1m_zip.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes everywhere")
def test_unwritable_output(tmp_path, ml1m_zip):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code, out = run("data", "prepare", "ml-1m", "-p", "tallrec", "--path", str(ml1m_zip), "-o", str(ro / "x"))
        assert_clean_failure(code, out, "permission denied")
    finally:
        ro.chmod(0o700)


def test_unwritable_output_even_as_root(tmp_path, monkeypatch):
    from llmrec.errors import OutputError
    from llmrec.io import check_output_dir

    monkeypatch.setattr(os, "access", lambda *a, **k: False)
    with pytest.raises(OutputError, match="permission denied"):
        check_output_dir(tmp_path / "new", owned=lambda p: None)


# ---------------------------------------------------------------- silent nonsense


def test_negative_few_shot_sizes_are_refused(tmp_path, ml1m_zip):
    code, out = run("data", "prepare", "ml-1m", "-p", "tallrec", "--path", str(ml1m_zip), "-o", str(tmp_path / "o"),
                    "--set", "tallrec.few_shot=[-4]")
    assert code != 0 and "few_shot" in out and "Traceback" not in out
    assert not (tmp_path / "o").exists()


def test_corrupt_zip_and_latin1_json(tmp_path):
    good = write_ml1m_zip(tmp_path / "good.zip", random_ratings(5, 10, (3, 5)))
    raw = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as z:
        info = z.getinfo("ml-1m/ratings.dat")
    start = info.header_offset + 30 + len(info.filename)
    raw[start:start + 8] = b"\xff" * 8
    bad = tmp_path / "ml-1m.zip"
    bad.write_bytes(bytes(raw))
    code, out = run("data", "prepare", "ml-1m", "-p", "rella", "--path", str(bad), "-o", str(tmp_path / "o"))
    if code == 0:  # the damage missed the compressed stream: corrupt it harder
        pytest.skip("corruption did not hit the deflate stream")
    assert_clean_failure(code, out, "ml-1m.zip")

    (tmp_path / "train.json").write_bytes(
        '[{"instruction": "Caf\u00e9", "input": "x", "output": "Yes."}]'.encode("latin-1"))
    code, out = run("data", "import-tallrec", str(tmp_path / "train.json"), "-o", str(tmp_path / "t"))
    assert_clean_failure(code, out, "train.json", "UTF-8")
    assert not (tmp_path / "t").exists()


def test_a_utf8_copy_of_a_latin1_data_set_keeps_its_accents(tmp_path):
    from llmrec.data.registry import load_dataset

    ratings = random_ratings(3, 4, (2, 3))
    movies = [(1, "Café Society (2016)", "Drama"), (2, "Amélie (2001)", "Comedy"), (3, "Heat (1995)", "Action"),
              (4, "Up (2009)", "Animation")]
    path = tmp_path / "ml-1m.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("ml-1m/ratings.dat", "".join("::".join(map(str, r)) + "\n" for r in ratings))
        z.writestr("ml-1m/movies.dat", "".join("::".join(map(str, m)) + "\n" for m in movies).encode("utf-8"))
        z.writestr("ml-1m/users.dat", "1::F::1::10::48067\n2::M::1::10::1\n3::M::1::10::1\n")
    titles = load_dataset("ml-1m", path).items["title"].tolist()
    assert "Café Society (2016)" in titles and "Amélie (2001)" in titles


def test_non_utf8_csv_fails_naming_the_file(tmp_path):
    from llmrec.data.registry import load_dataset
    from llmrec.errors import DataError

    folder = tmp_path / "ml-latest-small"
    folder.mkdir()
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,100\n")
    (folder / "movies.csv").write_bytes("movieId,title,genres\n1,Caf\u00e9 (2001),Drama\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"movies.csv:2: not UTF-8"):
        load_dataset("ml-latest-small", folder)


# ---------------------------------------------------------------- runs


def test_a_failed_evaluate_does_not_block_the_corrected_rerun(tmp_path, tallrec_dir, model_dir):
    run_dir = tmp_path / "run"
    code, out = run("evaluate", "--data", str(tallrec_dir), "--model", str(tmp_path / "typo.gguf"), "--run-dir",
                    str(run_dir), "--limit", "8")
    assert_clean_failure(code, out, "typo.gguf")
    assert not run_dir.exists()
    code, out = run("evaluate", "--data", str(tallrec_dir), "--model", str(model_dir), "--run-dir", str(run_dir),
                    "--limit", "8", "--device", "cpu")
    assert code == 0, out
    assert (run_dir / "metrics.json").exists()


def test_a_run_folder_that_never_started_takes_a_new_config(tmp_path, tallrec_dir, model_dir):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("data: somewhere\n_identity: {data: somewhere}\n")  # written, then crashed
    code, out = run("evaluate", "--data", str(tallrec_dir), "--model", str(model_dir), "--run-dir", str(run_dir),
                    "--limit", "8", "--device", "cpu")
    assert code == 0, out


def test_train_checks_shots_before_the_run_folder(tmp_path, tallrec_dir, model_dir):
    run_dir = tmp_path / "t"
    code, out = run("train", "--data", str(tallrec_dir), "--shots", "100000", "--model", str(model_dir),
                    "--run-dir", str(run_dir))
    assert_clean_failure(code, out, "100000", "use at most")
    assert not run_dir.exists()


def test_corrupt_run_config_and_truncated_adapter(tmp_path, tallrec_dir, model_dir):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("a: [unclosed\n")
    (run_dir / "predictions.partial.jsonl").write_text("")
    code, out = run("evaluate", "--data", str(tallrec_dir), "--model", str(model_dir), "--run-dir", str(run_dir),
                    "--limit", "8", "--device", "cpu")
    assert_clean_failure(code, out, "config.yaml", "corrupt")

    from peft import LoraConfig, get_peft_model

    adapter = tmp_path / "adapter"
    peft_model = get_peft_model(tiny_loaded("llama").model, LoraConfig(r=2, target_modules=["q_proj"]))
    peft_model.save_pretrained(adapter)
    weights = adapter / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    code, out = run("evaluate", "--data", str(tallrec_dir), "--model", str(model_dir), "--adapter", str(adapter),
                    "--run-dir", str(tmp_path / "r2"), "--limit", "8", "--device", "cpu")
    assert_clean_failure(code, out, "adapter_model.safetensors", "truncated")
    assert not (tmp_path / "r2").exists()


def test_cuda_on_a_cpu_machine_fails_at_once(tmp_path, tallrec_dir, model_dir):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    t0 = time.perf_counter()
    code, out = run("evaluate", "--data", str(tallrec_dir), "--model", str(model_dir), "--device", "cuda",
                    "--run-dir", str(tmp_path / "r"), "--limit", "8")
    assert time.perf_counter() - t0 < 20
    assert_clean_failure(code, out, "cuda", "no CUDA device")
    assert not (tmp_path / "r").exists()


def test_unknown_hub_id_offline_fails_fast(tmp_path, tallrec_dir):
    t0 = time.perf_counter()
    code, out = run("evaluate", "--data", str(tallrec_dir), "--model", "no-such-org/no-such-model", "--device", "cpu",
                    "--run-dir", str(tmp_path / "r"), "--limit", "8", env={"HF_HUB_OFFLINE": "1"})
    assert time.perf_counter() - t0 < 20
    assert_clean_failure(code, out, "no-such-org/no-such-model", "offline")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("content", ["{not json", '{"dataset": "x"}', "[]"])
def test_compare_on_broken_metrics(tmp_path, content):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "metrics.json").write_text(content)
    code, out = run("compare", str(tmp_path / "r"))
    assert_clean_failure(code, out, "metrics.json")
    code, out = run("compare", str(tmp_path / "missing"))
    assert_clean_failure(code, out, "missing")


def test_bench_scoring_without_a_test_split(tmp_path, tallrec_dir):
    (tallrec_dir / "test.parquet").unlink()
    meta = json.loads((tallrec_dir / "meta.json").read_text())
    meta["splits"].remove("test")
    (tallrec_dir / "meta.json").write_text(json.dumps(meta))
    code, out = run("bench", "scoring", "--data", str(tallrec_dir))
    assert_clean_failure(code, out, "no split 'test'")


@pytest.mark.parametrize("content", [b"{not json", b'{"dataset": "caf\xe9"}', b"[]"])
def test_a_prepared_folder_with_a_broken_meta_json(tmp_path, tallrec_dir, content):
    """Not JSON, not UTF-8 or not an object: one line naming meta.json, before any work."""
    (tallrec_dir / "meta.json").write_bytes(content)
    code, out = run("bench", "scoring", "--data", str(tallrec_dir))
    assert_clean_failure(code, out, "meta.json")


def test_an_experiment_checks_every_step_before_the_first_runs(tmp_path, tallrec_dir, model_dir):
    (tmp_path / "good.yaml").write_text(f"data: {tallrec_dir}\nmodel: {{name: {model_dir}, device: cpu}}\nlimit: 8\n")
    (tmp_path / "bad.yaml").write_text(f"data: {tallrec_dir}\nsplit: nope\n")
    (tmp_path / "exp.yaml").write_text("name: s\nrows:\n  - {name: one, evaluate: good.yaml}\n"
                                       "  - {name: two, evaluate: bad.yaml}\n")
    code, out = run("run", str(tmp_path / "exp.yaml"), "--out", str(tmp_path / "out"))
    assert_clean_failure(code, out, "step 'two'", "no split 'nope'")
    assert not (tmp_path / "out" / "one").exists()  # row one never ran


def test_ctrl_c_exits_130(tmp_path, tallrec_dir, monkeypatch):
    import llmrec.data.prepared as prepared_module

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(prepared_module.PreparedData, "load", classmethod(interrupted))
    code, out = run("data", "stats", str(tallrec_dir))
    assert code == 130 and "interrupted" in out and "Traceback" not in out


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "r").mkdir()
    result = CliRunner().invoke(main, ["--debug", "compare", str(tmp_path / "r")])
    assert result.exception is not None and not isinstance(result.exception, SystemExit)


def test_argument_errors_come_before_heavy_imports():
    """`llmrec train` with a bad --data answers without importing torch/transformers/TRL or printing warnings."""
    code = ("import sys; from llmrec.cli import main\n"
            "try:\n    main(['train', '--data', 'no/such/folder'], standalone_mode=False)\n"
            "except Exception as e:\n    print('ERR', e)\n"
            "print('HEAVY', sorted(m for m in ('trl', 'transformers', 'peft', 'torchao', 'datasets') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert "ERR" in proc.stdout and "no/such/folder" in proc.stdout, proc.stdout + proc.stderr
    assert "HEAVY []" in proc.stdout, proc.stdout
    assert "torchao" not in proc.stderr and "Warning" not in proc.stderr, proc.stderr


# ---------------------------------------------------------------- the run commands, working


def test_evaluate_compare_and_run_through_the_cli(tmp_path, tallrec_dir, model_dir):
    common = ["--data", str(tallrec_dir), "--model", str(model_dir), "--device", "cpu", "--limit", "40"]
    code, out = run("evaluate", *common, "--run-dir", str(tmp_path / "a"))
    assert code == 0, out
    code, out = run("evaluate", *common, "--run-dir", str(tmp_path / "b"), "--set", "history_k=2")
    assert code == 0, out
    code, out = run("compare", str(tmp_path / "a"), str(tmp_path / "b"))
    assert code == 0, out
    table, _, by_user = out.strip().partition("\n\n")
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["run", "data", "prompts"] and len(lines) == 3
    assert "[" in lines[1] and "ml-1m/tallrec/test" in lines[1]  # value [95% interval]
    assert "resampling whole users" in by_user and len(by_user.splitlines()) == 3  # a heading, then a and b
    code, out = run("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--paired")
    assert code == 0, out
    assert "b - a on 30 paired samples:" in out and "95% CI [" in out
    code, out = run("evaluate", *common[:-1], "20", "--run-dir", str(tmp_path / "c"))
    assert code == 0, out
    code, out = run("compare", str(tmp_path / "a"), str(tmp_path / "c"), "--paired")  # other samples: refused
    assert_clean_failure(code, out, "scored different samples")

    (tmp_path / "row.yaml").write_text(f"data: {tallrec_dir}\nmodel: {{name: {model_dir}, device: cpu}}\nlimit: 20\n")
    (tmp_path / "exp.yaml").write_text("name: s\nmetrics: [auc, logloss]\nrows:\n  - {name: zero, evaluate: row.yaml}\n"
                                       "  - {name: short, evaluate: row.yaml, set: [history_k=1]}\n")
    code, out = run("run", str(tmp_path / "exp.yaml"), "--out", str(tmp_path / "s"))
    assert code == 0, out
    table = (tmp_path / "s" / "table.md").read_text()
    assert "| zero | 1 |" in table and "| short | 1 |" in table
    again = CliRunner().invoke(main, ["run", str(tmp_path / "exp.yaml"), "--out", str(tmp_path / "s")])
    assert again.exit_code == 0 and again.output.count(": done (key") == 2  # finished and unchanged: skipped by key

    # `llmrec suite`, the deprecated alias: one line on stderr, then the same command
    alias = CliRunner().invoke(main, ["suite", str(tmp_path / "exp.yaml"), "--out", str(tmp_path / "s")])
    assert alias.exit_code == 0, alias.output
    first, *rest = alias.stderr.splitlines()
    assert first == "`llmrec suite` is deprecated: use `llmrec run`" and "deprecated" not in alias.stdout
    assert rest == again.stderr.splitlines() and alias.stdout == again.stdout


def test_bench_data_through_the_cli(tmp_path, ml1m_zip):
    code, out = run("bench", "data", "--dataset", "ml-1m", "--protocol", "rella", "--path", str(ml1m_zip),
                    "-o", str(tmp_path / "b.json"))
    assert code == 0, out
    result = json.loads((tmp_path / "b.json").read_text())
    assert result["prepare"] and result["metrics"]


def test_hidden_files_are_the_users_too(tmp_path, ml1m_zip, tallrec_dir):
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    code, out = run("data", "prepare", "ml-1m", "-p", "tallrec", "--path", str(ml1m_zip), "-o", str(repo))
    assert_clean_failure(code, out, ".git")
    assert (repo / ".git").is_dir()
    (tallrec_dir / ".env").write_text("SECRET=1")  # a prepared folder with a file we did not write
    code, out = run("data", "prepare", "ml-1m", "-p", "tallrec", "--path", str(ml1m_zip), "-o", str(tallrec_dir),
                    "--overwrite")
    assert_clean_failure(code, out, ".env")
    assert (tallrec_dir / ".env").exists()


def test_ctrl_c_inside_the_csv_parser_is_not_a_corrupt_file(monkeypatch):
    import pandas as pd

    from llmrec.data.loaders import movielens

    def interrupted_parse(*a, **k):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise pd.errors.ParserError("Error tokenizing data") from None  # what the C parser surfaces

    monkeypatch.setattr(movielens.pd, "read_csv", interrupted_parse)
    with pytest.raises(KeyboardInterrupt):
        movielens.read_delimited(b"1\t2\t3\t4\n", sep="\t", names=["a", "b", "c", "d"], where="u.data")


# ---------------------------------------------------------------- bad contents and values (audit of 2026-12-02)


@pytest.mark.parametrize("table, column", [("test", "label"), ("train", "history_items"), ("items", "title")])
def test_a_prepared_folder_missing_a_column_fails_before_any_model(tmp_path, tallrec_dir, table, column):
    import pyarrow.parquet as pq

    path = tallrec_dir / f"{table}.parquet"
    pq.write_table(pq.read_table(path).drop_columns([column]), path)
    run_dir = tmp_path / "run"
    code, out = run("evaluate", "--data", str(tallrec_dir), "--model", str(tmp_path / "no-model-needed"),
                    "--run-dir", str(run_dir))
    assert_clean_failure(code, out, f"{table}.parquet", f"field '{column}'", "missing column")
    assert not run_dir.exists()
    code, out = run("baseline", "popularity", "-d", str(tallrec_dir), "--run-dir", str(run_dir))
    assert_clean_failure(code, out, f"{table}.parquet", column)
    assert not run_dir.exists()


def test_a_baseline_parameter_of_the_wrong_kind_is_refused_before_training(tmp_path, tallrec_dir):
    run_dir = tmp_path / "run"
    code, out = run("baseline", "din", "-d", str(tallrec_dir), "--set", "params.net_dropout=abc", "--run-dir",
                    str(run_dir))
    assert_clean_failure(code, out, "params.net_dropout", "'abc'")
    assert not run_dir.exists()


def test_lora_targets_that_match_no_module_name_the_setting(tmp_path, tallrec_dir, model_dir):
    code, out = run("train", "--data", str(tallrec_dir), "--shots", "16", "--model", str(model_dir), "--device", "cpu",
                    "--set", "lora.target_modules=[nosuch_proj]", "--run-dir", str(tmp_path / "t"))
    assert_clean_failure(code, out, "lora.target_modules", "nosuch_proj", "q_proj")


@pytest.mark.parametrize("setting, fragment", [("tallrec.label_threshold=9", "above every rating"),
                                               ("tallrec.label_threshold=0", "below every rating"),
                                               ("tallrec.split=[0,0,0]", "positive sum")])
def test_prepare_refuses_settings_that_leave_nothing_to_learn(tmp_path, ml1m_zip, setting, fragment):
    out_dir = tmp_path / "p"
    code, out = run("data", "prepare", "ml-1m", "-p", "tallrec", "--path", str(ml1m_zip), "-o", str(out_dir),
                    "--set", setting)
    assert code != 0 and "Traceback" not in out and fragment in out, out
    assert not out_dir.exists()


@pytest.mark.parametrize("args", [["scoring", "--prompts", "0"], ["training", "--steps", "1"],
                                  ["retrieval", "-k", "0"], ["baselines", "--steps", "0"]])
def test_bench_counts_must_be_positive(args):
    code, out = run("bench", *args)
    assert code == 2 and "is not in the range" in out, out


def test_config_file_errors_name_the_file(tmp_path):
    cfg = tmp_path / "eval.yaml"
    cfg.write_text("data: somewhere\nbogus_key: 1\n")
    code, out = run("evaluate", "-c", str(cfg))
    assert code != 0 and f"{cfg}: invalid config" in out and "bogus_key" in out, out


def test_a_template_file_that_does_not_exist_is_called_missing(tmp_path, tallrec_dir):
    code, out = run("evaluate", "--data", str(tallrec_dir), "-t", str(tmp_path / "mine.yaml"), "--model",
                    str(tmp_path / "m"), "--run-dir", str(tmp_path / "r"))
    assert_clean_failure(code, out, "mine.yaml", "not found")


def test_report_on_a_corrupt_table_names_it_and_leaves_nothing(tmp_path):
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / "table.json").write_text("{broken")
    code, out = run("report", str(folder), "-o", str(tmp_path / "rep"))
    assert_clean_failure(code, out, "table.json", "cannot read JSON")
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize("content", ["{}", "[1]", '{"rows": []}', '{"rows": {"x": "s"}}',
                                     '{"rows": {"x": {"folders": null}}}', '{"rows": {}, "curves": [{}]}'])
def test_report_on_a_table_of_another_shape_names_it_and_leaves_nothing(tmp_path, content):
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / "table.json").write_text(content)
    code, out = run("report", str(folder), "-o", str(tmp_path / "rep"))
    assert_clean_failure(code, out, "table.json", "not an llmrec experiment table")
    assert not (tmp_path / "rep").exists()


@pytest.mark.parametrize("text, fragment", [("name: x\nsteps: [{name: a\n", "line 3, column 1"),
                                            ("name: x\n  steps: 1\n  - a\n", "line 2, column 8")])
def test_yaml_syntax_errors_are_one_line_naming_file_and_position(tmp_path, text, fragment):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text(text)
    code, out = run("run", str(cfg), "--dry-run")
    assert_clean_failure(code, out, f"{cfg}: invalid YAML", fragment)
    assert len(out.strip().splitlines()) == 1, out


def test_several_config_errors_are_one_line(tmp_path):
    cfg = tmp_path / "eval.yaml"
    cfg.write_text("data: somewhere\nbogus_key: 1\nlimit: many\n")
    code, out = run("evaluate", "-c", str(cfg))
    assert_clean_failure(code, out, f"{cfg}: invalid config", "bogus_key", "limit")
    assert len(out.strip().splitlines()) == 1, out


def test_compare_on_metrics_whose_run_entry_is_not_a_mapping(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "metrics.json").write_text('{"metrics": {"auc": 0.6}, "run": "x"}')
    code, out = run("compare", str(tmp_path / "r"))
    assert code == 0 and "0.6000" in out and "Traceback" not in out, out


@pytest.mark.parametrize("line", [b"{}\n", b"[1]\n", b'{"key": "caf\xe9"}\n'])
def test_corrupt_partial_predictions_name_the_file_and_line(tmp_path, line):
    from llmrec.errors import LlmrecError
    from llmrec.runs import RunDir

    run_dir = RunDir(tmp_path / "run")
    run_dir.path.mkdir()
    run_dir.partial_path.write_bytes(b'{"key": "a", "score": 0.5}\n' + line)
    with pytest.raises(LlmrecError, match=r"predictions.partial.jsonl: corrupt line 2 .*delete the file"):
        run_dir.done()


def test_report_does_not_replace_the_users_own_report_files(tmp_path):
    run_folder = tmp_path / "r"
    run_folder.mkdir()
    (run_folder / "metrics.json").write_text('{"metrics": {"auc": 0.6}}')
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.md").write_text("my notes\n")
    code, out = run("report", str(run_folder), "-o", str(mine))
    assert_clean_failure(code, out, str(mine), "did not write")
    assert (mine / "report.md").read_text() == "my notes\n" and not (mine / "report_files").exists()
    code, out = run("report", str(run_folder), "-o", str(tmp_path / "ours"))  # a report replaces its own
    assert code == 0, out
    code, out = run("report", str(run_folder), "-o", str(tmp_path / "ours"))
    assert code == 0, out


def test_serve_run_refuses_a_baseline_run_and_a_data_path_that_is_not_here(tmp_path):
    pytest.importorskip("fastapi")
    base = tmp_path / "din"
    base.mkdir()
    (base / "config.yaml").write_text("model: din\ndata: prepared/x\nparams: {}\n")
    code, out = run("serve", "--run", str(base))
    assert_clean_failure(code, out, str(base), "classic baseline 'din'")
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "config.yaml").write_text("data: prepared/nowhere\nmodel: {name: m}\n")
    code, out = run("serve", "--run", str(ev))
    assert_clean_failure(code, out, "prepared/nowhere", "pass --data")


def test_bench_output_is_checked_before_the_benchmark_runs(tmp_path):
    (tmp_path / "afile").write_text("x")
    code, out = run("bench", "scoring", "--prompts", "1", "-o", str(tmp_path / "afile" / "x.json"))
    assert code == 2 and "is a file" in out and "Traceback" not in out, out


@pytest.mark.parametrize("vectors, fragment", [([[1.0, 2.0], [1.0]], "row 1 (item '2'): a vector of shape (1,)"),
                                               ([[1.0, float("nan")], [1.0, 2.0]], "row 0 (item '1'): the vector holds NaN"),
                                               ([["a", "b"], ["c", "d"]], "row 0 (item '1'): the vector is not a list of numbers")])
def test_an_item_vector_file_with_bad_vectors_names_the_file_and_row(tmp_path, vectors, fragment):
    import pandas as pd

    from llmrec.errors import DataError
    from llmrec.retrieval.encode import _read_vector_file

    path = tmp_path / "vectors.parquet"
    pd.DataFrame({"item": ["1", "2"], "vector": vectors}).to_parquet(path)
    with pytest.raises(DataError, match="vectors.parquet: " + re.escape(fragment)):
        _read_vector_file(str(path), ["1", "2"])


def test_a_template_written_for_another_protocol_is_refused(tmp_path, tallrec_dir, model_dir):
    code, out = run("evaluate", "--data", str(tallrec_dir), "-t", "trsr", "--model", str(model_dir),
                    "--run-dir", str(tmp_path / "r"), "--device", "cpu")
    assert_clean_failure(code, out, "template 'trsr' is written for trsr data", "is tallrec data")
    assert not (tmp_path / "r").exists()


def test_small_nonsense_inputs_are_refused(tmp_path, tallrec_dir, model_dir):
    """Found in review: each used to pass (a path escape, a flag ignored, an infinite run, a limit given twice)."""
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("name: ../../escape\nsteps: [{name: a, evaluate: {data: d}}]\n")
    assert_clean_failure(*run("run", str(cfg), "--dry-run"), "experiment name '../../escape'")
    assert_clean_failure(*run("evaluate", "--data", str(tallrec_dir), "--model", str(model_dir), "--merge",
                              "--run-dir", str(tmp_path / "r")), "--merge) needs an adapter")
    assert not (tmp_path / "r").exists()
    assert_clean_failure(*run("train", "--data", str(tallrec_dir), "--model", str(model_dir), "--set",
                              "optim.epochs=.inf", "--run-dir", str(tmp_path / "t")), "optim.epochs")
    assert_clean_failure(*run("summarize", str(tallrec_dir), "-o", str(tmp_path / "s"), "--limit", "train=5",
                              "--limit", "train=7"), "limited twice")


@pytest.mark.parametrize("prepare, fragment", [("{dataset: nosuchset, protocol: tallrec}", "unknown data set 'nosuchset'"),
                                               ("{dataset: ml-100k, protocol: tallrec, data_root: EMPTY}",
                                                "data set 'ml-100k' not found")])
def test_an_experiments_prepare_step_is_checked_before_anything_runs(tmp_path, prepare, fragment):
    (tmp_path / "empty").mkdir()
    exp = tmp_path / "exp.yaml"
    exp.write_text("name: pp\nsteps:\n  - {name: data, prepare: " + prepare.replace("EMPTY", str(tmp_path / "empty"))
                   + "}\n  - {name: zs, evaluate: {data: '@data', limit: 5}}\n")
    code, out = run("run", str(exp), "--out", str(tmp_path / "out"))
    assert_clean_failure(code, out, "step 'data'", fragment)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- issue 34: the bad inputs that still got through


def _experiment_file(path: Path, name: str, data: Path, limit: int = 20) -> Path:
    path.write_text(f"name: {name}\nsteps:\n  - {{name: a, baseline: {{model: popularity, data: {data}, "
                    f"test: {{limit: {limit}}}}}, seeds: [0]}}\n")
    return path


def test_an_experiment_folder_refuses_another_experiment(tmp_path, tallrec_dir):
    """Found in review: a step of the same name in another experiment's folder had another key, so the other
    experiment's finished run was removed and run again (rc 0)."""
    out = tmp_path / "out"
    one = _experiment_file(tmp_path / "one.yaml", "one", tallrec_dir)
    two = _experiment_file(tmp_path / "two.yaml", "two", tallrec_dir, limit=30)
    code, text = run("run", str(one), "--out", str(out))
    assert code == 0, text
    metrics = (out / "a" / "seed-0" / "metrics.json").read_bytes()
    for extra in ((), ("--dry-run",), ("--table-only",)):
        code, text = run("run", str(two), "--out", str(out), *extra)
        assert_clean_failure(code, text, str(out), "'one'", "'two'")
    assert (out / "a" / "seed-0" / "metrics.json").read_bytes() == metrics  # never removed
    assert json.loads((out / "table.json").read_text())["suite"] == "one"

    # the same experiment with a changed step: redone, as before
    _experiment_file(one, "one", tallrec_dir, limit=30)
    code, text = run("run", str(one), "--out", str(out))
    assert code == 0 and "its config or inputs changed" in text, text

    # a folder written before the marker is adopted by its experiment; its table.json still names the owner
    (out / ".steps" / "@experiment.json").unlink()
    code, text = run("run", str(two), "--out", str(out))
    assert_clean_failure(code, text, "'one'", "'two'")
    code, text = run("run", str(one), "--out", str(out))
    assert code == 0 and ": done (key" in text, text
    assert json.loads((out / ".steps" / "@experiment.json").read_text()) == {"experiment": "one"}
    (out / ".steps" / "@experiment.json").unlink()
    (out / "table.json").unlink()  # no name anywhere: whoever runs first adopts it
    code, text = run("run", str(one), "--out", str(out), "--dry-run")
    assert code == 0 and "done" in text, text
    assert not (out / ".steps" / "@experiment.json").exists()  # a dry run writes nothing


def test_an_impossible_rating_fails_naming_the_file_and_line(tmp_path):
    """Found in review: one rating of 99 in MovieLens moved the default label rule to "rating > 5", and every label
    was 0 (rc 0). Each loader knows its scale."""
    rows = random_ratings(30, 60, (8, 40))
    rows[41] = (*rows[41][:2], 99, rows[41][3])
    zip_path = write_ml1m_zip(tmp_path / "ml-1m.zip", rows)
    code, out = run("data", "prepare", "ml-1m", "-p", "tallrec", "--path", str(zip_path), "-o", str(tmp_path / "p"))
    assert_clean_failure(code, out, "ratings.dat:42", "field 'rating'", "rating 99 is outside the MovieLens scale 1-5")
    assert not (tmp_path / "p").exists()


def test_a_split_with_one_class_fails(tmp_path):
    """Ratings that all fall on one side of the label rule (here 1-3 stars, label = rating > 3) leave nothing to
    learn or rank: the prepare fails naming the split, and writes nothing."""
    rows = [(u, i, min(r, 3), t) for u, i, r, t in random_ratings(30, 60, (8, 40))]
    zip_path = write_ml1m_zip(tmp_path / "ml-1m.zip", rows)
    code, out = run("data", "prepare", "ml-1m", "-p", "rella", "--path", str(zip_path), "-o", str(tmp_path / "p"))
    assert_clean_failure(code, out, str(tmp_path / "p"), "every one of its", "labels is 0", "label = rating > 3")
    assert not (tmp_path / "p").exists()


def test_evaluate_on_a_missing_folder_or_a_deleted_split_says_so(tmp_path, tallrec_dir, model_dir):
    """Found in review: a missing folder was "meta.json missing", a deleted split "cannot read table"."""
    common = ["--model", str(model_dir), "--device", "cpu", "--run-dir", str(tmp_path / "r")]
    code, out = run("evaluate", "--data", str(tmp_path / "nowhere"), *common)
    assert_clean_failure(code, out, str(tmp_path / "nowhere"), "no such folder")
    (tallrec_dir / "test.parquet").unlink()
    code, out = run("evaluate", "--data", str(tallrec_dir), *common)
    assert_clean_failure(code, out, str(tallrec_dir / "test.parquet"), "no such file")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("entry", ["from llmrec.cli import main\nsys.exit(main())",  # the console script
                                   "import runpy\nrunpy.run_module('llmrec.cli', run_name='__main__')"])  # -m
def test_ctrl_c_while_the_commands_are_imported_exits_130(entry):
    """Found in review: Ctrl-C in the first second of a command (while importing) showed a KeyboardInterrupt
    traceback. The interrupt is raised here by an import hook, at the import of the last command module."""
    code = ("import sys, importlib.abc\n"
            "class Interrupt(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path, target=None):\n"
            "        if name == 'llmrec.cli.train':\n"
            "            raise KeyboardInterrupt\n"
            "sys.meta_path.insert(0, Interrupt())\n" + entry + "\n")
    proc = subprocess.run([sys.executable, "-c", code, "data", "list"], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO / "src")})
    assert proc.returncode == 130, proc.stdout + proc.stderr
    assert proc.stderr.strip() == "interrupted" and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("target", ["/proc/llmrec-out", "/sys/llmrec-out"])
def test_an_output_on_a_file_system_that_takes_no_files_is_one_clear_line(tmp_path, ml1m_zip, target):
    """Found in review: `-o` under /proc as root passed the permission check and failed after the work with
    `Error: FileNotFoundError: ...`. A folder is now created and removed there first."""
    if not Path(target).parent.is_dir():
        pytest.skip(f"no {Path(target).parent} here")
    code, out = run("data", "prepare", "ml-1m", "-p", "tallrec", "--path", str(ml1m_zip), "-o", target)
    assert_clean_failure(code, out, target, "choose another")
    assert "cannot create files in" in out or "permission denied" in out, out  # as root / as a user
    assert "FileNotFoundError" not in out and "built" not in out  # refused before the work

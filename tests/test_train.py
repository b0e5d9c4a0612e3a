"""LoRA training end to end on tiny random models: loss, learning, adapters, resume, few-shot, import."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

from llmrec.data.prepare import PrepareConfig, prepare
from llmrec.data.sampling import sample_indices
from llmrec.errors import ConfigError, DataError, ModelError
from llmrec.evaluate import EvaluateConfig, evaluate
from llmrec.llm import apply_adapter
from llmrec.metrics import auc as auc_reference
from llmrec.train import TrainConfig, train, train_seeds
from llmrec.train.adapters import LoraSettings
from llmrec.train.config import OptimSettings
from llmrec.train.examples import Example, read_instruction_file
from llmrec.train.hf import make_trainer, sft_config
from llmrec.train.trainer import IGNORE, LeftPadCollator, answer_only_loss
from tests.tiny_models import tiny_gemma3, tiny_llama, tiny_loaded

QUIET = dict(progress=False, log=lambda m: None)


def toy_examples(n: int, vocab: int = 64, seed: int = 0) -> list[Example]:
    """Prompts of random tokens with a key token (10 -> answer 20, 11 -> answer 21): learnable."""
    g = np.random.default_rng(seed)
    out = []
    for i in range(n):
        key = 10 + i % 2
        prompt = [1, *g.integers(30, vocab, size=int(g.integers(4, 12))).tolist(), key, 5]
        answer = [20 + i % 2, 2]
        out.append(Example(prompt + answer, [IGNORE] * len(prompt) + answer))
    return out


def full_logit_loss(model, examples: list[Example]) -> float:
    """Reference: mean cross-entropy over all label tokens, one unpadded example at a time, full logits."""
    total, count = 0.0, 0
    with torch.no_grad():
        for e in examples:
            logits = model(input_ids=torch.tensor([e.input_ids])).logits[0, :-1].float()
            labels = torch.tensor(e.labels[1:])
            total += torch.nn.functional.cross_entropy(logits, labels, ignore_index=IGNORE, reduction="sum").item()
            count += int((labels != IGNORE).sum())
    return total / count


@pytest.mark.parametrize("build", [tiny_llama, tiny_gemma3])
def test_answer_only_loss_equals_full_logit_loss(build):
    model = build(vocab=64)
    examples = toy_examples(6)
    batch = LeftPadCollator(pad_token_id=0)([e.as_dict() for e in examples])
    with torch.no_grad():
        ours = answer_only_loss(model, batch).item()
    assert ours == pytest.approx(full_logit_loss(model, examples), abs=1e-5)


def header_examples(n: int, header: int = 24, vocab: int = 64, seed: int = 0) -> list[Example]:
    """Toy examples that all start with the same ``header`` tokens (a template's instruction), then a random tail of
    4-30 tokens, a key token and the answer."""
    g = np.random.default_rng(seed)
    head = [1, *g.integers(30, vocab, size=header - 1).tolist()]
    out = []
    for i in range(n):
        prompt = [*head, *g.integers(30, vocab, size=int(g.integers(4, 30))).tolist(), 10 + i % 2, 5]
        answer = [20 + i % 2, 2]
        out.append(Example(prompt + answer, [IGNORE] * len(prompt) + answer))
    return out


@pytest.mark.parametrize("build", [tiny_llama, lambda vocab: tiny_gemma3(vocab=vocab, sliding_window=128)])
def test_a_shared_header_gives_the_plain_loss_and_gradients(build):
    """The batch's common header run once, its keys and values shared by the rows' tails: the loss and every LoRA
    gradient equal the plain left-padded step's (1e-5), and the model saw fewer tokens.

    Mutation: tail positions that restart at 0, or the prefix not repeated per row: the loss differs.
    """
    from peft import get_peft_model

    from llmrec.train.trainer import shared_prefix_length

    torch.manual_seed(0)
    model = get_peft_model(build(vocab=64), LoraSettings(r=4, dropout=0.0).to_peft())
    for name, p in model.named_parameters():  # LoRA's B starts at zero: give the adapters a value
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.2)
    batch = LeftPadCollator(0)([e.as_dict() for e in header_examples(6)])
    assert shared_prefix_length(batch, keep=3) == 24
    results = []
    for shared in (False, True):
        model.zero_grad()
        loss = answer_only_loss(model, batch, shared_prefix=shared)
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        results.append((loss.item(), grads))
    (plain, g_plain), (shared, g_shared) = results
    assert shared == pytest.approx(plain, abs=1e-5)
    assert g_plain.keys() == g_shared.keys() and len(g_plain) > 0
    for name in g_plain:
        assert torch.allclose(g_shared[name], g_plain[name], atol=1e-5), name


def test_a_shared_header_falls_back_where_it_cannot_be_shared():
    """No common prefix (random prompts), one row, or a batch wider than a sliding window: the plain step."""
    from llmrec.train.trainer import _fits_window, shared_prefix_length

    mixed = LeftPadCollator(0)([e.as_dict() for e in toy_examples(4)])
    assert shared_prefix_length(mixed, keep=3) == 0
    one = LeftPadCollator(0)([header_examples(1)[0].as_dict()])
    assert shared_prefix_length(one, keep=3) == 0
    narrow = tiny_gemma3(vocab=64, sliding_window=8)
    batch = LeftPadCollator(0)([e.as_dict() for e in header_examples(4)])
    assert not _fits_window(narrow, batch["input_ids"].shape[1]) and _fits_window(tiny_llama(), 10_000)
    with torch.no_grad():
        assert answer_only_loss(narrow, batch, shared_prefix=True).item() == answer_only_loss(narrow, batch).item()


def test_answer_only_loss_equals_trl_default_loss(tmp_path):
    from transformers import PreTrainedTokenizerFast

    from tests.tiny_models import tiny_tokenizer

    tok: PreTrainedTokenizerFast = tiny_tokenizer()
    model = tiny_gemma3(vocab=len(tok))
    examples = toy_examples(8, vocab=len(tok))
    args = sft_config(OptimSettings(max_steps=1), tmp_path, 0, progress=False)
    trl = make_trainer(model, tok, examples, args, loss="trl")
    batch = trl.data_collator([trl.train_dataset[i] for i in range(len(examples))])
    model.eval()
    with torch.no_grad():
        theirs = trl.compute_loss(model, batch).item()
        ours = answer_only_loss(model, LeftPadCollator(tok.pad_token_id)([e.as_dict() for e in examples])).item()
    assert ours == pytest.approx(theirs, abs=1e-4)


def test_left_padding_does_not_change_a_row_loss():
    model = tiny_llama(vocab=64)
    examples = toy_examples(5, seed=3)
    alone = [answer_only_loss(model, LeftPadCollator(0)([e.as_dict()])).item() for e in examples]
    counts = [sum(label != IGNORE for label in e.labels) for e in examples]
    with torch.no_grad():
        batched = answer_only_loss(model, LeftPadCollator(0)([e.as_dict() for e in examples])).item()
    assert batched == pytest.approx(np.dot(alone, counts) / sum(counts), abs=1e-5)


def test_training_lowers_the_loss_on_a_learnable_task(tmp_path):
    from peft import get_peft_model

    from tests.tiny_models import tiny_tokenizer

    tok = tiny_tokenizer()
    base = tiny_llama(vocab=len(tok))
    with torch.no_grad():  # a random 32-wide model barely moves its logits; a larger head makes the toy learnable
        base.lm_head.weight.mul_(25.0)
    model = get_peft_model(base, LoraSettings(r=8, target_modules=["q_proj", "v_proj", "o_proj", "down_proj"],
                                              dropout=0.0).to_peft())
    examples = toy_examples(32, vocab=len(tok))
    before = full_logit_loss(model, examples)
    args = sft_config(OptimSettings(learning_rate=1e-2, epochs=10, batch_size=8), tmp_path, 0, progress=False)
    args.save_strategy = "no"
    make_trainer(model, tok, examples, args).train()
    model.eval()
    after = full_logit_loss(model, examples)
    assert after < 0.5 * before, (before, after)


def test_train_end_to_end_writes_a_complete_run(tmp_path, tallrec_data):
    cfg = TrainConfig(data=str(tallrec_data), train_samples=24, run_dir=str(tmp_path / "run"),
                      optim={"epochs": 2, "batch_size": 8}, selection={"limit": 20}, test={"limit": 15})
    path, result = train(cfg, loaded=tiny_loaded("gemma3"), **QUIET)
    files = {p.name for p in path.iterdir()}
    assert {"config.yaml", "adapter", "best-adapter", "selection.json", "train_log.json", "test", "metrics.json",
            "checkpoints"} <= files
    assert result["train"]["samples"] == 24 and result["train"]["steps"] == 6
    evals = result["selection"]["evaluations"]
    assert [e["step"] for e in evals] == [0, 3, 6]  # untrained point + every epoch
    best = result["selection"]["best"]
    assert best["auc"] == max(e["auc"] for e in evals)
    assert set(result["test"]) >= {"auc", "logloss", "acc"}
    test_preds = pd.read_parquet(path / "test" / "predictions.parquet")
    assert len(test_preds) == 15
    # a finished run is not redone
    again_path, again = train(cfg, loaded=tiny_loaded("gemma3"), **QUIET)
    assert again == json.loads((path / "metrics.json").read_text())


def test_adapter_round_trips_merged_and_unmerged(tmp_path, tallrec_data):
    cfg = TrainConfig(data=str(tallrec_data), train_samples=16, run_dir=str(tmp_path / "run"),
                      optim={"epochs": 1, "batch_size": 8, "learning_rate": 1e-2},
                      selection={"enabled": False}, test={"limit": 12})
    path, result = train(cfg, loaded=tiny_loaded("llama"), **QUIET)
    trained = pd.read_parquet(path / "test" / "predictions.parquet")
    zero = evaluate(EvaluateConfig(data=str(tallrec_data), limit=12, run_dir=str(tmp_path / "zero")),
                    loaded=tiny_loaded("llama"), **QUIET)[0]
    zero_scores = pd.read_parquet(zero / "predictions.parquet")["score"].to_numpy()
    assert np.abs(trained["score"].to_numpy() - zero_scores).max() > 1e-4  # the adapter changed the scores
    for merge in (False, True):
        loaded = apply_adapter(tiny_loaded("llama"), path, merge=merge)
        out = evaluate(EvaluateConfig(data=str(tallrec_data), limit=12, run_dir=str(tmp_path / f"eval-{merge}"),
                                      adapter=str(path / "adapter")), loaded=loaded, **QUIET)[0]
        again = pd.read_parquet(out / "predictions.parquet")
        np.testing.assert_allclose(again["score"].to_numpy(), trained["score"].to_numpy(), atol=1e-4)


def _adapter_weights(path):
    from safetensors.torch import load_file

    return load_file(str(path / "adapter" / "adapter_model.safetensors"))


def test_resume_after_interruption_gives_the_same_adapter(tmp_path, tallrec_data):
    from transformers import TrainerCallback

    base = dict(data=str(tallrec_data), train_samples=32, optim={"epochs": 2, "batch_size": 4, "save_steps": 4},
                selection={"limit": 16, "every_steps": 4}, test={"enabled": False})
    straight, _ = train(TrainConfig(**base, run_dir=str(tmp_path / "a")), loaded=tiny_loaded("llama"), **QUIET)

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == 6:
                raise KeyboardInterrupt("simulated interruption")

    cfg = TrainConfig(**base, run_dir=str(tmp_path / "b"))
    with pytest.raises(KeyboardInterrupt):
        train(cfg, loaded=tiny_loaded("llama"), callbacks=[Crash()], **QUIET)
    assert not (tmp_path / "b" / "metrics.json").exists()
    assert (tmp_path / "b" / "checkpoints" / "checkpoint-4").exists()
    # kill -9 while transformers writes the next checkpoint: an empty / half-written folder
    (tmp_path / "b" / "checkpoints" / "checkpoint-6").mkdir()
    (tmp_path / "b" / "checkpoints" / "checkpoint-8").mkdir()
    (tmp_path / "b" / "checkpoints" / "checkpoint-8" / "trainer_state.json").write_text('{"glob')
    resumed, result = train(cfg, loaded=tiny_loaded("llama"), **QUIET)
    assert not (tmp_path / "b" / "checkpoints" / "checkpoint-6").exists()  # the torn ones are removed
    assert result["train"]["resumed_from"].endswith("checkpoint-4")
    a, b = _adapter_weights(straight), _adapter_weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5)
    assert [e["step"] for e in result["selection"]["evaluations"]] == [0, 4, 8, 12, 16]
    # train_loss covers the whole run, not only the steps after the resume
    straight_result = json.loads((straight / "metrics.json").read_text())
    assert result["train"]["train_loss"] == pytest.approx(straight_result["train"]["train_loss"], rel=1e-4)
    # and so does train_log.json's closing entry (it held the mean of the resumed steps only: issue 34)
    last = json.loads((resumed / "train_log.json").read_text())[-1]
    assert last["train_loss"] == pytest.approx(result["train"]["train_loss"], rel=1e-6)
    assert last["train_loss"] == pytest.approx(json.loads((straight / "train_log.json").read_text())[-1]["train_loss"],
                                               rel=1e-4)
    log = json.loads((resumed / "train_log.json").read_text())
    after = [e["loss"] for e in log if "loss" in e and e["step"] > 4]  # the session's own mean: steps 5-16 only
    assert last["train_loss_this_session"] == pytest.approx(np.mean(after), rel=1e-4) != last["train_loss"]


def test_a_run_folder_with_another_config_is_refused(tmp_path, tallrec_data):
    cfg = TrainConfig(data=str(tallrec_data), train_samples=8, run_dir=str(tmp_path / "run"),
                      optim={"max_steps": 1, "batch_size": 8}, selection={"enabled": False}, test={"enabled": False})
    train(cfg, loaded=tiny_loaded("llama"), **QUIET)
    with pytest.raises(ConfigError, match="different config"):
        train(cfg.model_copy(update={"train_samples": 16}), loaded=tiny_loaded("llama"), **QUIET)


def test_few_shot_sampling_is_deterministic_and_seeded():
    a, b, c = sample_indices(1000, 64, 1), sample_indices(1000, 64, 1), sample_indices(1000, 64, 2)
    assert (a == b).all() and set(a) != set(c)
    assert set(sample_indices(1000, 16, 1)) <= set(a)
    with pytest.raises(DataError, match="cannot draw 2000"):
        sample_indices(1000, 2000, 0)


def test_seeds_are_summarized_with_mean_and_std(tmp_path, tallrec_data):
    cfg = TrainConfig(data=str(tallrec_data), train_samples=8, run_dir=str(tmp_path / "multi"),
                      optim={"max_steps": 1, "batch_size": 8}, selection={"enabled": False}, test={"limit": 40})
    path, summary = train_seeds(cfg, [0, 1], loader=lambda: tiny_loaded("llama"), **QUIET)
    assert (path / "seed-0" / "metrics.json").exists() and (path / "seed-1" / "metrics.json").exists()
    aucs = [json.loads((path / f"seed-{s}" / "metrics.json").read_text())["metrics"]["auc"] for s in (0, 1)]
    assert summary["metrics"]["auc"] == pytest.approx(np.mean(aucs), abs=1e-6)
    assert summary["metrics_std"]["auc"] == pytest.approx(np.std(aucs, ddof=1), abs=1e-6)
    assert summary["metrics_per_seed"]["auc"] == pytest.approx(aucs)
    assert json.loads((path / "summary.json").read_text())["seeds"] == [0, 1]
    # the seeds folder reads like one run: llmrec compare shows mean ± std
    from llmrec.tables import compare_table

    table = compare_table([str(path), str(path / "seed-0")])
    assert "multi (2 seeds)" in table and f"{np.mean(aucs):.4f} ± {np.std(aucs, ddof=1):.4f}" in table


def test_instruction_stage_then_rec_tuning(tmp_path, tallrec_data):
    records = [{"instruction": "Name a colour.", "input": "", "output": "Blue"},
               {"instruction": "Answer Yes or No.", "input": "Is the sky blue?", "output": "Yes."}] * 4
    (tmp_path / "alpaca.json").write_text(json.dumps(records))
    cfg = TrainConfig(data=str(tallrec_data), train_samples=8, run_dir=str(tmp_path / "run"),
                      optim={"max_steps": 2, "batch_size": 4}, instruction={"data": str(tmp_path / "alpaca.json")},
                      selection={"enabled": False}, test={"enabled": False})
    path, result = train(cfg, loaded=tiny_loaded("llama"), **QUIET)
    assert (path / "instruction" / "adapter" / "adapter_config.json").exists()
    assert (path / "adapter" / "adapter_config.json").exists()


@pytest.mark.parametrize("content,match", [("{not json", "not valid JSON"), ('{"a": 1}', "JSON list"),
                                           ('[{"input": "x", "output": "y"}]', "instruction"),
                                           ('[{"instruction": "x", "output": ""}]', "output")])
def test_bad_instruction_files_are_named(tmp_path, content, match):
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(DataError, match=match) as err:
        read_instruction_file(tmp_path / "bad.json")
    assert "bad.json" in str(err.value)


def test_bad_train_configs_fail_before_loading_a_model(tmp_path, tallrec_data):
    with pytest.raises(ConfigError, match="no split 'nope'"):
        train(TrainConfig(data=str(tallrec_data), split="nope"), loaded=None, **QUIET)
    with pytest.raises(ConfigError, match="cannot draw 1000000 samples .* use at most 240"):
        train(TrainConfig(data=str(tallrec_data), train_samples=10**6, run_dir=str(tmp_path / "r"),
                          test={"enabled": False}), loaded=tiny_loaded("llama"), **QUIET)
    assert not (tmp_path / "r").exists()  # nothing written: a corrected rerun in the same folder is not blocked


def test_import_tallrec_release_then_train_and_evaluate(tmp_path):
    from llmrec.data.protocols import PreparedData
    from llmrec.data.tallrec_release import import_tallrec

    instruction = ("Given the user's preference and unpreference, identify whether the user will like the target "
                   'movie by answering "Yes." or "No.".')
    g = np.random.default_rng(0)
    for split, n in (("train", 16), ("valid", 12), ("test", 12)):
        recs = [{"instruction": instruction,
                 "input": f'User Preference: "Movie {g.integers(99)}"\\nUser Unpreference: "Movie {g.integers(99)}"\\n'
                          f'Whether the user will like the target movie "Movie {i}"?',
                 "output": "Yes." if i % 2 else "No."} for i in range(n)]
        (tmp_path / f"{split}.json").write_text(json.dumps(recs))
    prepared = import_tallrec([str(tmp_path)], name="tallrec-movie-release")
    assert list(prepared.splits) == ["train", "valid", "test"]
    assert prepared.splits["test"]["label"].to_pylist() == [i % 2 for i in range(12)]
    out = prepared.save(tmp_path / "prepared")
    assert PreparedData.load(out).protocol == "instruction"
    path, result = train(TrainConfig(data=str(out), run_dir=str(tmp_path / "run"), optim={"max_steps": 2, "batch_size": 8},
                                     selection={"limit": 12}), loaded=tiny_loaded("llama"), **QUIET)
    assert result["dataset"] == "tallrec-movie-release"
    preds = pd.read_parquet(path / "test" / "predictions.parquet")  # the reported AUC is that of the predictions
    assert sorted(preds["label"]) == sorted(i % 2 for i in range(12))
    assert result["test"]["auc"] == pytest.approx(auc_reference(preds["label"], preds["score"]), abs=1e-12)
    run = json.loads((path / "test" / "metrics.json").read_text())["run"]
    assert run["template"] == "alpaca" and run["answer_tokens"] == ["Yes", "No"]


@pytest.mark.parametrize("records,match", [([{"instruction": "a", "input": "b", "output": "Maybe."}], "neither Yes nor No"),
                                           ([{"instruction": "a", "output": "Yes."}], "'input'"),
                                           ([], "non-empty JSON list")])
def test_import_tallrec_rejects_bad_records(tmp_path, records, match):
    from llmrec.data.tallrec_release import import_tallrec

    (tmp_path / "test.json").write_text(json.dumps(records))
    with pytest.raises(DataError, match=match) as err:
        import_tallrec([str(tmp_path / "test.json")])
    assert "test.json" in str(err.value)
    with pytest.raises(DataError, match="not found"):
        import_tallrec([f"valid={tmp_path / 'missing.json'}"])


def test_cli_train_and_import_commands(tmp_path):
    from click.testing import CliRunner

    from llmrec.cli import main

    runner = CliRunner()
    res = runner.invoke(main, ["train", "-c", "configs/tallrec/movie-256.yaml", "--seed", "3", "--set", "optim.epochs=2",
                               "--print-config"])
    assert res.exit_code == 0, res.output
    assert "train_samples: 256" in res.output and "seed: 3" in res.output and "epochs: 2.0" in res.output
    (tmp_path / "test.json").write_text(json.dumps([{"instruction": "q", "input": "x", "output": "Yes."},
                                                    {"instruction": "q", "input": "y", "output": "No."}]))
    res = runner.invoke(main, ["data", "import-tallrec", str(tmp_path / "test.json"), "-o", str(tmp_path / "p")])
    assert res.exit_code == 0, res.output
    assert "test" in res.output and (tmp_path / "p" / "meta.json").exists()
    res = runner.invoke(main, ["train", "-d", str(tmp_path / "p"), "--seeds", "a,b"])
    assert res.exit_code != 0 and "comma-separated integers" in res.output


def test_early_stopping_after_patience_evaluations_without_improvement(tmp_path, tallrec_data):
    cfg = TrainConfig(data=str(tallrec_data), train_samples=16, run_dir=str(tmp_path / "run"),
                      optim={"epochs": 5, "batch_size": 8, "learning_rate": 1e-12},
                      selection={"limit": 20, "patience": 2}, test={"enabled": False})
    path, result = train(cfg, loaded=tiny_loaded("llama"), **QUIET)
    steps = [e["step"] for e in result["selection"]["evaluations"]]
    assert steps == [0, 2, 4] and result["train"]["steps"] == 4  # stopped after 2 of 5 epochs
    assert result["selection"]["best"]["step"] == 0  # nothing learned: the untrained adapter is kept


def test_missing_adapter_is_a_clear_error(tmp_path):
    from llmrec.llm import adapter_dir

    with pytest.raises(ModelError, match="no LoRA adapter here"):
        adapter_dir(tmp_path)
    (tmp_path / "adapter").mkdir()
    (tmp_path / "adapter" / "adapter_config.json").write_text("{}")
    assert adapter_dir(tmp_path) == tmp_path / "adapter"


def test_training_progress_shows_the_loss_in_the_bar_not_printed_dicts(tmp_path, tiny_ml1m, capsys):
    from llmrec.train import TrainConfig, train
    from tests.tiny_models import tiny_loaded

    data = prepare(PrepareConfig(dataset="ml-1m", protocol="tallrec", path=str(tiny_ml1m), out=str(tmp_path / "d"),
                                 tallrec={"history_len": 5, "max_samples": 200}), log=lambda m: None)[1]
    cfg = TrainConfig(data=str(data), train_samples=8, run_dir=str(tmp_path / "run"),
                      optim={"max_steps": 2, "batch_size": 4}, selection={"enabled": False}, test={"enabled": False})
    _, result = train(cfg, loaded=tiny_loaded("llama"), log=lambda m: None, progress=True)
    out = capsys.readouterr()
    assert "{'loss'" not in out.out and "{'loss'" not in out.err
    assert result["train"]["train_loss"] is not None  # the log history is still kept
    assert json.loads((tmp_path / "run" / "train_log.json").read_text())[0]["loss"] > 0


def test_seeded_draws_at_their_edges():
    """The draws at their boundaries: N equal to the split (or None) is every row in order, N above it is one
    error; an evaluation subset never repeats a row; a run record of a folder without a path says so (None, not
    "None"). Mutations caught (mutmut, llmrec.data.sampling): ``and`` made ``or`` / ``>`` made ``>=`` in the
    too-many check, ``np.arange(None)``, ``replace=False`` dropped or made True, ``getattr`` without its default,
    the path test made always true."""
    import numpy as np
    import pyarrow as pa

    from llmrec.data.sampling import sample_indices, subset_rows, training_rows_record
    from llmrec.errors import DataError

    assert sample_indices(10, 10, 0).tolist() == list(range(10)) == sample_indices(10, None, 3).tolist()
    with pytest.raises(DataError, match="cannot draw 11 training samples from a split of 10"):
        sample_indices(10, 11, 0)
    for seed in range(5):
        rows = subset_rows(100, 90, seed)
        assert len(set(rows)) == 90 and rows == sorted(rows) and all(0 <= r < 100 for r in rows)
    assert subset_rows(5, 5, 0) == [0, 1, 2, 3, 4]

    class Folder:  # no path attribute (an in-memory folder)
        def split(self, name, columns=None):
            return pa.table({"sample_id": [7, 8, 9]})

    record = training_rows_record(Folder(), "train", np.array([2, 0]), 4)
    assert record == {"data": None, "split": "train", "sample_seed": 4, "samples": 2, "rows": [2, 0],
                      "sample_ids": [9, 7]}


class _PresetScorer:
    """Stands in for the Yes/No scorer inside the selector: each call returns the next preset scores."""

    queue: list = []

    def __init__(self, model, answer, scoring, pad_token_id=None):
        pass

    def score(self, prompts):
        return np.asarray(self.queue.pop(0), dtype=np.float64)


def _selector(tmp_path, monkeypatch, labels, scores, **kw):
    from llmrec.llm import AnswerTokens
    from llmrec.train import selection

    saved, logged, reported = [], [], []
    _PresetScorer.queue = [list(s) for s in scores]
    monkeypatch.setattr(selection, "YesNoScorer", _PresetScorer)
    monkeypatch.setattr(selection, "save_adapter", lambda model, path, accelerator: saved.append(path))
    sel = selection.ValidationSelector([None] * np.asarray(labels).shape[0], labels, AnswerTokens(1, 2, "Yes", "No"),
                                       tmp_path, log=logged.append, report=lambda points, step: reported.append(
                                           (points, step)), **kw)
    return sel, saved, logged, reported


def test_the_selector_keeps_exactly_the_best_adapter_and_records_every_point(tmp_path, monkeypatch):
    """Validation points with AUC .75, 1.0, .0: the adapter is saved at each point that is the best so far (the
    first two) and not after, the log marks those points "(best so far)" and no other, selection.json names it best with every point's metrics and epoch (to 4
    decimals), and the tracker receives each point's valid/ metrics at its step. With LogLoss as the metric the
    lowest wins. Mutations caught (mutmut, llmrec.train.selection): the adapter saved when the point is not the best
    (``is`` made ``is not``), the sign of a lower-is-better metric flipped, the recorded keys ("logloss", "best",
    "saved") renamed, the epoch not rounded or lost, the log's "(best so far)" condition made constant, the
    tracker's points or step not passed."""
    import json

    import torch

    labels = np.array([1, 1, 0, 0])
    scores = [[0.9, 0.4, 0.6, 0.1], [0.9, 0.8, 0.3, 0.1], [0.2, 0.3, 0.7, 0.8]]  # AUC .75, 1.0, .0
    sel, saved, logged, reported = _selector(tmp_path, monkeypatch, labels, scores)
    model = torch.nn.Linear(1, 1)
    saves = []
    for step, epoch in ((4, 1 / 3), (8, 2 / 3), (12, 1.0)):
        sel.evaluate(model, step, epoch)
        saves.append(len(saved))
    assert saves == [1, 2, 2] and set(saved) == {tmp_path / "best-adapter"}  # at the first and the best point only
    assert ["(best so far)" in line for line in logged] == [True, True, False]
    state = json.loads((tmp_path / "selection.json").read_text())
    assert state["metric"] == "auc" and state["best"]["step"] == 8 and state["best"]["auc"] == 1.0
    assert [(p["step"], p["epoch"]) for p in state["evaluations"]] == [(4, 0.3333), (8, 0.6667), (12, 1.0)]
    assert all(set(p) >= {"auc", "logloss", "mean_score"} for p in state["evaluations"])
    assert logged[1].startswith("validation at step 8 (epoch 0.6667): auc 1.0000, logloss ")
    assert [step for _, step in reported] == [4, 8, 12] and reported[1][0]["valid/auc"] == 1.0

    lower = _selector(tmp_path / "ll", monkeypatch, labels, [[0.6, 0.6, 0.4, 0.4], [0.9, 0.9, 0.1, 0.1],
                                                              [0.55, 0.55, 0.45, 0.45]], metric="logloss")[0]
    for step in (1, 2, 3):
        lower.evaluate(model, step, 0.0)
    assert lower.best()["step"] == 2


def test_the_selector_scores_candidate_lists_with_the_ranking_metrics(tmp_path, monkeypatch):
    """Candidate lists (labels of shape lists x candidates): the point holds the selection metric and Recall@3,
    MRR@10 and NDCG@10, each equal to the metrics module's value on the same lists. Mutations caught: the metric
    names changed or dropped, metric_by_name called without the name."""
    import torch

    from llmrec.metrics import metric_by_name

    labels = np.array([[1, 0, 0, 0], [0, 0, 1, 0]])
    scores = np.array([0.1, 0.9, 0.5, 0.2, 0.3, 0.1, 0.8, 0.4])
    sel = _selector(tmp_path, monkeypatch, labels, [scores], metric="mrr@3")[0]
    point = sel.evaluate(torch.nn.Linear(1, 1), 1, 0.5)
    lists = scores.reshape(2, 4)
    assert {k for k in point if "@" in k} == {"mrr@3", "recall@3", "mrr@10", "ndcg@10"}
    for name in ("mrr@3", "recall@3", "mrr@10", "ndcg@10"):
        assert point[name] == metric_by_name(name, labels, lists)

"""``llmrec plan``: the memory model against what a real (tiny) model holds, the advice, the command.

The shape-derived counts (weights, LoRA parameters, keys and values per token) are checked against a tiny random
Llama and Gemma 3 built in the test and against peft; the activation formula against the bytes autograd actually
saves in a LoRA forward (``saved_tensors_hooks``); the command on a tiny prepared folder and a tiny model folder.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner

from llmrec.errors import ConfigError
from llmrec.planning import DEVICES, KNOWN_SHAPES, ModelShape, custom, model_shape, train_estimate
from llmrec.planning.estimate import GIB, generate_estimate, score_estimate
from llmrec.planning.steps import _train_retry, fit_advice
from tests.tiny_models import tiny_gemma3, tiny_llama

LLAMA7 = KNOWN_SHAPES["meta-llama/Llama-2-7b-hf"]


@pytest.mark.parametrize("build", [tiny_llama, tiny_gemma3])
def test_shape_counts_equal_a_real_model(build):
    model = build(vocab=100)
    shape = ModelShape.from_config(model.config.to_dict(), name="tiny")
    linear = sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2)  # norms are left out
    assert shape.parameters == linear
    assert shape.non_embedding_parameters == linear - 100 * model.config.hidden_size * (1 if shape.tied else 2)
    with torch.no_grad():
        cache = model(input_ids=torch.randint(3, 100, (1, 7)), use_cache=True).past_key_values
    held = sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))
    assert shape.kv_bytes_per_token(4) * 7 == held


def test_lora_parameters_equal_peft():
    from peft import LoraConfig, get_peft_model

    model = tiny_llama(vocab=100)
    shape = ModelShape.from_config(model.config.to_dict())
    for targets in (["q_proj", "v_proj"], ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]):
        peft_model = get_peft_model(tiny_llama(vocab=100), LoraConfig(r=4, target_modules=targets))
        trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
        assert shape.lora_parameters(4, targets) == trainable


def test_published_shapes():
    assert round(LLAMA7.parameters / 1e9, 2) == 6.74  # "7B"
    assert round(KNOWN_SHAPES["lmsys/vicuna-13b-v1.5"].parameters / 1e9, 2) == 13.02
    assert round(KNOWN_SHAPES["huggyllama/llama-30b"].parameters / 1e9, 1) == 32.5
    assert LLAMA7.lora_parameters(8, ["q_proj", "v_proj"]) == 4_194_304  # peft's figure for Llama-2-7B
    gemma = model_shape("default")
    assert round(gemma.non_embedding_parameters / 1e6, 1) == 100.3 and gemma.tied


def test_activation_formula_against_what_autograd_saves():
    """The bytes autograd keeps for the backward pass of a LoRA forward (frozen base, dropout on) are within 30% of
    the per-token, per-layer formula (attention probabilities counted: the tiny model runs eager attention)."""
    from peft import LoraConfig, get_peft_model

    model = tiny_llama(vocab=100)
    model.config._attn_implementation = "eager"
    shape = ModelShape.from_config(model.config.to_dict())
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], lora_dropout=0.05))
    peft_model.train()
    batch, length = 4, 48
    saved: dict[int, int] = {}

    def pack(t):
        saved.setdefault(t.untyped_storage().data_ptr(), t.untyped_storage().nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = peft_model(input_ids=torch.randint(3, 100, (batch, length)), logits_to_keep=3)
    weights = {p.untyped_storage().data_ptr() for p in peft_model.parameters()}
    kept = sum(n for ptr, n in saved.items() if ptr not in weights)
    e = train_estimate(shape, DEVICES["h100"], "float32", batch=batch, max_tokens=length, mean_tokens=length, steps=1,
                       lora_r=4, lora_targets=("q_proj", "v_proj"), eager_attention=True, answer_tokens=3)
    planned = e.parts["activations"] + e.parts["logits"]
    assert 0.7 < kept / planned < 1.3, (kept, planned)
    assert out.logits.shape == (batch, 3, 100)


def test_train_estimate_by_hand():
    e = train_estimate(LLAMA7, DEVICES["h100"], "bfloat16", batch=2, max_tokens=100, mean_tokens=100, steps=10,
                       lora_r=8, lora_targets=("q_proj", "v_proj"))
    assert e.parts["weights"] == LLAMA7.parameters * 2
    assert e.parts["lora + optimizer"] == 4_194_304 * 16
    per_layer = (2 * 4096 + 2 * 4096 + 2 * 4096 + 3 * 11008 + 2 * 4096) * 2  # bytes per token and layer
    assert e.parts["activations"] == 2 * 100 * 32 * per_layer
    forward = 2 * LLAMA7.non_embedding_parameters * 100 + 4 * 32 * 100 * 50 * 4096
    assert e.flops == pytest.approx(forward * 2 * 2 * 10)
    assert e.seconds == pytest.approx(e.flops / (989e12 * 0.35))
    ckpt = train_estimate(LLAMA7, DEVICES["h100"], "bfloat16", batch=2, max_tokens=100, mean_tokens=100, steps=10,
                          lora_r=8, lora_targets=("q_proj", "v_proj"), gradient_checkpointing=True)
    assert ckpt.parts["activations"] == 2 * 100 * (32 * 4096 * 2 + per_layer)
    assert ckpt.flops == pytest.approx(e.flops * 1.5)
    zero3 = train_estimate(LLAMA7, DEVICES["h100"], "bfloat16", batch=2, max_tokens=100, mean_tokens=100, steps=10,
                           lora_r=8, lora_targets=("q_proj", "v_proj"), gpus=8, sharding="zero3")
    assert zero3.parts["weights"] == LLAMA7.parameters * 2 / 8
    assert zero3.parts["lora + optimizer"] == 4_194_304 * (4 + 12 / 8)
    assert zero3.seconds == pytest.approx(e.seconds)  # 8x the sequences on 8x the devices


def test_published_7b_lora_memory():
    """LongLoRA (arXiv:2309.12307, Table 12, plain LoRA): Llama 2 7B, 8,192 tokens, batch 1 per GPU, gradient
    checkpointing, FlashAttention-2, ZeRO-2 on 8 A100s, the whole sequence's LM loss: 25.7 GB per GPU. The plan
    is within 25% of it."""
    e = train_estimate(LLAMA7, DEVICES["a100-80gb"], "bfloat16", batch=1, max_tokens=8192, mean_tokens=8192, steps=1,
                       lora_r=8, lora_targets=("q_proj", "k_proj", "v_proj", "o_proj"), gradient_checkpointing=True,
                       gpus=8, sharding="zero2", answer_tokens=8192)
    assert abs(e.bytes / 1e9 - 25.7) / 25.7 < 0.25, e.bytes / 1e9


def test_score_and_generate_estimates_grow_with_their_inputs():
    small = score_estimate(LLAMA7, DEVICES["l4"], "bfloat16", prompts=100, batch=8, max_tokens=300,
                           computed_tokens=30_000)
    big = score_estimate(LLAMA7, DEVICES["l4"], "bfloat16", prompts=100, batch=32, max_tokens=300,
                         computed_tokens=30_000, context_tokens=200)
    assert big.parts["kv cache"] == LLAMA7.kv_bytes_per_token(2) * 200 * 33 and big.gib > small.gib
    assert small.seconds == pytest.approx(small.flops / (121e12 * 0.45))
    g = generate_estimate(LLAMA7, DEVICES["h100"], "bfloat16", prompts=64, batch=16, prompt_tokens=500,
                          max_prompt_tokens=600, new_tokens=96)
    assert g.parts["kv cache"] == LLAMA7.kv_bytes_per_token(2) * 16 * (600 + 96)
    # the prefill at the compute rate, then 4 batches x 96 decoding steps, each reading 13.5 GB at 3.35 TB/s
    prefill = 2 * LLAMA7.non_embedding_parameters * 500 * 64 / (989e12 * 0.45)
    assert g.seconds == pytest.approx(prefill + 4 * 96 * LLAMA7.parameters * 2 / 3350e9)


def test_advice_names_settings_that_fit():
    vicuna = KNOWN_SHAPES["lmsys/vicuna-13b-v1.5"]
    args = (vicuna, DEVICES["a100-40gb"], "bfloat16", 1200, 900, 8, ("q_proj", "v_proj"), 1, "none")
    e = _train_retry(*args)(16, False)
    assert not e.fits
    advice = fit_advice(e, _train_retry(*args), batch=16)
    assert advice.startswith("does not fit: 142.9 GiB on a 40 GiB a100-40gb; try ")
    batch = int(advice.split("try batch ")[1].split()[0]) if "try batch" in advice else 16
    assert _train_retry(*args)(batch, "checkpointing" in advice).fits
    assert not _train_retry(*args)(batch, False).fits  # the cheapest change that fits: checkpointing was needed
    e = _train_retry(*args)(64, True)  # checkpointing alone is not enough at batch 64: a smaller batch is named
    advice = fit_advice(e, _train_retry(*args), batch=64)
    assert "try batch" in advice and "grad_accum x" in advice
    batch = int(advice.split("try batch ")[1].split()[0])
    assert batch < 64 and _train_retry(*args)(batch, "checkpointing" in advice).fits
    huge = KNOWN_SHAPES["huggyllama/llama-30b"]
    e = train_estimate(huge, DEVICES["l4"], "bfloat16", batch=1, max_tokens=100, mean_tokens=100, steps=1, lora_r=8,
                       lora_targets=("q_proj", "v_proj"))
    assert "weights alone" in fit_advice(e, lambda b, c: e, 1) and "--sharding zero3" in fit_advice(e, lambda b, c: e, 1)
    fits = train_estimate(LLAMA7, DEVICES["h100"], "bfloat16", batch=1, max_tokens=100, mean_tokens=100, steps=1,
                          lora_r=8, lora_targets=("q_proj",))
    assert fit_advice(fits, lambda b, c: fits, 1) == ""


def test_unknown_models_and_devices_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="no config.json here"):
        model_shape("someone/unknown-model")
    with pytest.raises(ConfigError, match="lora.target_modules"):
        LLAMA7.lora_parameters(8, ["c_attn"])
    from llmrec.planning import device_named

    with pytest.raises(ConfigError, match="--memory GIB and --tflops"):
        device_named("tpu-v9")
    assert custom(48, 181).memory_gib == 48 and math.isclose(custom(48, 181).fp32_tflops, 90.5)


def _train_file(tmp_path, data, model) -> str:
    path = tmp_path / "train.yaml"
    path.write_text(f"data: {data}\nmodel: {{name: {model}}}\ntrain_samples: 40\nhistory_k: 5\n"
                    "optim: {epochs: 2, batch_size: 4}\nselection: {limit: 10}\ntest: {limit: 12}\n")
    return str(path)


def test_plan_command_on_a_train_config(tmp_path, tallrec_data, tiny_model_folder):
    from llmrec.cli import main

    config = _train_file(tmp_path, tallrec_data, tiny_model_folder)
    result = CliRunner().invoke(main, ["plan", config, "--gpu", "l4", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output[result.output.index("{"):])
    parts = [r["part"] for r in plan["rows"]]
    assert parts == ["train", "selection x3", "test"]  # two epochs + the untrained adapter
    train = plan["rows"][0]
    assert "40 examples, 20 steps of 4 x 1 x 1 GPU" in train["detail"]
    assert plan["fits"] and {"weights", "lora + optimizer", "activations"} <= set(train["parts_gib"])
    assert plan["rows"][2]["memory_gib"] > 0 and plan["device"]["name"] == "l4"
    assert "12 rows x 1 prompts" in plan["rows"][2]["detail"]
    text = CliRunner().invoke(main, ["plan", config, "--gpu", "l4"])
    assert text.exit_code == 0 and "peak" in text.output and "GiB" in text.output


def test_plan_command_refuses_what_does_not_fit(tmp_path, tallrec_data, tiny_model_folder):
    from llmrec.cli import main

    config = _train_file(tmp_path, tallrec_data, tiny_model_folder)
    result = CliRunner().invoke(main, ["plan", config, "--memory", "0.0001"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "DOES NOT FIT" in result.output and "a step does not fit" in result.output
    bad = CliRunner().invoke(main, ["plan", config, "--gpu", "tpu-v9"])
    assert bad.exit_code == 1 and "--gpu tpu-v9: not a device a plan knows" in bad.output


def test_plan_of_an_experiment_with_steps_that_make_data(tmp_path, tallrec_data, tiny_model_folder):
    """A step reading another step's output (not made yet) is planned on that step's input."""
    from llmrec.experiments.resources import plan_file

    exp = tmp_path / "exp.yaml"
    exp.write_text(f"""name: tiny-plan
steps:
  - {{name: zs, evaluate: {{data: {tallrec_data}, model: {{name: {tiny_model_folder}}}, limit: 8, history_k: 5}}}}
  - {{name: lora, train: {_train_file(tmp_path, tallrec_data, tiny_model_folder)}}}
  - {{name: pop, baseline: {{model: popularity, data: {tallrec_data}}}}}
  - {{name: later, evaluate: {{data: {tmp_path / "made-by-llmrec-retrieve"}, model: {{name: {tiny_model_folder}}}}}}}
""")
    rows = plan_file(exp, DEVICES["h100"])
    assert [(r.step.split(":")[0], r.part) for r in rows] == [
        ("zs", "score"), ("lora seed 0", "train"), ("lora seed 0", "selection x3"), ("lora seed 0", "test"),
        ("pop seed 0", "baseline"), ("later", "evaluate")]
    assert rows[-2].estimate is None and "no language model" in rows[-2].detail
    assert rows[-1].estimate is None and rows[-1].detail.startswith("not planned:") and rows[-1].fits
    assert all(r.estimate.gib < 80 for r in rows[:-2])
    assert rows[0].estimate.gib * GIB == pytest.approx(rows[0].estimate.bytes)


def test_bench_plan_measures_each_run_in_its_own_process(tmp_path, tallrec_data, tiny_model_folder):
    """`llmrec bench plan` on a tiny model: every case runs, in a fresh process, and is set beside its plan."""
    from llmrec.bench.planner import run

    result = run(str(tallrec_data), None, prompts=8, steps=2, model=str(tiny_model_folder), log=lambda m: None)
    rows = {r["kind"]: r for r in result["results"]}
    assert set(rows) == {"evaluate", "train"} and result["matmul_gflops"] > 0
    for r in rows.values():
        assert r["peak_rss_mib"] > 100 and r["planned_gib"] > 0 and r["memory_ratio"] > 0
        assert 0 < r["modelled_s"] <= r["call_s"] and r["time_ratio"] > 0
    assert "16 examples, 2 steps of 8 x 1 x 1 GPU" in rows["train"]["detail"][0]


def test_launch_guard_stops_a_step_that_cannot_fit(tmp_path, tallrec_data, tiny_model_folder, monkeypatch):
    """On a (faked) CUDA device with too little free memory, train stops before the model loads, with the plan's
    advice; with enough, on a CPU, under a launcher or with LLMREC_NO_PLAN_GUARD=1 it says nothing."""
    from llmrec.errors import LlmrecError
    from llmrec.planning.guard import check_fits
    from llmrec.train import TrainConfig

    config = TrainConfig(data=str(tallrec_data), model={"name": str(tiny_model_folder)}, train_samples=16,
                         history_k=5, optim={"batch_size": 8}, selection={"limit": 8}, test={"limit": 8})
    cuda = torch.device("cuda", 0)
    tiny = lambda _device: 300 * 2**20  # noqa: E731  300 MiB free: below the framework's own 0.6 GiB
    with pytest.raises(LlmrecError, match=r"train: train would need .* GiB on cuda:0, 0.3 GiB are free .*"
                                          r"LLMREC_NO_PLAN_GUARD=1 skips this check"):
        check_fits("train", config, cuda, free_bytes=tiny, log=lambda m: None)
    check_fits("train", config, cuda, free_bytes=lambda _d: 40 * 2**30, log=lambda m: None)  # fits
    check_fits("train", config, torch.device("cpu"), log=lambda m: None)  # not a GPU: no check
    check_fits("train", config, cuda, world_size=2, free_bytes=tiny)  # a launcher's processes may shard
    monkeypatch.setenv("LLMREC_NO_PLAN_GUARD", "1")
    check_fits("train", config, cuda, free_bytes=tiny)
    monkeypatch.delenv("LLMREC_NO_PLAN_GUARD")
    said = []
    unknown = config.model_copy(update={"model": config.model.model_copy(update={"name": "someone/unknown"})})
    check_fits("train", unknown, cuda, free_bytes=tiny, log=said.append)  # no shape: runs unjudged, says so
    assert said and "no plan" in said[0]

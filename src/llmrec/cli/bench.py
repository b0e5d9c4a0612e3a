"""``llmrec bench ...``: benchmarks whose figures go into BENCHMARKS.md."""

from __future__ import annotations

import json
import os

import click

from llmrec.cli.app import Group, RegistryChoice, echo_err
from llmrec.cli.data import _protocol_names, source_options


def _writable_output(ctx, param, value: str | None) -> str | None:
    """Check ``-o`` before a benchmark runs (minutes to hours): its folder exists or can be made, and is writable."""
    if value is None:
        return value
    from pathlib import Path

    folder = Path(value).resolve().parent
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise click.BadParameter(f"{existing} is a file, so {value} cannot be written", param=param)
    if not os.access(existing, os.W_OK):
        raise click.BadParameter(f"{existing} is not writable", param=param)
    return value


def _positive_list(text: str, hint: str) -> list[int]:
    """Comma-separated integers >= 1, in the order given, repeats dropped (a BadParameter otherwise)."""
    try:
        values = list(dict.fromkeys(int(c) for c in text.split(",") if c.strip()))
    except ValueError:
        raise click.BadParameter(f"must be comma-separated integers, got {text!r}", param_hint=hint) from None
    if not values or min(values) < 1:
        raise click.BadParameter(f"give integers >= 1, got {text!r}", param_hint=hint)
    return values


def _emit(result: dict, output: str | None) -> None:
    from llmrec.io import write_json

    click.echo(json.dumps(result, indent=2))
    if output:
        write_json(output, result)


@click.group(cls=Group)
def bench() -> None:
    """Benchmarks; record their figures in BENCHMARKS.md with the machine and date."""


@bench.command("data")
@click.option("--dataset", default="ml-1m", show_default=True)
@click.option("--protocol", default="rella", show_default=True, type=RegistryChoice(_protocol_names))
@source_options
@click.option("--repeats", default=1, type=click.IntRange(min=1), show_default=True, help="Runs; the fastest is reported.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), callback=_writable_output,
              help="Also write the JSON result here.")
def bench_data(dataset, protocol, path, data_root, download, repeats, output) -> None:
    """Time and peak memory of `data prepare`, and the speed of the metrics."""
    from llmrec.bench.data import run

    if download:
        from llmrec.data.registry import resolve_source

        path = str(resolve_source(dataset, path, data_root, download=True))
    _emit(run(dataset, protocol, data_root, path, repeats), output)


@bench.command("scoring")
@click.option("--data", "-d", default="prepared/ml-1m-rella", show_default=True, help="Prepared CTR folder for the prompts.")
@click.option("--model", "-m", "model_name", default="default", show_default=True)
@click.option("--prompts", "n_prompts", default=24, type=click.IntRange(min=1), show_default=True, help="Prompts per method.")
@click.option("--history-k", default=12, type=click.IntRange(min=1), show_default=True, help="History items per prompt (about 350 tokens at 12 on ML-1M).")
@click.option("--batch-size", "batch_sizes", multiple=True, type=click.IntRange(min=1), default=(1, 8), show_default=True)
@click.option("--rank-users", default=2, type=click.IntRange(min=1), show_default=True, help="Users x 21 candidates for the ranking case.")
@click.option("--int8", is_flag=True, help="Also measure int8 dynamic quantization and its AUC change.")
@click.option("--llamacpp", is_flag=True, help="Also measure the llama.cpp backend (GGUF models) and its AUC change.")
@click.option("--auc-prompts", default=200, type=click.IntRange(min=1), show_default=True, help="Labelled prompts for the AUC comparisons.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), callback=_writable_output,
              help="Also write the JSON result here.")
def bench_scoring(data, model_name, n_prompts, history_k, batch_sizes, rank_users, int8, llamacpp, auc_prompts, output) -> None:
    """Scoring speed: research-code way, generate loop, this engine, prefix reuse, int8, llama.cpp."""
    from llmrec.bench.scoring import check_inputs, run

    check_inputs(data)
    _emit(run(data, model_name, n_prompts, history_k, tuple(batch_sizes), rank_users, int8, auc_prompts, llamacpp,
              log=echo_err), output)


@bench.command("training")
@click.option("--data", "-d", default="prepared/ml-100k-tallrec", show_default=True, help="Prepared CTR folder.")
@click.option("--model", "-m", "model_name", default="default", show_default=True)
@click.option("--batch-size", default=8, type=click.IntRange(min=1), show_default=True, help="Samples in the (fixed) batch.")
@click.option("--steps", default=4, type=click.IntRange(min=2), show_default=True, help="Steps per path (the first is not timed).")
@click.option("--path", "paths", multiple=True,
              type=click.Choice(["trl_default", "trl_no_checkpointing", "answer_only", "answer_only_shared"]),
              default=("trl_default", "trl_no_checkpointing", "answer_only", "answer_only_shared"), show_default=True,
              help="answer_only_shared: the answer-only loss with optim.shared_prefix (the batch's common header once).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), callback=_writable_output,
              help="Also write the JSON result here.")
def bench_training(data, model_name, batch_size, steps, paths, output) -> None:
    """Seconds per LoRA step: TRL's defaults vs the answer-only loss (and with the shared header), same batch,
    same loss."""
    from llmrec.bench.training import run

    _emit(run(data, model_name, batch_size, steps, tuple(paths), log=echo_err), output)


@bench.command("plan")
@click.option("--data", "-d", default="prepared/ml-100k-tallrec", show_default=True,
              help="Prepared CTR folder of the evaluate and train runs.")
@click.option("--ranking", default="prepared/amazon-games-trsr", show_default=True,
              help="Prepared ranking folder whose histories the summarize run summarises ('' skips it).")
@click.option("--prompts", default=64, type=click.IntRange(min=8), show_default=True, help="Test prompts scored.")
@click.option("--steps", default=8, type=click.IntRange(min=2), show_default=True, help="LoRA steps (batch 8).")
@click.option("--users", default=4, type=click.IntRange(min=1), show_default=True, help="Users per split summarised.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), callback=_writable_output,
              help="Also write the JSON result here.")
def bench_plan(data, ranking, prompts, steps, users, output) -> None:
    """llmrec plan's memory and seconds on this CPU against measured evaluate / train / summarize runs of the
    default model, each in a fresh process (peak RSS, the seconds of the work the plan models)."""
    from llmrec.bench.planner import run

    _emit(run(data, ranking or None, prompts=prompts, steps=steps, users=users, log=echo_err), output)


@bench.command("retrieval")
@click.option("--data", "-d", default="prepared/ml-1m-rella", show_default=True, help="Prepared CTR folder.")
@click.option("--model", "-m", "model_name", default="default", show_default=True, help="Item encoder model.")
@click.option("-k", "k", default=10, type=click.IntRange(min=1), show_default=True, help="Retrieved items per sample.")
@click.option("--encode-items", default=512, type=click.IntRange(min=1), show_default=True, help="Items timed for the encoding speed.")
@click.option("--batch-size", default=32, type=click.IntRange(min=1), show_default=True, help="Item texts per forward pass.")
@click.option("--no-encoding", is_flag=True, help="Skip the encoding figures (SUBR only).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), callback=_writable_output,
              help="Also write the JSON result here.")
def bench_retrieval(data, model_name, k, encode_items, batch_size, no_encoding, output) -> None:
    """Item encoding items/s, and SUBR over every sample: fast vs straightforward (time, peak memory, same output)."""
    from llmrec.bench.retrieval import run
    from llmrec.data.prepared import PreparedData
    from llmrec.retrieval.transform import check_retrievable

    check_retrievable(PreparedData.load(data), data)
    _emit(run(data, model_name, k, encode_items, batch_size, encoding=not no_encoding, log=echo_err), output)


@bench.command("summarize")
@click.option("--data", "-d", default="prepared/amazon-games-trsr", show_default=True,
              help="Prepared folder whose histories make the block prompts.")
@click.option("--model", "-m", "model_name", default="default", show_default=True)
@click.option("--prompts", "n_prompts", default=16, type=click.IntRange(min=1), show_default=True, help="Block prompts (one per user).")
@click.option("--batch-size", default=16, type=click.IntRange(min=1), show_default=True, help="Prompts per generate call on the batched paths.")
@click.option("--max-new-tokens", default=48, type=click.IntRange(min=1), show_default=True)
@click.option("--no-cache-prompts", default=4, type=click.IntRange(min=0), show_default=True,
              help="Prompts for the KV-cache-off path (slow: it recomputes the whole sequence per token); 0 skips it.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), callback=_writable_output,
              help="Also write the JSON result here.")
def bench_summarize(data, model_name, n_prompts, batch_size, max_new_tokens, no_cache_prompts, output) -> None:
    """Summary generation: tokens/s and summaries/s, batch-1 vs batched, KV cache on vs off."""
    from llmrec.bench.summarize import run
    from llmrec.data.prepared import PreparedData

    PreparedData.load(data)
    _emit(run(data, model_name, n_prompts, batch_size, max_new_tokens, no_cache_prompts, log=echo_err), output)


@bench.command("baselines")
@click.option("--data", "-d", default="prepared/ml-1m-rella", show_default=True,
              help="Prepared folder: CTR samples or TRSR candidate lists.")
@click.option("--model", "models", multiple=True, help="Baselines to time (repeatable) [all of the folder's kind].")
@click.option("--steps", default=20, type=click.IntRange(min=1), show_default=True, help="Timed training steps per model.")
@click.option("--batch-size", default=1024, type=click.IntRange(min=1), show_default=True)
@click.option("--score-samples", default=20_000, type=click.IntRange(min=1), show_default=True, help="Validation samples scored per model.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), callback=_writable_output,
              help="Also write the JSON result here.")
def bench_baselines(data, models, steps, batch_size, score_samples, output) -> None:
    """Training and scoring throughput of each classic baseline that fits the folder (CTR models on
    labelled samples, sequential models on candidate lists; llmrec baseline --list).

    \b
    Examples:
      llmrec bench baselines -d prepared/ml-1m-rella --steps 10
      llmrec bench baselines -d prepared/amazon-games-trsr --batch-size 256
    """
    from llmrec.baselines.models import BASELINES
    from llmrec.data.prepared import PreparedData

    for name in models:
        BASELINES[name]  # an unknown name: one line listing the known ones
    PreparedData.load(data)
    from llmrec.bench.baselines import run

    _emit(run(data, tuple(models), steps, batch_size, score_samples, log=echo_err), output)


@bench.command("serve")
@click.option("--run", "run_dir", type=click.Path(file_okay=False),
              help="Serve what this train/evaluate run used (data, model, adapter, prompt settings).")
@click.option("--data", "-d", default="prepared/ml-100k-tallrec", show_default=True,
              help="Prepared folder whose test samples make the requests (without --run).")
@click.option("--model", "-m", "model_name", default="default", show_default=True)
@click.option("--clients", default="1,4,16", show_default=True, help="Concurrent client counts.")
@click.option("--requests", "n_requests", default=48, type=click.IntRange(min=1), show_default=True, help="Requests per setting (bounded).")
@click.option("--candidates", default="1", show_default=True,
              help="Candidates per request; a comma list (1,32) gives client i the i-th size in turn (a mixed load, "
                   "latencies reported per size).")
@click.option("--admission", "admissions", default=None, metavar="LIST",
              help="Micro-batching settings to measure: continuous, request or both (continuous,request); default: "
                   "the config's server.admission.")
@click.option("--max-seconds", default=300.0, type=click.FloatRange(min=0, min_open=True), show_default=True, help="Time cap per setting (the test stops itself).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a serve config field.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), callback=_writable_output,
              help="Also write the JSON result here.")
def bench_serve(run_dir, data, model_name, clients, n_requests, candidates, admissions, max_seconds, overrides,
                output) -> None:
    """Load test of llmrec serve over loopback: requests/s, p50/p99 at each client count, micro-batching on vs off
    (FastAPI, uvicorn and the httpx client: pip install 'llmrec[serve]').

    \b
    Examples:
      llmrec bench serve --run runs/quickstart/lora-64/seed-0
      llmrec bench serve -d prepared/ml-100k-tallrec --clients 1,4,16 --requests 48 -o runs/bench-serve.json
      llmrec bench serve --run runs/quickstart/lora-64/seed-0 --clients 8 --candidates 1,32 --admission continuous,request
    """
    from llmrec.cli.app import config_command, require_extra
    from llmrec.serve import ServeConfig, check_run_data, settings_from_run

    require_extra("llmrec bench serve", "serve", ("fastapi", "uvicorn", "httpx"))
    counts = sorted(set(_positive_list(clients, "--clients")))
    sizes = _positive_list(candidates, "--candidates")
    from llmrec.serve.batcher import ADMISSIONS

    chosen = [a.strip() for a in admissions.split(",") if a.strip()] if admissions else None
    if chosen is not None and (not chosen or any(a not in ADMISSIONS for a in chosen)):
        raise click.BadParameter(f"give one or more of {', '.join(ADMISSIONS)}, got {admissions!r}",
                                 param_hint="--admission")
    defaults = settings_from_run(run_dir) if run_dir else {"data": data, "model": {"name": model_name}}
    config = config_command(ServeConfig, None, overrides, {}, False, defaults=defaults)
    check_run_data(config, run_dir, defaults)
    from llmrec.bench.serving import run

    _emit(run(config, counts, n_requests, sizes, max_seconds, log=echo_err, admissions=chosen), output)

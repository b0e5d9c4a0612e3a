"""``llmrec plan``: memory and time of every step of a config or an experiment on a device, before it runs."""

from __future__ import annotations

import json
from dataclasses import replace

import click

from llmrec.cli.app import echo_err


def _format_parts(parts: dict[str, float]) -> str:
    return ", ".join(f"{k} {v / 2**30:.2f}" for k, v in parts.items() if v >= 2**20)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 360 else f"{seconds:.0f} s"


@click.command("plan")
@click.argument("config_file", type=click.Path(dir_okay=False))
@click.option("--gpu", "gpu", default=None, help="A device: h100, h200, a100-80gb, a100-40gb, l4, rtx4090, or cpu "
              "(this machine, measured) [h100].")
@click.option("--memory", "memory_gib", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Memory per device in GiB (overrides --gpu's).")
@click.option("--tflops", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Peak dense 16-bit TFLOPS (float32 on a CPU) of another device (overrides --gpu's).")
@click.option("--gpus", type=click.IntRange(min=1), default=1, show_default=True, help="Devices a training step "
              "shards over and scoring splits across.")
@click.option("--sharding", type=click.Choice(["none", "zero2", "zero3", "fsdp"]), default="none", show_default=True,
              help="How training shares states across --gpus: none (DDP), zero2 (optimizer states, gradients), "
                   "zero3 / fsdp (the weights too).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config field (of every "
              "step of an experiment).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan_cmd(config_file, gpu, memory_gib, tflops, gpus, sharding, overrides, as_json) -> None:
    """Memory per device and time of each step of CONFIG_FILE (a train / evaluate / summarize config or an
    experiment) on a device: weights, LoRA and optimizer states, activations, keys and values, from the model's
    shape and the prompt lengths of the step's own prepared data. Exits 1 when a step does not fit, with the
    settings that would.

    \b
    Examples:
      llmrec plan configs/rella/gpu-table.yaml --gpu h100
      llmrec plan configs/tallrec/movie-256.yaml --gpu l4 --set model.name=meta-llama/Llama-2-7b-hf
      llmrec plan configs/quickstart.yaml --gpu cpu
    """
    from llmrec.experiments.resources import plan_file, totals
    from llmrec.planning import device_named, with_memory

    device = with_memory(device_named(gpu or "h100"), memory_gib, tflops)
    if gpu is None and (memory_gib is not None or tflops is not None):
        device = replace(device, name="custom")
    rows = plan_file(config_file, device, gpus=gpus, sharding=sharding, overrides=tuple(overrides), log=echo_err)
    summary = totals(rows)
    if as_json:
        click.echo(json.dumps({"device": device.__dict__, "gpus": gpus, "sharding": sharding, **summary, "rows": [
            {"step": r.step, "part": r.part, "detail": r.detail, "advice": r.advice,
             "memory_gib": round(r.estimate.gib, 3) if r.estimate else None,
             "parts_gib": {k: round(v / 2**30, 3) for k, v in r.estimate.parts.items()} if r.estimate else None,
             "tflop": round(r.estimate.flops / 1e12, 3) if r.estimate else None,
             "seconds": round(r.estimate.seconds, 1) if r.estimate else None} for r in rows]}, indent=2))
    else:
        click.echo(f"device: {device.name}, {device.memory_gib:g} GiB, {device.tflops('bfloat16'):g} TFLOPS bf16 / "
                   f"{device.tflops('float32'):g} fp32 peak; {gpus} device(s), sharding {sharding}")
        for r in rows:
            if r.estimate is None:
                click.echo(f"  {r.step:40s} {r.part:16s} {'-':>9s} {'-':>9s}  {r.detail}")
                continue
            mark = "" if r.fits else "  DOES NOT FIT"
            click.echo(f"  {r.step:40s} {r.part:16s} {r.estimate.gib:7.2f} GiB {_hours(r.estimate.seconds):>9s}  "
                       f"{r.detail}{mark}")
            click.echo(f"  {'':40s} {'':16s} ({_format_parts(r.estimate.parts)} GiB)")
            if r.advice:
                click.echo(f"  {'':40s} -> {r.advice}")
        unplanned = sum(r.detail.startswith("not planned:") for r in rows)
        click.echo(f"peak {summary['peak_gib']:.2f} GiB per device, {summary['hours']:.2f} h in all"
                   + (f" ({unplanned} step(s) not planned: their data is not there yet)" if unplanned else ""))
    if not summary["fits"]:
        raise click.ClickException("a step does not fit (above): change the settings it names, or the device")

"""``llmrec summarize``: LLM-TRSR's preference summaries as a prepared-folder transform."""

from __future__ import annotations

import click

from llmrec.cli.app import config_command, config_options, echo_err


@click.command("summarize")
@click.argument("data", required=False)
@click.option("--out", "-o", help="Output prepared folder (same schema plus a `summary` column).")
@click.option("--mode", type=click.Choice(["hierarchical", "recurrent"]), help="Summary mode [hierarchical].")
@click.option("--model", "-m", "model_name", help="Frozen summary model: 'default', a hub id, a folder or a .gguf file.")
@click.option("--template", "-t", help="Summary template: shipped name or YAML file [by model kind].")
@click.option("--block-size", type=int, help="History items per block [5].")
@click.option("--limit", "limits", multiple=True, metavar="SPLIT=N",
              help="Keep and summarize a seeded subset of N samples of SPLIT (repeatable), e.g. train=512.")
@click.option("--device", help="auto, cpu, cuda, mps [auto].")
@click.option("--overwrite", is_flag=True, help="Replace another prepared folder at --out.")
@config_options
def summarize_cmd(data, out, mode, model_name, template, block_size, limits, device, overwrite, config_path, overrides,
                  print_config):
    """Summarize every sample's history with a frozen LLM (LLM-TRSR) into a new prepared folder.

    The history is cut into blocks of 5 items; `hierarchical` summarizes each block, then the
    block summaries (more levels when needed); `recurrent` summarizes block 1, then updates the
    summary with each next block. Generation is batched across users, cached by content
    (history text + model + prompt + settings) and resumes after an interruption. The output
    is a prepared folder that `llmrec evaluate` and `llmrec train` read like any other: prompts
    show the summary and the most recent items; summaries.json records the provenance.

    \b
    Examples:
      llmrec summarize prepared/amazon-games-trsr -o prepared/games-hier --limit train=512 --limit valid=200
      llmrec summarize prepared/amazon-games-trsr -o prepared/games-rec --mode recurrent
      llmrec summarize prepared/mind-trsr -o prepared/mind-hier -m HuggingFaceTB/SmolLM2-135M-Instruct
    """
    from llmrec.errors import ConfigError
    from llmrec.summarize import SummarizeConfig

    named = {"data": data, "out": out, "mode": mode, "model.name": model_name, "template": template,
             "block_size": block_size, "model.device": device, "overwrite": True if overwrite else None}
    for spec in limits:
        split, _, n = spec.partition("=")
        if not split or not n.isdigit():
            raise ConfigError(f"--limit {spec!r}: expected SPLIT=N, e.g. train=512")
        if f"limits.{split}" in named:
            raise ConfigError(f"--limit {spec!r}: split {split!r} is limited twice")
        named[f"limits.{split}"] = int(n)
    config = config_command(SummarizeConfig, config_path, overrides, named, print_config)
    if config is None:
        return
    from llmrec.summarize import summarize

    path, summary = summarize(config, log=echo_err)
    kept = ", ".join(f"{name} {v['kept']:,}" for name, v in summary["samples"].items())
    click.echo(f"prepared folder: {path}/ ({summary['mode']} summaries; samples {kept}; "
               f"{summary['prompts_generated']:,} generated, {summary['prompts_cached']:,} cached)")

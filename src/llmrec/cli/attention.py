"""``llmrec attention``: ReLLa's case study, the answer position's attention on each history item."""

from __future__ import annotations

from pathlib import Path

import click

from llmrec.cli.app import echo_err


@click.command("attention")
@click.option("--case", "cases", multiple=True, required=True, metavar="LABEL=DATA[@ADAPTER]",
              help="A strip: a prepared folder, optionally with a LoRA adapter (repeat for several).")
@click.option("--sample-id", type=int, required=True, help="The sample (its sample_id, the same in every folder).")
@click.option("--split", default="test", show_default=True)
@click.option("--template", "-t", help="Template name or file [per protocol and domain].")
@click.option("--history-k", type=int, help="History items per prompt [per protocol; a retrieved folder: all K].")
@click.option("--model", "-m", "model_name", default="default", show_default=True)
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False), help="PNG file (numbers in a .json beside it).")
def attention_cmd(cases, sample_id, split, template, history_k, model_name, out) -> None:
    """Attention case study: the answer position's attention on each history item, as heat strips.

    \b
    Example (ReLLa's case study: zero-shot recent-K, zero-shot SUBR, ReiT):
      llmrec attention --sample-id 880123 -o runs/attention.png \\
        --case "zero-shot recent-10=prepared/ml-1m-rella" --history-k 10 \\
        --case "zero-shot SUBR=prepared/ml-1m-rella-subr10" \\
        --case "ReiT=prepared/ml-1m-rella-subr10@runs/rella-reit-256"
    """
    from llmrec.attention import AttentionCase, attention_case_study
    from llmrec.llm import ModelConfig
    from llmrec.prompts.settings import PromptSettings

    parsed = [AttentionCase.parse(c) for c in cases]
    settings = PromptSettings(template=template, history_k=history_k)
    attention_case_study(parsed, sample_id, out, split=split, settings=settings, model=ModelConfig(name=model_name),
                         log=echo_err)
    click.echo(f"{out} (+ {Path(out).with_suffix('.json').name})")

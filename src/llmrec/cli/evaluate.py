"""``llmrec evaluate``: a prepared split scored (zero-shot, or with a LoRA adapter) into a run folder."""

from __future__ import annotations

import click

from llmrec.cli.app import config_command, config_options, echo_err, engine_options, track_option, tracking_fields


@click.command("evaluate")
@click.option("--data", "-d", help="Prepared folder (llmrec data prepare).")
@click.option("--split", help="Split to score [test].")
@click.option("--model", "-m", "model_name", help="'default', a hub id, a folder or a .gguf file.")
@click.option("--template", "-t", help="Template name or file [per protocol and domain].")
@click.option("--limit", type=int, help="Score a seeded random subset of N samples.")
@click.option("--batch-size", type=int, help="Prompts per forward pass [8].")
@click.option("--device", help="auto, cpu, cuda, mps [auto].")
@click.option("--run-dir", type=click.Path(file_okay=False), help="Run folder; an interrupted run there resumes.")
@click.option("--adapter", "-a", type=click.Path(), help="LoRA adapter (a train run folder or its adapter/).")
@click.option("--merge", is_flag=True, help="Merge the adapter into the weights before scoring.")
@click.option("--baseline", "baseline_run", type=click.Path(file_okay=False),
              help="Score with a finished `llmrec baseline` run's model instead of an LLM.")
@engine_options
@track_option
@config_options
def evaluate_cmd(data, split, model_name, template, limit, batch_size, device, adapter, merge, baseline_run, run_dir,
                 engine, workers, track, config_path, overrides, print_config):
    """Score a prepared split (zero-shot, or with a LoRA adapter): predictions, metrics, plots in a run folder.

    \b
    Examples:
      llmrec evaluate --data prepared/ml-100k-tallrec --limit 1000
      llmrec evaluate -d prepared/ml-1m-rella --set history_k=30 --set scoring.batch_size=4
      llmrec evaluate -d prepared/bookcrossing-tallrec --adapter runs/tallrec-movie-256/seed-0
      llmrec evaluate -d prepared/ml-1m-rella --limit 2000 --engine ray --workers 4
      llmrec evaluate -d prepared/ml-100k-tallrec --split valid --baseline runs/logreg-64   # a classic model
    """
    import json

    from llmrec.evaluate import EvaluateConfig

    named = {"data": data, "split": split, "model.name": model_name, "template": template, "limit": limit,
             "scoring.batch_size": batch_size, "model.device": device, "run_dir": run_dir, "adapter": adapter,
             "merge_adapter": True if merge else None, "engine.kind": engine, "engine.workers": workers}
    named.update(tracking_fields(track))
    config = config_command(EvaluateConfig, config_path, overrides, named, print_config)
    if config is None:
        return
    from llmrec.evaluate import check_evaluate, evaluate

    if baseline_run:  # the same run folder, scored by a trained classic model (no LLM loaded)
        if adapter or model_name:
            raise click.UsageError("--baseline scores with a classic model: give no --model or --adapter")
        from llmrec.baselines.run import BaselineScorer

        scorer = BaselineScorer.from_run(baseline_run)
        path, result = evaluate(check_evaluate(config, model=False), scorer=scorer, log=echo_err)
    else:
        path, result = evaluate(config, log=echo_err)
    click.echo(json.dumps(result["metrics"], indent=2))
    click.echo(f"run folder: {path}/")

"""``llmrec baseline``: a classic recommender on the same prepared splits, metrics and run folders."""

from __future__ import annotations

import json

import click

from llmrec.cli.app import config_command, config_options, echo_err, track_option, tracking_fields


@click.command("baseline")
@click.argument("name", required=False)
@click.option("--data", "-d", help="Prepared folder (llmrec data prepare).")
@click.option("--shots", "train_samples", type=int, help="Train on a seeded subset of N samples (as llmrec train).")
@click.option("--seed", type=int, help="Seed of the run (init, batch order, subset draw) [42].")
@click.option("--epochs", type=int, help="At most this many epochs [the model's: llmrec baseline --list; else 10].")
@click.option("--run-dir", type=click.Path(file_okay=False), help="Run folder; an interrupted run there resumes.")
@click.option("--list", "list_models", is_flag=True, help="List the registered baselines and exit.")
@track_option
@config_options
def baseline_cmd(name, data, train_samples, seed, epochs, run_dir, list_models, track, config_path, overrides, print_config):
    """Train a classic model on the training split, stop early on validation, score the test
    split into a run folder like `llmrec evaluate` writes. NAME: a CTR model (din, dien, dcnv2,
    sim, logreg, logreg_history, popularity, user_mean, history_rate, history_mean) for labelled
    samples, or a sequential one (gru4rec, sasrec, narm, caser, ncf, seq_popularity) for candidate
    lists (TRSR).

    \b
    Examples:
      llmrec baseline --list
      llmrec baseline din --data prepared/ml-1m-rella --run-dir runs/din-ml-1m
      llmrec baseline logreg -d prepared/ml-100k-tallrec --shots 64 --seed 0
      llmrec baseline sim -d prepared/ml-1m-rella --set params.topk=20 --set train.batch_size=512
      llmrec baseline din -d prepared/ml-1m-rella --set test.limit=2000 --run-dir runs/din-2000
      llmrec compare runs/din-2000 runs/rella-zs-recent10 --paired   # the same 2,000 samples
      llmrec baseline sasrec -d prepared/amazon-games-trsr --set valid.metric=mrr@3
      llmrec baseline -c configs/baselines/sasrec-itemtext.yaml   # + frozen LLM item vectors (item_text)
    """
    from llmrec.baselines.models import BASELINES

    if list_models:
        click.echo(BASELINES.listing())
        return
    from llmrec.baselines.config import BaselineConfig

    named = {"model": name, "data": data, "train_samples": train_samples, "seed": seed, "train.epochs": epochs,
             "run_dir": run_dir}
    named.update(tracking_fields(track))
    config = config_command(BaselineConfig, config_path, overrides, named, print_config)
    if config is None:
        return
    from llmrec.baselines.run import run_baseline

    path, result = run_baseline(config, log=echo_err)
    training = result["training"]
    click.echo(json.dumps({"valid_best": {training["valid_metric"]: training[f"valid_{training['valid_metric']}"]},
                           "test": result["metrics"]}, indent=2))
    click.echo(f"run folder: {path}/")

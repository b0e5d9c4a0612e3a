"""``llmrec train``: LoRA tuning on a prepared split (TALLRec), one run or one per seed, into a run folder."""

from __future__ import annotations

import click

from llmrec.cli.app import config_command, config_options, echo_err, parse_seeds, track_option, tracking_fields


@click.command("train")
@click.option("--data", "-d", help="Prepared folder (llmrec data prepare / data import-tallrec).")
@click.option("--shots", "train_samples", type=int, help="Few-shot: train on a seeded subset of N samples.")
@click.option("--seed", type=int, help="Seed of the run (LoRA init, data order, few-shot draw) [42].")
@click.option("--seeds", help="Comma-separated seeds: one run each under RUN_DIR/seed-N, plus summary.json.")
@click.option("--model", "-m", "model_name", help="'default', a hub id, a folder or a .gguf file.")
@click.option("--epochs", type=float, help="Training epochs [3; 5 up to 64 shots, 10 up to 16].")
@click.option("--lr", type=float, help="Learning rate [3e-4].")
@click.option("--device", help="auto, cpu, cuda, mps [auto].")
@click.option("--run-dir", type=click.Path(file_okay=False), help="Run folder; an interrupted run there resumes.")
@track_option
@config_options
def train_cmd(data, train_samples, seed, seeds, model_name, epochs, lr, device, run_dir, track, config_path, overrides,
              print_config):
    """LoRA-tune a model on a prepared split (TALLRec), select on valid, score test.

    \b
    Examples:
      llmrec train --data prepared/ml-100k-tallrec --shots 256
      llmrec train -c configs/tallrec/movie-256.yaml --seeds 0,1,2,3,4 --run-dir runs/movie-256
      llmrec train -d prepared/ml-100k-tallrec --shots 64 --set test.data=prepared/bookcrossing-tallrec
    """
    import json

    from llmrec.train.config import TrainConfig

    seed_list = parse_seeds(seeds) if seeds else None
    named = {"data": data, "train_samples": train_samples, "seed": seed, "model.name": model_name,
             "optim.epochs": epochs, "optim.learning_rate": lr, "model.device": device, "run_dir": run_dir}
    named.update(tracking_fields(track))
    config = config_command(TrainConfig, config_path, overrides, named, print_config)
    if config is None:
        return
    from llmrec.train.run import check_train, train, train_seeds

    if seed_list:  # every seed is checked before the first one trains
        path, summary = train_seeds(config, seed_list, log=echo_err)
        click.echo(json.dumps(summary["metrics"], indent=2))
    else:
        plan = check_train(config)  # every cheap check before torch/transformers/TRL are imported
        path, result = train(plan, log=echo_err)
        click.echo(json.dumps({"valid_best": result["selection"]["best"], "test": result["metrics"]}, indent=2))
    click.echo(f"run folder: {path}/")

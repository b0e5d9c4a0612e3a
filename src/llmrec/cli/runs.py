"""``llmrec evaluate | train | run | report | compare | attention``: runs into run folders, and their tables.

``llmrec suite`` is the deprecated name of ``llmrec run``: the same command, after one line on stderr.
"""

from __future__ import annotations

from pathlib import Path

import click

from llmrec.cli.app import config_command, config_options, echo_err, engine_options


def _seed_list(seeds: str) -> list[int]:
    try:
        out = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"must be comma-separated integers, got {seeds!r}", param_hint="--seeds") from None
    if not out:
        raise click.BadParameter("give at least one seed", param_hint="--seeds")
    if len(set(out)) != len(out):
        raise click.BadParameter(f"repeated seed in {seeds!r}", param_hint="--seeds")
    return out


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
@engine_options
@config_options
def evaluate_cmd(data, split, model_name, template, limit, batch_size, device, adapter, merge, run_dir, engine, workers,
                 config_path, overrides, print_config):
    """Score a prepared split (zero-shot, or with a LoRA adapter): predictions, metrics, plots in a run folder.

    \b
    Examples:
      llmrec evaluate --data prepared/ml-100k-tallrec --limit 1000
      llmrec evaluate -d prepared/ml-1m-rella --set history_k=30 --set scoring.batch_size=4
      llmrec evaluate -d prepared/bookcrossing-tallrec --adapter runs/tallrec-movie-256/seed-0
      llmrec evaluate -d prepared/ml-1m-rella --limit 2000 --engine ray --workers 4
    """
    import json

    from llmrec.evaluate import EvaluateConfig

    named = {"data": data, "split": split, "model.name": model_name, "template": template, "limit": limit,
             "scoring.batch_size": batch_size, "model.device": device, "run_dir": run_dir, "adapter": adapter,
             "merge_adapter": True if merge else None, "engine.kind": engine, "engine.workers": workers}
    config = config_command(EvaluateConfig, config_path, overrides, named, print_config)
    if config is None:
        return
    from llmrec.evaluate import evaluate

    path, result = evaluate(config, log=echo_err)
    click.echo(json.dumps(result["metrics"], indent=2))
    click.echo(f"run folder: {path}/")


@click.command("train")
@click.option("--data", "-d", help="Prepared folder (llmrec data prepare / data import-tallrec).")
@click.option("--shots", "train_samples", type=int, help="Few-shot: train on a seeded subset of N samples.")
@click.option("--seed", type=int, help="Seed of the run (LoRA init, data order, few-shot draw) [42].")
@click.option("--seeds", help="Comma-separated seeds: one run each under RUN_DIR/seed-N, plus summary.json.")
@click.option("--model", "-m", "model_name", help="'default', a hub id, a folder or a .gguf file.")
@click.option("--epochs", type=float, help="Training epochs [3].")
@click.option("--lr", type=float, help="Learning rate [3e-4].")
@click.option("--device", help="auto, cpu, cuda, mps [auto].")
@click.option("--run-dir", type=click.Path(file_okay=False), help="Run folder; an interrupted run there resumes.")
@config_options
def train_cmd(data, train_samples, seed, seeds, model_name, epochs, lr, device, run_dir, config_path, overrides,
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

    seed_list = _seed_list(seeds) if seeds else None
    named = {"data": data, "train_samples": train_samples, "seed": seed, "model.name": model_name,
             "optim.epochs": epochs, "optim.learning_rate": lr, "model.device": device, "run_dir": run_dir}
    config = config_command(TrainConfig, config_path, overrides, named, print_config)
    if config is None:
        return
    from llmrec.train.run import check_train, train, train_seeds

    check_train(config)  # every cheap check before torch/transformers/TRL are imported
    if seed_list:
        path, summary = train_seeds(config, seed_list, log=echo_err)
        click.echo(json.dumps(summary["metrics"], indent=2))
    else:
        path, result = train(config, log=echo_err)
        click.echo(json.dumps({"valid_best": result["selection"]["best"], "test": result["metrics"]}, indent=2))
    click.echo(f"run folder: {path}/")


def _experiment_options(f):
    f = click.option("--dry-run", is_flag=True, help="Show every run with its state (done / todo / changed / restore); run nothing.")(f)
    f = click.option("--table-only", is_flag=True, help="Rebuild table.md / table.json from finished runs; run nothing.")(f)
    f = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override a field of every train / evaluate / baseline step.")(f)
    f = click.option("--seeds", "seed_list", metavar="0,1,...",
                     help="Run only these seeds of the seeded steps (and what they read): a table grows seed by seed.")(f)
    f = click.option("--only", multiple=True, help="Run only this step and the steps it reads (repeatable).")(f)
    f = click.option("--out", "-o", type=click.Path(file_okay=False), help="Output folder [runs/<name>].")(f)
    f = click.argument("experiment_file", type=click.Path(dir_okay=False))(f)
    return f


def _run_experiment(experiment_file, out, only, seed_list, overrides, table_only, dry_run) -> None:
    from llmrec.experiments import load_experiment, plan_experiment, run_experiment, write_table
    from llmrec.experiments.engine import check_problems, plan_states

    seeds = tuple(_seed_list(seed_list)) if seed_list else ()
    experiment = load_experiment(experiment_file)
    target = out or str(Path("runs") / experiment.name)
    if dry_run:
        plan = plan_experiment(experiment_file, target, only=tuple(only), extra=tuple(overrides), seeds=seeds)
        states = plan_states(target, plan)
        problems = check_problems(plan, states)
        for run in plan:
            click.echo(f"{states[id(run)]:8s} {run.label:40s} {run.folder}  key {run.key}")
            if id(run) in problems:
                click.echo(f"         would fail: {problems[id(run)]}")
        if problems:
            raise click.ClickException(f"{len(problems)} run(s) would fail their checks (above); fix them before running")
        return
    from llmrec.report.render import check_report_target

    check_report_target(Path(target))  # before hours of steps, not after
    if table_only:
        write_table(experiment, target)
    else:
        run_experiment(experiment_file, target, only=tuple(only), extra=tuple(overrides), seeds=seeds, log=echo_err)
    from llmrec.report import build_report

    report = build_report([target], target, title=experiment.name)
    click.echo(report["summary"])
    click.echo(f"\ntable: {target}/table.md; report: {target}/report.md, {report['html']}")


@click.command("run")
@_experiment_options
def run_cmd(experiment_file, out, only, seed_list, overrides, table_only, dry_run) -> None:
    """Run an experiment: its steps (prepare, retrieve, summarize, train, evaluate, baseline), then the table
    and the report (OUT/table.md, OUT/report.md, OUT/report.html).

    A step's config is a file or an inline mapping; "@step" in it is that step's output folder.
    Every config is checked before the first step runs. A step whose config and inputs are
    unchanged and finished is skipped; an interrupted one continues where it stopped; a changed
    one runs again with everything that reads it, nothing else.

    \b
    Examples:
      llmrec run configs/trsr/table.yaml --out runs/trsr-table
      llmrec run configs/tallrec/table.yaml --only movie-256 --set test.limit=200
      llmrec run configs/tallrec/table.yaml --dry-run
      llmrec run configs/rella/sweep-n.yaml --seeds 0       # one seed of every row now, the others later
    """
    _run_experiment(experiment_file, out, only, seed_list, overrides, table_only, dry_run)


SUITE_DEPRECATED = "`llmrec suite` is deprecated: use `llmrec run`"


@click.command("suite", short_help="Deprecated alias of `llmrec run`.")
@_experiment_options
def suite_cmd(**options) -> None:
    """Deprecated alias of `llmrec run` (the same options, the same engine): use `llmrec run`."""
    echo_err(SUITE_DEPRECATED)
    _run_experiment(**options)


@click.command("report")
@click.argument("folders", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", "-o", type=click.Path(file_okay=False), default="runs/report", show_default=True,
              help="Output folder: report.md, report_files/, report.html.")
@click.option("--title", default="llmrec report", show_default=True)
def report_cmd(folders, out, title) -> None:
    """Every method and baseline side by side: OUT/report.md and one self-contained OUT/report.html.

    FOLDERS are experiment folders (llmrec run: their table.json), folders of them
    (results/: every experiment in it), and run folders (evaluate, train, baseline, --seeds). Each table shows every metric as mean ± std over
    seeds (one run: value [95% CI]) beside the papers' numbers; the plots are the experiment's
    curves (AUC vs N, AUC vs K), ranking metrics by k, calibration and score histograms.

    \b
    Examples:
      llmrec report runs/tallrec-table runs/rella-table runs/trsr-table -o runs/report
      llmrec report results -o runs/report-all
      llmrec report runs/zs-recent10 runs/rella-reit-256
    """
    from llmrec.report import build_report

    result = build_report(list(folders), out, title=title)
    click.echo(result["summary"])
    click.echo(f"\nreport: {out}/report.md, {result['html']}")


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--paired", is_flag=True, help="Also each run minus the first on the same samples (AUC / LogLoss / "
              "ACC, or Recall / MRR / NDCG of ranking runs), with a bootstrap interval of the difference "
              "(runs of the same split, limit and sample_seed; --seeds folders seed by seed).")
@click.option("--by", "unit", type=click.Choice(["sample", "user"]), default="sample", show_default=True,
              help="What the --paired bootstrap resamples: single samples (lists), or whole users (their samples are "
                   "not independent; a wider, more honest interval).")
def compare_cmd(runs, paired, unit) -> None:
    """Metrics of run folders side by side (a --seeds folder, or an experiment row of seed-N runs, shows mean ± std
    over its seeds).

    \b
    Examples:
      llmrec compare runs/zs-recent10 runs/zs-subr10
      llmrec compare runs/zs-recent10 runs/zs-subr10 --paired
      llmrec compare runs/zs-recent10 runs/lora-256 --paired     # a --seeds folder: each seed
      llmrec compare runs/zs-recent10 runs/zs-subr10 --paired --by user
    """
    from llmrec.tables import compare_table

    if paired and len(runs) < 2:
        raise click.UsageError("--paired needs at least two runs")
    if unit != "sample" and not paired:
        raise click.UsageError("--by needs --paired")
    click.echo(compare_table(runs))
    if paired:
        from llmrec.paired import format_paired, matched_runs, paired_difference, seed_runs

        for other in runs[1:]:
            # two run folders pair as they are; a --seeds folder pairs seed by seed
            pairs = [p for p in matched_runs(seed_runs(other), seed_runs(runs[0]), (Path(other) / "metrics.json").exists(),
                                             (Path(runs[0]) / "metrics.json").exists()) if p[1] is not None]
            if not pairs:
                raise click.UsageError(f"{other} and {runs[0]} have no finished runs of the same seed to pair")
            for run_a, run_b, _ in pairs:
                click.echo("")
                click.echo(format_paired(paired_difference(run_a, run_b, by=unit)))


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

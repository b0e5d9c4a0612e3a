"""``llmrec run``: an experiment's steps, then its table and report.

``llmrec suite`` is the deprecated name of ``llmrec run``: the same command, after one line on stderr.
"""

from __future__ import annotations

from pathlib import Path

import click

from llmrec.cli.app import echo_err, parse_seeds, track_option


def _experiment_options(f):
    f = click.option("--smoke", is_flag=True,
                     help="A smoke run on the real hardware: the file's models and devices, 50 training and 50 "
                          "scored samples, one epoch, one seed, into runs/<name>-smoke (docs/gpu-runbook.md).")(f)
    f = click.option("--rehearse", is_flag=True,
                     help="Rehearse on this CPU: every step with a tiny random model of the same architecture and "
                          "toy sizes, into runs/<name>-rehearsal (docs/rehearsal.md).")(f)
    f = track_option(f)
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


def _run_experiment(experiment_file, out, only, seed_list, overrides, table_only, dry_run, track=(),
                    rehearse=False, smoke=False) -> None:
    from llmrec.distributed import launched
    from llmrec.experiments import load_experiment, plan_experiment, run_experiment, write_table
    from llmrec.experiments.engine import check_problems, plan_states
    from llmrec.experiments.table import with_tracking
    from llmrec.experiments.track import log_experiment_files

    if launched() and not (dry_run or table_only):  # every rank would run every step, and wait on the others' locks
        raise click.UsageError("llmrec run runs one process: launch a single step on several GPUs (`accelerate "
                               "launch ... -m llmrec.cli train -c CONFIG`), or rows side by side, one process per "
                               "GPU (`llmrec run FILE --only ROW`; docs/gpu-runbook.md)")

    seeds = tuple(parse_seeds(seed_list)) if seed_list else ()
    experiment = with_tracking(load_experiment(experiment_file), tuple(track))
    if rehearse or smoke:  # every step read and rehearsed now (inline configs, --set applied): the engine runs that
        from llmrec.experiments.rehearsal import rehearsal_for, rehearsed_experiment

        if rehearse and smoke:
            raise click.UsageError("--rehearse (tiny models on this CPU) or --smoke (the file's models), not both")
        if track:
            raise click.UsageError(f"--track: a {'rehearsal' if rehearse else 'smoke run'} logs to no tracker")
        sizes, folder = rehearsal_for(experiment.name, out, smoke=smoke, log=echo_err)
        experiment = rehearsed_experiment(experiment, sizes, experiment_file=experiment_file, extra=tuple(overrides))
        experiment_file, overrides, out = None, (), str(folder)
    target = out or str(Path("runs") / experiment.name)
    if dry_run:
        plan = plan_experiment(experiment_file, target, experiment=experiment, only=tuple(only), extra=tuple(overrides),
                               seeds=seeds)
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
        run_experiment(experiment_file or experiment, target, only=tuple(only), extra=tuple(overrides), seeds=seeds,
                       track=tuple(track), log=echo_err)
    from llmrec.report import build_report

    report = build_report([target], target, title=experiment.name)
    if not table_only:  # the experiment's tracker run gets the report too
        log_experiment_files(experiment, target, ["report.md", Path(report["html"]).name], log=echo_err)
    click.echo(report["summary"])
    click.echo(f"\ntable: {target}/table.md; report: {target}/report.md, {report['html']}")


@click.command("run")
@_experiment_options
def run_cmd(experiment_file, out, only, seed_list, overrides, table_only, dry_run, track, rehearse, smoke) -> None:
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
      llmrec run configs/quickstart.yaml --track mlflow     # every run and the table in MLflow (mlflow.db)
      llmrec run configs/rella/gpu-table.yaml --rehearse    # every step on this CPU, tiny models, minutes
      llmrec run configs/rella/gpu-table.yaml --smoke       # on the GPU: the real model, 50 samples per step
    """
    _run_experiment(experiment_file, out, only, seed_list, overrides, table_only, dry_run, track, rehearse, smoke)


SUITE_DEPRECATED = "`llmrec suite` is deprecated: use `llmrec run`"


@click.command("suite", short_help="Deprecated alias of `llmrec run`.")
@_experiment_options
def suite_cmd(**options) -> None:
    """Deprecated alias of `llmrec run` (the same options, the same engine): use `llmrec run`."""
    echo_err(SUITE_DEPRECATED)
    _run_experiment(**options)

"""``llmrec report | compare``: run folders and experiments side by side (a report page, a table of runs)."""

from __future__ import annotations

from pathlib import Path

import click


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
@click.option("--segments", is_flag=True, help="Also the headline metric (AUC, Recall@3) by target-item popularity "
              "(cold / warm / head, from the training split's counts) and by history length, with 95% intervals.")
@click.option("--cost", is_flag=True, help="Also each run's training wall time and test-scoring throughput "
              "(samples/s) and the machine they were measured on.")
def compare_cmd(runs, paired, unit, segments, cost) -> None:
    """Metrics of run folders side by side (a --seeds folder, or an experiment row of seed-N runs, shows mean ± std
    over its seeds).

    \b
    Examples:
      llmrec compare runs/zs-recent10 runs/zs-subr10
      llmrec compare runs/zs-recent10 runs/zs-subr10 --paired
      llmrec compare runs/zs-recent10 runs/lora-256 --paired     # a --seeds folder: each seed
      llmrec compare runs/zs-recent10 runs/zs-subr10 --paired --by user
      llmrec compare runs/din runs/din-text --segments --cost
    """
    from llmrec.tables import compare_table

    if paired and len(runs) < 2:
        raise click.UsageError("--paired needs at least two runs")
    if unit != "sample" and not paired:
        raise click.UsageError("--by needs --paired")
    click.echo(compare_table(runs, segments=segments, cost=cost))
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
                click.echo(format_paired(paired_difference(run_a, run_b, by=unit), segments=segments))

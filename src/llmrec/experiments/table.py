"""Experiments (``llmrec run``): steps in, a results table out.

An experiment file lists steps (``prepare``, ``retrieve``, ``summarize``, ``train``,
``evaluate``, ``baseline``), each with its config (a file or an inline mapping), overrides and
seeds; ``"@step"`` in a config is that step's output folder. :mod:`llmrec.experiments.engine`
runs them into ``OUT/<step>/`` (``seed-N`` subfolders for seeded runs), skipping runs whose
key (config + inputs) is unchanged and finished, redoing a changed step and what depends on
it; then ``OUT/table.md`` / ``OUT/table.json`` hold the mean and standard deviation over seeds
of each metric of the table's rows, next to the paper's numbers when given. The older suite
files (``rows`` of config files, ``adapters_from``) are experiments too.

Example (``configs/tallrec/table.yaml``)::

    name: tallrec-table
    metrics: [auc]
    paper: {label: "TALLRec, LLaMA-7B", scale: 100, values: {movie-256: 71.98}}
    rows:
      - {name: movie-zeroshot, evaluate: configs/tallrec/movie-zeroshot.yaml}
      - {name: movie-256, train: configs/tallrec/movie-256.yaml, seeds: [0, 1, 2]}
      - {name: movie-256-on-book, evaluate: configs/tallrec/book-zeroshot.yaml, adapters_from: movie-256}

and an experiment with data steps::

    name: quick
    steps:
      - {name: data, prepare: {dataset: ml-100k, protocol: tallrec}}
      - {name: zeroshot, evaluate: {data: "@data", limit: 200}}
      - {name: lora-64, train: {data: "@data", train_samples: 64}, seeds: [0, 1]}
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmrec.experiments.config import ExperimentConfig, Step, load_experiment
from llmrec.io import write_json, write_text
from llmrec.tables import (
    COST_HEAD,
    COST_NOTE,
    INTERVAL_NOTE,
    SEGMENT_TITLES,
    cost_row,
    cost_summary,
    headline,
    paper_columns,
    paper_note,
    row_cell,
    segment_rule,
    segment_summary,
    segment_table,
)


def run_experiment(experiment: str | Path | ExperimentConfig, out: str | Path | None = None, *,
                   only: tuple[str, ...] = (), extra: tuple[str, ...] = (), seeds: tuple[int, ...] = (),
                   track: tuple[str, ...] = (), log: Callable[[str], None] = print,
                   progress: bool = True) -> dict[str, Any]:
    """Run an experiment's steps that are not done into ``out``, then write its table; return the table.

    ``experiment`` is an experiment file or an :class:`ExperimentConfig` (whose step config files are then
    relative to the working folder); ``out`` defaults to ``runs/<name>``. ``only`` runs these steps and what they
    read, ``seeds`` these seeds of the seeded steps, ``extra`` overrides every train / evaluate / baseline step
    (``llmrec run``'s ``--only``, ``--seeds``, ``--set``); ``track`` turns these trackers on (``--track``: the
    experiment's ``tracking`` section, for every run and the table, docs/tracking.md). The table is ``OUT/table.json``'s content plus its
    ``markdown``. Example (the quickstart: ML-100K, a small model, CPU minutes)::

        import llmrec

        table = llmrec.run_experiment("configs/quickstart.yaml", "runs/quickstart")
        print(table["markdown"])
        table["rows"]["lora-64"]["auc"]["mean"]
    """
    from llmrec.experiments.engine import run_steps
    from llmrec.experiments.track import experiment_tracking, log_experiment_files

    if isinstance(experiment, ExperimentConfig):
        config, file = experiment, None
    else:
        config, file = load_experiment(experiment), Path(experiment)
    config = with_tracking(config, track)
    config.tracking.check()
    out = Path("runs") / config.name if out is None else Path(out)
    with experiment_tracking(config, out, log) as parent:
        run_steps(file, out, experiment=config, only=only, extra=extra, seeds=seeds, log=log, progress=progress)
        table = write_table(config, out)
        log_experiment_files(config, out, ["table.md", "table.json", *(Path(c).name for c in table["curves"])],
                             parent=parent, table=table, log=log)
    return table


def with_tracking(experiment: ExperimentConfig, track: tuple[str, ...] = ()) -> ExperimentConfig:
    """``experiment`` with the trackers ``track`` turned on in its ``tracking`` section (``--track``)."""
    if not track:
        return experiment
    from llmrec.tracking import TRACKERS

    for name in track:
        TRACKERS[name]  # an unknown name is a one-line error
    return experiment.model_copy(update={"tracking": experiment.tracking.model_copy(update=dict.fromkeys(track, True))})


run_suite = run_experiment  # deprecated name of the suite era, kept so that older code still imports


def _row_runs(out: Path, row: Step) -> list[Path]:
    """The finished run folders of a row (``OUT/<row>``, or its ``seed-N`` folders in seed order)."""
    from llmrec.paired import seed_runs

    return seed_runs(out / row.name)


def _write_curves(experiment: ExperimentConfig, rows: dict[str, Any], out: Path) -> list[str]:
    """The experiment's curves as PNG files, from the finished rows (a curve without two points is skipped)."""
    from llmrec.plots import curve_plot

    written = []
    for curve in experiment.curves:
        series = {label: [(x, rows[r][curve.metric]["mean"], rows[r][curve.metric]["std"]) for r, x in points.items()
                          if curve.metric in rows.get(r, {})] for label, points in curve.series.items()}
        series = {k: v for k, v in series.items() if v}
        references = {label: rows[r][curve.metric]["mean"] for label, r in curve.references.items()
                      if curve.metric in rows.get(r, {})}
        if sum(len(v) for v in series.values()) >= 2:
            written.append(curve_plot(series, out / f"{curve.name}.png", curve.xlabel, curve.metric.upper(),
                                      f"{experiment.name}: {curve.name}", log_x=curve.log_x,
                                      references=references))
    return written


def _paired_entries(experiment: ExperimentConfig, out: Path, previous: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The experiment's paired differences on the finished runs. A recorded entry whose two runs still have the values
    it holds is kept as it is (a copied experiment folder has no predictions to recompute it from)."""
    from llmrec.errors import LlmrecError
    from llmrec.paired import headline_metric, matched_runs, paired_difference, predictions_file, still_valid
    from llmrec.runs import load_metrics

    def single(row: Step) -> bool:  # one run that stands for every seed: no seeds listed, no adapters per seed
        return row.seeds is None and not row.adapters_from

    entries = []
    for pair in experiment.paired:
        row_a, row_b = experiment.step(pair.a), experiment.step(pair.b)
        runs_a, runs_b = _row_runs(out, row_a), _row_runs(out, row_b)
        if not runs_a or not runs_b:
            continue  # a row not run yet
        for run_a, run_b, label in matched_runs(runs_a, runs_b, single(row_a), single(row_b)):
            head = {"a": pair.a, "b": pair.b, "run": label, **({"by": "user"} if pair.by == "user" else {})}
            if run_b is None:
                entries.append({**head, "skipped": f"{pair.b} has no {label} run yet"})
                continue
            ma, mb = load_metrics(run_a)["metrics"], load_metrics(run_b)["metrics"]
            key_a, key_b = headline_metric(ma), headline_metric(mb)
            if key_a is None or key_b is None:
                entries.append({**head, "skipped": f"{pair.a if key_a is None else pair.b} has no AUC or Recall@3"})
                continue
            if key_a != key_b:
                entries.append({**head, "skipped": "a CTR run (AUC) and a ranking run (Recall@3) cannot be paired"})
                continue
            # an entry made before the runs had segments is redone where the predictions are there to redo it
            segmented = ("segments" in ma and "segments" in mb and predictions_file(run_a) is not None
                         and predictions_file(run_b) is not None)
            same = [e for e in previous if {k: e.get(k) for k in (*head, "by")} == {"by": None, **head}
                    and still_valid(e, ma, mb) and ("segments" in e or not segmented)]
            if same:
                entries.append(same[0])
                continue
            if predictions_file(run_a) is None or predictions_file(run_b) is None:
                entries.append({**head, "skipped": "the predictions are not in this folder (a copy?): build the table "
                                                   "where the runs are"})
                continue
            try:
                result = paired_difference(run_a, run_b, by=pair.by)
            except LlmrecError as exc:
                entries.append({**head, "skipped": str(exc)})
                continue
            entries.append({**result, **head})  # rows and seed, not paths: a copied folder reads the same
    return entries


def _previous_paired(out: Path) -> list[dict[str, Any]]:
    from llmrec.errors import DataError
    from llmrec.io import read_json

    try:
        old = read_json(out / "table.json") if (out / "table.json").exists() else {}
    except DataError:
        return []
    paired = old.get("paired") if isinstance(old, dict) else None
    from llmrec.paired import well_formed

    return [e for e in paired if well_formed(e)] if isinstance(paired, list) else []


def _markdown(rows: list[list[str]]) -> str:
    """A markdown table (the first row its header) and a newline."""
    head = rows[0]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [head, ["---"] * len(head), *rows[1:]]) + "\n"


def segment_markdown(rows: list[tuple[str, list[dict[str, Any]]]], metric: str | None) -> str:
    """The table's segment tables in markdown: ``metric`` by target-item popularity and by history length (each
    with the rule of its buckets); "" when no run has segments."""
    text = ""
    for segmentation, title in SEGMENT_TITLES.items():
        made = segment_table(rows, segmentation, metric) if metric else None
        if made:
            rule = segment_rule([m for _, runs in rows for m in runs], segmentation)
            text += f"\n{metric} {title}:\n\n" + _markdown([made[0], *made[1]]) + f"\nBuckets: {rule}.\n"
    return text


def write_table(experiment: ExperimentConfig, out: str | Path) -> dict[str, Any]:
    """``table.md`` and ``table.json`` from whatever runs of the experiment are finished (``table.json`` keeps its
    ``suite`` key: the experiment's name)."""
    from llmrec.experiments.engine import check_owner

    out = Path(out)
    check_owner(out, experiment.name)
    table: dict[str, Any] = {"suite": experiment.name, "description": experiment.description,
                             "metrics": list(experiment.metrics),
                             "paper_label": experiment.paper.label if experiment.paper else None, "rows": {}}
    from llmrec.runs import load_metrics, summarize_values

    paper = experiment.paper
    paper_metrics, paper_head = paper_columns(experiment.metrics, paper.metrics() if paper else [])
    head = ["row", "runs", *experiment.metrics, *paper_head]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    segment_rows, cost_rows = [], []
    for row in (r for r in experiment.steps if r.in_table):
        folders = _row_runs(out, row)
        records = [load_metrics(f) for f in folders]
        found = [r["metrics"] for r in records]
        costs = [r.get("cost") or {} for r in records]
        entry: dict[str, Any] = {"runs": len(found), "kind": row.kind, "folders": [str(f) for f in folders]}
        cells = [row.name, str(len(found))]
        for m in experiment.metrics:
            values = [float(f[m]) for f in found if m in f]
            if values:
                entry[m] = summarize_values(values, digits=None)
            cells.append(row_cell(found, m))
        if paper:
            entry["paper"] = paper.for_row(row.name)
            cells += [f"{entry['paper'][m]:.4f}" if m in entry["paper"] else "-" for m in paper_metrics]
        if segments := segment_summary(found, experiment.metrics):
            entry["segments"] = segments
        if cost := cost_summary(costs):
            entry["cost"] = cost
        segment_rows.append((row.name, found))
        cost_rows.append(cost_row(row.name, costs))
        table["rows"][row.name] = entry
        lines.append("| " + " | ".join(cells) + " |")
    text = (f"# {experiment.name}\n\n{experiment.description}\n\n" + "\n".join(lines) + "\n\n"
            f"Mean ± std over seeds; {INTERVAL_NOTE}" + (f"; {paper_note(paper.label)}" if paper_metrics else "")
            + ".\n")
    text += segment_markdown(segment_rows, headline(experiment.metrics))
    if any(c[1:4] != ["-", "-", "-"] for c in cost_rows):  # some row recorded its cost
        text += f"\nCost ({COST_NOTE}):\n\n" + _markdown([COST_HEAD, *cost_rows])
    table["paired"] = _paired_entries(experiment, out, _previous_paired(out))
    if table["paired"]:
        from llmrec.paired import paired_note, paired_segment_table, paired_table

        head, body = paired_table(table["paired"], list(experiment.metrics))
        text += f"\n{paired_note(table['paired'])}:\n\n" + _markdown([head, *body])
        for segmentation, title in SEGMENT_TITLES.items():
            made = paired_segment_table(table["paired"], segmentation)
            if made:
                text += f"\nPaired differences {title}:\n\n" + _markdown([made[0], *made[1]])
    table["curves"] = _write_curves(experiment, table["rows"], out)
    if table["curves"]:
        text += "\n" + "\n".join(f"![{c}]({c})" for c in table["curves"]) + "\n"
    write_text(out / "table.md", text)
    write_json(out / "table.json", table)
    table["markdown"] = text
    return table

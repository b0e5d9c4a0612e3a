"""The report as markdown and as one self-contained HTML page (inline CSS and images, no network)."""

from __future__ import annotations

import base64
import html
import re
import shutil
from pathlib import Path
from typing import Any

from llmrec.errors import ConfigError
from llmrec.io import write_text
from llmrec.paired import paired_note, paired_segment_table, paired_table
from llmrec.plots import calibration_plot, cost_plot, ranking_by_k_plot, score_histograms
from llmrec.report.collect import Section, collect, ranking_by_k
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
    segment_table,
)

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1d2430; margin: 0;
       background: #f6f7f9; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 28px 48px; background: #fff; }
h1 { font-size: 1.6em; margin: 0.2em 0 0.6em; } h2 { font-size: 1.25em; margin-top: 1.8em;
border-bottom: 1px solid #dde1e6; padding-bottom: 4px; } h3 { font-size: 1.05em; color: #39424e; }
p.desc { color: #4a5565; max-width: 70em; }
.table-wrap { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.86em; margin: 8px 0 16px; }
th, td { border: 1px solid #d5dae1; padding: 4px 8px; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { background: #eef1f5; font-weight: 600; } td.paper { color: #6b4c9a; }
figure { display: inline-block; margin: 6px 12px 12px 0; vertical-align: top; max-width: 100%; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e6ea; }
figcaption { font-size: 0.8em; color: #5b6573; }
"""


def table_rows(section: Section) -> tuple[list[str], list[list[str]]]:
    """Header and cells: every metric as mean ± std over seeds (or value [95% CI]), then the paper's values."""
    paper_metrics, paper_head = paper_columns(section.metrics, section.paper_metrics)
    head = ["row", "runs", *section.metrics, *paper_head]
    body = []
    for row in section.rows:
        cells = [row.name, str(len(row.runs)), *[row_cell(row.metrics, m) for m in section.metrics]]
        cells += [f"{row.paper[m]:.4f}" if m in row.paper else "-" for m in paper_metrics]
        body.append(cells)
    return head, body


def segment_tables(section: Section) -> list[tuple[str, str, list[str], list[list[str]]]]:
    """(caption, how the buckets were made, header, cells) of the section's headline metric (AUC, Recall@3) by target-item popularity and by
    history length, where its runs recorded segments."""
    metric = headline(section.metrics)
    rows = [(r.name, r.metrics) for r in section.rows]
    out = []
    for segmentation, title in SEGMENT_TITLES.items():
        made = segment_table(rows, segmentation, metric) if metric else None
        if made:
            rule = segment_rule([m for _, runs in rows for m in runs], segmentation)
            out.append((f"{metric} {title}", f"buckets: {rule}", made[0], made[1]))
    return out


def cost_table(section: Section) -> tuple[list[str], list[list[str]]] | None:
    """Header and cells of the section's training time and scoring throughput; None when no run recorded them."""
    body = [cost_row(r.name, r.costs) for r in section.rows]
    return (COST_HEAD, body) if any(c[1:4] != ["-", "-", "-"] for c in body) else None


def quality_cost_points(section: Section) -> tuple[str | None, dict[str, tuple[float, float | None, float | None]]]:
    """The headline metric and, per row with a cost, (mean quality, mean training s, mean samples/s)."""
    metric = headline(section.metrics)
    points = {}
    for r in section.rows:
        values, summary = r.values(metric) if metric else [], cost_summary(r.costs)
        if values and ("train_s" in summary or "samples_per_s" in summary):
            finite = [v for v in values if v == v]
            if finite:
                points[r.name] = (float(sum(finite) / len(finite)),
                                  summary["train_s"]["mean"] if "train_s" in summary else None,
                                  summary["samples_per_s"]["mean"] if "samples_per_s" in summary else None)
    return metric, points


def markdown_table(head: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def _html_table(head: list[str], body: list[list[str]], paper_from: int | None = None) -> str:
    """A scrollable HTML table; cells from column ``paper_from`` on are the paper's numbers."""
    rows_html = "".join(
        "<tr>" + "".join(f"<td{' class=paper' if paper_from is not None and j >= paper_from else ''}>"
                         f"{html.escape(c)}</td>" for j, c in enumerate(cells)) + "</tr>" for cells in body)
    return ("<div class='table-wrap'><table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head)
            + f"</tr></thead><tbody>{rows_html}</tbody></table></div>")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "section"


def section_plots(section: Section, folder: Path, prefix: str) -> list[tuple[str, str]]:
    """(file name, caption) of every plot of a section, written into ``folder``."""
    plots: list[tuple[str, str]] = []
    for curve in section.curves:
        if curve.exists():
            name = f"{prefix}-{curve.name}"
            shutil.copyfile(curve, folder / name)
            plots.append((name, f"{curve.stem} ({section.title})"))
    metric, points = quality_cost_points(section)
    if points:
        name = cost_plot(points, folder / f"{prefix}-quality-vs-cost.png", metric.upper() if metric == "auc" else metric,
                         f"{section.title}: {metric} vs cost")
        if name:
            plots.append((name, f"{metric} vs training time and scoring throughput (log scales)"))
    ranked = [r for r in section.rows if r.ranking and r.metrics]
    for metric in ("recall", "mrr"):
        series = {r.name: ranking_by_k(r, metric) for r in ranked}
        series = {k: v for k, v in series.items() if len(v) > 1}
        if series:
            name = ranking_by_k_plot(series, folder / f"{prefix}-{metric}-by-k.png", metric.capitalize(),
                                     f"{section.title}: {metric}@k")
            plots.append((name, f"{metric.capitalize()}@k by k"))
    ctr = {}
    for r in section.rows:
        if r.ranking or not r.metrics:
            continue
        preds = r.predictions()
        if preds is not None and {"label", "score"} <= set(preds.columns) and preds["label"].nunique() == 2:
            ctr[r.name] = (preds["label"].to_numpy(), preds["score"].to_numpy())
    if ctr:
        plots.append((calibration_plot(ctr, folder / f"{prefix}-calibration.png", f"{section.title}: calibration"),
                      "calibration (first seed of each row)"))
        plots.append((score_histograms(ctr, folder / f"{prefix}-scores.png", f"{section.title}: P(yes) by label"),
                      "score histograms (first seed of each row)"))
    return plots


def build_report(paths: list[str | Path], out: str | Path, title: str = "llmrec report") -> dict[str, Any]:
    """Write ``OUT/report.md`` (+ ``OUT/report_files/``) and the self-contained ``OUT/report.html``.

    ``paths`` are experiment folders (their ``table.json``), folders of them (``results/``) and run folders
    (evaluate, train, baseline); what ``llmrec report`` writes. Returns ``markdown`` (report.md's text),
    ``summary`` (its tables), ``html`` (the page's path), ``sections`` and ``plots``. Example (the experiments recorded in this repository)::

        import llmrec

        result = llmrec.report(["results"], "runs/report-all", title="every method")
        print(result["summary"])
    """
    sections = collect(paths)
    out = Path(out)
    check_report_target(out)
    files = out / "report_files"
    made = [p for p in (out, files) if not p.exists()]
    files.mkdir(parents=True, exist_ok=True)
    try:
        return _write_report(sections, out, files, title)
    except BaseException:
        for folder in reversed(made):  # a failed report leaves no folder it made (files it wrote: none yet, or plots)
            shutil.rmtree(folder, ignore_errors=True)
        raise


PAGE_START = "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"


def check_report_target(out: Path) -> None:
    """Refuse an output folder whose report.md / report.html llmrec did not write (a report replaces its own)."""
    page, text = out / "report.html", out / "report.md"
    try:
        ours = page.read_text(errors="replace")[: len(PAGE_START)] == PAGE_START if page.is_file() else not text.exists()
    except OSError:
        ours = False
    if not ours or (page.exists() and not page.is_file()) or (text.exists() and not text.is_file()):
        raise ConfigError(f"{out}: holds a report.md or report.html that llmrec did not write; a report replaces "
                          "only its own: move them away (or give `llmrec report` another -o)")


def _write_report(sections: list, out: Path, files: Path, title: str) -> dict[str, Any]:
    md = [f"# {title}", ""]
    parts = [f"<h1>{html.escape(title)}</h1>"]
    summary = []
    for i, section in enumerate(sections):
        head, body = table_rows(section)
        plots = section_plots(section, files, f"{i:02d}-{_slug(section.title)}")
        table_md = markdown_table(head, body)
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.description:
            parts.append(f"<p class='desc'>{html.escape(section.description)}</p>")
        parts.append(_html_table(head, body, paper_from=2 + len(section.metrics)))
        if section.paper_metrics:
            table_md += f"\n\n{paper_note(section.paper_label)}"
            parts.append(f"<p class='desc'>{html.escape(paper_note(section.paper_label))}</p>")
        if section.paired:
            p_head, p_body = paired_table(section.paired, section.metrics)
            note = paired_note(section.paired)
            table_md += f"\n\n{note}:\n\n{markdown_table(p_head, p_body)}"
            parts.append(f"<h3>{html.escape(note)}</h3>" + _html_table(p_head, p_body))
        for caption, rule, s_head, s_body in segment_tables(section):
            table_md += f"\n\n{caption}:\n\n{markdown_table(s_head, s_body)}\n\n_{rule}_"
            parts.append(f"<h3>{html.escape(caption)}</h3>" + _html_table(s_head, s_body)
                         + f"<p class='desc'>{html.escape(rule)}</p>")
        for segmentation, title in SEGMENT_TITLES.items() if section.paired else ():
            made = paired_segment_table(section.paired, segmentation)
            if made:
                table_md += f"\n\nPaired differences {title}:\n\n{markdown_table(*made)}"
                parts.append(f"<h3>Paired differences {html.escape(title)}</h3>" + _html_table(*made))
        if (costs := cost_table(section)) is not None:
            table_md += f"\n\nCost ({COST_NOTE}):\n\n{markdown_table(*costs)}"
            parts.append(f"<h3>Cost</h3><p class='desc'>{html.escape(COST_NOTE)}</p>" + _html_table(*costs))
        summary.append(f"## {section.title}\n\n{table_md}")
        md += [f"## {section.title}", ""] + ([section.description, ""] if section.description else [])
        md += [table_md, ""]
        md += [f"![{cap}](report_files/{name})" for name, cap in plots] + [""]
        for name, cap in plots:
            data = base64.b64encode((files / name).read_bytes()).decode()
            parts.append(f"<figure><img alt='{html.escape(cap)}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{html.escape(cap)}</figcaption></figure>")
    note = (f"mean ± std over seeds; {INTERVAL_NOTE}; "
            "paper: the published numbers (other models and data sizes, see each table's description)")
    md += [f"_{note}_", ""]
    parts.append(f"<p class='desc'><em>{html.escape(note)}</em></p>")
    text = "\n".join(md)
    page = (f"{PAGE_START}<title>{html.escape(title)}</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{CSS}</style></head>"
            f"<body><main>{''.join(parts)}</main></body></html>")
    write_text(out / "report.html", page)  # first: a report.md without its page is not taken for ours
    write_text(out / "report.md", text)
    return {"markdown": text, "summary": "\n\n".join(summary), "html": str(out / "report.html"),
            "sections": len(sections), "plots": sorted(p.name for p in files.iterdir())}

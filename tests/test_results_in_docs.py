"""The results pages (docs/results/*.md), the README and the getting-started page show the numbers of the records
committed in results/ (no stale copies), and results/*/table.json shows its runs' metrics.json.

Conventions the pages follow (and these tests read):

* a line that shows a recorded row names it in backticks (`` `movie-256` ``), the row's name in its
  experiment's ``table.json``; a paired difference is named ``a - b`` (``lora-64 - zeroshot (by user)``);
* a single run is shown as ``value [low, high]`` (its 95% bootstrap interval by sample; ``†`` after it: by user;
  ``(by user [low, high])`` after it: the same run's interval by user), a row of several runs as ``mean ± std``,
  and a row of several LLM runs also lists every draw (``draws: .7594 / .7608``); a bare value in a metric
  column is a single run's value or a several-run row's mean;
* every page opens with its headline table ("paper vs this library") between ``<!-- headline:start -->``
  and ``<!-- headline:end -->``; a headline table the README copies sits below a
  ``<!-- headline: docs/results/NAME.md -->`` marker there, and each of its cells holds the numbers of one cell of
  the page's headline table.

The rule for every other number (``test_every_quoted_number_is_a_record_of_its_context``). Each decimal number of
a checked file (CONTEXT: a results page and the experiments it shows; the README's and getting-started's quick
start and results/quickstart) is read in its context and compared with the record, at the digits it shows:

* in a table, the row is the backticked names of its table row (or its first cell, or the pair ``a - b``) and the
  metric is the column's header (AUC, LogLoss, ACC, Recall@3, ...; any metric of the row where the header names
  none): ``v [lo, hi]``, ``†``, by-user intervals, ``mean ± std``, draws in order and paired ``diff [lo, hi]``
  (one per recorded run, in order) must be that row's record for that metric; a column whose header says
  "paper" holds paper numbers (the experiment files' ``paper:`` sections, or PAPER_NUMBERS); a describing
  column (row, what, model, training, ...) is read as prose;
* in prose, the rows are those the paragraph names and those its section names (its tables' rows included), or
  every row of the file's experiments where none are named; the metric of a bare number is the last one its
  sentence names before it (AUC, LogLoss, ACC, Recall@k, MRR@k, NDCG@k, positive rate, mean score), else the
  rows' headline metric. ``v [lo, hi]``, ``mean ± std`` and ``diff [lo, hi]`` must be one record as a whole; a bare
  number must be one of the rows' recorded values of that metric (a run's value, a mean, a std, a validation
  pass in selection.json, the mean score, the positive rate), a recorded difference (unsigned: its size), a
  difference the page works out between two named rows or a named row and its paper number, or (where the
  sentence names a paper) a paper number;
* not checked: a number in a sentence that says "not recorded", in a section whose first paragraph starts with
  "Not recorded", followed by a unit (s, min, h, x, %, MiB, words, prompts/s, days), after a setting's name (lr,
  dropout, drop, threshold, bar, v, >=, ==, Python, torch) or before "bar" / "threshold", or approximate ("about",
  "~"); code blocks (except a table printed in one) and HTML comments. Integers (counts) are not read.

``test_an_edited_number_fails_the_checks`` shows that edits of quoted numbers fail (MUTATIONS: an AUC, its by-user
bounds, the by-sample interval in place of the by-user one, a LogLoss and an ACC with intervals, a mean, a std,
one draw, a LogLoss mean, a per-draw interval, a by-user bound of one draw, paired bounds in a table and in prose,
a per-draw paired difference without interval, a prose value, a validation AUC, a paper number, a sequential
metric, a full-data bound, a classic row's mean ± std, a namesake row's value, an NDCG@10, README quick-start
table/prose/headline-copy numbers). Mutating the last digit of every decimal number of the checked files, one at
a time, fails the checks for 1,157 of 1,395 (2026-12-07); the rest are the exempt kinds above (versions, units,
settings, "not recorded" sentences and the not-recorded recipe sweep) and two-digit roundings (".62-.68", "the .75
bar") that more than one record rounds to.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from llmrec.experiments import load_experiment

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
PAGES_DIR = ROOT / "docs" / "results"
TABLES = sorted(RESULTS.glob("*/table.json"))
PAGES = sorted(PAGES_DIR.glob("*.md"))

# Which results pages show the rows of which recorded experiment.
PAGES_OF = {
    "quickstart": ["tallrec.md"],
    "tallrec-table": ["tallrec.md", "baselines.md", "hybrids.md"],
    "rella-table": ["rella.md"],
    "rella-sweep-n": ["rella.md", "hybrids.md"],
    "rella-sweep-k": ["rella.md"],
    "rella-baselines": ["baselines.md", "rella.md"],
    "trsr-table": ["trsr.md"],
    "trsr-baselines": ["baselines.md"],
    "trsr-itemtext": ["hybrids.md"],
    "rella-itemtext": ["hybrids.md"],
    "hybrid-ml100k": ["hybrids.md"],
    "hybrid-bookcrossing": ["hybrids.md"],
    "hybrid-ml1m": ["hybrids.md"],
}

NUMBER = r"0?\.\d{3,4}"
# "0.4532 [0.417, 0.492]": an unsigned value with its interval (signed ones are paired differences)
VALUE_WITH_INTERVAL = re.compile(rf"(?<![\d.+\-−])({NUMBER})\s*\[({NUMBER}),\s*({NUMBER})\]")
MEAN_STD = re.compile(rf"(?<![\d.])({NUMBER})\s*±\s*({NUMBER})")
DRAWS = re.compile(rf"draws?:\s*({NUMBER}(?:\s*/\s*{NUMBER})+)")
ROW_NAME = re.compile(r"`([A-Za-z0-9_.@-]+)`")


def experiment_file(name: str) -> Path:
    """The shipped experiment file whose ``name`` is ``name``."""
    for path in sorted((ROOT / "configs").rglob("*.yaml")):
        try:
            if (yaml.safe_load(path.read_text()) or {}).get("name") == name:
                return path
        except (yaml.YAMLError, AttributeError):
            continue
    raise AssertionError(f"no experiment file in configs/ is named {name!r}")


def planned_runs(experiment, name: str) -> int:
    """How many runs a finished row has: its seeds, those of the row it takes adapters from, or one."""
    row = next(r for r in experiment.steps if r.name == name)
    if row.seeds:
        return len(row.seeds)
    return planned_runs(experiment, row.adapters_from) if row.adapters_from else 1


def close(shown: str, value: float) -> bool:
    """``shown`` (".7594", "0.759") is ``value`` rounded to the digits it shows."""
    digits = len(shown.split(".")[1])
    return abs(float(shown) - value) <= 0.5 * 10**-digits + 1e-9


def run_values(row: dict, metric: str) -> list[tuple[float, list[list[float]]]]:
    """Each run of a row: (value, [its intervals: by sample, by user where recorded]) from its metrics.json."""
    found = []
    for folder in row.get("folders", []):
        record = json.loads((ROOT / folder / "metrics.json").read_text())
        metrics = record.get("metrics", record)
        intervals = [ci[metric] for ci in (metrics.get("ci95"), metrics.get("ci95_by_user")) if ci and ci.get(metric)]
        found.append((metrics[metric], intervals))
    return found


def recorded_rows() -> dict[str, dict]:
    """Every row with at least one run, by table: its metrics' means, stds, per-run values and intervals."""
    rows = {}
    for table in TABLES:
        data = json.loads(table.read_text())
        for name, row in data["rows"].items():
            if not row.get("runs"):
                continue
            rows[(table.parent.name, name)] = {
                "row": row,
                "metrics": {m: run_values(row, m) for m in data["metrics"] if m in row},
            }
    return rows


ROWS = recorded_rows()


def page_lines(page: str) -> list[tuple[int, str, set[str]]]:
    """The lines of a results page with the backticked names in each."""
    text = (PAGES_DIR / page).read_text()
    return [(i + 1, line, set(ROW_NAME.findall(line))) for i, line in enumerate(text.splitlines())]


def shows_draws(line: str, runs: list[tuple[float, list]]) -> bool:
    """``line`` lists every run's value in order ("draws: .7594 / .7608 / ...")."""
    return any(
        len(d.split("/")) == len(runs) and all(close(s.strip(), v) for s, (v, _) in zip(d.split("/"), runs))
        for d in DRAWS.findall(line)
    )


def test_every_table_has_a_results_page():
    """A new experiment folder in results/ gets its page(s) here, and every page exists."""
    assert {t.parent.name for t in TABLES} <= set(PAGES_OF), "add the new results/ folder to PAGES_OF"
    for pages in PAGES_OF.values():
        for page in pages:
            assert (PAGES_DIR / page).exists(), f"docs/results/{page} is missing"


@pytest.mark.parametrize("table", TABLES, ids=lambda p: p.parent.name)
def test_every_recorded_row_is_on_its_page_as_recorded(table):
    """A recorded row is shown, on a line naming it, with its value and interval (one run) or mean ± std
    (several; an LLM row also with every draw's value); a row still growing seed by seed shows each draw."""
    data = json.loads(table.read_text())
    experiment = load_experiment(experiment_file(data["suite"]))
    metric = data["metrics"][0]  # the headline metric of the table (AUC, Recall@3)
    lines = [line for page in PAGES_OF[table.parent.name] for _, line, names in page_lines(page)]
    missing = []
    for name, row in data["rows"].items():
        if not row.get("runs"):
            continue
        naming = [line for line in lines if f"`{name}`" in line]
        runs = ROWS[(table.parent.name, name)]["metrics"][metric]
        finished = row["runs"] >= planned_runs(experiment, name)

        if row["runs"] == 1:  # one run, finished or the first seed of a growing row
            value, intervals = runs[0]
            ok = any(
                close(v, value) and any(close(lo, ci[0]) and close(hi, ci[1]) for ci in intervals)
                for line in naming
                for v, lo, hi in VALUE_WITH_INTERVAL.findall(line)
            )
            shown = f"{value:.4f} [{intervals[0][0]:.3f}, {intervals[0][1]:.3f}]"
        elif finished:
            mean, std = row[metric]["mean"], row[metric]["std"]
            llm = row.get("kind") != "baseline"
            ok = any(
                any(close(m, mean) and close(s, std) for m, s in MEAN_STD.findall(line))
                and (not llm or shows_draws(line, runs))
                for line in naming
            )
            shown = f"{mean:.4f} ± {std:.4f}" + (
                " with draws: " + " / ".join(f"{v:.4f}" for v, _ in runs) if llm else ""
            )
        else:
            ok = any(shows_draws(line, runs) for line in naming)
            shown = "draws: " + " / ".join(f"{v:.4f}" for v, _ in runs)
        if not ok:
            missing.append(f"`{name}`: {metric} {shown}")
    assert not missing, f"docs/results does not show these rows of {table.parent.name} as recorded: {missing}"


@pytest.mark.parametrize("page", [p.name for p in PAGES])
def test_every_number_on_a_line_naming_a_row_is_recorded(page):
    """The other direction: on a line that names recorded rows, every ``value [low, high]``, ``mean ± std``
    and ``draws: a / b`` is one of theirs (so an edited or stale number fails here)."""
    tables = [t for t, pages in PAGES_OF.items() if page in pages]
    wrong = []
    for number, line, names in page_lines(page):
        rows = [ROWS[(t, n)] for t in tables for n in names if (t, n) in ROWS]
        if not rows:
            continue
        runs = [run for r in rows for values in r["metrics"].values() for run in values]
        stats = [(r["row"][m]["mean"], r["row"][m]["std"]) for r in rows for m in r["metrics"] if r["row"].get(m)]
        draws = [[v for v, _ in values] for r in rows for values in r["metrics"].values()]
        for v, lo, hi in VALUE_WITH_INTERVAL.findall(line):
            if not any(close(v, val) and any(close(lo, c[0]) and close(hi, c[1]) for c in cis) for val, cis in runs):
                wrong.append(f"{page}:{number}: {v} [{lo}, {hi}]")
        for m, s in MEAN_STD.findall(line):
            if not any(close(m, mean) and close(s, std) for mean, std in stats):
                wrong.append(f"{page}:{number}: {m} ± {s}")
        for d in DRAWS.findall(line):
            shown = [x.strip() for x in d.split("/")]
            if not any(len(shown) == len(vs) and all(close(x, v) for x, v in zip(shown, vs)) for vs in draws):
                wrong.append(f"{page}:{number}: draws {d}")
    assert not wrong, f"numbers that match no record of the rows their line names: {wrong}"


def headline(text: str) -> str:
    """The headline block of a results page."""
    match = re.search(r"<!-- headline:start -->(.*?)<!-- headline:end -->", text, re.S)
    return match.group(1) if match else ""


@pytest.mark.parametrize("page", [p.name for p in PAGES])
def test_every_results_page_opens_with_its_headline_table(page):
    """Paper vs this library first: the headline block is the page's first table and names the setup."""
    text = (PAGES_DIR / page).read_text()
    block = headline(text)
    assert block, f"docs/results/{page} has no <!-- headline:start --> ... <!-- headline:end --> block"
    first_table = next(i for i, line in enumerate(text.splitlines()) if line.startswith("|"))
    start = text[: text.index("<!-- headline:start -->")].count("\n")
    assert first_table > start, f"docs/results/{page}: a table comes before the headline table"
    assert "paper" in block.lower() and "|" in block, f"docs/results/{page}: the headline table compares with the paper"


README_HEADLINE = re.compile(r"<!-- headline: (docs/results/[\w-]+\.md) -->[ \t]*\n((?:[ \t]*\n)*(?:\|.*(?:\n|$))+)")


def readme_headline_numbers_not_on_pages(readme: str) -> tuple[int, list[str]]:
    """How many marked headline tables ``readme`` has, and each of their cells whose numbers are not, in order and
    next to each other, the numbers of one cell of the page's headline table (the README copies the page: the
    same digits, each value with its own interval or std, never a number from another row)."""
    blocks = README_HEADLINE.findall(readme)
    wrong = []
    for page, table in blocks:
        page_cells = [
            re.findall(r"\d*\.\d+", cell)
            for line in headline((ROOT / page).read_text()).splitlines()
            if line.startswith("|")
            for cell in line.strip().strip("|").split("|")
        ]
        for line in table.splitlines():
            for cell in line.strip().strip("|").split("|"):
                numbers = re.findall(r"\d*\.\d+", cell)
                if numbers and not any(
                    numbers == shown[i : i + len(numbers)] for shown in page_cells for i in range(len(shown))
                ):
                    wrong.append(f"{page}: {cell.strip()}")
    return len(blocks), wrong


def test_readme_headline_check_catches_a_changed_number():
    """The check below on a made-up README: the page's own headline row passes, a changed digit fails."""
    row = next(line for line in headline((PAGES_DIR / "tallrec.md").read_text()).splitlines() if "`movie-256`" in line)
    readme = f"# x\n\n<!-- headline: docs/results/tallrec.md -->\n| a | b |\n|---|---|\n{row}\n"
    assert readme_headline_numbers_not_on_pages(readme) == (1, [])
    assert readme_headline_numbers_not_on_pages(readme.replace("0.7549", "0.7548"))[1] == [
        "docs/results/tallrec.md: 0.7548 ± 0.0050 over 5 draws (each draw's 95% interval about ±.03)"
    ]
    # a number of another row of the page's headline table is not this row's number
    assert readme_headline_numbers_not_on_pages(readme.replace("0.7549", "0.7246"))[1]


def test_the_readme_headline_tables_show_the_pages_numbers():
    """A README table below ``<!-- headline: docs/results/NAME.md -->`` holds only numbers that the page's
    headline table holds (the README copies them, the pages are checked against the records above)."""
    count, wrong = readme_headline_numbers_not_on_pages((ROOT / "README.md").read_text())
    if not count:
        pytest.skip("README.md has no headline table marked <!-- headline: docs/results/NAME.md --> yet")
    assert not wrong, f"README headline numbers not in the results page's headline table: {wrong}"


# "+.0075 [-.0126, +.0268]": a signed difference with its interval, as the docs quote paired results
QUOTED_DIFFERENCE = re.compile(r"([+-]0?\.\d{3,4})\s+\[([+-]?0?\.\d{3,4}),\s+([+-]?0?\.\d{3,4})\]")
QUOTING_DOCS = [
    "README.md",
    "results/README.md",
    *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md")),
]


def recorded_differences() -> list[tuple[float, float, float]]:
    """Every paired difference recorded in results/*/table.json: (difference, low, high) per metric, and per
    segment bucket (an entry's ``segments``), as :func:`load_records` reads them."""
    return [d for pairs in PAIRS.values() for p in pairs for d in p.diffs.values()]


def stale_differences(name: str, text: str) -> list[str]:
    """The differences quoted with their interval in ``text`` (the file ``name``) that round from no recorded one."""
    recorded = recorded_differences()

    def matches(quoted: tuple[str, str, str]) -> bool:
        digits = len(quoted[0].split(".")[1])
        tolerance = 0.5 * 10**-digits + 1e-9
        numbers = [float(q) for q in quoted]
        return any(all(abs(n - r) <= tolerance for n, r in zip(numbers, rec)) for rec in recorded)

    stale = []
    for found in QUOTED_DIFFERENCE.finditer(text):  # across line breaks too
        if not matches(found.groups()):
            line = text.count("\n", 0, found.start()) + 1
            stale.append(f"{name}:{line}: {' '.join(found.group(0).split())}")
    return stale


def test_every_quoted_paired_difference_is_a_recorded_one():
    """A difference quoted with its interval in the README or the docs (lora - zero-shot +.238 [+.132, +.341])
    rounds from one recorded in results/ (a table's ``paired:`` section), so a re-run that moves it
    shows up here instead of leaving a stale number in the prose."""
    assert recorded_differences(), "results/*/table.json record no paired differences"
    stale = [s for name in QUOTING_DOCS if (ROOT / name).exists() for s in stale_differences(name, (ROOT / name).read_text())]
    assert not stale, f"these quoted paired differences match no record in results/*/table.json: {stale}"


# ---------------------------------------------------------------------------------------------------------------
# Every quoted number, in its context
# ---------------------------------------------------------------------------------------------------------------

METRIC_KEY = re.compile(r"^(?:valid_)?(auc|logloss|acc|positive_rate|mean_score|(?:recall|mrr|ndcg|hit)@\d+)$")
METRIC_IN_HEADER = re.compile(r"\b(auc|logloss|acc|(?:recall|mrr|ndcg|hit)@\d+)\b", re.I)
NUM = r"[+\-−]?\d*\.\d+"
DECIMAL = re.compile(r"(?<![\w.,/@=+\-−])([+\-−]?)(\d*\.\d+)(?![\w.]|\.\d)")
# "+.238 [+.132, +.341]", "-.0044: [-.0109, +.0023]": a paired difference with its interval
DIFF_ITEM = re.compile(rf"(?<![\w.])([+\-−]\d*\.\d+)(?:\s*:?\s*\[({NUM}),\s*({NUM})\])?")
# ".755 [.583, .849]", "0.7551 [0.583, 0.849]†", "0.6531 [0.630, 0.676] (by user [0.627, 0.679])": a run's value
RUN_ITEM = re.compile(
    r"(?<![\w.+\-−±])(\d*\.\d+)(?:\s*\[(\d*\.\d+),\s*(\d*\.\d+)\](†)?)?(?:\s*\(by user \[(\d*\.\d+),\s*(\d*\.\d+)\]\))?"
)
RUN_WITH_INTERVAL = re.compile(r"(?<![\w.+\-−])(\d*\.\d+)\s*\[(\d*\.\d+),\s*(\d*\.\d+)\](†)?")
# a number followed by a unit is a count, a size, a time or a rate, not a metric value
UNIT = re.compile(r"\s?(?:s|ms|min|h|x|MiB|GiB|GB|MB|words|prompts/s|samples/s|days)\b|\s?%")
# a number after one of these is a setting (a learning rate, dropout, threshold, bar, version), not a result
SETTING = re.compile(r"(?:\blr|dropout|\bdrop|threshold|\bbar|\bv|>=|==|Python|torch)\s*$", re.I)
SETTING_AFTER = re.compile(r"\s+(?:bar|threshold)\b")
APPROXIMATE = re.compile(r"(?:about|~|≈)\s*±?\s*$")
PAPER_WORD = re.compile(r"paper|LLaMA|Llama|Vicuna", re.I)
NOT_RECORDED = re.compile(r"not\s+recorded", re.I)
# Numbers quoted from the papers that no experiment file's ``paper:`` section holds (those are read from
# table.json): ReLLa's logistic regression with history features and its +.002 SUBR gain (Lin et al., WWW 2024);
# LLM-TRSR's MIND rows, its SASRec and NARM Recall@3 (Zheng et al., WWW 2024); TALLRec's 16-shot movie AUC
# rounded (.67, Bao et al., RecSys 2023); CoLLM's ML-1M AUC of its MF row and of TALLRec (Zhang et al. 2023), whose
# experiment (configs/hybrid/ml1m.yaml) is not recorded yet.
PAPER_NUMBERS = {0.7802, 0.002, 0.916, 0.906, 0.858, 0.842, 0.841, 0.67, 0.7295, 0.7097}


@dataclass
class Run:
    """One run of a recorded row: its metric values and intervals (metrics.json) and the other metric values it
    records (its validation passes in selection.json, the mean score, the positive rate)."""

    values: dict[str, float]
    ci: dict[str, list[float]]
    ci_by_user: dict[str, list[float]]
    other: dict[str, list[float]]  # metric: every value recorded for it (validation passes included)


@dataclass
class Row:
    name: str
    stats: dict[str, tuple[float, float, list[float]]]  # metric: (mean, std, each run's value) from table.json
    runs: list[Run]
    paper: dict[str, float]
    headline: str  # its table's first metric: what a number quoted without a metric is


@dataclass
class Pair:
    a: str
    b: str
    by_user: bool
    diffs: dict[str, tuple[float, float, float]]  # metric: (difference, low, high)


def metric_values(obj, found: dict[str, list[float]]) -> dict[str, list[float]]:
    """Every value of a metric key (auc, valid_auc, logloss, recall@3, mean_score, ...) in a JSON value, at any
    depth, by metric."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = METRIC_KEY.match(k)
            if key and isinstance(v, (int, float)) and not isinstance(v, bool):
                found.setdefault(key.group(1), []).append(float(v))
            else:
                metric_values(v, found)
    elif isinstance(obj, list):
        for v in obj:
            metric_values(v, found)
    return found


def load_run(folder: Path) -> Run:
    record = json.loads((folder / "metrics.json").read_text())
    metrics = record.get("metrics", record)
    values = {k: float(v) for k, v in metrics.items() if METRIC_KEY.match(k) and isinstance(v, (int, float))}
    other = metric_values(record, {})
    if (folder / "selection.json").exists():
        metric_values(json.loads((folder / "selection.json").read_text()), other)
    return Run(values, metrics.get("ci95") or {}, metrics.get("ci95_by_user") or {}, other)


def segment_runs(folder: Path) -> list[Run]:
    """A run's metric in each segment bucket (metrics.json ``segments``), each as a run of its own: the value and
    interval a page quotes for cold items, a history-length quartile, ..."""
    record = json.loads((folder / "metrics.json").read_text())
    found = []
    for seg in (record.get("metrics", record).get("segments") or {}).values():
        for bucket in (seg.get("buckets") or {}).values() if isinstance(seg, dict) else ():
            values = {m: float(v) for m, v in bucket.items() if METRIC_KEY.match(m) and isinstance(v, (int, float))}
            if values:
                found.append(Run(values, bucket.get("ci95") or {}, bucket.get("ci95_by_user") or {}, {}))
    return found


def segment_pairs(entry: dict) -> list[Pair]:
    """A recorded pair's difference in each segment bucket (table.json ``segments``), each as a pair of its own."""
    found = []
    for seg in (entry.get("segments") or {}).values():
        for bucket in (seg.get("buckets") or {}).values():
            if isinstance(bucket, dict) and bucket.get("diff") is not None and bucket.get("ci95"):
                found.append(Pair(entry["a"], entry["b"], entry.get("by") == "user",
                                  {seg["metric"]: (bucket["diff"], *bucket["ci95"])}))
    return found


def load_records() -> tuple[dict[str, list[Row]], dict[str, list[Pair]]]:
    """Per experiment folder of results/: its recorded rows and its paired differences (in their recorded order),
    then the same by segment bucket."""
    rows, pairs = {}, {}
    for table in TABLES:
        data = json.loads(table.read_text())
        rows[table.parent.name] = [
            Row(name, {m: (row[m]["mean"], row[m]["std"], row[m]["values"]) for m in data["metrics"] if row.get(m)},
                [load_run(ROOT / f) for f in row.get("folders", [])]
                + [s for f in row.get("folders", []) for s in segment_runs(ROOT / f)],
                row.get("paper") or {}, data["metrics"][0])
            for name, row in data["rows"].items()
            if row.get("runs")
        ]
        entries = [e for e in data.get("paired", []) if not e.get("skipped")]
        pairs[table.parent.name] = [
            Pair(e["a"], e["b"], e.get("by") == "user",
                 {m: (v["diff"], *v["ci95"]) for m, v in e.items() if isinstance(v, dict) and v.get("diff") is not None})
            for e in entries
        ] + [p for e in entries for p in segment_pairs(e)]
    return rows, pairs


RECORDS, PAIRS = load_records()

# What each checked file quotes: a results page its experiments (PAGES_OF); the README and the getting-started page
# the quick start (the README's headline tables copy the pages' headline blocks: checked above, cell by cell).
CONTEXT = {
    **{f"docs/results/{p.name}": [e for e, pages in PAGES_OF.items() if p.name in pages] for p in PAGES},
    "docs/results/baselines.md": ["rella-baselines", "trsr-baselines", "tallrec-table", "trsr-table"],
    "README.md": ["quickstart"],
    "docs/getting-started.md": ["quickstart", "tallrec-table"],
}


def shown_is(shown: str, value: float) -> bool:
    """``shown`` ("+.238", "0.7594", "−.05") is ``value`` rounded to the digits it shows, sign included."""
    return close(shown.replace("−", "-").replace("+", ""), value)


class Context:
    """The records a passage may quote: those of the rows it names (in backticks, or ``a - b``), else those of
    every row of the file's experiments."""

    _cache: dict = {}

    def __new__(cls, experiments: list[str], names: set[str]):
        key = (tuple(experiments), frozenset(names))
        if key not in cls._cache:
            cls._cache[key] = ctx = super().__new__(cls)
            ctx._setup(experiments, names)
        return cls._cache[key]

    def _setup(self, experiments, names):
        rows = [r for e in experiments for r in RECORDS.get(e, [])]
        self.all_pairs = [p for e in experiments for p in PAIRS.get(e, [])]
        self.named = [r for r in rows if r.name in names]
        self.rows = self.named or rows
        self.paper = PAPER_NUMBERS | {v for r in rows for v in r.paper.values()}
        named = {r.name for r in self.named}
        self.pairs = [p for p in self.all_pairs if {p.a, p.b} & named] if self.named else self.all_pairs
        headlines = [r.headline for r in self.rows]
        self.headline_metric = max(set(headlines), key=headlines.count) if headlines else "auc"
        values: dict[str, list[float]] = {}
        signed: dict[str, list[float]] = {}
        for r in self.rows:
            for m, (mean, std, each) in r.stats.items():
                values.setdefault(m, []).extend([mean, std, *each])
            for run in r.runs:
                for m, found in run.other.items():
                    values.setdefault(m, []).extend(found)
        for p in self.pairs:
            for m, (diff, lo, hi) in p.diffs.items():
                signed.setdefault(m, []).extend([diff, lo, hi])
        # a difference the page works out itself: between two named rows, or a named row and its paper number
        means = {r.name: {m: s[0] for m, s in r.stats.items()} for r in self.named}
        for r in self.named:
            for m, paper in r.paper.items():
                if m in means[r.name]:
                    signed.setdefault(m, []).append(means[r.name][m] - paper)
            for other in self.named:
                for m, v in means[r.name].items():
                    if other is not r and m in means[other.name]:
                        signed.setdefault(m, []).append(v - means[other.name][m])
        self.values, self.signed = values, signed

    def backs(self, sign: str, digits: str, metric: str | None = None, paper: bool = False) -> bool:
        """A bare number of ``metric`` (the context's headline metric when None): a recorded value (unsigned:
        also a difference's size), a signed recorded difference, or (``paper``: its sentence names a paper) a
        paper number of the file's experiments."""
        metric = metric or self.headline_metric
        signed = self.signed.get(metric, [])
        if sign:
            return any(shown_is(sign + digits, n) for n in signed)
        return (any(close(digits, n) for n in self.values.get(metric, []))
                or any(close(digits, abs(n)) for n in signed) or paper and any(close(digits, p) for p in self.paper))

    def backs_run(self, value: str, lo: str, hi: str, by_user: bool = False, metric: str | None = None) -> bool:
        """``value [lo, hi]``: a run's value with its interval by sample (by user where ``by_user``)."""
        return any(
            close(value, v) and close(lo, ci[0]) and close(hi, ci[1])
            for r in self.rows
            for run in r.runs
            for m, v in run.values.items()
            if metric in (None, m)
            for ci in ([run.ci_by_user.get(m)] if by_user else [run.ci.get(m), run.ci_by_user.get(m)])
            if ci
        )

    def backs_difference(self, diff: str, lo: str, hi: str) -> bool:
        """``diff [lo, hi]``: a recorded paired difference with its interval."""
        return any(
            shown_is(diff, d) and shown_is(lo, low) and shown_is(hi, high)
            for p in self.pairs
            for d, low, high in p.diffs.values()
        )


METRIC_WORDS = [
    (re.compile(r"\bAUC\b"), "auc"), (re.compile(r"\bLogLoss\b"), "logloss"), (re.compile(r"\bACC\b"), "acc"),
    (re.compile(r"positive rate"), "positive_rate"), (re.compile(r"mean (?:score|P\(yes\))"), "mean_score"),
    *[(re.compile(rf"\b{k}@{n}\b", re.I), f"{k.lower()}@{n}") for k in ("Recall", "MRR", "NDCG") for n in (3, 5, 10)],
]


def metric_named_in(text: str) -> str | None:
    """The metric named last in ``text`` (AUC, LogLoss, ACC, Recall@3, positive rate, mean score)."""
    found = [(m.end(), metric) for pattern, metric in METRIC_WORDS for m in pattern.finditer(text)]
    return max(found)[1] if found else None


def prose_problems(text: str, ctx: Context) -> list[str]:
    """The numbers of a passage (outside code spans) that no record of ``ctx`` backs, sentence by sentence."""
    wrong = []
    plain = re.sub(r"`[^`]*`", " ", text)
    for sentence in re.split(r"(?<=[.!?])\s+(?=[^a-z\s])", plain):
        if NOT_RECORDED.search(sentence):
            continue
        for found in MEAN_STD.finditer(sentence):
            if not any(close(found.group(1), s[0]) and close(found.group(2), s[1]) for r in ctx.rows for s in r.stats.values()):
                wrong.append(found.group(0))
        sentence = MEAN_STD.sub(" ", sentence)
        for found in DIFF_ITEM.finditer(sentence):
            if found.group(2) and not ctx.backs_difference(*found.groups()):
                wrong.append(found.group(0))
        sentence = DIFF_ITEM.sub(lambda m: " " if m.group(2) else m.group(0), sentence)
        for found in RUN_WITH_INTERVAL.finditer(sentence):
            if not ctx.backs_run(*found.groups()[:3], by_user=bool(found.group(4))):
                wrong.append(found.group(0))
        sentence = RUN_WITH_INTERVAL.sub(" ", sentence)
        for found in DECIMAL.finditer(sentence):
            before, after = sentence[: found.start()], sentence[found.end():]
            if UNIT.match(after) or SETTING.search(before) or SETTING_AFTER.match(after) or APPROXIMATE.search(before):
                continue
            if not ctx.backs(found.group(1).replace("−", "-"), found.group(2), metric_named_in(before), bool(PAPER_WORD.search(sentence))):
                wrong.append(found.group(0))
    return wrong


def metric_of(header: str) -> str | None:
    found = METRIC_IN_HEADER.search(header)
    return found.group(1).lower() if found else None


def metric_cell_problems(cell: str, ctx: Context, metric: str | None) -> list[str]:
    """A cell of a row's metric (of any metric where the header names none): ``mean ± std`` is the row's mean and
    std, ``draws: a / b`` its runs' values in order, ``v [lo, hi]`` a run's value and interval by sample (``†``: by
    user) and ``(by user [lo, hi])`` the same run's interval by user; several ``v [lo, hi]`` are the runs in order;
    a bare value is a single run's value or a several-run row's mean."""
    rows = ctx.named
    metrics = [metric] if metric else sorted({m for r in rows for run in r.runs for m in run.values})
    stats = [r.stats[m] for r in rows for m in metrics if m in r.stats]
    wrong = []
    for mean, std in MEAN_STD.findall(cell):
        if not any(close(mean, s[0]) and close(std, s[1]) for s in stats):
            wrong.append(f"{mean} ± {std}")
    for shown in DRAWS.findall(cell):
        shown = [x.strip() for x in shown.split("/")]
        if not any(len(shown) == len(s[2]) and all(close(x, v) for x, v in zip(shown, s[2])) for s in stats):
            wrong.append("draws " + " / ".join(shown))
    rest = DRAWS.sub(" ", MEAN_STD.sub(" ", cell))
    items = list(RUN_ITEM.finditer(rest))

    def is_run(found, run, m) -> bool:
        value, lo, hi, dagger, ulo, uhi = found.groups()
        ci, user = run.ci_by_user.get(m) if dagger else run.ci.get(m), run.ci_by_user.get(m)
        return (m in run.values and close(value, run.values[m])
                and (not lo or bool(ci) and close(lo, ci[0]) and close(hi, ci[1]))
                and (not ulo or bool(user) and close(ulo, user[0]) and close(uhi, user[1])))

    for index, found in enumerate(items):
        ok = False
        for r in rows:
            for m in metrics:
                runs = [r.runs[index]] if 1 < len(items) == len(r.runs) else r.runs
                ok |= any(is_run(found, run, m) for run in runs)
                if not found.group(2) and not found.group(5) and len(r.runs) > 1 and m in r.stats:
                    ok |= close(found.group(1), r.stats[m][0])
        if not ok:
            wrong.append(found.group(0).strip())
    return wrong + prose_problems(RUN_ITEM.sub(" ", rest), ctx)  # what is left: "about ±.03", a count


def paired_cell_problems(cell: str, ctx: Context, a: str, b: str, by_user: bool, metric: str | None) -> list[str]:
    """A cell of a pair ``a - b``: ``diff [lo, hi]`` (or a bare diff) per recorded run of the pair, in order."""
    entries = [p for p in ctx.all_pairs if (p.a, p.b, p.by_user) == (a, b, by_user)]
    items = list(DIFF_ITEM.finditer(cell))
    wrong = []
    for index, found in enumerate(items):
        diff, lo, hi = found.groups()
        candidates = [entries[index]] if 1 < len(items) == len(entries) else entries
        if not any(
            shown_is(diff, d) and (not lo or shown_is(lo, low) and shown_is(hi, high))
            for p in candidates
            for m, (d, low, high) in p.diffs.items()
            if metric in (None, m)
        ):
            wrong.append(found.group(0).strip())
    return wrong + [s + d for s, d in DECIMAL.findall(DIFF_ITEM.sub(" ", cell))]


PAIR_LABEL = re.compile(r"^([\w.@-]+)\s+-\s+([\w.@-]+)\s*(\(by user\))?$")
PAIR_IN_TEXT = re.compile(r"([a-z][\w.@]*(?:-[\w.@]+)*)\s+-\s+([a-z][\w.@]*(?:-[\w.@]+)*)")
# columns that describe a row rather than show its metric: their numbers are read as prose
TEXT_COLUMN = re.compile(r"^(row|rows\b.*|what|task|model|domain|recipe\b.*|training\b.*|shots|n|k|run|runs|samples|a - b)$")


def strip_markup(text: str) -> str:
    """Text without links' targets, HTML comments and bold (code spans stay: they name rows)."""
    text = re.sub(r"<!--.*?-->", " ", text)
    return re.sub(r"\]\([^)]*\)", "]", text).replace("**", "")


def names_in(text: str, known: set[str]) -> set[str]:
    """The recorded rows a passage names: in backticks, or as a pair ``a - b``."""
    found = set(ROW_NAME.findall(text)) | {n for m in PAIR_IN_TEXT.finditer(text.replace("`", "")) for n in m.groups()}
    return found & known


def table_problems(lines: list[str], experiments: list[str]) -> list[str]:
    """A markdown table: each cell checked against the rows its table row names (a paired table's rows name the
    pair ``a - b``); a paper column holds paper numbers; a describing column reads as prose."""
    header = [c.strip().lower() for c in lines[0].strip().strip("|").split("|")]
    known = {r.name for e in experiments for r in RECORDS.get(e, [])}
    # a table shows one experiment's rows where one holds every row it names (`sasrec` is in two experiments)
    named = {n for line in lines[2:] for n in ROW_NAME.findall(line)} & known
    holding = [e for e in experiments if named and named <= {r.name for r in RECORDS.get(e, [])}]
    experiments = holding[:1] or experiments
    wrong = []
    for line in lines[2:]:
        cells = [strip_markup(c.strip()) for c in line.strip().strip("|").split("|")]
        label = cells[0].replace("`", "").strip()
        pair = PAIR_LABEL.match(label)
        names = {n for c in cells for n in ROW_NAME.findall(c) if n in known} | ({label} & known)
        if pair:
            names |= {pair.group(1), pair.group(2)} & known
        ctx = Context(experiments, names)
        for column, cell in zip(header, cells):
            if not DECIMAL.search(re.sub(r"`[^`]*`", " ", cell)):
                continue
            if "paper" in column:
                problems = [s + d for s, d in DECIMAL.findall(cell) if not any(close(d, p) for p in ctx.paper)]
            elif TEXT_COLUMN.match(column) or not (pair or ctx.named):
                problems = prose_problems(cell, ctx)
            elif pair:
                by_user = bool(pair.group(3)) or "by user" in column
                problems = paired_cell_problems(cell, ctx, pair.group(1), pair.group(2), by_user, metric_of(column))
            else:
                problems = metric_cell_problems(re.sub(r"`[^`]*`", " ", cell), ctx, metric_of(column))
            wrong += [f"{p} (row {cells[0]}, column {column})" for p in problems]
    return wrong


def quoted_number_problems(name: str, text: str) -> list[str]:
    """Every number of ``text`` (the file ``name``) that the records of its context do not back, as
    ``file:line: number``. Skipped: code blocks (but a table printed in one is checked), HTML comments, the
    README's copies of headline tables (checked above) and a section whose first paragraph starts with "Not
    recorded"."""
    experiments = CONTEXT[name]
    known = {r.name for e in experiments for r in RECORDS.get(e, [])}
    lines = text.splitlines()
    wrong: list[str] = []
    paragraph: list[tuple[int, str]] = []
    # a paragraph quotes the rows it names and those its section names (its tables' rows included)
    section_names: dict[int, set[str]] = {}
    starts = [i for i, line in enumerate(lines) if line.startswith("#") and not line.startswith("#!")] + [len(lines)]
    for begin, end in zip([0, *starts], [*starts, len(lines)]):
        section = lines[begin:end]
        names = names_in(strip_markup("\n".join(section)), known) | {
            line.strip().strip("|").split("|")[0].strip(" `*") for line in section if line.lstrip().startswith("|")
        } & known
        section_names.update({n: names for n in range(begin + 1, end + 1)})

    def flush():
        if paragraph:
            joined = strip_markup(" ".join(t for _, t in paragraph))
            ctx = Context(experiments, names_in(joined, known) | section_names.get(paragraph[0][0], set()))
            wrong.extend(f"{name}:{paragraph[0][0]}: {p}" for p in prose_problems(joined, ctx))
            paragraph.clear()

    in_code = exempt = copy = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            flush()
            in_code = not in_code
        elif line.lstrip().startswith("|"):
            flush()
            start = i
            while i + 1 < len(lines) and lines[i + 1].lstrip().startswith("|"):
                i += 1
            if not exempt and not copy:
                wrong += [f"{name}:{start + 1}: {p}" for p in table_problems(lines[start: i + 1], experiments)]
            copy = False
        elif in_code:
            pass
        elif line.startswith("#"):
            flush()
            following = next((ln for ln in lines[i + 1:] if ln.strip()), "")
            exempt = following.lower().startswith("not recorded")
        elif line.startswith("<!-- headline: docs/results/"):
            copy = True
        elif not line.strip() or line.lstrip().startswith(("* ", "- ")):
            flush()
            if line.strip() and not exempt:
                paragraph.append((i + 1, line))
        elif not exempt:
            paragraph.append((i + 1, line))
        i += 1
    flush()
    return wrong


@pytest.mark.parametrize("name", sorted(CONTEXT))
def test_every_quoted_number_is_a_record_of_its_context(name):
    problems = quoted_number_problems(name, (ROOT / name).read_text())
    assert not problems, f"numbers no record of their context backs (or mark them 'not recorded'): {problems}"


def run_record_problems(table: Path) -> list[str]:
    """Where ``table`` (a results/<exp>/table.json) and its runs' metrics.json disagree."""
    data = json.loads(table.read_text())
    wrong = []
    listed = set()
    for name, row in data["rows"].items():
        folders = row.get("folders", [])
        listed |= set(folders)
        if row.get("runs", 0) != len(folders):
            wrong.append(f"{name}: runs {row.get('runs')} but {len(folders)} folders")
        records = []
        for folder in folders:
            record = json.loads((ROOT / folder / "metrics.json").read_text())
            metrics = record.get("metrics", record)
            records.append(metrics)
            test = ROOT / folder / "test" / "metrics.json"
            if test.exists():  # a training run's test evaluation, kept as its own record too
                inner = json.loads(test.read_text())["metrics"]
                if inner != metrics:
                    wrong.append(f"{folder}: test/metrics.json and metrics.json disagree")
        for metric in data["metrics"]:
            if not row.get(metric):
                continue
            values = row[metric]["values"]
            recorded = [m[metric] for m in records]
            if len(values) != len(recorded) or any(abs(a - b) > 1e-9 for a, b in zip(values, recorded)):
                wrong.append(f"{name}: {metric} values {values} but the runs' metrics.json hold {recorded}")
            mean = sum(recorded) / len(recorded)
            std = (sum((v - mean) ** 2 for v in recorded) / (len(recorded) - 1)) ** 0.5 if len(recorded) > 1 else 0.0
            if abs(row[metric]["mean"] - mean) > 1e-9 or abs(row[metric]["std"] - std) > 1e-9:
                wrong.append(f"{name}: {metric} mean ± std {row[metric]['mean']} ± {row[metric]['std']}, runs {mean} ± {std}")
    by_run = {(name, Path(f).name): json.loads((ROOT / f / "metrics.json").read_text())
              for name, row in data["rows"].items() for f in row.get("folders", [])}
    for entry in data.get("paired", []):
        for side in ("a", "b"):
            run = by_run.get((entry[side], entry.get("run"))) or by_run.get((entry[side], entry[side]))
            for metric, value in entry.items():
                if isinstance(value, dict) and "diff" in value and run is not None:
                    recorded = run.get("metrics", run)[metric]
                    if abs(value[side] - recorded) > 5e-7:
                        wrong.append(f"paired {entry['a']} - {entry['b']} {entry.get('run')}: {side} {metric} "
                                     f"{value[side]} but its run records {recorded}")
    on_disk = {str(p.parent.relative_to(ROOT)) for p in table.parent.rglob("metrics.json") if p.parent.name != "test"}
    wrong += [f"{folder}: a run record that table.json does not list" for folder in sorted(on_disk - listed)]
    return wrong


@pytest.mark.parametrize("table", TABLES, ids=lambda p: p.parent.name)
def test_table_json_agrees_with_each_run_s_metrics_json(table):
    """Every row's values are its runs' metrics.json values, in folder order, with their mean and (sample) std; a
    paired difference's two sides are its runs' values; every run record in the folder is a row's."""
    wrong = run_record_problems(table)
    assert not wrong, f"{table.relative_to(ROOT)} disagrees with its runs: {wrong}"


def problems_in(name: str, text: str) -> list[str]:
    """Every check above of the quoted numbers of one file, run on ``text`` in its place."""
    problems = quoted_number_problems(name, text) + stale_differences(name, text)
    if name == "README.md":
        problems += readme_headline_numbers_not_on_pages(text)[1]
    return problems


# Edits of quoted numbers that the checks must catch, one of each kind: (file, the text as it is, the edit).
MUTATIONS = [
    # a single run's AUC and its by-user interval bounds (†) in the main job's table
    ("docs/results/tallrec.md", "| `lora-64` | 0.7551 [0.583, 0.849]†", "| `lora-64` | 0.7561 [0.583, 0.849]†"),
    ("docs/results/tallrec.md", "| `lora-64` | 0.7551 [0.583, 0.849]†", "| `lora-64` | 0.7551 [0.583, 0.859]†"),
    # the by-sample interval in place of the by-user one (†)
    ("docs/results/tallrec.md", "| `lora-64` | 0.7551 [0.583, 0.849]†", "| `lora-64` | 0.7551 [0.685, 0.819]†"),
    # a LogLoss and an ACC cell with their intervals
    ("docs/results/tallrec.md", "0.6344 [0.526, 0.748]†", "0.6344 [0.526, 0.746]†"),
    ("docs/results/tallrec.md", "| 0.6800 [0.561, 0.788]† |", "| 0.6900 [0.561, 0.788]† |"),
    # a several-draw row: its mean, its std, one draw, a LogLoss mean (the few-shot table)
    ("docs/results/tallrec.md", "**0.7549 ± 0.0050** (5 draws", "**0.7559 ± 0.0050** (5 draws"),
    ("docs/results/tallrec.md", "**0.7549 ± 0.0050** (5 draws", "**0.7549 ± 0.0060** (5 draws"),
    ("docs/results/tallrec.md", ".7594 / .7608 / .7523 / .7524 / .7494) | 0.5777", ".7594 / .7608 / .7533 / .7524 / .7494) | 0.5777"),
    ("docs/results/tallrec.md", "| 0.5777 | 0.7140 |", "| 0.5787 | 0.7140 |"),
    # a per-draw interval, a by-user bound of one draw (cross-domain)
    ("docs/results/tallrec.md", "0.7608 [0.728, 0.790]", "0.7608 [0.728, 0.791]"),
    ("docs/results/tallrec.md", "(by user [0.576, 0.866])", "(by user [0.576, 0.868])"),
    # paired differences: a bound in a table, a draw without interval, a by-user bound in prose
    ("docs/results/tallrec.md", "| +0.2377 [+0.1324, +0.3414] |", "| +0.2377 [+0.1324, +0.3514] |"),
    ("docs/results/tallrec.md", "| movie-64 - movie-zeroshot | +.29 / +.25 / +.22 |", "| movie-64 - movie-zeroshot | +.29 / +.26 / +.22 |"),
    ("docs/results/tallrec.md", "+.238 [+.015,\n+.383]", "+.238 [+.025,\n+.383]"),
    # a value in prose, a validation AUC from selection.json
    ("docs/results/tallrec.md", "popularity floor (.548)", "popularity floor (.558)"),
    ("docs/results/rella.md", "validation\nAUC .712 / .731 / .721", "validation\nAUC .712 / .741 / .721"),
    # ReLLa: a LogLoss and an ACC cell, a by-user bound, a paper number
    ("docs/results/rella.md", "| 0.7207 [0.699, 0.742] | 0.6512 | 0.6260 |", "| 0.7207 [0.699, 0.742] | 0.6612 | 0.6260 |"),
    ("docs/results/rella.md", "| 0.7207 [0.699, 0.742] | 0.6512 | 0.6260 |", "| 0.7207 [0.699, 0.742] | 0.6512 | 0.6360 |"),
    ("docs/results/rella.md", "(by user [0.627, 0.679])", "(by user [0.627, 0.689])"),
    ("docs/results/rella.md", "| 0.8033 / 0.5362 / 0.7280 |", "| 0.8033 / 0.5462 / 0.7280 |"),
    # baselines: a sequential metric, a full-data interval bound, a mean ± std of a classic row
    ("docs/results/baselines.md", "| 0.626 [0.598, 0.655] | 0.732 |", "| 0.626 [0.598, 0.655] | 0.742 |"),
    ("docs/results/baselines.md", "`din` | 0.7982 [0.7952, 0.8010] | 0.5409", "`din` | 0.7982 [0.7952, 0.8020] | 0.5409"),
    ("docs/results/baselines.md", "| 0.6813 ± 0.0826 |", "| 0.6813 ± 0.0836 |"),
    # a row of one experiment shown with the value of its namesake in another (sasrec's Recall@10 on 300 lists)
    ("docs/results/baselines.md", "| 0.725 | 0.860 | 0.498 |", "| 0.725 | 0.863 | 0.498 |"),
    # LLM-TRSR: an NDCG@10 cell, a paired MRR@10 difference
    ("docs/results/trsr.md", "| 0.206 | 0.275 | 0.379 |", "| 0.206 | 0.275 | 0.389 |"),
    ("docs/results/trsr.md", "| -.0620 [-.0865, -.0371] |", "| -.0620 [-.0865, -.0381] |"),
    # the README: the quick start's printed table (ACC by user), its prose, a headline copy's interval
    ("README.md", "| 0.7050 [0.567, 0.829]† | - |", "| 0.7050 [0.567, 0.839]† | - |"),
    ("README.md", "(AUC .755, +.238", "(AUC .765, +.238"),
    ("README.md", "+.238 [+.015, +.383]", "+.238 [+.015, +.393]"),
    ("README.md", "(the latter by +.075,", "(the latter by +.085,"),
    ("README.md", "| 0.7207 [0.699, 0.742] |", "| 0.7207 [0.692, 0.742] |"),
    ("README.md", "| 0.7549 ± 0.0050 (5 draws) |", "| 0.7549 ± 0.0141 (5 draws) |"),
    ("docs/getting-started.md", "ranks the same samples at .777", "ranks the same samples at .787"),
]


@pytest.mark.parametrize("name, before, after", MUTATIONS, ids=[f"{m[0]}:{m[2][:40]}" for m in MUTATIONS])
def test_an_edited_number_fails_the_checks(name, before, after):
    """Each edit of MUTATIONS (a LogLoss, an ACC, an interval bound, a by-user bound, a mean, a std, a draw, a
    paired difference, a validation AUC, a paper number, README numbers) makes the checks above fail."""
    text = (ROOT / name).read_text()
    assert text.count(before) == 1, f"{name} no longer holds {before!r} once: update MUTATIONS"
    assert not problems_in(name, text)
    assert problems_in(name, text.replace(before, after)), f"editing {before!r} -> {after!r} in {name} went unnoticed"

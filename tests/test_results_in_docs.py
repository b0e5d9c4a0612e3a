"""The results pages (docs/results/*.md) show the numbers of the records committed in results/ (no stale copies).

Conventions the pages follow (and these tests read):

* a line that shows a recorded row names it in backticks (`` `movie-256` ``), the row's name in its
  experiment's ``table.json``;
* a single run is shown as ``value [low, high]`` (its 95% bootstrap interval, by sample or by user), a row
  of several runs as ``mean ± std``, and a row of several LLM runs also lists every draw (``.7594 / .7608``);
* every page opens with its headline table ("paper vs this library") between ``<!-- headline:start -->``
  and ``<!-- headline:end -->``; a headline table the README copies sits below a
  ``<!-- headline: docs/results/NAME.md -->`` marker there and must show the page's numbers.
"""

import json
import re
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
    "tallrec-table": ["tallrec.md", "baselines.md"],
    "rella-table": ["rella.md"],
    "rella-sweep-n": ["rella.md"],
    "rella-sweep-k": ["rella.md"],
    "rella-baselines": ["baselines.md", "rella.md"],
    "trsr-table": ["trsr.md"],
    "trsr-baselines": ["baselines.md"],
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
    """How many marked headline tables ``readme`` has, and each number in them that the page's headline
    table does not show (the same digits: the README copies the page)."""
    blocks = README_HEADLINE.findall(readme)
    wrong = []
    for page, table in blocks:
        shown = set(re.findall(r"\d*\.\d+", headline((ROOT / page).read_text())))
        wrong += [f"{page}: {n}" for n in re.findall(r"\d*\.\d+", table) if n not in shown]
    return len(blocks), wrong


def test_readme_headline_check_catches_a_changed_number():
    """The check below on a made-up README: the page's own headline row passes, a changed digit fails."""
    row = next(line for line in headline((PAGES_DIR / "tallrec.md").read_text()).splitlines() if "`movie-256`" in line)
    readme = f"# x\n\n<!-- headline: docs/results/tallrec.md -->\n| a | b |\n|---|---|\n{row}\n"
    assert readme_headline_numbers_not_on_pages(readme) == (1, [])
    assert readme_headline_numbers_not_on_pages(readme.replace("0.7549", "0.7548"))[1] == [
        "docs/results/tallrec.md: 0.7548"
    ]


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
    """Every paired difference recorded in results/*/table.json: (difference, low, high) per metric."""
    found = []
    for table in TABLES:
        for entry in json.loads(table.read_text()).get("paired", []):
            for value in entry.values():
                if isinstance(value, dict) and value.get("diff") is not None and value.get("ci95"):
                    found.append((value["diff"], *value["ci95"]))
    return found


def test_every_quoted_paired_difference_is_a_recorded_one():
    """A difference quoted with its interval in the README or the docs (lora - zero-shot +.238 [+.132, +.341])
    rounds from one recorded in results/ (a table's ``paired:`` section), so a re-run that moves it
    shows up here instead of leaving a stale number in the prose."""
    recorded = recorded_differences()
    assert recorded, "results/*/table.json record no paired differences"

    def matches(quoted: tuple[str, str, str]) -> bool:
        digits = len(quoted[0].split(".")[1])
        tolerance = 0.5 * 10**-digits + 1e-9
        numbers = [float(q) for q in quoted]
        return any(all(abs(n - r) <= tolerance for n, r in zip(numbers, rec)) for rec in recorded)

    stale = []
    for name in QUOTING_DOCS:
        path = ROOT / name
        if not path.exists():
            continue
        text = path.read_text()
        for found in QUOTED_DIFFERENCE.finditer(text):  # across line breaks too
            if not matches(found.groups()):
                line = text.count("\n", 0, found.start()) + 1
                stale.append(f"{name}:{line}: {' '.join(found.group(0).split())}")
    assert not stale, f"these quoted paired differences match no record in results/*/table.json: {stale}"

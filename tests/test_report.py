"""``llmrec report``: tables and plots from fixture run folders; the HTML page in a real headless browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from llmrec.errors import ConfigError
from llmrec.report import build_report


def _ctr_run(folder, auc, seed, n=200, by_user=False):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    scores = np.clip(0.5 + (labels - 0.5) * (auc - 0.5) + rng.normal(0, 0.2, n), 0, 1)
    pd.DataFrame({"sample_id": range(n), "label": labels, "score": scores}).to_parquet(folder / "predictions.parquet")
    metrics = {"auc": auc, "logloss": 0.65, "acc": 0.6, "ci95": {"auc": [auc - 0.03, auc + 0.03]}}
    if by_user:  # some user holds several samples: evaluate adds the interval that resamples users
        metrics |= {"ci95_by_user": {"auc": [auc - 0.1, auc + 0.1]}, "users": 12}
    (folder / "metrics.json").write_text(json.dumps({"metrics": metrics}))


def _ranking_run(folder, recall3):
    folder.mkdir(parents=True)
    metrics = {"recall@1": recall3 / 2, "recall@3": recall3, "recall@5": recall3 + 0.1, "recall@10": recall3 + 0.2,
               "mrr@1": recall3 / 2, "mrr@3": recall3 - 0.1, "mrr@5": recall3 - 0.08, "mrr@10": recall3 - 0.07,
               "ci95": {"recall@3": [recall3 - 0.02, recall3 + 0.02]}}
    (folder / "metrics.json").write_text(json.dumps({"metrics": metrics}))


@pytest.fixture
def folders(tmp_path):
    ctr = tmp_path / "tallrec"
    _ctr_run(ctr / "zeroshot", 0.45, 0)
    for s, auc in ((0, 0.74), (1, 0.76)):
        _ctr_run(ctr / "lora-64" / f"seed-{s}", auc, s + 1)
    (ctr / "auc-vs-n.png").write_bytes(_png())
    table = {"suite": "tallrec-table", "description": "TALLRec on ML-100K", "metrics": ["auc", "logloss"],
             "paper_label": "TALLRec 7B", "curves": ["auc-vs-n.png"],
             "paired": [{"a": "lora-64", "b": "zeroshot", "run": "seed-0", "samples": 200,
                         "auc": {"a": 0.74, "b": 0.45, "diff": 0.29, "ci95": [0.21, 0.37]},
                         "logloss": {"a": 0.6, "b": 0.7, "diff": -0.1, "ci95": [-0.15, -0.05]}}],
             "rows": {"zeroshot": {"runs": 1, "folders": [str(ctr / "zeroshot")], "paper": {}},
                      "lora-64": {"runs": 2, "folders": [str(ctr / "lora-64" / "seed-0"), str(ctr / "lora-64" / "seed-1")],
                                  "paper": {"auc": 0.6748, "logloss": 0.61}}}}
    (ctr / "table.json").write_text(json.dumps(table))
    rank = tmp_path / "trsr"
    _ranking_run(rank / "ft-hier" / "seed-0", 0.30)
    _ranking_run(rank / "seq_popularity" / "seed-0", 0.52)
    (rank / "table.json").write_text(json.dumps({
        "suite": "trsr-table", "metrics": ["recall@3", "mrr@3"], "paper_label": "LLM-TRSR",
        "rows": {"ft-hier": {"runs": 1, "paper": {"recall@3": 0.891}}, "seq_popularity": {"runs": 1}}}))
    loose = tmp_path / "zs-run"
    _ctr_run(loose, 0.5, 9, by_user=True)
    return ctr, rank, loose


def _png() -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import io

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([16, 64, 256], [0.5, 0.74, 0.76])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def test_report_markdown_has_every_row_with_uncertainty_and_the_papers(tmp_path, folders):
    ctr, rank, loose = folders
    result = build_report([ctr, rank, loose], tmp_path / "out", title="all")
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## tallrec-table" in md and "## trsr-table" in md and "## runs" in md
    assert "| zeroshot | 1 | 0.4500 [0.420, 0.480] | 0.6500 | - | - |" in md  # one run: value [95% CI]
    assert "| lora-64 | 2 | 0.7500 ± 0.0141 | 0.6500 ± 0.0000 | 0.6748 | 0.6100 |" in md  # seeds: mean ± std; paper
    assert "| row | runs | auc | logloss | paper auc | paper logloss |" in md  # the paper's metrics in the table's order
    assert "paper columns: TALLRec 7B" in md and "paper columns: LLM-TRSR" in md  # named once per table
    assert "| lora-64 - zeroshot | seed-0 | 200 | +0.2900 [+0.2100, +0.3700] | -0.1000 [-0.1500, -0.0500] |" in md
    assert "| ft-hier | 1 | 0.3000 [0.280, 0.320] | 0.2000 | 0.8910 |" in md
    assert "| zs-run | 1 | 0.5000 [0.400, 0.600]† | 0.6500 | 0.6000 |" in md  # the users' interval where recorded
    assert "†: users resampled" in md
    plots = set(result["plots"])
    assert {"00-tallrec-table-auc-vs-n.png", "00-tallrec-table-calibration.png", "00-tallrec-table-scores.png",
            "01-trsr-table-recall-by-k.png", "01-trsr-table-mrr-by-k.png", "02-runs-calibration.png"} <= plots
    for name in plots:
        assert f"report_files/{name}" in md and (tmp_path / "out" / "report_files" / name).stat().st_size > 500
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count("<img") == len(plots) and page.count("src='data:image/png;base64,") == len(plots)
    assert "http://" not in page and "https://" not in page and "<script" not in page  # self-contained, static
    assert "<td>lora-64 - zeroshot</td><td>seed-0</td><td>200</td><td>+0.2900 [+0.2100, +0.3700]</td>" in page


def test_a_copied_experiment_folder_keeps_its_rows(tmp_path, folders):
    """table.json records the paths the runs were written at; a copy elsewhere (results kept in a repository,
    only metrics and configs) still reports every row, from the copy."""
    ctr, _, _ = folders
    kept = tmp_path / "results" / "tallrec"
    shutil.copytree(ctr, kept, ignore=shutil.ignore_patterns("*.parquet"))
    shutil.rmtree(ctr)
    build_report([kept], tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| zeroshot | 1 | 0.4500 [0.420, 0.480] |" in md and "| lora-64 | 2 | 0.7500 ± 0.0141 |" in md


def test_a_folder_of_experiments_reports_each_in_name_order(tmp_path, folders):
    """``llmrec report results`` stands for every experiment folder in it, and its run folders go into one table
    (files such as a README and folders that hold no results are skipped)."""
    (tmp_path / "README.md").write_text("notes")
    (tmp_path / "empty").mkdir()
    result = build_report([tmp_path], tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text()
    assert result["sections"] == 3 and md.index("## tallrec-table") < md.index("## trsr-table") < md.index("## runs")
    assert "| zs-run | 1 |" in md


def test_report_refuses_folders_that_hold_no_results(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not an experiment folder"):
        build_report([tmp_path / "empty"], tmp_path / "out")


def test_report_cli(tmp_path, folders):
    from click.testing import CliRunner

    from llmrec.cli import main

    res = CliRunner().invoke(main, ["report", str(folders[0]), "-o", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert "| lora-64 | 2 |" in res.output and "report.html" in res.output


PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const broken = imgs.filter(i => !i.complete || i.naturalWidth === 0).length;
  document.body.setAttribute('data-images', imgs.length);
  document.body.setAttribute('data-broken', broken);
  document.body.setAttribute('data-tables', document.querySelectorAll('table').length);
  document.body.setAttribute('data-rows', document.querySelectorAll('tbody tr').length);
  document.body.setAttribute('data-overflow', document.documentElement.scrollWidth > window.innerWidth ? 1 : 0);
});
</script>"""


def _chromium() -> str | None:
    return next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


def test_report_html_renders_in_a_headless_browser(tmp_path, folders):
    """Tables and images render, nothing is broken and nothing overflows at 1280 px (Chromium, headless)."""
    import os

    browser = _chromium()
    if browser is None:
        if os.environ.get("LLMREC_REQUIRE_BROWSER") == "1":
            pytest.fail("Chromium is required here (apt-get install chromium)")
        pytest.skip("no Chromium: apt-get install chromium")
    build_report(list(folders), tmp_path / "out")
    page = (tmp_path / "out" / "report.html").read_text()
    probe = tmp_path / "out" / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
             "--window-size=1280,2400", "--virtual-time-budget=5000", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    attrs = dict(re.findall(r'data-(images|broken|tables|rows|overflow)="(\d+)"', dom))
    assert attrs == {"images": "7", "broken": "0", "tables": "4", "rows": "6", "overflow": "0"}, attrs  # + the paired table
    shot = tmp_path / "out" / "report.png"
    subprocess.run([*flags, f"--screenshot={shot}", (tmp_path / "out" / "report.html").as_uri()],
                   capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 20_000

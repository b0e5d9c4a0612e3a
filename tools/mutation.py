"""Mutation testing of the modules the numbers rest on, one module at a time, each with the tests that check it.

mutmut reads one test selection from ``[tool.mutmut]`` in pyproject.toml; a module's mutants only need the tests
that reach it, and a narrow selection runs each mutant in seconds instead of minutes. This script sets each
module's selection in turn (restoring pyproject.toml afterwards), runs ``mutmut run "<module>*"`` and prints the
score table of docs/development.md.

Usage (from the repository root, with the test extra and mutmut installed; hours on 2 CPU cores)::

    .venv/bin/python tools/mutation.py                  # every module below
    .venv/bin/python tools/mutation.py llmrec.paired    # one module
    .venv/bin/python tools/mutation.py --table          # only the table, from the last runs' results
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MUTMUT = str(Path(sys.executable).with_name("mutmut"))

# module -> the pytest arguments that select its tests (doctests of the module included)
MODULES: dict[str, list[str]] = {
    "llmrec.metrics": ["tests/test_metrics.py", "tests/test_references.py", "tests/test_properties.py",
                       "src/llmrec/metrics.py"],
    "llmrec.paired": ["tests/test_experiments.py", "tests/test_segments.py", "src/llmrec/paired.py",
                      "-k", "paired or pairs or compare or segment or one_class"],
    "llmrec.data.sampling": ["tests/test_train.py", "tests/test_invariants.py", "tests/test_properties.py",
                             "src/llmrec/data/sampling.py",
                             "-k", "sampl or same_rows or seeded or few_shot or deterministic"],
    "llmrec.retrieval.subr": ["tests/test_retrieval.py", "tests/test_properties.py", "src/llmrec/retrieval/subr.py",
                              "-k", "subr or retriev or integer or concat"],
    "llmrec.prompts.template": ["tests/test_properties.py", "tests/test_invariants.py", "tests/test_collab.py",
                                "tests/test_prompts.py", "src/llmrec/prompts/template.py",
                                "-k", "prompt or template or budget or golden or chat or marker or collab_tokens"],
    "llmrec.train.selection": ["tests/test_train.py", "tests/test_invariants.py", "src/llmrec/train/selection.py",
                               "-k", "selected or early_stopping or end_to_end or resume or selection"],
}
SELECTION = re.compile(r"^pytest_add_cli_args_test_selection = .*$", re.M)


def run_module(module: str, children: int) -> None:
    pyproject = ROOT / "pyproject.toml"
    original = pyproject.read_text()
    args = [a for a in MODULES[module] if a.startswith("-") or (ROOT / a).exists()]
    line = "pytest_add_cli_args_test_selection = [" + ", ".join(f'"{a}"' for a in args) + "]"
    pyproject.write_text(SELECTION.sub(line, original, count=1))
    try:
        subprocess.run([MUTMUT, "run", f"{module}*", "--max-children", str(children)], cwd=ROOT, check=False,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    finally:
        pyproject.write_text(original)


def scores() -> dict[str, Counter]:
    """Each module's mutants by status, from ``mutmut results --all true``."""
    out = subprocess.run([MUTMUT, "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True).stdout
    counts: dict[str, Counter] = {}
    for line in out.splitlines():
        name, _, status = line.strip().partition(": ")
        module = next((m for m in MODULES if name.startswith(m + ".x")), None)
        if module and status:
            counts.setdefault(module, Counter())[status] += 1
    return counts


def table(counts: dict[str, Counter]) -> str:
    lines = ["| module | mutants | killed | survived | no test | score |", "|---|---:|---:|---:|---:|---:|"]
    for module, c in counts.items():
        killed = c["killed"] + c["timeout"]
        total = sum(c.values())
        untested = c["no tests"]
        lines.append(f"| `{module.replace('.', '/')}.py` | {total:,} | {killed:,} | {c['survived']:,} | {untested:,} | "
                     f"{100 * killed / total:.1f}% |" + ("" if c["not checked"] == 0 else
                                                          f" ({c['not checked']} not checked)"))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", choices=[*MODULES, []], help="modules to run (default: all)")
    parser.add_argument("--children", type=int, default=1, help="mutants tested at once (mutmut --max-children)")
    parser.add_argument("--table", action="store_true", help="print the score table only")
    ns = parser.parse_args()
    if not ns.table:
        for module in ns.modules or MODULES:
            run_module(module, ns.children)
    print(table(scores()))


if __name__ == "__main__":
    main()

"""Mutation testing of the modules the numbers rest on, one module at a time, each with the tests that check it.

mutmut reads one test selection from ``[tool.mutmut]`` in pyproject.toml; a module's mutants only need the tests
that reach it, and a narrow selection runs each mutant in seconds instead of minutes. This script sets each
module's selection in turn (restoring pyproject.toml afterwards), runs ``mutmut run "<module>*"`` and prints the
score table of docs/development.md.

Usage (from the repository root, with the test extra and mutmut installed; hours on 2 CPU cores)::

    .venv/bin/python tools/mutation.py                  # every module below
    .venv/bin/python tools/mutation.py llmrec.paired    # one module
    .venv/bin/python tools/mutation.py --sample 150     # a seeded random sample of 150 mutants per module
    .venv/bin/python tools/mutation.py --table          # only the table, from the last runs' results

A sample estimates the score of the whole module (the table gives its 95% Wilson interval); the mutants already
tested by an earlier run count in the sample without running again.
"""

from __future__ import annotations

import argparse
import math
import os
import random
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
SELECTION = re.compile(r"^pytest_add_cli_args_test_selection = \[[^\]]*\]$", re.M)


def statuses() -> dict[str, str]:
    """Every mutant's status (killed, survived, not checked, ...), from ``mutmut results --all true``."""
    out = subprocess.run([MUTMUT, "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        name, _, status = line.strip().partition(": ")
        if status:
            found[name] = status
    return found


def sampled(found: dict[str, str], module: str, size: int | None, seed: int = 0) -> list[str]:
    """The mutant names of ``module`` among ``found`` (:func:`statuses`) to test: all of them, or a seeded random
    sample of ``size``."""
    names = sorted(n for n in found if n.startswith(module + ".x"))
    if size is None or size >= len(names):
        return names
    return sorted(random.Random(f"{module}:{seed}").sample(names, size))


def run_module(module: str, children: int, size: int | None = None) -> None:
    pyproject = ROOT / "pyproject.toml"
    original = pyproject.read_text()
    # test files this checkout lacks are left out; options and the -k expression stay
    args = [a for a in MODULES[module] if not a.endswith(".py") or (ROOT / a).exists()]
    line = "pytest_add_cli_args_test_selection = [" + ", ".join(f'"{a}"' for a in args) + "]"
    pyproject.write_text(SELECTION.sub(line, original, count=1))
    try:
        if size is None:
            targets = [f"{module}*"]
        else:
            subprocess.run([MUTMUT, "run", "none-only-generate"], cwd=ROOT, check=False, capture_output=True)
            done = statuses()
            targets = [n for n in sampled(done, module, size) if done[n] == "not checked"]
        if targets:
            subprocess.run([MUTMUT, "run", *targets, "--max-children", str(children)], cwd=ROOT, check=False,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    finally:
        pyproject.write_text(original)


def scores(size: int | None = None) -> dict[str, tuple[int, Counter]]:
    """Each module's number of mutants and the statuses of the tested ones (all, or the seeded sample)."""
    found = statuses()
    counts: dict[str, tuple[int, Counter]] = {}
    for module in MODULES:
        names = [n for n in found if n.startswith(module + ".x")]
        if not names:
            continue
        chosen = set(sampled(found, module, size))
        counts[module] = (len(names), Counter(found[n] for n in names if n in chosen and found[n] != "not checked"))
    return counts


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson interval of a proportion k / n.

    >>> [round(x, 3) for x in wilson(80, 100)]
    [0.711, 0.867]
    """
    p = k / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def table(counts: dict[str, tuple[int, Counter]]) -> str:
    lines = ["| module | mutants | tested | killed | survived | no test | score [95% CI] |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for module, (total, c) in counts.items():
        tested = sum(c.values())
        if not tested:
            continue
        killed = c["killed"] + c["timeout"]
        score = f"{100 * killed / tested:.1f}%"
        if tested < total:
            lo, hi = wilson(killed, tested)
            score += f" [{100 * lo:.0f}, {100 * hi:.0f}]"
        lines.append(f"| `{module.replace('.', '/')}.py` | {total:,} | {tested:,} | {killed:,} | {c['survived']:,} | "
                     f"{c['no tests']:,} | {score} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", choices=[*MODULES, []], help="modules to run (default: all)")
    parser.add_argument("--children", type=int, default=1, help="mutants tested at once (mutmut --max-children)")
    parser.add_argument("--sample", type=int, default=None, metavar="N",
                        help="test a seeded random sample of N mutants per module (the score is then an estimate)")
    parser.add_argument("--table", action="store_true", help="print the score table only")
    ns = parser.parse_args()
    if not ns.table:
        for module in ns.modules or MODULES:
            run_module(module, ns.children, ns.sample)
    print(table(scores(ns.sample)))


if __name__ == "__main__":
    main()

"""Every code block of README.md and docs/ runs, or says why not.

A fenced ``bash``/``sh``/``python`` block either runs here (the blocks of one page in order, in
one fresh folder holding links to ``configs/``, ``tests/`` and ``examples/``, with the real data
of ``../shared/data`` and the ``llmrec`` of this environment) and must exit 0, or the line before
its fence is ``<!-- not run: REASON -->`` with a reason (GPU, hours, installs packages). A
``yaml`` or ``toml`` block must parse. Blocks without a language are output, not code.

Mutation: break a command in a runnable block (a wrong option, a missing file) and its page
fails here; drop a "not run" reason and the marker test fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "ROADMAP.md",
                *(ROOT / "docs").rglob("*.md")])
RUN = {"bash", "sh", "python"}
PARSE = {"yaml": yaml.safe_load, "toml": tomllib.loads}
FENCE = re.compile(r"^(\s*)(```+)\s*([\w+-]*)")
NOT_RUN = re.compile(r"^<!--\s*not run:\s*(.*?)\s*-->$")
SNIPPET = re.compile(r'^\s*--8<--\s+"([^"]+)"\s*$')
LINKED = ("configs", "tests", "examples", "src")


@dataclass
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    not_run: str | None  # the reason, when marked

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page`` with their language and "not run" marker; ``--8<--`` lines are replaced
    by the file they include (as the docs site does)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang = m.groups()
        start, body = i, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1
        prev = next((lines[j].strip() for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = NOT_RUN.match(prev)
        text = "\n".join((ROOT / s.group(1)).read_text() if (s := SNIPPET.match(b)) else b for b in body)
        out.append(Block(page, start + 1, lang.lower(), text + "\n", marker.group(1) if marker else None))
    return out


ALL = [b for page in PAGES for b in blocks(page)]
RUNNABLE_PAGES = sorted({b.page for b in ALL if b.lang in RUN and b.not_run is None})


def test_every_code_block_runs_or_says_why_not():
    empty = [str(b) for b in ALL if b.not_run is not None and not b.not_run]
    assert not empty, f"'not run' without a reason: {empty}"
    marked = [str(b) for b in ALL if b.not_run is not None and b.lang not in RUN]
    assert not marked, f"'not run' on a block that is not run anyway (no bash/python): {marked}"
    assert len(RUNNABLE_PAGES) >= 5, "the docs run too few of their blocks"


@pytest.mark.parametrize("block", [b for b in ALL if b.lang in PARSE], ids=str)
def test_config_blocks_parse(block):
    """A ``yaml`` block parses; one that names a data set and a protocol is a valid prepare config."""
    value = PARSE[block.lang](block.text)
    if isinstance(value, dict) and {"dataset", "protocol"} <= set(value):
        from llmrec.data.prepare import PrepareConfig

        PrepareConfig.model_validate(value)


def _workspace(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    from tests.conftest import shared_data_dir

    data = shared_data_dir()
    if not data.is_dir():
        if os.environ.get("LLMREC_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"{data} is missing; the doc blocks run on the real data")
        pytest.skip(f"{data} is missing")
    work = tmp_path / "work"
    work.mkdir()
    for name in LINKED:
        if (ROOT / name).exists():
            (work / name).symlink_to(ROOT / name)
    env = {**os.environ, "LLMREC_DATA_ROOT": str(data), "PATH": f"{Path(sys.executable).parent}{os.pathsep}"
           + os.environ.get("PATH", ""), "PYTHONPATH": str(work), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("LLMREC_PLUGINS", None)
    return work, env


@pytest.mark.shared_data
@pytest.mark.timeout(1800)  # a page's blocks together (the tutorial: 3-5 min on 2 cores); each block at most 900 s
@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_runnable_blocks_of_a_page_run(page, tmp_path):
    work, env = _workspace(tmp_path)
    for block in blocks(page):
        if block.lang not in RUN or block.not_run is not None:
            continue
        assert not re.search(r"\bpip3? install\b|\bapt(-get)? install\b", block.text), \
            f"{block} installs packages: mark it <!-- not run: installs packages -->"
        if block.lang == "python":
            script = work / f"block_{block.line}.py"
            script.write_text(block.text)
            cmd = [sys.executable, str(script)]
        else:
            cmd = [shutil.which("bash") or "bash", "-euo", "pipefail", "-c", block.text]
        res = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=900)
        assert res.returncode == 0, f"{block} exited {res.returncode}:\n{block.text}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"

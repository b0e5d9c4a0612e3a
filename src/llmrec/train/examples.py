"""Training examples: tokenized prompts with the answer as the only labelled tokens.

A CTR sample becomes ``prompt ids + answer ids`` where the answer is the template's
``target`` text for its label ("Yes." / "No." in TALLRec), its first token being exactly the
token the scorer reads at evaluation (:class:`~llmrec.llm.AnswerTokens`), then the
tokenizer's end-of-sequence token. Labels are -100 on the prompt, so the loss covers the
answer only.

General instruction data (Alpaca-style JSON: a list of ``{instruction, input, output}``)
becomes examples the same way, with ``output`` as the answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmrec.errors import DataError
from llmrec.llm import AnswerTokens
from llmrec.prompts.build import PromptRenderer
from llmrec.prompts.template import RenderedPrompt

IGNORE = -100


@dataclass(frozen=True)
class Example:
    """One tokenized training example."""

    input_ids: list[int]
    labels: list[int]

    def as_dict(self) -> dict[str, list[int]]:
        return {"input_ids": self.input_ids, "labels": self.labels}


def answer_ids(tokenizer, answer: AnswerTokens, positive: bool, suffix: str) -> list[int]:
    """Token ids of the answer: the scored Yes/No token, then ``suffix`` (e.g. "."), then EOS."""
    first = answer.yes_id if positive else answer.no_id
    rest = tokenizer(suffix, add_special_tokens=False)["input_ids"] if suffix else []
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    return [first, *rest, *eos]


def example_from_prompt(prompt: RenderedPrompt, completion: list[int]) -> Example:
    ids = list(prompt.context_ids) + list(prompt.candidate_ids)
    return Example(ids + completion, [IGNORE] * len(ids) + completion)


def ctr_examples(rows: list[dict[str, Any]], renderer: PromptRenderer, answer: AnswerTokens,
                 answer_suffix: str = ".") -> list[Example]:
    """Examples for CTR or instruction rows with a 0/1 ``label``."""
    if renderer.kind.train_as is not None:
        raise DataError(f"{renderer.kind.name} samples train on their {renderer.kind.train_as} view: render "
                        f"SampleKind.training_rows(rows) with a {renderer.kind.train_as} renderer")
    tok = renderer.tokenizer
    yes, no = answer_ids(tok, answer, True, answer_suffix), answer_ids(tok, answer, False, answer_suffix)
    out = []
    for row, (prompt,) in zip(rows, renderer.render(rows)):
        out.append(example_from_prompt(prompt, yes if int(row["label"]) == 1 else no))
    return out


def read_instruction_file(path: str | Path) -> list[dict[str, str]]:
    """Rows of an Alpaca-style JSON file (a list of objects with instruction, input, output)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("instruction file not found", path=path) from None
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON: {exc.msg}", path=path, line=exc.lineno) from exc
    if not isinstance(data, list):
        raise DataError("expected a JSON list of {instruction, input, output} objects", path=path)
    rows = []
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise DataError(f"record {i} is not an object", path=path)
        for key in ("instruction", "output"):
            if not isinstance(rec.get(key), str) or not rec[key].strip():
                raise DataError(f"record {i} has no {key!r} text", path=path, field=key)
        inp = rec.get("input", "")
        if inp is not None and not isinstance(inp, str):
            raise DataError(f"record {i}: 'input' must be text", path=path, field="input")
        rows.append({"sample_id": i, "instruction": rec["instruction"], "input": inp or "", "output": rec["output"]})
    return rows


def instruction_examples(rows: list[dict[str, str]], renderer: PromptRenderer, max_answer_tokens: int = 256) -> list[Example]:
    """Examples for general instruction rows (answer = ``output`` + EOS, cut at ``max_answer_tokens``)."""
    tok = renderer.tokenizer
    eos = [tok.eos_token_id] if tok.eos_token_id is not None else []
    out = []
    for row, (prompt,) in zip(rows, renderer.render(rows)):
        completion = tok(row["output"], add_special_tokens=False)["input_ids"][:max_answer_tokens] + eos
        out.append(example_from_prompt(prompt, completion))
    return out

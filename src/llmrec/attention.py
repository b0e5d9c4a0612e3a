"""Attention case study: how much the answer position attends to each history item of a prompt.

For one sample, the prompt is rendered as evaluation renders it, run once with eager
attention (``model.attn_implementation: eager``), and the attention of the last prompt
position (where the Yes/No answer is read) over every context token is averaged over heads
and layers; each history item gets the sum over the tokens of its title. Several cases (e.g.
zero-shot recent-K, zero-shot SUBR, ReiT: another prepared folder or an adapter each) are
drawn as heat strips in one PNG, ReLLa's case study.

>>> AttentionCase.parse("ReiT=prepared/ml-1m-rella-subr10@runs/rella-reit-256")
AttentionCase(label='ReiT', data='prepared/ml-1m-rella-subr10', adapter='runs/rella-reit-256')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llmrec.data.prepared import PreparedData
from llmrec.errors import ConfigError, ModelError
from llmrec.io import write_json
from llmrec.llm import LoadedModel, ModelConfig, apply_adapter, load_model
from llmrec.plots import attention_strips
from llmrec.prompts.settings import PromptSettings


@dataclass(frozen=True)
class AttentionCase:
    """One strip: a label, a prepared folder, optionally a LoRA adapter."""

    label: str
    data: str
    adapter: str | None = None

    @classmethod
    def parse(cls, text: str) -> AttentionCase:
        """``LABEL=DATA`` or ``LABEL=DATA@ADAPTER``."""
        if "=" not in text:
            raise ConfigError(f"--case {text!r}: expected LABEL=DATA or LABEL=DATA@ADAPTER")
        label, rest = text.split("=", 1)
        data, _, adapter = rest.partition("@")
        if not label or not data:
            raise ConfigError(f"--case {text!r}: expected LABEL=DATA or LABEL=DATA@ADAPTER")
        return cls(label, data, adapter or None)


def _row(prepared: PreparedData, split: str, sample_id: int, where: str) -> dict[str, Any]:
    table = prepared.split(split)
    ids = table["sample_id"].to_numpy()
    hit = np.flatnonzero(ids == sample_id)
    if len(hit) == 0:
        raise ConfigError(f"{where}/{split}: no sample with sample_id {sample_id}")
    return table.slice(int(hit[0]), 1).to_pylist()[0]


def history_attention(loaded: LoadedModel, prepared: PreparedData, row: dict[str, Any],
                      settings: PromptSettings, split: str = "test") -> dict[str, Any]:
    """Attention share of each history item (chronological) at the answer position of ``row``'s prompt."""
    import torch

    tok = loaded.tokenizer
    renderer = settings.model_copy(update={"max_prompt_tokens": None, "chat": "off"}).renderer(prepared, tok, split)
    if renderer.kind.lists or not renderer.kind.names_items:
        raise ConfigError(f"the attention case study covers samples with one target item, not {renderer.kind.name} "
                          "samples")
    texts = renderer.texts
    hist, _ = texts.shown_history(row, renderer.history_k)
    variables = texts.variables(row["user"], row["item"])
    context, candidate = renderer.template.render_text(variables, hist)
    enc = tok(context, add_special_tokens=True, return_offsets_mapping=True)
    cand_ids = tok(candidate, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([list(enc["input_ids"]) + list(cand_ids)], device=loaded.device)
    with torch.no_grad():
        out = loaded.model(input_ids=ids, output_attentions=True)
    if not out.attentions or out.attentions[0] is None:
        raise ModelError("the model returned no attention weights; load it with model.attn_implementation=eager")
    last = torch.stack([a[0, :, -1, :].float() for a in out.attentions])  # layers x heads x positions
    weights = last.mean(dim=(0, 1)).cpu().numpy()
    offsets = enc["offset_mapping"]
    items = []
    for h in hist:
        start = context.find(h["title"])
        if start < 0:
            raise ConfigError(f"template {renderer.template.name}: history title {h['title']!r} not found in the prompt")
        end = start + len(h["title"])
        tokens = [i for i, (a, b) in enumerate(offsets) if a < end and b > start and b > a]
        items.append({"item": h.get("item"), "title": h["title"], "rating": h.get("rating"),
                      "attention": float(weights[tokens].sum()), "tokens": len(tokens)})
    return {"sample_id": row["sample_id"], "label": int(row["label"]), "target": variables["target"]["title"],
            "prompt_tokens": int(ids.shape[1]), "items": items,
            "history_share": float(sum(i["attention"] for i in items))}


def attention_case_study(cases: list[AttentionCase], sample_id: int, out: str | Path, *, split: str = "test",
                         settings: PromptSettings | None = None, model: ModelConfig | None = None,
                         log=print) -> dict[str, Any]:
    """Run every case on ``sample_id`` and write ``out`` (PNG) and the numbers beside it (JSON)."""
    if not cases:
        raise ConfigError("give at least one --case LABEL=DATA[@ADAPTER]")
    settings = settings or PromptSettings()
    model = (model or ModelConfig()).model_copy(update={"attn_implementation": "eager"})
    prepared = {c.data: PreparedData.load(c.data) for c in cases}
    rows = {c.data: _row(prepared[c.data], split, sample_id, c.data) for c in cases}
    results = []
    base: LoadedModel | None = None
    for case in cases:
        if case.adapter:
            loaded = apply_adapter(load_model(model), case.adapter, merge=True)
        else:
            base = base or load_model(model)
            loaded = base
        res = history_attention(loaded, prepared[case.data], rows[case.data], settings, split)
        res["case"], res["data"], res["adapter"] = case.label, case.data, case.adapter
        log(f"{case.label}: {len(res['items'])} history items hold {res['history_share']:.3f} of the answer "
            "position's attention")
        results.append(res)
    out = Path(out)
    attention_strips(results, out)
    summary = {"sample_id": sample_id, "split": split, "cases": results}
    write_json(out.with_suffix(".json"), summary)
    return summary

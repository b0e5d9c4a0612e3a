"""Prompt settings shared by every command that renders prompts (evaluate, train, suites).

>>> s = PromptSettings(history_k=30)
>>> s.template, s.history_k, s.max_prompt_tokens, s.chat
(None, 30, 1024, 'auto')
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PromptSettings(BaseModel):
    """Which template, how much history, what token budget; configs inherit these fields."""

    model_config = ConfigDict(extra="forbid")

    template: str | None = Field(None, description="shipped template name or a file; default per protocol and domain")
    history_k: int | None = Field(None, ge=0, description="most recent history items per prompt; default per protocol")
    max_prompt_tokens: int | None = Field(1024, ge=16, description="token budget; oldest history dropped first")
    chat: Literal["auto", "on", "off"] = Field("auto", description="wrap prompts in the tokenizer's chat template")

    def renderer(self, prepared, tokenizer, split: str, max_context: int | None = None, *, template: str | None = None,
                 kind: str | None = None, collab=None):
        """A :class:`~llmrec.prompts.build.PromptRenderer` for ``split`` of ``prepared`` with these settings
        (``kind="ctr"`` renders the CTR view of ranking rows, for training; ``collab``: the loaded model's
        collaborative token ids, ``LoadedModel.collab``)."""
        from llmrec.prompts.build import PromptRenderer

        return PromptRenderer.for_prepared(prepared, tokenizer, split=split, template=template or self.template,
                                           history_k=self.history_k, max_tokens=self.max_prompt_tokens, chat=self.chat,
                                           max_context=max_context, kind=kind, collab=collab)

    def check_template(self, *data, collab: bool | None = None) -> None:
        """Fail early (before any run folder exists) when the template cannot be loaded, or when it declares the
        protocols it is written for (``protocols:`` in its file) and a prepared folder in ``data`` is of another;
        ``collab`` (true / false: the model has / lacks collaborative tokens) also checks the template's markers."""
        if collab is not None and data:
            from llmrec.prompts.build import default_template
            from llmrec.prompts.template import load_template

            load_template(self.template or default_template(data[0].protocol, data[0].dataset)).check_collab(collab)
        if self.template is not None:
            from llmrec.errors import ConfigError
            from llmrec.prompts.template import load_template

            template = load_template(self.template)
            for prepared in data:
                if template.protocols and prepared.protocol not in template.protocols:
                    raise ConfigError(f"template {self.template!r} is written for {'/'.join(template.protocols)} "
                                      f"data; {prepared.path or prepared.dataset} is {prepared.protocol} data "
                                      "(choose another template, or leave it to the default)")

"""Answer tokens looked up from the tokenizer: never hard-coded ids.

Which variant of "Yes" is the next token depends on how the prompt ends: after a newline
or a space the model writes ``Yes``, after ``Answer:`` it writes `` Yes`` (with a leading
space, one token in SentencePiece/BPE vocabularies). :meth:`AnswerTokens.for_prompt_end`
picks the right pair; both words must be single tokens in that variant (otherwise their
first tokens are used, if they differ).
"""

from __future__ import annotations

from dataclasses import dataclass

from llmrec.errors import LlmrecError


class AnswerTokenError(LlmrecError):
    """The tokenizer cannot express the answers as distinct next tokens."""


@dataclass(frozen=True)
class AnswerTokens:
    """Token ids of the positive and negative answer at the answer position."""

    yes_id: int
    no_id: int
    yes_text: str
    no_text: str

    @classmethod
    def for_prompt_end(cls, tokenizer, prompt_end: str, yes: str = "Yes", no: str = "No") -> AnswerTokens:
        """The answer tokens that follow a prompt ending in ``prompt_end``."""
        spaced = not prompt_end or not prompt_end[-1].isspace()
        return cls.from_words(tokenizer, (" " + yes) if spaced else yes, (" " + no) if spaced else no)

    @classmethod
    def for_renderer(cls, renderer, row) -> AnswerTokens:
        """The answer tokens of ``renderer``'s template after the prompt it renders for ``row``."""
        first = renderer.render([row])[0][0]
        return cls.for_prompt_end(renderer.tokenizer, first.text, renderer.template.answer["yes"],
                                  renderer.template.answer["no"])

    @classmethod
    def from_words(cls, tokenizer, yes: str, no: str) -> AnswerTokens:
        y = tokenizer.encode(yes, add_special_tokens=False)
        n = tokenizer.encode(no, add_special_tokens=False)
        if not y or not n:
            raise AnswerTokenError(f"the tokenizer encodes {yes!r} or {no!r} to nothing")
        if y[0] == n[0]:
            raise AnswerTokenError(
                f"{yes!r} and {no!r} start with the same token ({y[0]}); choose other answer words in the template"
            )
        return cls(yes_id=int(y[0]), no_id=int(n[0]), yes_text=tokenizer.decode([y[0]]), no_text=tokenizer.decode([n[0]]))

"""LLM-TRSR's user preference summaries as a transform of a prepared folder.

``summarize(SummarizeConfig(data=..., out=..., mode="hierarchical"))`` cuts every sample's
history into blocks of 5 items, summarizes them with a frozen LLM (hierarchically or
recurrently, batched across users, cached by content), and writes a prepared folder of the
same schema plus a ``summary`` column, which ``llmrec evaluate`` and ``llmrec train`` show in
the prompt. See :mod:`llmrec.summarize.transform`.
"""

from llmrec.summarize.cache import SummaryCache
from llmrec.summarize.config import SummarizeConfig
from llmrec.summarize.engine import Summarizer, Trace
from llmrec.summarize.plan import blocks, groups, hierarchy_levels
from llmrec.summarize.templates import SUMMARY_TEMPLATES, SummaryTemplate, load_summary_template
from llmrec.summarize.transform import summarize

__all__ = ["SUMMARY_TEMPLATES", "SummarizeConfig", "SummaryCache", "SummaryTemplate", "Summarizer", "Trace", "blocks",
           "groups", "hierarchy_levels", "load_summary_template", "summarize"]

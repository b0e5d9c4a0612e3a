"""Prompt templates as data files, rendered under a token budget.

>>> from llmrec.prompts import TEMPLATES, load_template
>>> sorted(TEMPLATES)
['alpaca', 'rella_book', 'rella_movie', 'rella_movie_counts', 'rella_movie_liked', 'rella_movie_stats', 'rella_movie_tenths', 'tallrec_book', 'tallrec_movie', 'trsr']
>>> load_template("tallrec_movie").answer["yes"]
'Yes'
"""

from llmrec.prompts.settings import PromptSettings
from llmrec.prompts.template import TEMPLATES, PromptTemplate, RenderedPrompt, load_template

__all__ = ["TEMPLATES", "PromptSettings", "PromptTemplate", "RenderedPrompt", "load_template"]

"""``llmrec report DIR...``: every method and baseline side by side, as markdown and one HTML page.

>>> from llmrec.report.render import markdown_table
>>> print(markdown_table(["row", "auc"], [["lora", "0.7400"]]))
| row | auc |
|---|---:|
| lora | 0.7400 |
"""

from llmrec.report.collect import Row, Section, collect
from llmrec.report.render import build_report

__all__ = ["Row", "Section", "build_report", "collect"]

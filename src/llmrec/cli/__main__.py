"""``python -m llmrec.cli``."""

from llmrec.cli import main

main()

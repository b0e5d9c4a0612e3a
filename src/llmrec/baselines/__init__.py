"""Classic recommenders on the same prepared splits, metrics and run folders as the LLM rows."""

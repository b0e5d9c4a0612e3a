"""Benchmarks behind ``llmrec bench``: each returns a JSON-able dict of measurements."""

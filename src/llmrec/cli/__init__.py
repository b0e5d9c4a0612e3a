"""The ``llmrec`` command line: a thin layer over the library API, one module per command group.

Every command that runs work takes ``--config FILE.yaml`` and repeated ``--set key=value``
overrides (dotted paths into the config, YAML values), so any field can be changed from
the command line. Errors print one line and exit 1 (130 on Ctrl-C); ``--debug`` or
``LLMREC_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import sys

try:  # Ctrl-C in the first second of a command lands here, while the commands are imported
    from llmrec.cli.app import main
    from llmrec.cli.attention import attention_cmd
    from llmrec.cli.baseline import baseline_cmd
    from llmrec.cli.bench import bench
    from llmrec.cli.data import data
    from llmrec.cli.evaluate import evaluate_cmd
    from llmrec.cli.experiment import run_cmd, suite_cmd
    from llmrec.cli.plan import plan_cmd
    from llmrec.cli.report import compare_cmd, report_cmd
    from llmrec.cli.retrieve import retrieve_cmd
    from llmrec.cli.serve import serve_cmd
    from llmrec.cli.summarize import summarize_cmd
    from llmrec.cli.train import train_cmd
except KeyboardInterrupt:
    sys.stderr.write("\ninterrupted\n")
    raise SystemExit(130) from None

for command in (data, retrieve_cmd, summarize_cmd, evaluate_cmd, train_cmd, baseline_cmd, run_cmd, suite_cmd, plan_cmd, compare_cmd, report_cmd, attention_cmd, serve_cmd,
                bench):
    main.add_command(command)

__all__ = ["main"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The TensorBoard tracker (``pip install 'llmrec[tracking]'``): event files in ``<run>/tensorboard`` (``tensorboard --logdir runs``).

Points are written as they come (training curves while training runs; the final metrics at the last step;
the resolved config as a text summary). A resumed run (after a kill) starts its events with a purge at its
first step, so TensorBoard hides the points of the killed attempt from there on: each step shows once.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from llmrec.tracking.base import RunInfo, TrackerSpec, register_tracker

__all__ = ["TensorBoardTracker"]

FOLDER = "tensorboard"
DONE = ".llmrec-finished"  # written at the end: a finished run met again is not written twice


class TensorBoardTracker:
    def __init__(self) -> None:
        self.folder: Path | None = None
        self.writer = None
        self.params: dict[str, str] = {}
        self.where = None

    def start(self, info: RunInfo) -> bool:
        self.folder = info.folder / FOLDER
        self.where = str(self.folder)
        return not (self.folder / DONE).exists()

    def _writer(self, step: int):
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            earlier = self.folder.is_dir() and any(self.folder.glob("events.out.tfevents.*"))
            # a resumed run: events of the earlier attempt at this step and later are hidden
            self.writer = SummaryWriter(str(self.folder), purge_step=step if earlier else None)
            if self.params:
                lines = ["| param | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in self.params.items())]
                self.writer.add_text("config", "\n".join(lines), 0)
        return self.writer

    def log_params(self, params: Mapping[str, str]) -> None:
        self.params = dict(params)  # written with the first point (the writer opens there, with its purge step)

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        writer = self._writer(step)
        for name, value in metrics.items():
            writer.add_scalar(name, float(value), int(step))
        writer.flush()

    def log_artifacts(self, files: list[tuple[Path, str]]) -> None:
        pass  # the files are in the run folder beside the events

    def end(self) -> None:
        if self.writer is not None:
            self.writer.close()
            (self.folder / DONE).write_text("")


register_tracker(TrackerSpec("tensorboard", lambda settings: TensorBoardTracker(), ("tensorboard", "torch"),
                             "TensorBoard event files in <run>/tensorboard (curves while training runs, final "
                             "metrics)", history=False))

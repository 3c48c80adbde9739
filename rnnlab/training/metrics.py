"""Where a run's numbers go: ``metrics.jsonl``, TensorBoard, log lines, a progress bar.

``workdir/metrics.jsonl`` holds one JSON object per logged step or evaluation,
``{"step": 500, "train/loss": 0.41, "train/steps_per_sec": 31.0, ...}``, with
metrics named ``split/name``; the same scalars go to TensorBoard event files in
``workdir/tensorboard`` (written by tensorboardX, no TensorFlow needed).
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Mapping, Optional, TextIO

from absl import logging

from rnnlab.training.workdir import METRICS_FILE, TENSORBOARD_DIR, read_metrics, write_lines


def _summary_writer_class() -> type:
    """``tensorboardX.SummaryWriter``, imported here: slow, and only process 0 needs it.

    tensorboardX imports torch whenever it is installed, only to accept torch
    tensors (2-3 s, or 10 s with several processes starting at once); rnnlab
    writes floats, so the import runs with torch hidden unless it is loaded already.
    """
    if "torch" in sys.modules:
        from tensorboardX import SummaryWriter
        return SummaryWriter
    sys.modules["torch"] = None  # makes `import torch` raise ImportError, which tensorboardX handles
    try:
        from tensorboardX import SummaryWriter
    finally:
        del sys.modules["torch"]
    return SummaryWriter


class MetricWriter:
    """Appends metrics to ``workdir/metrics.jsonl`` and TensorBoard.

    Args:
      workdir: the run's directory.
      start_step: the step the run starts from (0, or the restored checkpoint's
        step). Records after it, written by a run that died before its next
        checkpoint, are dropped, so a resumed run leaves no duplicate steps.
      enabled: write nothing when False (processes other than 0).
    """

    def __init__(self, workdir: str, start_step: int = 0, enabled: bool = True):
        self.enabled = enabled
        self._path = os.path.join(workdir, METRICS_FILE)
        self._tb = None
        self._kept: set[tuple[int, str]] = set()
        if not enabled:
            return
        kept = [r for r in read_metrics(workdir) if r["step"] <= start_step]
        self._kept = {(r["step"], name) for r in kept for name in r if name != "step"}
        write_lines(self._path, kept)
        self._tb = _summary_writer_class()(os.path.join(workdir, TENSORBOARD_DIR), purge_step=start_step + 1)

    def write(self, step: int, metrics: Mapping[str, float], once: bool = False) -> None:
        """Writes one record ``{"step": step, **metrics}`` (floats; NaN as JSON ``NaN``).

        With ``once``, a record whose metrics the kept lines already hold at
        ``step`` (written before a resume) is not written again.
        """
        if not self.enabled or (once and metrics and all((int(step), k) in self._kept for k in metrics)):
            return
        record = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
        with open(self._path, "a") as f:
            f.write(json.dumps(record) + "\n")
        for name, value in record.items():
            if name != "step":
                self._tb.add_scalar(name, value, int(step))
        self._tb.flush()

    def close(self) -> None:
        """Flushes and closes the TensorBoard writer."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def format_duration(seconds: float) -> str:
    """``"1h02m"``, ``"3m07s"`` or ``"12s"``."""
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def format_metrics(step: int, num_steps: int, metrics: Mapping[str, float], eta: Optional[float] = None) -> str:
    """One log line: ``"step 500/1000  train/loss 0.4100  train/steps_per_sec 31.0  eta 16s"``."""
    parts = [f"step {step}/{num_steps}"]
    for name, value in metrics.items():
        parts.append(f"{name} {value:.4g}" if abs(value) >= 100 or "per_sec" in name else f"{name} {value:.4f}")
    if eta is not None:
        parts.append(f"eta {format_duration(eta)}")
    return "  ".join(parts)


def log_metrics(step: int, num_steps: int, metrics: Mapping[str, float], eta: Optional[float] = None) -> None:
    """Logs :func:`format_metrics` through absl."""
    logging.info("%s", format_metrics(step, num_steps, metrics, eta))


class Progress:
    """A one-line progress bar on a terminal; silent when ``stream`` is not a TTY.

    Args:
      num_steps: the last step.
      stream: where to draw (default ``sys.stderr``).
    """

    def __init__(self, num_steps: int, stream: Optional[TextIO] = None):
        self.num_steps = num_steps
        self._stream = stream if stream is not None else sys.stderr
        self.active = bool(getattr(self._stream, "isatty", lambda: False)())

    def update(self, step: int, note: str = "") -> None:
        """Redraws the bar at ``step`` with a short ``note`` (e.g. the loss)."""
        if not self.active:
            return
        width = 30
        done = int(width * step / max(self.num_steps, 1))
        self._stream.write(f"\r[{'#' * done}{'.' * (width - done)}] {step}/{self.num_steps} {note}  ")
        self._stream.flush()

    def close(self) -> None:
        """Ends the bar's line."""
        if self.active:
            self._stream.write("\n")
            self._stream.flush()


class Recorder:
    """Sends each metrics record to every sink: ``metrics.jsonl`` and TensorBoard
    (:class:`MetricWriter`), a log line (:func:`log_metrics`) and, for training
    records, the progress bar (:class:`Progress`). A context manager that closes them.

    Args:
      workdir: the run's directory.
      start_step: the step the run starts from (see :class:`MetricWriter`).
      num_steps: the run's last step (log lines and the bar show ``step/num_steps``).
      enabled: write files when True (process 0); log lines are written either way.
    """

    def __init__(self, workdir: str, start_step: int, num_steps: int, enabled: bool = True):
        self.num_steps = num_steps
        self._writer = MetricWriter(workdir, start_step, enabled=enabled)
        self._progress = Progress(num_steps)

    def record(self, step: int, metrics: Mapping[str, float], eta: Optional[float] = None,
               once: bool = False) -> None:
        """Writes ``{"step": step, **metrics}`` to every sink (``once``: see :meth:`MetricWriter.write`)."""
        self._writer.write(step, metrics, once=once)
        log_metrics(step, self.num_steps, metrics, eta=eta)
        if "train/loss" in metrics:
            self._progress.update(step, f"loss {metrics['train/loss']:.4f}")

    def close(self) -> None:
        """Ends the progress bar and closes the writer."""
        self._progress.close()
        self._writer.close()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""Where a run stands and what stays fixed: :class:`Position`, :class:`Run`; restoring and saving them.

A checkpoint holds a :class:`Position` (the train state, the best params, the
early-stopping counters) with the loader's data position, the pinned config and
the data fingerprint; :func:`restore_or_init` reads the newest good one back
(refusing one of another run or of other data), :func:`save` writes one.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, NamedTuple, Optional

import jax
import numpy as np

from rnnlab.training import checkpoint as ckpt
from rnnlab.training import tasks
from rnnlab.training.sharding import host_rows
from rnnlab.training.steps import TrainState
from rnnlab.types import PyTree


@dataclasses.dataclass
class Window:
    """The training since the last log line: summed stats, tokens read and seconds spent in steps.

    Saved in every checkpoint (:meth:`to_json`), so the first log line after a
    resume averages the same steps as an uninterrupted run's.

    Attributes:
      start: the step before the window's first.
      stats: the summed :data:`rnnlab.training.tasks.Stats` (device arrays), ``None`` before a step.
      tokens: valid steps of the batches read.
      seconds: time spent training (evaluations and checkpoints left out).
    """

    start: int
    stats: Optional[tasks.Stats] = None
    tokens: int = 0
    seconds: float = 0.0

    def metrics(self, step: int, learning_rate: float) -> dict[str, float]:
        """``{"train/<stat>": mean, "train/steps_per_sec", "train/tokens_per_sec", "train/learning_rate"}``."""
        seconds = max(self.seconds, 1e-9)
        numbers = {f"train/{k}": v for k, v in tasks.finalize(jax.device_get(self.stats)).items()}
        numbers["train/steps_per_sec"] = (step - self.start) / seconds
        numbers["train/tokens_per_sec"] = self.tokens / seconds
        numbers["train/learning_rate"] = float(learning_rate)
        return numbers

    def to_json(self) -> dict[str, Any]:
        """The window as JSON: every sum exact, with its dtype (``{"stats": {name: [[value, dtype], ...]}}``)."""
        stats = None if self.stats is None else {
            name: [[np.asarray(v).item(), np.asarray(v).dtype.name] for v in pair]
            for name, pair in jax.device_get(self.stats).items()}
        return {"start": self.start, "stats": stats, "tokens": self.tokens, "seconds": self.seconds}

    @classmethod
    def from_json(cls, saved: Optional[Mapping[str, Any]], step: int) -> "Window":
        """The window :meth:`to_json` saved; an empty one starting at ``step`` when there is none (older checkpoints)."""
        if saved is None:
            return cls(step)
        stats = None if saved["stats"] is None else {
            name: tuple(np.asarray(value, dtype) for value, dtype in pair) for name, pair in saved["stats"].items()}
        return cls(int(saved["start"]), stats, int(saved["tokens"]), float(saved["seconds"]))


class EarlyStopping(NamedTuple):
    """The early-stopping counters (saved in every checkpoint as a list).

    Attributes:
      best: the best value of the metric so far (``None`` before the first evaluation).
      best_step: the step of ``best``.
      bad_evals: evaluations since ``best`` without a better value.
    """

    best: Optional[float] = None
    best_step: int = 0
    bad_evals: int = 0

    def update(self, value: float, step: int, mode: str) -> "EarlyStopping":
        """The counters after an evaluation of ``value`` at ``step`` (``mode``: ``"max"`` or ``"min"`` is better)."""
        better = self.best is None or (value > self.best if mode == "max" else value < self.best)
        if better:
            return EarlyStopping(value, step, 0)
        return self._replace(bad_evals=self.bad_evals + 1)

    def exhausted(self, patience: int) -> bool:
        """Whether ``patience`` evaluations (0 = never) have passed without improvement."""
        return bool(patience) and self.bad_evals >= patience


class Run(NamedTuple):
    """The fixed parts of a run, built once its checks have passed.

    Attributes:
      config: the whole config (``config.train`` drives the loop).
      spec: the dataset's :class:`rnnlab.data.DatasetSpec`.
      mesh: the devices (:func:`rnnlab.training.sharding.make_mesh`).
      shard: ``{"process_index", "process_count"}`` for the loaders.
      loader: the training split's endless, shuffled loader (of chunks with ``data.chunk_len``).
      train_fn, eval_fn: the compiled steps (:func:`rnnlab.training.steps.compile_steps`).
      schedule: the learning rate per step (logged).
      checkpoints: the run's :class:`rnnlab.training.checkpoint.Checkpointer`.
      pinned: the config fields a checkpoint must match (:func:`checkpoint.pinned_config`).
      fingerprint: the data's :func:`rnnlab.data.data_fingerprint`.
    """

    config: Any
    spec: Any
    mesh: jax.sharding.Mesh
    shard: Mapping[str, int]
    loader: Any
    train_fn: Callable
    eval_fn: Callable
    schedule: Callable[[int], Any]
    checkpoints: ckpt.Checkpointer
    pinned: Mapping[str, Any]
    fingerprint: Mapping[str, Any]


@dataclasses.dataclass
class Position:
    """Where a run stands: everything a checkpoint holds besides the data position.

    Attributes:
      state: the train state (on the mesh while training).
      step: ``int(state.step)``, kept on the host.
      best_params: the params of the best evaluation (host arrays; the initial ones before any).
      early: the early-stopping counters.
      stopped_early: early stopping ended the run.
      last_saved: the step of the newest checkpoint written or restored (``None``: none).
      last_eval: ``(step, metrics)`` of the newest evaluation of ``eval_split`` (``(None, None)``: none).
      window: the training since the last log line (saved with the checkpoint; ``None``: empty, from ``step``).
    """

    state: TrainState
    step: int
    best_params: PyTree
    early: EarlyStopping = EarlyStopping()
    stopped_early: bool = False
    last_saved: Optional[int] = None
    last_eval: tuple[Optional[int], Optional[dict[str, float]]] = (None, None)
    window: Optional[Window] = None

    def __post_init__(self):
        if self.window is None:
            self.window = Window(self.step)


# ---------------------------------------------------------------------------
# Restore or init


def _data_changed(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """What differs between two :func:`rnnlab.data.data_fingerprint` records, one line each."""
    lines = []
    old_files, new_files = saved.get("files", {}), now.get("files", {})
    for path in sorted(set(old_files) | set(new_files)):
        a, b = old_files.get(path, "(absent)"), new_files.get(path, "(absent)")
        if a != b:
            lines.append(f"{path}: sha256 {a[:16]} when saved, {b[:16]} now")
    for key in ("dataset", "fingerprint", "examples"):
        if not lines and saved.get(key) != now.get(key):
            lines.append(f"{key}: {saved.get(key)!r} when saved, {now.get(key)!r} now (the dataset's "
                         "options, version or generated examples)")
    return lines


def check_restored(info: Mapping[str, Any], step: int, directory: str, pinned: Mapping[str, Any],
                   fingerprint: Mapping[str, Any]) -> None:
    """Refuses a restored checkpoint of another run, or one whose source data has changed since.

    Args:
      info: the checkpoint's JSON part (``config``, ``data_fingerprint``, ...).
      step, directory: where it was read (named in the message).
      pinned: this run's :func:`checkpoint.pinned_config`.
      fingerprint: this run's :func:`rnnlab.data.data_fingerprint`.

    Raises:
      ValueError: the saved config or data differ (the message lists what differs).
    """
    where = f"checkpoint step {step} in {directory}"
    diff = ckpt.pinned_diff(info["config"], pinned) if "config" in info else []
    if diff:
        raise ValueError(f"{where} was saved by another run; its config differs from this one:\n  "
                         + "\n  ".join(diff) + f"\nMove {directory} away to start afresh, or use a new --workdir.")
    changed = _data_changed(info["data_fingerprint"], fingerprint) if "data_fingerprint" in info else []
    if changed:
        raise ValueError(f"the data changed since {where} was saved; resuming would train on different data:\n  "
                         + "\n  ".join(changed) + "\nRestore the original data, or start a new --workdir "
                         "(docs/training.md, 'What rnnlab guarantees').")


def restore_or_init(run: Run, fresh: TrainState) -> Position:
    """The position of the newest good checkpoint (the loader moved to its data position), else ``fresh``'s.

    Args:
      run: the run (its checkpoints, loader, pinned config and data fingerprint).
      fresh: the initial state (host arrays): the target's structure, and the start without a checkpoint.

    Raises:
      ValueError: the checkpoint belongs to another run or to other data (:func:`check_restored`).
    """
    restored = run.checkpoints.restore({"state": fresh, "best_params": fresh.params})
    if restored is None:
        return Position(fresh, int(fresh.step), fresh.params)
    saved_step, arrays, info = restored
    directory = run.checkpoints.directory
    check_restored(info, saved_step, directory, run.pinned, run.fingerprint)
    tc = run.config.train
    early = EarlyStopping(*info["early_stopping"])
    stopped_early = bool(info.get("stopped_early", tc.early_stopping_metric and early.exhausted(tc.patience)))
    try:
        run.loader.set_state(info["data"])
    except ValueError as e:
        raise ValueError(f"checkpoint step {saved_step} in {directory} does not fit this run ({e}); it was "
                         f"saved by a run with another config. Move {directory} away to start afresh, or use "
                         "a new --workdir.") from e
    state = arrays["state"]
    step = int(state.step)
    return Position(state, step, arrays["best_params"], early, stopped_early, last_saved=step,
                    window=Window.from_json(info.get("window"), step))


def save(run: Run, position: Position) -> None:
    """Checkpoints ``position`` at its step with the loader's data position; notes it as ``last_saved``.

    With truncated BPTT the state's carries (every process's rows) are saved with
    it, and the loader's position holds each row's place in its sequence.
    """
    state = position.state._replace(carry=host_rows(position.state.carry))
    info = {"data": run.loader.get_state(), "early_stopping": list(position.early),
            "stopped_early": position.stopped_early, "config": run.pinned, "data_fingerprint": run.fingerprint,
            "window": position.window.to_json()}
    run.checkpoints.save(position.step, {"state": state, "best_params": position.best_params}, info)
    position.last_saved = position.step

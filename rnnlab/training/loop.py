"""The training loop, in parts: training windows, evaluation with early stopping, the final results.

:func:`train_loop` alternates :func:`train_steps` (steps up to the next
*boundary*: a step that logs, evaluates or checkpoints, see
:func:`next_boundary`) with the boundary's work: one finiteness check of the
window's losses (:func:`check_finite`), the log line of the training metrics
(one :class:`~rnnlab.training.metrics.Recorder` for every sink),
:func:`evaluate_and_track` and :func:`~rnnlab.training.position.save`. It moves
a :class:`~rnnlab.training.position.Position` on and reads a
:class:`~rnnlab.training.position.Run`; :func:`rnnlab.training.train.train_and_evaluate`
builds both and calls these.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from typing import Any, Callable, Iterator, Mapping, Optional

import jax
import numpy as np
from absl import logging

import rnnlab.data
from rnnlab.data.chunking import chunk_options
from rnnlab.training import tasks
from rnnlab.training.checks import is_int, require
from rnnlab.training.metrics import Recorder
from rnnlab.training.position import Position, Run, Window, save  # noqa: F401  (loop.Window)
from rnnlab.training.sharding import replicate, shard_batch
from rnnlab.training.steps import TrainState, count_params, evaluate, evaluated_params
from rnnlab.types import PyTree


def check_train_config(config: Any) -> None:
    """Raises ``ValueError`` naming the field for a bad ``config.train``."""
    for field in ("num_steps", "log_every", "max_to_keep", "num_processes"):
        require(is_int(config[field]) and config[field] > 0, f"train.{field}", "must be a positive integer",
                config[field])
    for field in ("eval_every", "checkpoint_every", "patience", "mesh", "seed", "process_id"):
        require(is_int(config[field]) and config[field] >= 0, f"train.{field}", "must be an integer >= 0",
                config[field])
    noise = config.weight_noise
    require(isinstance(noise, (int, float, np.number)) and not isinstance(noise, bool)
            and math.isfinite(noise) and noise >= 0, "train.weight_noise", "must be a number >= 0", noise)
    require(isinstance(config.eval_split, str) and config.eval_split != "", "train.eval_split",
            "must name a split", config.eval_split)
    require(isinstance(config.test_split, str), "train.test_split", "must be a split name or ''",
            config.test_split)
    final = config.get("final_splits", ())
    require(isinstance(final, (tuple, list)) and all(isinstance(s, str) and s for s in final),
            "train.final_splits", "must be a tuple of split names", final)
    require(config.early_stopping_mode in ("max", "min"), "train.early_stopping_mode",
            "must be 'max' or 'min'", config.early_stopping_mode)


class StopSignal:
    """Turns SIGTERM (and SIGINT) into a flag the loop checks between steps.

    A second signal stops at once, without saving (``KeyboardInterrupt`` for
    SIGINT, ``SystemExit(128 + signum)`` for SIGTERM), e.g. during a long evaluation.
    """

    def __init__(self):
        self.received: Optional[int] = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "StopSignal":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.received is None:
            self.received = signum
            logging.warning("signal %d: stopping after the current step or evaluation, then saving a "
                            "checkpoint; send it again to stop at once without saving", signum)
            return
        logging.warning("signal %d again: stopping at once without saving; the next launch resumes "
                        "from the last checkpoint", signum)
        self.__exit__()
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


# ---------------------------------------------------------------------------
# Training windows


def _next_multiple(step: int, every: int) -> int:
    return (step // every + 1) * every


def next_boundary(step: int, tc: Any) -> int:
    """The first step after ``step`` that logs, evaluates or checkpoints, or ``num_steps`` if sooner.

    Args:
      step: the steps done.
      tc: the ``train`` config section (``log_every``, ``eval_every``,
        ``checkpoint_every``; 0 = only at the end).
    """
    ends = [tc.num_steps, _next_multiple(step, tc.log_every)]
    ends += [_next_multiple(step, every) for every in (tc.eval_every, tc.checkpoint_every) if every]
    return min(ends)


Check = tuple[int, tuple[Any, Any], tuple[Any, Any]]  # (step, stats["loss"], stats["grad_norm"])


def train_steps(train_fn: Callable, state: TrainState, batches: Iterator[Mapping[str, np.ndarray]],
                put: Callable, step: int, until: int, window: Window,
                stop: Optional[StopSignal] = None) -> tuple[TrainState, int, list[Check]]:
    """Runs steps ``step + 1 .. until`` (fewer once ``stop`` has a signal), summing their stats into ``window``.

    Args:
      train_fn: ``train_fn(state, batch) -> (state, stats)``.
      state: the state after ``step`` steps.
      batches: host batches (``{"lengths": int[B], ...}``).
      put: host batch -> what ``train_fn`` reads (:func:`shard_batch` onto the mesh).
      step, until: the steps done, and the last step to run.
      window: adds each step's stats and tokens (not the time: the caller measures it).
      stop: ends the window early after a signal.

    Returns:
      ``(state, step, checks)``: the new state, the steps done and each step's
      ``(step, loss, grad_norm)`` device values, for :func:`check_finite`. No
      value is read back from the device here.
    """
    checks = []
    while step < until and (stop is None or stop.received is None):
        batch = next(batches)
        window.tokens += int(np.sum(batch["lengths"]))
        state, stats = train_fn(state, put(batch))
        step += 1
        window.stats = tasks.accumulate(window.stats, stats)
        checks.append((step, stats["loss"], stats["grad_norm"]))
    return state, step, checks


def check_finite(checks: list[Check], last_saved: Optional[int], directory: str) -> None:
    """Raises ``FloatingPointError`` naming the first step whose loss or gradient norm is not finite.

    One read from the device for the whole window (the window's one sync).

    Args:
      checks: the ``(step, loss (sum, count), grad_norm (value, 1))`` of :func:`train_steps`.
      last_saved, directory: the last good checkpoint, named in the message.
    """
    values = jax.device_get([(loss, grad_norm) for _, loss, grad_norm in checks])
    for (step, _, _), ((total, count), (grad_norm, _)) in zip(checks, values):
        loss, grad_norm = float(total) / max(float(count), 1.0), float(grad_norm)
        if math.isfinite(loss) and math.isfinite(grad_norm):
            continue
        kept = f"the last good checkpoint is step {last_saved} in {directory}" if last_saved else "no checkpoint was saved"
        raise FloatingPointError(
            f"training stopped at step {step}: loss {loss}, gradient norm {grad_norm}; {kept}. "
            "Lower config.optim.learning_rate or set config.optim.clip_norm, and launch with a new "
            "--workdir: this workdir's config is pinned (docs/training.md, 'What rnnlab guarantees')."
        )


# ---------------------------------------------------------------------------
# Evaluation with early stopping


def evaluate_split(run: Run, split: str, params: PyTree, carry: PyTree = None) -> dict[str, float]:
    """``{metric: value}`` of ``params`` over one pass of ``split`` (padding rows weigh 0).

    Args:
      carry: the train state's carries: evaluates in chunks when ``data.chunk_eval``
        (the carry passed on from chunk to chunk), else whole sequences.
    """
    tc = run.config.train
    chunked = chunk_options(run.config.data).chunk_eval
    batches = rnnlab.data.make_loader(run.config.data, split, seed=tc.seed, shuffle=False, num_epochs=1,
                                      chunked=chunked, **run.shard)
    return evaluate(run.eval_fn, params, (shard_batch(b, run.mesh) for b in batches), carry if chunked else None)


def evaluate_and_track(run: Run, position: Position, recorder: Recorder) -> None:
    """Evaluates ``eval_split`` at the position's step, records it, and moves early stopping on.

    The params evaluated are :func:`rnnlab.training.steps.evaluated_params` (their average, where the optimizer
    keeps one). A new best copies them to ``position.best_params``; ``patience``
    evaluations without one set ``position.stopped_early``.
    """
    tc, step = run.config.train, position.step
    params = evaluated_params(position.state)
    results = evaluate_split(run, tc.eval_split, params, position.state.carry)
    position.last_eval = (step, results)
    recorder.record(step, {f"{tc.eval_split}/{k}": v for k, v in results.items()})
    if not tc.early_stopping_metric:
        return
    position.early = early = position.early.update(results[tc.early_stopping_metric], step, tc.early_stopping_mode)
    if early.best_step == step:
        position.best_params = jax.device_get(params)
    if early.exhausted(tc.patience):
        logging.info("early stopping at step %d: %s %s has not improved for %d evaluations (best %.4f at "
                     "step %d)", step, tc.eval_split, tc.early_stopping_metric, early.bad_evals, early.best,
                     early.best_step)
        position.stopped_early = True


# ---------------------------------------------------------------------------
# The loop and the results


def train_loop(run: Run, position: Position, recorder: Recorder, stop: StopSignal) -> bool:
    """Trains from ``position`` until ``num_steps``, an early stop or a signal.

    Returns:
      True when the run ended (``num_steps`` or early stopping); False after a
      signal (the position is then checkpointed).

    Raises:
      FloatingPointError: a loss or gradient norm was not finite (:func:`check_finite`).
    """
    tc = run.config.train
    put = lambda batch: shard_batch(batch, run.mesh)
    while position.step < tc.num_steps and not position.stopped_early and stop.received is None:
        started = time.time()
        window = position.window  # restored with the checkpoint: a resumed row sums the same steps
        position.state, position.step, checks = train_steps(run.train_fn, position.state, run.loader, put,
                                                            position.step, next_boundary(position.step, tc),
                                                            window, stop)
        check_finite(checks, position.last_saved, run.checkpoints.directory)
        window.seconds += time.time() - started
        step = position.step
        if step % tc.log_every == 0 or step == tc.num_steps:
            numbers = window.metrics(step, run.schedule(step - 1))
            eta = (tc.num_steps - step) / max(numbers["train/steps_per_sec"], 1e-9)
            recorder.record(step, numbers, eta=eta)
            position.window = Window(step)
        if (tc.eval_every and step % tc.eval_every == 0) or step == tc.num_steps:
            evaluate_and_track(run, position, recorder)
        if (tc.checkpoint_every and step % tc.checkpoint_every == 0) or step == tc.num_steps or position.stopped_early:
            save(run, position)
    if stop.received is None or position.step >= tc.num_steps or position.stopped_early:
        return True
    if position.last_saved != position.step:
        save(run, position)
    logging.warning("signal %d: saved step %d in %s and stopped; run the same command again to resume",
                    stop.received, position.step, run.checkpoints.directory)
    return False


def final_results(run: Run, position: Position, recorder: Recorder) -> dict[str, Any]:
    """The results of an ended run: ``eval_split``, ``test_split`` and ``final_splits`` metrics of its final params.

    The final params are the early-stopping best (when the run has one),
    else the last (their average, where the optimizer keeps one). ``eval_split`` is evaluated again only if its newest
    evaluation was not of these params; ``test_split`` and each of
    ``final_splits`` (e.g. ``("train",)``, for the train NLL of the
    best-validation params) once, recorded (a final split as ``final/<split>/<metric>``).

    Returns:
      ``{"step", "stopped_early", "num_params", "num_params_all",
      "data_fingerprint", "best_step" (with early stopping), eval_split: {...},
      test_split: {...}, one entry per final split}``.
    """
    tc, step, params = run.config.train, position.step, evaluated_params(position.state)
    has_best = bool(tc.early_stopping_metric) and position.early.best is not None
    final = replicate(position.best_params, run.mesh) if has_best and position.early.best_step != step else params
    results = {"step": step, "stopped_early": position.stopped_early, "num_params": count_params(params),
               "num_params_all": count_params(params, exclude=()), "data_fingerprint": run.fingerprint}
    if has_best:
        results["best_step"] = position.early.best_step
    if final is not params or position.last_eval[0] != step:
        position.last_eval = (step, evaluate_split(run, tc.eval_split, final, position.state.carry))
    results[tc.eval_split] = position.last_eval[1]
    # metrics.jsonl names: test as "test/...", a final split as "final/<split>/..." (apart from the
    # running "train/..." metrics of training)
    once = {tc.test_split: tc.test_split} if tc.test_split else {}
    once.update({split: f"final/{split}" for split in tc.get("final_splits", ())
                 if split not in (tc.eval_split, tc.test_split)})
    for split, prefix in once.items():
        results[split] = evaluate_split(run, split, final, position.state.carry)
        recorder.record(step, {f"{prefix}/{k}": v for k, v in results[split].items()}, once=True)
    return results

"""One run from a config: :func:`train_and_evaluate`, the checks before it, and the training API.

``train_and_evaluate(config, workdir)`` checks the config (:func:`check_config`),
locks the workdir, returns a finished run's results as they are, or builds the
run (:func:`prepare_run`: every check against the dataset before anything is
compiled or written), restores or initialises it and trains it with
:mod:`rnnlab.training.loop`. The parts live by job: :mod:`~rnnlab.training.optim`
(optimizers, schedules), :mod:`~rnnlab.training.steps` (``train_step``,
``eval_step``, their compilation), :mod:`~rnnlab.training.sharding` (the mesh),
:mod:`~rnnlab.training.loop` (the loop), :mod:`~rnnlab.training.metrics`
(where the numbers go); their public names are importable from here too.

A run's workdir::

    config.json      the config (a different one is refused; see checkpoint.RESUMABLE_FIELDS)
    lock             the pid and host of the process training in it (removed on exit)
    checkpoints/     orbax checkpoints: state, best params, data position, data fingerprint
    metrics.jsonl    one JSON object per logged step / evaluation
    tensorboard/     the same scalars for TensorBoard
    results.json     final metrics per split, parameter counts, compilations, wall time
"""

from __future__ import annotations

import collections
import functools
import os
import time
from typing import Any, Callable, Mapping, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

import rnnlab.data
from rnnlab.data.chunking import chunk_options
from rnnlab.training import checkpoint as ckpt
from rnnlab.training import models, tasks
from rnnlab.training.checks import SetupPhase, is_int, require
from rnnlab.training.config_files import import_plugins, with_resolved_plugins
from rnnlab.training.lock import WorkdirLock
from rnnlab.training.loop import StopSignal, check_train_config, final_results, train_loop
from rnnlab.training.metrics import Recorder, format_duration
from rnnlab.training.position import EarlyStopping, Position, Run, restore_or_init
from rnnlab.training.optim import OPTIMIZERS, SCHEDULES, check_optim_config, make_optimizer, make_schedule
from rnnlab.training.sharding import DATA_AXIS, make_mesh, numeric, replicate, shard_batch
from rnnlab.training.steps import (WEIGHT_NOISE_STREAM, CompileCounter, TrainState, add_weight_noise,
                                   compile_steps, count_params, eval_step, evaluate, evaluated_params, example_batch,
                                   init_state, place_state, train_step)
from rnnlab.training.workdir import CHECKPOINT_DIR, RESULTS_FILE, read_json, write_json

__all__ = [  # the training API (defined in the modules named above)
    "DATA_AXIS", "OPTIMIZERS", "SCHEDULES", "WEIGHT_NOISE_STREAM", "CompileCounter", "EarlyStopping",
    "StopSignal", "TrainState", "add_weight_noise", "check_config", "compile_steps", "count_params",
    "eval_step", "evaluate", "evaluated_params", "init_state", "make_mesh", "make_optimizer", "make_schedule",
    "place_state", "prepare_run", "replicate", "shard_batch", "train_and_evaluate", "train_step",
]


# ---------------------------------------------------------------------------
# Checks


def check_config(config: Any) -> None:
    """Checks every section of a run's config, each by the module that owns it; the error names the field.

    Raises:
      ValueError: unknown dataset, cell, model kind, pooling, optimizer or
        schedule (listing the known ones), or a size, rate or count out of range.
    """
    dataset = rnnlab.data.get_dataset(config.data.name)
    tasks.check_loss_mask(config.train.loss_mask, dataset.task, dataset.extras)
    require(is_int(config.data.batch_size) and config.data.batch_size > 0, "data.batch_size",
            "must be a positive integer", config.data.batch_size)
    models.check_model_config(config.model)
    check_chunking(config, dataset.task)
    check_optim_config(config.optim)
    check_train_config(config.train)


def check_chunking(config: Any, task: str) -> None:
    """Refuses truncated BPTT (``data.chunk_len``) for a model that cannot carry a state across chunks.

    Raises:
      ValueError: a bad chunk field, or ``chunk_len`` with a bidirectional model,
        a bag of words, or a classifier pooling other than ``last`` (a chunk sees
        only its own steps); one line naming both fields.
    """
    chunk_len = chunk_options(config.data).chunk_len
    if not chunk_len:
        return
    model = config.model
    refused = []
    if model.bidirectional:
        refused.append(("config.model.bidirectional = True", "a backward pass cannot carry a state across chunks"))
    if model.kind == "bag_of_words":
        refused.append(("config.model.kind = 'bag_of_words'", "it has no recurrent state to carry"))
    if task in ("classify", "regress") and model.kind == "classifier" and model.pooling != "last":
        refused.append((f"config.model.pooling = {model.pooling!r}", "it would pool over the last chunk only; "
                        "use 'last'"))
    if refused:
        field, why = refused[0]
        raise ValueError(f"config.data.chunk_len = {chunk_len} (truncated BPTT) does not work with {field}: "
                         f"{why}; set config.data.chunk_len = 0 or change the model")


def _check_splits(spec: Any, tc: Any) -> None:
    """Raises ``ValueError`` naming the field when ``eval_split`` / ``test_split`` / ``final_splits`` lack a split."""
    named = [("eval_split", tc.eval_split), ("test_split", tc.test_split)]
    named += [("final_splits", split) for split in tc.get("final_splits", ())]
    for field, split in named:
        if split and split not in spec.splits:
            raise ValueError(f"config.train.{field} {split!r} is not a split of dataset {spec.name!r}; "
                             f"its splits: {', '.join(spec.splits)}")


def _check_metric_name(config: Any, model: nn.Module, task: Callable, init_fn: Callable,
                       example: Mapping[str, np.ndarray], shard: Mapping[str, int]) -> None:
    """Checks ``early_stopping_metric`` against the metrics of ``eval_split``, tracing without compiling.

    The names come from ``jax.eval_shape`` of ``eval_step`` on the split's first batch.
    """
    tc = config.train
    if not tc.early_stopping_metric:
        return
    chunked = chunk_options(config.data).chunk_eval
    batches = rnnlab.data.make_loader(config.data, tc.eval_split, seed=tc.seed, shuffle=False, num_epochs=1,
                                      chunked=chunked, **shard)
    batch = numeric(next(iter(batches)))
    abstract = jax.eval_shape(init_fn, jax.ShapeDtypeStruct((2,), jnp.uint32), example)
    carry = abstract.carry if chunked else None
    names = jax.eval_shape(functools.partial(eval_step, model=model, task=task), abstract.params, batch, carry)
    names = names[0] if chunked else names
    if tc.early_stopping_metric not in names:
        raise ValueError(
            f"config.train.early_stopping_metric {tc.early_stopping_metric!r} is not among the "
            f"{tc.eval_split} metrics: {', '.join(sorted(names))}"
        )


# ---------------------------------------------------------------------------
# A run


def prepare_run(config: Any, workdir: str, traces: collections.Counter) -> tuple[Run, Callable, dict]:
    """Builds a checked config's run; every check against the dataset happens here, before any compile.

    Args:
      config: a config that :func:`check_config` accepted.
      workdir: the run's directory (its checkpoints are opened, not read).
      traces: counts the traces of the compiled steps (:func:`steps.compile_steps`).

    Returns:
      ``(run, init_fn, example)``: the :class:`loop.Run`, and ``init_fn(key,
      batch) -> TrainState`` with the example batch it initialises from.

    Raises:
      ValueError: a batch size that does not divide over the devices, a split
        or early-stopping metric the dataset lacks, a model kind that does not
        serve its task, or any error of :func:`rnnlab.data.prepare`.
    """
    tc = config.train
    mesh = make_mesh(tc.mesh)
    if config.data.batch_size % mesh.size:
        raise ValueError(f"config.data.batch_size {config.data.batch_size} must divide evenly over the "
                         f"{mesh.size} devices of config.train.mesh")
    spec = rnnlab.data.prepare(config.data)
    _check_splits(spec, tc)
    model = models.build_model(config.model, spec)
    task = tasks.get_task(spec.task, tc.loss_mask, spec.accuracies, spec.labels)
    tx = make_optimizer(config.optim, tc.num_steps)
    shard = {"process_index": jax.process_index(), "process_count": jax.process_count()}
    chunks = chunk_options(config.data)
    loader = rnnlab.data.make_loader(config.data, "train", seed=tc.seed, shuffle=True, num_epochs=None,
                                     chunked=bool(chunks.chunk_len), **shard)
    init_fn = functools.partial(init_state, model, tx, carry=bool(chunks.chunk_len))
    example = example_batch(spec, config.data.batch_size, min(config.data.buckets))
    _check_metric_name(config, model, task, init_fn, example, shard)
    train_fn, eval_fn = compile_steps(model, tx, task, mesh, weight_noise=float(tc.weight_noise), traces=traces,
                                      chunk_eval=chunks.chunk_eval)
    run = Run(config=config, spec=spec, mesh=mesh, shard=shard, loader=loader, train_fn=train_fn, eval_fn=eval_fn,
              schedule=make_schedule(config.optim, tc.num_steps),
              checkpoints=ckpt.Checkpointer(os.path.join(workdir, CHECKPOINT_DIR), tc.max_to_keep),
              pinned=ckpt.pinned_config(config), fingerprint=rnnlab.data.data_fingerprint(config.data))
    return run, init_fn, example


def _read_results(workdir: str) -> Optional[dict[str, Any]]:
    """``workdir/results.json``, or ``None`` when there is none (or it is unreadable: logged)."""
    path = os.path.join(workdir, RESULTS_FILE)
    if not os.path.exists(path):
        return None
    try:
        return read_json(path)
    except ValueError as e:
        logging.warning("%s; the run is evaluated again from its last checkpoint", e)
        return None


def _finished(results: Optional[Mapping[str, Any]], tc: Any, workdir: str) -> bool:
    """Whether ``results`` end a run of ``tc.num_steps`` steps (it stopped early or reached them); logs it if so."""
    if results is None or not (results.get("stopped_early") or int(results.get("step", 0)) >= tc.num_steps):
        return False
    how = (f"stopped early at step {results.get('step')} (best step {results.get('best_step')})"
           if results.get("stopped_early") else f"reached step {results.get('step')}")
    logging.info("%s holds a finished run: it %s; nothing to train. Its results (%s): %s. To train longer, "
                 "raise --config.train.num_steps (constant schedule, not after an early stop) or use a new "
                 "--workdir.", workdir, how, RESULTS_FILE,
                 {k: results[k] for k in (tc.eval_split, tc.test_split) if k in results})
    return True


def _start(run: Run, position: Position, workdir: str, previous: Optional[Mapping[str, Any]]) -> None:
    """Writes ``config.json`` (process 0; removing the results of a run being extended) and logs the start."""
    config, tc = run.config, run.config.train
    if jax.process_index() == 0:
        ckpt.write_config(workdir, config)
        if previous is not None:
            os.remove(os.path.join(workdir, RESULTS_FILE))
            logging.info("extending the run of %s from step %s to %d: its results.json is removed and written "
                         "again at the end", workdir, previous.get("step"), tc.num_steps)
    if position.step >= tc.num_steps or position.stopped_early:
        logging.info("the checkpoint of step %d ends the run (%s): evaluating it, no training", position.step,
                     "stopped early" if position.stopped_early else f"num_steps {tc.num_steps}")
    logging.info("config:\n%s", config)
    logging.info("model %s on %s (%s task), %d parameters, %d device(s) in %d process(es); starting at step %d",
                 config.model.kind, run.spec.name, run.spec.task, count_params(position.state.params, exclude=()),
                 run.mesh.size, jax.process_count(), position.step)


def train_and_evaluate(config: Any, workdir: str) -> Optional[dict[str, Any]]:
    """Trains ``config`` in ``workdir``, resuming from its latest good checkpoint.

    Evaluates ``config.train.eval_split`` every ``eval_every`` steps (early
    stopping on ``early_stopping_metric``), checkpoints every
    ``checkpoint_every`` steps, and at the end evaluates ``test_split`` with the
    best parameters (the last ones without early stopping) into
    ``workdir/results.json``. SIGTERM / SIGINT save a checkpoint and return None.

    ``config.plugins`` (the user's cells and datasets) are imported first and
    recorded in ``config.json`` with their ``.py`` paths made absolute. Errors
    of the setup, before the first step trains, are marked as the user's to fix
    (:class:`rnnlab.training.checks.SetupPhase`): commands print them as one line.

    A finished run (it reached ``num_steps`` or stopped early) trains no further
    step: with its ``results.json`` the results are returned as they are,
    without it they are evaluated from the final checkpoint. One process trains
    in a workdir at a time (:class:`rnnlab.training.lock.WorkdirLock`).
    ``config.json`` is written once every check has passed.

    Returns:
      The results dict written to ``results.json``, or ``None`` when stopped by a signal.

    Raises:
      ValueError: a bad config field, split or metric name (before anything is
        compiled); a workdir whose ``config.json`` differs from ``config``
        outside ``checkpoint.RESUMABLE_FIELDS``; a checkpoint of another run; or
        source data that changed since the checkpoint was saved.
      RuntimeError: another process trains in ``workdir``.
      FloatingPointError: the loss became NaN or infinite (the message names
        the step and the last good checkpoint).
    """
    start_time = time.time()
    with SetupPhase() as setup:
        config = with_resolved_plugins(config)
        import_plugins(config.get("plugins", ""))
        check_config(config)
        return _train_checked(config, workdir, setup, start_time)


def _train_checked(config: Any, workdir: str, setup: SetupPhase, start_time: float) -> Optional[dict[str, Any]]:
    """:func:`train_and_evaluate` of a checked config; ``setup.done()`` once the run is built and restored."""
    tc = config.train
    with WorkdirLock(workdir, process=tc.process_id if tc.num_processes > 1 else 0):
        if tc.num_processes > 1:
            jax.distributed.initialize(tc.coordinator_address, tc.num_processes, tc.process_id)
        if jax.process_index() == 0:
            ckpt.check_config(workdir, config)
        previous = _read_results(workdir)
        if _finished(previous, tc, workdir):
            return previous
        traces = collections.Counter()
        run, init_fn, example = prepare_run(config, workdir, traces)
        with run.checkpoints, CompileCounter() as compiles, StopSignal() as stop:
            position = restore_or_init(run, jax.device_get(jax.jit(init_fn)(jax.random.PRNGKey(tc.seed), example)))
            _start(run, position, workdir, previous)
            setup.done()
            position.state = place_state(position.state, run.mesh)
            with Recorder(workdir, position.step, tc.num_steps, enabled=jax.process_index() == 0) as recorder:
                if not train_loop(run, position, recorder, stop):
                    return None
                results = final_results(run, position, recorder)
            results["compilations"] = {"total": compiles.count, "train_step": traces["train_step"],
                                       "eval_step": traces["eval_step"]}
            results["wall_time_sec"] = time.time() - start_time
            logging.info("finished at step %d in %s; %d XLA compilations (train_step %d, eval_step %d)",
                         position.step, format_duration(results["wall_time_sec"]), compiles.count,
                         traces["train_step"], traces["eval_step"])
            if jax.process_index() == 0:
                write_json(os.path.join(workdir, RESULTS_FILE), results)
            return results

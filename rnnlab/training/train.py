"""Training: ``TrainState``, ``train_step``, ``eval_step`` and ``train_and_evaluate``.

``train_step`` and ``eval_step`` are plain functions of arrays; the loop jits
each once (the state donated) and runs it under a ``jax.sharding.Mesh`` whose
``"data"`` axis splits the batch, with the state replicated. Dropout keys are
``fold_in(state.rng, state.step)`` (weight-noise keys a separate stream of the
same), so a run resumed from a checkpoint repeats the uninterrupted run bit for bit.

A run's workdir::

    config.json      the config (a different one is refused; see checkpoint.RESUMABLE_FIELDS)
    lock             the pid and host of the process training in it (removed on exit)
    checkpoints/     orbax checkpoints: state, best params, data position, data fingerprint
    metrics.jsonl    one JSON object per logged step / evaluation
    tensorboard/     the same scalars for TensorBoard
    results.json     final metrics per split, parameter counts, compilations, wall time
"""

from __future__ import annotations

import functools
import math
import os
import signal
import threading
import time
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from jax.sharding import NamedSharding, PartitionSpec

import rnnlab.data
from rnnlab.training import checkpoint as ckpt
from rnnlab.training import metrics as metrics_lib
from rnnlab.training import models, tasks
from rnnlab.training.workdir import CHECKPOINT_DIR, RESULTS_FILE, read_json, write_json
from rnnlab.types import Array, PyTree

DATA_AXIS = "data"
# fold_in data of the weight-noise key, folded into the step's dropout key: a stream of its own
# (Flax folds in hashes of module paths and small counters).
WEIGHT_NOISE_STREAM = 0x776E6F69


class TrainState(NamedTuple):
    """Everything a training step reads and writes.

    Attributes:
      step: ``int32[]`` optimizer updates done.
      params: the model's parameters (``{"params": ...}`` contents).
      opt_state: the optax state.
      rng: ``uint32[2]`` the run's base key; step ``s`` uses ``fold_in(rng, s)``.
    """

    step: Array
    params: PyTree
    opt_state: PyTree
    rng: Array


# ---------------------------------------------------------------------------
# Optimisers and schedules


def _decay(config: Any, num_steps: int) -> Callable[[int], Array] | float:
    """The schedule after warmup, over ``num_steps - warmup_steps`` steps."""
    peak = config.learning_rate
    steps = max(num_steps - config.warmup_steps, 1)
    final = peak * config.decay_rate
    return {
        "constant": lambda: optax.constant_schedule(peak),
        "cosine": lambda: optax.cosine_decay_schedule(peak, steps, alpha=config.decay_rate),
        "linear": lambda: optax.linear_schedule(peak, final, steps),
        "exponential": lambda: optax.exponential_decay(peak, steps, config.decay_rate),
    }[config.schedule]()


SCHEDULES = ("constant", "cosine", "linear", "exponential")


def make_schedule(config: Any, num_steps: int) -> optax.Schedule:
    """Learning rate per step: linear warmup to ``learning_rate``, then ``config.schedule``.

    Args:
      config: the ``optim`` config section.
      num_steps: the run's training steps.
    """
    decay = _decay(config, num_steps)
    if config.warmup_steps <= 0:
        return decay
    warmup = optax.linear_schedule(0.0, config.learning_rate, config.warmup_steps)
    return optax.join_schedules([warmup, decay], [config.warmup_steps])


OPTIMIZERS: dict[str, Callable[[Any, optax.Schedule], optax.GradientTransformation]] = {
    # adam's weight decay is decoupled (AdamW); the others add weight_decay * params to the gradient
    "adam": lambda c, lr: optax.adamw(lr, weight_decay=c.weight_decay),
    "rmsprop": lambda c, lr: optax.chain(
        optax.add_decayed_weights(c.weight_decay), optax.rmsprop(lr, momentum=c.momentum)
    ),
    "sgd": lambda c, lr: optax.chain(
        optax.add_decayed_weights(c.weight_decay), optax.sgd(lr, momentum=c.momentum or None)
    ),
}


def make_optimizer(config: Any, num_steps: int) -> optax.GradientTransformation:
    """Clip by global norm (if ``clip_norm > 0``), then ``config.name`` with its schedule.

    Args:
      config: the ``optim`` config section.
      num_steps: the run's training steps (for the schedule).
    """
    check_optim_config(config)
    optimizer = OPTIMIZERS[config.name](config, make_schedule(config, num_steps))
    if config.clip_norm > 0:
        return optax.chain(optax.clip_by_global_norm(config.clip_norm), optimizer)
    return optimizer


# ---------------------------------------------------------------------------
# Config checks (before anything is built or compiled)


def _require(condition: bool, field: str, message: str, value: Any) -> None:
    if not condition:
        raise ValueError(f"config.{field} {message}, got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_optim_config(config: Any) -> None:
    """Raises ``ValueError`` naming the field for a bad ``config.optim``."""
    _require(config.name in OPTIMIZERS, "optim.name", f"must be one of {', '.join(OPTIMIZERS)}",
             config.name)
    _require(config.schedule in SCHEDULES, "optim.schedule", f"must be one of {', '.join(SCHEDULES)}",
             config.schedule)
    _require(config.learning_rate > 0 and math.isfinite(config.learning_rate), "optim.learning_rate",
             "must be a positive number", config.learning_rate)
    _require(_is_int(config.warmup_steps) and config.warmup_steps >= 0, "optim.warmup_steps",
             "must be an integer >= 0", config.warmup_steps)
    _require(0 <= config.decay_rate <= 1, "optim.decay_rate", "must lie in [0, 1]", config.decay_rate)
    _require(0 <= config.momentum < 1, "optim.momentum", "must lie in [0, 1)", config.momentum)
    _require(config.clip_norm >= 0, "optim.clip_norm", "must be >= 0", config.clip_norm)
    _require(config.weight_decay >= 0, "optim.weight_decay", "must be >= 0", config.weight_decay)


def check_train_config(config: Any) -> None:
    """Raises ``ValueError`` naming the field for a bad ``config.train``."""
    for field in ("num_steps", "log_every", "max_to_keep", "num_processes"):
        _require(_is_int(config[field]) and config[field] > 0, f"train.{field}",
                 "must be a positive integer", config[field])
    for field in ("eval_every", "checkpoint_every", "patience", "mesh", "seed", "process_id"):
        _require(_is_int(config[field]) and config[field] >= 0, f"train.{field}",
                 "must be an integer >= 0", config[field])
    noise = config.weight_noise
    _require(isinstance(noise, (int, float, np.number)) and not isinstance(noise, bool)
             and math.isfinite(noise) and noise >= 0, "train.weight_noise", "must be a number >= 0", noise)
    _require(isinstance(config.eval_split, str) and config.eval_split != "", "train.eval_split",
             "must name a split", config.eval_split)
    _require(isinstance(config.test_split, str), "train.test_split", "must be a split name or ''",
             config.test_split)
    _require(config.early_stopping_mode in ("max", "min"), "train.early_stopping_mode",
             "must be 'max' or 'min'", config.early_stopping_mode)


def check_config(config: Any) -> None:
    """Checks every section of a run's config; the error names the bad field.

    Raises:
      ValueError: unknown dataset, cell, model kind, pooling, optimizer or
        schedule (listing the known ones), or a size, rate or count out of range.
    """
    dataset = rnnlab.data.get_dataset(config.data.name)
    tasks.check_loss_mask(config.train.loss_mask, dataset.task, dataset.extras)
    _require(_is_int(config.data.batch_size) and config.data.batch_size > 0, "data.batch_size",
             "must be a positive integer", config.data.batch_size)
    models.check_model_config(config.model)
    check_optim_config(config.optim)
    check_train_config(config.train)


# ---------------------------------------------------------------------------
# Steps


def init_state(model: nn.Module, tx: optax.GradientTransformation, key: Array, batch: Mapping[str, Array]) -> TrainState:
    """A fresh state: params from ``key`` for inputs shaped like ``batch``; step 0.

    Args:
      model: the Flax model.
      tx: the optimizer.
      key: ``uint32[2]``; split into the init key and the run's dropout base key.
      batch: a batch (or one of the same shapes) with ``inputs`` and ``lengths``.
    """
    init_key, rng = jax.random.split(key)
    params = model.init({"params": init_key}, batch["inputs"], batch["lengths"], deterministic=True)["params"]
    return TrainState(jnp.asarray(0, jnp.int32), params, tx.init(params), rng)


def add_weight_noise(params: PyTree, key: Array, std: float) -> PyTree:
    """``params`` with Gaussian noise of standard deviation ``std`` added to every float leaf.

    Each leaf draws from its own key of ``jax.random.split(key, num_leaves)``.
    """
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    noisy = [
        leaf + std * jax.random.normal(k, jnp.shape(leaf), jnp.result_type(leaf))
        if jnp.issubdtype(jnp.result_type(leaf), jnp.floating) else leaf
        for leaf, k in zip(leaves, keys)
    ]
    return jax.tree.unflatten(treedef, noisy)


def train_step(
    state: TrainState,
    batch: Mapping[str, Array],
    *,
    model: nn.Module,
    tx: optax.GradientTransformation,
    task: Callable[..., tasks.Stats],
    weight_noise: float = 0.0,
) -> tuple[TrainState, tasks.Stats]:
    """One optimizer update on ``batch``; returns the new state and the batch's stats.

    The loss is the weighted mean ``stats["loss"] sum / count``; stats also
    carry ``grad_norm`` (before clipping). Dropout uses ``fold_in(state.rng, state.step)``.

    With ``weight_noise > 0`` (Graves 2011) the forward and backward pass run at
    ``params + N(0, weight_noise^2)``, noise drawn afresh each step for every
    parameter leaf (embeddings included) from ``fold_in(dropout key,
    WEIGHT_NOISE_STREAM)``; the gradient taken there updates the clean params.
    The stats (``train/loss``) are those of the noisy weights; evaluation uses
    the clean ones.
    """
    dropout_key = jax.random.fold_in(state.rng, state.step)

    def loss_fn(params):
        outputs = model.apply(
            {"params": params}, batch["inputs"], batch["lengths"], deterministic=False,
            rngs={"dropout": dropout_key},
        )
        stats = task(outputs, batch)
        total, count = stats["loss"]
        return total / jnp.maximum(count, 1.0), stats

    at = state.params
    if weight_noise:
        at = add_weight_noise(state.params, jax.random.fold_in(dropout_key, WEIGHT_NOISE_STREAM), weight_noise)
    (_, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(at)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    stats = {**stats, "grad_norm": (optax.global_norm(grads), jnp.ones((), jnp.float32))}
    return TrainState(state.step + 1, params, opt_state, state.rng), stats


def eval_step(params: PyTree, batch: Mapping[str, Array], *, model: nn.Module,
              task: Callable[..., tasks.Stats]) -> tasks.Stats:
    """The stats of ``batch`` under ``params`` (deterministic: no dropout)."""
    outputs = model.apply({"params": params}, batch["inputs"], batch["lengths"], deterministic=True)
    return task(outputs, batch)


def evaluate(eval_fn: Callable[[PyTree, Any], tasks.Stats], params: PyTree, batches: Iterable[Any]) -> dict[str, float]:
    """``{metric: value}`` over all ``batches``, weighted (padding rows count 0)."""
    totals = None
    for batch in batches:
        totals = tasks.accumulate(totals, eval_fn(params, batch))
    if totals is None:
        raise ValueError("the evaluation split yielded no batches")
    return tasks.finalize(jax.device_get(totals))


# ---------------------------------------------------------------------------
# Devices


def make_mesh(num_devices: int) -> jax.sharding.Mesh:
    """A 1-D mesh with axis ``"data"`` over the first ``num_devices`` devices (0 = all)."""
    devices = jax.devices()
    if num_devices > len(devices):
        raise ValueError(f"config.train.mesh asks for {num_devices} devices, but JAX sees {len(devices)}")
    devices = devices[: num_devices or len(devices)]
    return jax.sharding.Mesh(np.asarray(devices), (DATA_AXIS,))


def shard_batch(batch: Mapping[str, np.ndarray], mesh: jax.sharding.Mesh) -> dict[str, Array]:
    """Puts the numeric arrays of a host batch on the mesh, split along the batch axis."""
    sharding = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
    return {
        k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
        for k, v in batch.items()
        if np.asarray(v).dtype.kind in "biuf"
    }


def replicate(tree: PyTree, mesh: jax.sharding.Mesh) -> PyTree:
    """Copies every leaf of ``tree`` to all devices of ``mesh``."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def compile_steps(model: nn.Module, tx: optax.GradientTransformation, task: Callable, mesh: jax.sharding.Mesh,
                  weight_noise: float = 0.0):
    """``(train_fn, eval_fn)``: the steps jitted once, state donated, batch split over ``mesh``."""
    data = NamedSharding(mesh, PartitionSpec(DATA_AXIS))
    replicated = NamedSharding(mesh, PartitionSpec())
    train_fn = jax.jit(
        functools.partial(train_step, model=model, tx=tx, task=task, weight_noise=weight_noise),
        in_shardings=(replicated, data), out_shardings=replicated, donate_argnums=0,
    )
    eval_fn = jax.jit(
        functools.partial(eval_step, model=model, task=task),
        in_shardings=(replicated, data), out_shardings=replicated,
    )
    return train_fn, eval_fn


class CompileCounter:
    """Counts XLA backend compilations while active (a ``jax.monitoring`` listener)."""

    _EVENT = "/jax/core/compile/backend_compile_duration"

    def __init__(self):
        self.count = 0

    def _listen(self, event: str, duration: float, **kwargs) -> None:
        if event == self._EVENT:
            self.count += 1

    def __enter__(self) -> "CompileCounter":
        jax.monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def __exit__(self, *exc) -> None:
        jax.monitoring.unregister_event_duration_listener(self._listen)


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
# The loop


def _example_batch(spec: Any, config: Any) -> dict[str, np.ndarray]:
    """Zero inputs of the smallest bucket's shape, to initialise the parameters."""
    batch_size, steps = config.data.batch_size, min(config.data.buckets)
    if spec.input_kind == "tokens":
        inputs = np.zeros((batch_size, steps), np.int32)
    else:
        inputs = np.zeros((batch_size, steps, spec.input_size), np.float32)
    return {"inputs": inputs, "lengths": np.ones((batch_size,), np.int32)}


def _check_finite(step: int, stats: tasks.Stats, last_good: Optional[int], directory: str) -> None:
    """Raises ``FloatingPointError`` if step ``step``'s loss or gradient norm is not finite."""
    values = jax.device_get({k: stats[k] for k in ("loss", "grad_norm")})
    loss = float(values["loss"][0]) / max(float(values["loss"][1]), 1.0)
    grad_norm = float(values["grad_norm"][0])
    if not (math.isfinite(loss) and math.isfinite(grad_norm)):
        kept = f"the last good checkpoint is step {last_good} in {directory}" if last_good else "no checkpoint was saved"
        raise FloatingPointError(
            f"training stopped at step {step}: loss {loss}, gradient norm {grad_norm}; {kept}. "
            "Lower config.optim.learning_rate or set config.optim.clip_norm, and launch with a new "
            "--workdir: this workdir's config is pinned (docs/training.md, 'What rnnlab guarantees')."
        )


class _EarlyStopping(NamedTuple):
    best: Optional[float] = None
    best_step: int = 0
    bad_evals: int = 0

    def update(self, value: float, step: int, mode: str) -> "_EarlyStopping":
        better = self.best is None or (value > self.best if mode == "max" else value < self.best)
        if better:
            return _EarlyStopping(value, step, 0)
        return self._replace(bad_evals=self.bad_evals + 1)


def count_params(params: PyTree, exclude: tuple[str, ...] = ("embed",)) -> int:
    """Parameters in ``params``, leaving out leaves whose path contains a string of ``exclude``.

    The embedding is left out by default: it is the same for every model of an
    experiment and would hide the difference between the cells.
    """
    leaves = jax.tree_util.tree_leaves_with_path(params)
    return int(sum(np.size(v) for path, v in leaves
                   if not any(e in jax.tree_util.keystr(path) for e in exclude)))


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


def _is_finished(results: Mapping[str, Any], num_steps: int) -> bool:
    """Whether ``results`` end a run of ``num_steps`` steps: it stopped early or reached them."""
    return bool(results.get("stopped_early")) or int(results.get("step", 0)) >= num_steps


def _check_splits(spec: Any, tc: Any) -> None:
    """Raises ``ValueError`` naming the field when ``eval_split`` / ``test_split`` is not a split of ``spec``."""
    for field in ("eval_split", "test_split"):
        split = tc[field]
        if split and split not in spec.splits:
            raise ValueError(f"config.train.{field} {split!r} is not a split of dataset {spec.name!r}; "
                             f"its splits: {', '.join(spec.splits)}")


def _check_metric_names(config: Any, model: nn.Module, task: Callable, init_fn: Callable,
                        example: Mapping[str, np.ndarray], shard: Mapping[str, int]) -> None:
    """Checks ``early_stopping_metric`` against the metrics of ``eval_split``, tracing without compiling.

    The names come from ``jax.eval_shape`` of ``eval_step`` on the split's first batch.
    """
    tc = config.train
    if not tc.early_stopping_metric:
        return
    batches = rnnlab.data.make_loader(config.data, tc.eval_split, seed=tc.seed, shuffle=False, num_epochs=1, **shard)
    batch = {k: v for k, v in next(iter(batches)).items() if np.asarray(v).dtype.kind in "biuf"}
    abstract = jax.eval_shape(init_fn, jax.ShapeDtypeStruct((2,), jnp.uint32), example)
    names = jax.eval_shape(functools.partial(eval_step, model=model, task=task), abstract.params, batch)
    if tc.early_stopping_metric not in names:
        raise ValueError(
            f"config.train.early_stopping_metric {tc.early_stopping_metric!r} is not among the "
            f"{tc.eval_split} metrics: {', '.join(sorted(names))}"
        )


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


def _check_checkpoint(info: Mapping[str, Any], step: int, directory: str, pinned: Mapping[str, Any],
                      fingerprint: Mapping[str, Any]) -> None:
    """Refuses a restored checkpoint of another run, or one whose source data has changed since."""
    where = f"checkpoint step {step} in {directory}"
    if "config" in info:
        diff = ckpt.config_diff(info["config"], pinned)
        if diff:
            raise ValueError(
                f"{where} was saved by another run; its config differs from this one:\n  "
                + "\n  ".join(diff) + f"\nMove {directory} away to start afresh, or use a new --workdir."
            )
    if "data_fingerprint" in info:
        changed = _data_changed(info["data_fingerprint"], fingerprint)
        if changed:
            raise ValueError(
                f"the data changed since {where} was saved; resuming would train on different data:\n  "
                + "\n  ".join(changed) + "\nRestore the original data, or start a new --workdir "
                "(docs/training.md, 'What rnnlab guarantees')."
            )


def train_and_evaluate(config: Any, workdir: str) -> Optional[dict[str, Any]]:
    """Trains ``config`` in ``workdir``, resuming from its latest good checkpoint.

    Evaluates ``config.train.eval_split`` every ``eval_every`` steps (early
    stopping on ``early_stopping_metric``), checkpoints every
    ``checkpoint_every`` steps, and at the end evaluates ``test_split`` with the
    best parameters (the last ones without early stopping) into
    ``workdir/results.json``. SIGTERM / SIGINT save a checkpoint and return None.

    A finished run (it reached ``num_steps`` or stopped early) trains no further
    step: with its ``results.json`` the results are returned as they are,
    without it they are evaluated from the final checkpoint. One process trains
    in a workdir at a time (:class:`rnnlab.training.checkpoint.WorkdirLock`).
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
    check_config(config)
    tc = config.train
    with ckpt.WorkdirLock(workdir, process=tc.process_id if tc.num_processes > 1 else 0):
        if tc.num_processes > 1:
            jax.distributed.initialize(tc.coordinator_address, tc.num_processes, tc.process_id)
        return _train_and_evaluate(config, workdir, start_time)


def _train_and_evaluate(config: Any, workdir: str, start_time: float) -> Optional[dict[str, Any]]:
    tc = config.train
    is_main = jax.process_index() == 0
    if is_main:
        ckpt.check_config(workdir, config)
    previous = _read_results(workdir)
    if previous is not None and _is_finished(previous, tc.num_steps):
        how = (f"stopped early at step {previous.get('step')} (best step {previous.get('best_step')})"
               if previous.get("stopped_early") else f"reached step {previous.get('step')}")
        logging.info("%s holds a finished run: it %s; nothing to train. Its results (%s): %s. To train "
                     "longer, raise --config.train.num_steps (constant schedule, not after an early "
                     "stop) or use a new --workdir.", workdir, how, RESULTS_FILE,
                     {k: previous[k] for k in (tc.eval_split, tc.test_split) if k in previous})
        return previous

    # Every check before anything is compiled or written.
    mesh = make_mesh(tc.mesh)
    if config.data.batch_size % mesh.size:
        raise ValueError(
            f"config.data.batch_size {config.data.batch_size} must divide evenly over the "
            f"{mesh.size} devices of config.train.mesh"
        )
    spec = rnnlab.data.prepare(config.data)
    _check_splits(spec, tc)
    model = models.build_model(config.model, spec)
    task = tasks.get_task(spec.task, tc.loss_mask)
    tx = make_optimizer(config.optim, tc.num_steps)
    schedule = make_schedule(config.optim, tc.num_steps)
    shard = {"process_index": jax.process_index(), "process_count": jax.process_count()}
    loader = rnnlab.data.make_loader(config.data, "train", seed=tc.seed, shuffle=True, num_epochs=None, **shard)
    init_fn = functools.partial(init_state, model, tx)
    example = _example_batch(spec, config)
    _check_metric_names(config, model, task, init_fn, example, shard)
    fingerprint = rnnlab.data.data_fingerprint(config.data)
    checkpoints = ckpt.Checkpointer(os.path.join(workdir, CHECKPOINT_DIR), tc.max_to_keep)
    pinned = ckpt.pinned_config(config)
    with checkpoints, CompileCounter() as compiles, StopSignal() as stop:
        state = jax.device_get(jax.jit(init_fn)(jax.random.PRNGKey(tc.seed), example))
        best_params, early, stopped_early = state.params, _EarlyStopping(), False
        restored = checkpoints.restore({"state": state, "best_params": best_params})
        if restored is not None:
            saved_step, arrays, info = restored
            _check_checkpoint(info, saved_step, checkpoints.directory, pinned, fingerprint)
            state, best_params = arrays["state"], arrays["best_params"]
            early = _EarlyStopping(*info["early_stopping"])
            stopped_early = bool(info.get("stopped_early", tc.early_stopping_metric and tc.patience
                                          and early.bad_evals >= tc.patience))
            try:
                loader.set_state(info["data"])
            except ValueError as e:
                raise ValueError(f"checkpoint step {saved_step} in {checkpoints.directory} does not fit "
                                 f"this run ({e}); it was saved by a run with another config. Move "
                                 f"{checkpoints.directory} away to start afresh, or use a new --workdir.") from e
        step = int(state.step)
        last_saved = step if restored is not None else None
        if is_main:
            ckpt.write_config(workdir, config)
            if previous is not None:
                os.remove(os.path.join(workdir, RESULTS_FILE))
                logging.info("extending the run of %s from step %s to %d: its results.json is removed "
                             "and written again at the end", workdir, previous.get("step"), tc.num_steps)
        if step >= tc.num_steps or stopped_early:
            logging.info("the checkpoint of step %d ends the run (%s): evaluating it, no training", step,
                         "stopped early" if stopped_early else f"num_steps {tc.num_steps}")
        logging.info("model %s on %s (%s task), %d parameters, %d device(s) in %d process(es); starting at "
                     "step %d", config.model.kind, spec.name, spec.task, count_params(state.params, exclude=()),
                     mesh.size, jax.process_count(), step)
        state = replicate(state, mesh)
        train_fn, eval_fn = compile_steps(model, tx, task, mesh, weight_noise=float(tc.weight_noise))
        writer = metrics_lib.MetricWriter(workdir, step, enabled=is_main)
        progress = metrics_lib.Progress(tc.num_steps)

        def evaluate_split(split: str, params: PyTree) -> dict[str, float]:
            batches = rnnlab.data.make_loader(config.data, split, seed=tc.seed, shuffle=False, num_epochs=1,
                                              **shard)
            return evaluate(eval_fn, params, (shard_batch(b, mesh) for b in batches))

        def save(at_step: int) -> None:
            info = {"data": loader.get_state(), "early_stopping": list(early), "stopped_early": stopped_early,
                    "config": pinned, "data_fingerprint": fingerprint}
            checkpoints.save(at_step, {"state": state, "best_params": best_params}, info)

        window, window_start, window_tokens, start_step = None, time.time(), 0, step
        pending = None  # (step, stats) of the previous step, checked once the next one is queued
        last_eval = (None, None)
        try:
            while step < tc.num_steps and not stopped_early:
                if stop.received is not None:
                    break
                batch = next(loader)
                window_tokens += int(np.sum(batch["lengths"]))
                state, stats = train_fn(state, shard_batch(batch, mesh))
                step += 1
                if pending is not None:
                    _check_finite(*pending, last_saved, checkpoints.directory)
                pending = (step, stats)
                window = tasks.accumulate(window, stats)
                if step % tc.log_every == 0 or step == tc.num_steps:
                    _check_finite(*pending, last_saved, checkpoints.directory)
                    elapsed = time.time() - window_start
                    numbers = {f"train/{k}": v for k, v in tasks.finalize(jax.device_get(window)).items()}
                    numbers["train/steps_per_sec"] = window_steps = (step - start_step) / max(elapsed, 1e-9)
                    numbers["train/tokens_per_sec"] = window_tokens / max(elapsed, 1e-9)
                    numbers["train/learning_rate"] = float(schedule(step - 1))
                    writer.write(step, numbers)
                    metrics_lib.log_metrics(step, tc.num_steps, numbers,
                                            eta=(tc.num_steps - step) / max(window_steps, 1e-9))
                    progress.update(step, f"loss {numbers['train/loss']:.4f}")
                    window, window_start, window_tokens, start_step = None, time.time(), 0, step
                if tc.eval_every and step % tc.eval_every == 0 or step == tc.num_steps:
                    _check_finite(*pending, last_saved, checkpoints.directory)
                    paused_from = time.time()
                    results = evaluate_split(tc.eval_split, state.params)
                    last_eval = (step, results)
                    writer.write(step, {f"{tc.eval_split}/{k}": v for k, v in results.items()})
                    metrics_lib.log_metrics(step, tc.num_steps,
                                            {f"{tc.eval_split}/{k}": v for k, v in results.items()})
                    if tc.early_stopping_metric:
                        early = early.update(results[tc.early_stopping_metric], step, tc.early_stopping_mode)
                        if early.best_step == step:
                            best_params = jax.device_get(state.params)
                        if tc.patience and early.bad_evals >= tc.patience:
                            logging.info("early stopping at step %d: %s %s has not improved for %d "
                                         "evaluations (best %.4f at step %d)", step, tc.eval_split,
                                         tc.early_stopping_metric, early.bad_evals, early.best, early.best_step)
                            stopped_early = True
                    window_start += time.time() - paused_from
                if (tc.checkpoint_every and step % tc.checkpoint_every == 0) or step == tc.num_steps or stopped_early:
                    _check_finite(*pending, last_saved, checkpoints.directory)
                    paused_from = time.time()
                    save(step)
                    last_saved = step
                    window_start += time.time() - paused_from
            if pending is not None:
                _check_finite(*pending, last_saved, checkpoints.directory)
            if stop.received is not None and step < tc.num_steps and not stopped_early:
                if last_saved != step:
                    save(step)
                logging.warning("signal %d: saved step %d in %s and stopped; run the same command "
                                "again to resume", stop.received, step, checkpoints.directory)
                return None

            final_params = state.params
            if tc.early_stopping_metric and early.best is not None and early.best_step != step:
                final_params = replicate(best_params, mesh)
            results = {"step": step, "stopped_early": stopped_early, "num_params": count_params(state.params),
                       "num_params_all": count_params(state.params, exclude=()),
                       "data_fingerprint": fingerprint}
            if tc.early_stopping_metric and early.best is not None:
                results["best_step"] = early.best_step
            if final_params is not state.params or last_eval[0] != step:
                last_eval = (step, evaluate_split(tc.eval_split, final_params))
            results[tc.eval_split] = last_eval[1]
            if tc.test_split:
                results[tc.test_split] = evaluate_split(tc.test_split, final_params)
                writer.write(step, {f"{tc.test_split}/{k}": v for k, v in results[tc.test_split].items()},
                             once=True)
                metrics_lib.log_metrics(step, tc.num_steps,
                                        {f"{tc.test_split}/{k}": v for k, v in results[tc.test_split].items()})
            results["compilations"] = {
                "total": compiles.count,
                "train_step": train_fn._cache_size(),
                "eval_step": eval_fn._cache_size(),
            }
            results["wall_time_sec"] = time.time() - start_time
            logging.info("finished at step %d in %s; %d XLA compilations (train_step %d, eval_step %d)",
                         step, metrics_lib.format_duration(results["wall_time_sec"]), compiles.count,
                         results["compilations"]["train_step"], results["compilations"]["eval_step"])
            if is_main:
                write_json(os.path.join(workdir, RESULTS_FILE), results)
            return results
        finally:
            progress.close()
            writer.close()

"""The step functions: ``TrainState``, ``train_step``, ``eval_step``, and their one compilation.

``train_step`` and ``eval_step`` are plain functions of arrays; :func:`compile_steps`
jits each once (the state donated) for a :mod:`rnnlab.training.sharding` mesh.
Dropout keys are ``fold_in(state.rng, state.step)`` (weight-noise keys a separate
stream of the same), so a run resumed from a checkpoint repeats the
uninterrupted run bit for bit.
"""

from __future__ import annotations

import collections
import functools
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from rnnlab.data.registry import INPUT_DTYPES
from rnnlab.training import tasks
from rnnlab.training.sharding import batch_sharding, replicated
from rnnlab.types import Array, PyTree

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


def example_batch(spec: Any, batch_size: int, num_steps: int) -> dict[str, np.ndarray]:
    """Zero ``inputs`` (``int32[B, T]`` tokens or ``f32[B, T, D]`` features) and ``lengths int32[B]`` of 1.

    The shapes :func:`init_state` initialises the parameters from (the params
    depend on them only through D).
    """
    shape = (batch_size, num_steps) if spec.input_kind == "tokens" else (batch_size, num_steps, spec.input_size)
    return {"inputs": np.zeros(shape, INPUT_DTYPES[spec.input_kind]), "lengths": np.ones((batch_size,), np.int32)}


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


def _counting(fn: Callable, traces: collections.Counter, name: str) -> Callable:
    """``fn`` that adds 1 to ``traces[name]`` each time it is traced (once per compiled shape)."""

    @functools.wraps(fn)
    def traced(*args, **kwargs):
        traces[name] += 1
        return fn(*args, **kwargs)

    return traced


def compile_steps(model: nn.Module, tx: optax.GradientTransformation, task: Callable, mesh: jax.sharding.Mesh,
                  weight_noise: float = 0.0, traces: Optional[collections.Counter] = None):
    """``(train_fn, eval_fn)``: the steps jitted once, state donated, batch split over ``mesh``.

    Args:
      model, tx, task, weight_noise: bound into :func:`train_step` / :func:`eval_step`.
      mesh: the batch is split along its ``"data"`` axis, the state replicated.
      traces: if given, counts the traces of each (``"train_step"``, ``"eval_step"``):
        one per batch shape, i.e. per compilation.
    """
    traces = collections.Counter() if traces is None else traces
    train = functools.partial(train_step, model=model, tx=tx, task=task, weight_noise=weight_noise)
    evaluate_ = functools.partial(eval_step, model=model, task=task)
    data, whole = batch_sharding(mesh), replicated(mesh)
    train_fn = jax.jit(_counting(train, traces, "train_step"), in_shardings=(whole, data),
                       out_shardings=whole, donate_argnums=0)
    eval_fn = jax.jit(_counting(evaluate_, traces, "eval_step"), in_shardings=(whole, data), out_shardings=whole)
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


def count_params(params: PyTree, exclude: tuple[str, ...] = ("embed",)) -> int:
    """Parameters in ``params``, leaving out leaves whose path contains a string of ``exclude``.

    The embedding is left out by default: it is the same for every model of an
    experiment and would hide the difference between the cells.
    """
    leaves = jax.tree_util.tree_leaves_with_path(params)
    return int(sum(np.size(v) for path, v in leaves
                   if not any(e in jax.tree_util.keystr(path) for e in exclude)))

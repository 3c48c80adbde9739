"""The step functions: ``TrainState``, ``train_step``, ``eval_step``, and their one compilation.

``train_step`` and ``eval_step`` are plain functions of arrays; :func:`compile_steps`
jits each once (the state donated) for a :mod:`rnnlab.training.sharding` mesh.
Dropout keys are ``fold_in(state.rng, state.step)`` (weight-noise keys a separate
stream of the same), so a run resumed from a checkpoint repeats the
uninterrupted run bit for bit.

Truncated BPTT (``data.chunk_len``): the state also holds ``carry``, the
final carry of every batch row (sharded like the batch). Each step starts a
row from it, or from the model's initial carry where the batch's ``reset``
flag says the row begins a new sequence (:func:`start_carry`), and keeps the
step's final carry (gradient stopped) for the next. ``eval_step`` takes and
returns such a carry for chunked evaluation.
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
from rnnlab.training.optim import averaged_params
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
      carry: truncated BPTT: the model's final carry of each batch row after
        the last step (leaves ``[B, H]``, one carry per layer); ``None``: whole sequences.
    """

    step: Array
    params: PyTree
    opt_state: PyTree
    rng: Array
    carry: PyTree = None


def evaluated_params(state: TrainState) -> PyTree:
    """The params a run evaluates, keeps as its early-stopping best and serves: the debiased average of the params
    where the optimizer keeps one (``optim.average_decay > 0``, :func:`rnnlab.training.optim.average_params`), else
    ``state.params``."""
    return averaged_params(state.opt_state, state.params)


def init_state(model: nn.Module, tx: optax.GradientTransformation, key: Array, batch: Mapping[str, Array],
               carry: bool = False) -> TrainState:
    """A fresh state: params from ``key`` for inputs shaped like ``batch``; step 0.

    Args:
      model: the Flax model.
      tx: the optimizer.
      key: ``uint32[2]``; split into the init key and the run's dropout base key.
      batch: a batch (or one of the same shapes) with ``inputs`` and ``lengths``.
      carry: truncated BPTT: the state holds a carry per batch row, the model's initial one.
    """
    init_key, rng = jax.random.split(key)
    params = model.init({"params": init_key}, batch["inputs"], batch["lengths"], deterministic=True)["params"]
    rows = initial_carry(model, params, batch) if carry else None
    return TrainState(jnp.asarray(0, jnp.int32), params, tx.init(params), rng, rows)


def initial_carry(model: nn.Module, params: PyTree, batch: Mapping[str, Array]) -> PyTree:
    """The carry the model starts every row of ``batch`` from: its final carry after 0 steps.

    Args:
      batch: ``inputs`` (``[B, T, ...]``, T >= 1) and ``lengths int32[B]``.

    Returns:
      The model's carry (leaves ``[B, H]``), gradient stopped.
    """
    inputs, lengths = batch["inputs"][:, :1], jnp.zeros_like(batch["lengths"])
    carry, _ = model.apply({"params": params}, inputs, lengths, deterministic=True, return_carry=True)
    return jax.lax.stop_gradient(carry)


def start_carry(carry: PyTree, initial: PyTree, reset: Array) -> PyTree:
    """Per row, ``initial`` where ``reset bool[B]`` (a new sequence starts), else ``carry`` (leaves ``[B, ...]``)."""
    def pick(c, c0):
        return jnp.where(jnp.reshape(reset, reset.shape + (1,) * (jnp.ndim(c) - 1)), c0, c)

    return jax.tree.map(pick, carry, initial)


def apply_model(model: nn.Module, params: PyTree, batch: Mapping[str, Array], carry: PyTree,
                **kwargs: Any) -> tuple[Array, PyTree]:
    """``(outputs, final carry)`` of the model on ``batch``.

    With ``carry`` (truncated BPTT) each row starts from it, or from the
    model's initial carry where ``batch["reset"]``; the final carry comes back
    with its gradient stopped. Without (``None``), whole sequences from the
    initial carry, and ``None`` comes back.

    Args:
      kwargs: ``deterministic`` and ``rngs`` of ``model.apply``.
    """
    variables = {"params": params}
    if carry is None:
        return model.apply(variables, batch["inputs"], batch["lengths"], **kwargs), None
    start = start_carry(carry, initial_carry(model, params, batch), batch["reset"])
    final, outputs = model.apply(variables, batch["inputs"], batch["lengths"], initial_carry=start,
                                 return_carry=True, **kwargs)
    return outputs, jax.lax.stop_gradient(final)


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

    With ``state.carry`` (truncated BPTT, :func:`apply_model`) the new state
    holds the batch's final carry, and a batch whose loss counts nothing (no
    row ends a sequence, with one target per sequence) leaves the params and
    the optimizer state as they were: it only moves the carries on.
    """
    dropout_key = jax.random.fold_in(state.rng, state.step)

    def loss_fn(params):
        outputs, carry = apply_model(model, params, batch, state.carry, deterministic=False,
                                     rngs={"dropout": dropout_key})
        stats = task(outputs, batch)
        total, count = stats["loss"]
        return total / jnp.maximum(count, 1.0), (stats, carry)

    at = state.params
    if weight_noise:
        at = add_weight_noise(state.params, jax.random.fold_in(dropout_key, WEIGHT_NOISE_STREAM), weight_noise)
    (_, (stats, carry)), grads = jax.value_and_grad(loss_fn, has_aux=True)(at)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    if state.carry is not None:
        counted = stats["loss"][1] > 0
        params, opt_state = jax.tree.map(lambda new, old: jnp.where(counted, new, old), (params, opt_state),
                                         (state.params, state.opt_state))
    stats = {**stats, "grad_norm": (optax.global_norm(grads), jnp.ones((), jnp.float32))}
    return TrainState(state.step + 1, params, opt_state, state.rng, carry), stats


def eval_step(params: PyTree, batch: Mapping[str, Array], carry: PyTree = None, *, model: nn.Module,
              task: Callable[..., tasks.Stats]) -> tasks.Stats | tuple[tasks.Stats, PyTree]:
    """The stats of ``batch`` under ``params`` (deterministic: no dropout).

    With ``carry`` (chunked evaluation: leaves ``[B, H]``; ``batch["reset"]``
    marks the rows that start a sequence), ``(stats, final carry)``.
    """
    outputs, final = apply_model(model, params, batch, carry, deterministic=True)
    return task(outputs, batch) if carry is None else (task(outputs, batch), final)


def evaluate(eval_fn: Callable, params: PyTree, batches: Iterable[Any], carry: PyTree = None) -> dict[str, float]:
    """``{metric: value}`` over all ``batches``, weighted (padding rows count 0).

    With ``carry`` (chunked batches), ``eval_fn(params, batch, carry) -> (stats,
    carry)`` passes each row's carry on to its next chunk; ``carry`` only gives
    the structure and placement (every row's first chunk starts a sequence).
    """
    totals = None
    for batch in batches:
        if carry is None:
            stats = eval_fn(params, batch)
        else:
            stats, carry = eval_fn(params, batch, carry)
        totals = tasks.accumulate(totals, stats)
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


def state_sharding(mesh: jax.sharding.Mesh) -> TrainState:
    """The placement of a :class:`TrainState` (a pytree prefix): replicated, the carries split like the batch."""
    whole = replicated(mesh)
    return TrainState(whole, whole, whole, whole, batch_sharding(mesh))


def place_state(state: TrainState, mesh: jax.sharding.Mesh) -> TrainState:
    """``state`` (host or device arrays) put on ``mesh`` as :func:`state_sharding` says."""
    return jax.device_put(state, state_sharding(mesh))


def compile_steps(model: nn.Module, tx: optax.GradientTransformation, task: Callable, mesh: jax.sharding.Mesh,
                  weight_noise: float = 0.0, traces: Optional[collections.Counter] = None,
                  chunk_eval: bool = False):
    """``(train_fn, eval_fn)``: the steps jitted once, state donated, batch split over ``mesh``.

    Args:
      model, tx, task, weight_noise: bound into :func:`train_step` / :func:`eval_step`.
      mesh: the batch (and a state's carries) split along its ``"data"`` axis, the rest replicated.
      traces: if given, counts the traces of each (``"train_step"``, ``"eval_step"``):
        one per batch shape, i.e. per compilation.
      chunk_eval: ``eval_fn(params, batch, carry) -> (stats, carry)`` for chunked
        evaluation; else ``eval_fn(params, batch) -> stats``.
    """
    traces = collections.Counter() if traces is None else traces
    train = functools.partial(train_step, model=model, tx=tx, task=task, weight_noise=weight_noise)
    evaluate_ = functools.partial(eval_step, model=model, task=task)
    data, whole, state = batch_sharding(mesh), replicated(mesh), state_sharding(mesh)
    train_fn = jax.jit(_counting(train, traces, "train_step"), in_shardings=(state, data),
                       out_shardings=(state, whole), donate_argnums=0)
    shardings = ((whole, data, data), (whole, data)) if chunk_eval else ((whole, data), whole)
    eval_fn = jax.jit(_counting(evaluate_, traces, "eval_step"), in_shardings=shardings[0],
                      out_shardings=shardings[1])
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

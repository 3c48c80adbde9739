"""Losses and metrics per task, picked by the dataset's ``spec.task``.

Every task is one pure function ``stats(outputs, batch) -> {name: (sum, count)}``:
weighted sums and the weights they were summed over, so metrics add up exactly
across batches and devices (``metric = sum / count``). ``"loss"`` is always one
of them; training minimises ``loss_sum / loss_count``. Example weights come from
``batch["weights"] f32[B]`` (0 for the padding rows of the last eval batch).

    classify  outputs f32[B, C], targets int32[B]      -> loss (cross-entropy), accuracy
              (+ negated_accuracy when the batch has ``negated f32[B]``)
    tag       outputs f32[B, T, C], targets int32[B, T] -> loss, accuracy per valid token
              (+ masked_accuracy over the steps where ``target_mask f32[B, T]`` is 1)
    density   outputs f32[B, T, F] (logits), targets f32[B, T, F] in {0, 1}
              -> loss = nll: the sum of F Bernoulli NLLs of a frame, per valid step
    regress   outputs f32[B] (or [B, 1]), targets f32[B] -> loss = mse
"""

from __future__ import annotations

from typing import Callable, Mapping

import jax
import jax.numpy as jnp
import optax

from rnnlab.scan import sequence_mask
from rnnlab.types import Array

Stats = dict[str, tuple[Array, Array]]


def _weights(batch: Mapping[str, Array]) -> Array:
    """``f32[B]``: the batch's example weights (ones when it has none)."""
    if "weights" in batch:
        return jnp.asarray(batch["weights"], jnp.float32)
    return jnp.ones(jnp.shape(batch["lengths"]), jnp.float32)


def _step_weights(batch: Mapping[str, Array], num_steps: int) -> Array:
    """``f32[B, T]``: example weight at valid steps, 0 past each length."""
    mask = sequence_mask(batch["lengths"], num_steps)
    return mask.astype(jnp.float32) * _weights(batch)[:, None]


def _weighted(values: Array, weights: Array) -> tuple[Array, Array]:
    return jnp.sum(values * weights), jnp.sum(weights)


def classify_stats(outputs: Array, batch: Mapping[str, Array]) -> Stats:
    """Cross-entropy and accuracy of ``outputs f32[B, C]`` against ``targets int32[B]``."""
    targets = batch["targets"]
    weights = _weights(batch)
    loss = optax.softmax_cross_entropy_with_integer_labels(outputs, targets)
    correct = (jnp.argmax(outputs, axis=-1) == targets).astype(jnp.float32)
    stats = {"loss": _weighted(loss, weights), "accuracy": _weighted(correct, weights)}
    if "negated" in batch:
        negated = jnp.asarray(batch["negated"], jnp.float32) * weights
        stats["negated_accuracy"] = _weighted(correct, negated)
    return stats


def tag_stats(outputs: Array, batch: Mapping[str, Array]) -> Stats:
    """Per-token cross-entropy and accuracy over valid steps: ``outputs f32[B, T, C]``."""
    targets = batch["targets"]
    weights = _step_weights(batch, targets.shape[1])
    loss = optax.softmax_cross_entropy_with_integer_labels(outputs, targets)
    correct = (jnp.argmax(outputs, axis=-1) == targets).astype(jnp.float32)
    stats = {"loss": _weighted(loss, weights), "accuracy": _weighted(correct, weights)}
    if "target_mask" in batch:  # the steps that matter (sentiment words, recalled symbols)
        stats["masked_accuracy"] = _weighted(correct, weights * jnp.asarray(batch["target_mask"], jnp.float32))
    return stats


def density_stats(outputs: Array, batch: Mapping[str, Array]) -> Stats:
    """NLL per valid step: the sum of F Bernoulli NLLs of each frame (``outputs`` are logits)."""
    targets = jnp.asarray(batch["targets"], jnp.float32)
    weights = _step_weights(batch, targets.shape[1])
    nll = jnp.sum(optax.sigmoid_binary_cross_entropy(outputs, targets), axis=-1)
    stats = _weighted(nll, weights)
    return {"loss": stats, "nll": stats}


def regress_stats(outputs: Array, batch: Mapping[str, Array]) -> Stats:
    """Mean squared error of ``outputs f32[B]`` (or ``[B, 1]``) against ``targets f32[B]``."""
    predictions = jnp.reshape(outputs, jnp.shape(batch["targets"]))
    error = jnp.square(predictions - batch["targets"])
    stats = _weighted(error, _weights(batch))
    return {"loss": stats, "mse": stats}


TASKS: dict[str, Callable[[Array, Mapping[str, Array]], Stats]] = {
    "classify": classify_stats,
    "tag": tag_stats,
    "density": density_stats,
    "regress": regress_stats,
}


def get_task(name: str) -> Callable[[Array, Mapping[str, Array]], Stats]:
    """The ``stats`` function of a task; an unknown name lists the known ones."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name]


def finalize(totals: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """``{name: sum / count}`` from accumulated stats (NaN where nothing was counted)."""
    return {name: float(s) / float(c) if float(c) > 0 else float("nan") for name, (s, c) in totals.items()}


def accumulate(totals: Stats | None, stats: Stats) -> Stats:
    """Adds one batch's stats to running totals (``None`` starts them)."""
    if totals is None:
        return dict(stats)
    return jax.tree.map(jnp.add, totals, stats)

"""Losses and metrics per task, picked by the dataset's ``spec.task``.

Every task is one pure function ``stats(outputs, batch) -> {name: (sum, count)}``:
weighted sums and the weights they were summed over, so metrics add up exactly
across batches and devices (``metric = sum / count``). ``"loss"`` is always one
of them; training minimises ``loss_sum / loss_count``. Example weights come from
``batch["weights"] f32[B]`` (0 for the padding rows of the last eval batch).

    classify  outputs f32[B, C], targets int32[B]      -> loss (cross-entropy), accuracy
    tag       outputs f32[B, T, C], targets int32[B, T] -> loss, accuracy per valid token
    density   outputs f32[B, T, F] (logits), targets f32[B, T, F] in {0, 1}
              -> loss = nll: the sum of F Bernoulli NLLs of a frame, per valid step
    regress   outputs f32[B] (or [B, 1]), targets f32[B] -> loss = mse
              per step: outputs f32[B, T, 1] (a step_regressor), targets f32[B, T] -> mse per valid step

The per-step tasks (``tag``, ``density``) take ``loss_mask``, the name of a
batch key ``f32[B, T]`` (``"target_mask"``): the loss is then a mean over the
valid steps where it is 1 only (weights = step weights * mask), while the
other metrics stay over all valid steps. ``classify`` and ``tag`` take
``accuracies``, the ``(batch key, metric name)`` pairs a dataset declares
(``DatasetSpec.accuracies``): the accuracy over the examples (steps) where
that key is 1, e.g. ``negated_accuracy`` over ``negated f32[B]``,
``masked_accuracy`` over ``target_mask f32[B, T]``. ``get_task(name,
loss_mask, accuracies, labels)`` binds them.

Span F1 (``tag`` with BIO / BIOES tag names, ``labels``): the spans of the
predicted and the gold tags are found on device, as seqeval's default
(conlleval-like) mode finds them, and counted: ``span_precision`` is
``(true positives, predicted spans)``, ``span_recall`` ``(true positives,
gold spans)`` and ``span_f1`` ``(2 * true positives, predicted + gold
spans)``, so the F1 of summed counts is again ``sum / count``.
"""

from __future__ import annotations

import functools
import re
from typing import Callable, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import optax

from rnnlab.lengths import sequence_mask
from rnnlab.types import Array

Stats = dict[str, tuple[Array, Array]]

# Span tags: the kind of each tag's first letter (seqeval's default, prefix mode).
SPAN_KINDS = {"O": 0, "B": 1, "I": 2, "E": 3, "S": 4}
_SPAN_TAG = re.compile(r"O|[BIES](-.+)?")


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


def _loss_weights(batch: Mapping[str, Array], weights: Array, loss_mask: str) -> Array:
    """``f32[B, T]``: the step ``weights`` times the mask ``batch[loss_mask]`` (unchanged when ``loss_mask`` is "")."""
    if not loss_mask:
        return weights
    return weights * jnp.asarray(batch[loss_mask], jnp.float32)


def _accuracies(correct: Array, batch: Mapping[str, Array], weights: Array,
                accuracies: Sequence[tuple[str, str]]) -> Stats:
    """``{metric: (sum, count)}``: the accuracy over the examples (steps) where ``batch[key]`` is 1."""
    return {name: _weighted(correct, _loss_weights(batch, weights, key)) for key, name in accuracies}


def classify_stats(outputs: Array, batch: Mapping[str, Array],
                   accuracies: Sequence[tuple[str, str]] = ()) -> Stats:
    """Cross-entropy and accuracy of ``outputs f32[B, C]`` against ``targets int32[B]``.

    ``accuracies``: ``(key, name)`` pairs; adds the accuracy over the rows where
    ``batch[key] f32[B]`` is 1 as ``name`` (e.g. ``("negated", "negated_accuracy")``).
    """
    targets = batch["targets"]
    weights = _weights(batch)
    loss = optax.softmax_cross_entropy_with_integer_labels(outputs, targets)
    correct = (jnp.argmax(outputs, axis=-1) == targets).astype(jnp.float32)
    stats = {"loss": _weighted(loss, weights), "accuracy": _weighted(correct, weights)}
    return {**stats, **_accuracies(correct, batch, weights, accuracies)}


SpanTable = tuple[tuple[int, ...], tuple[int, ...]]


def span_table(labels: Optional[Sequence[str]]) -> Optional[SpanTable]:
    """``(kinds, types)``, a pair of ``int[C]``, for tag names in a BIO / BIOES scheme; else ``None``.

    ``kinds[c]`` is :data:`SPAN_KINDS` of tag ``c``'s first letter (O, B, I, E,
    S) and ``types[c]`` numbers its type, the text after the first ``-``, as
    seqeval reads it (``"B-PER"`` -> ``PER``; ``"O"`` and a bare ``"B"`` have
    seqeval's type ``"_"``, number 0). Tags are a span scheme when each is ``O`` or ``B``/``I``/``E``/``S``
    optionally followed by ``-type``, and one is not ``O``.
    """
    if not labels or not all(_SPAN_TAG.fullmatch(t) for t in labels) or set(labels) == {"O"}:
        return None
    names = [t[2:] or "_" for t in labels]  # seqeval's type "_" for O and bare tags
    type_ids = {name: i for i, name in enumerate(dict.fromkeys(["_", *names]))}
    return tuple(SPAN_KINDS[t[0]] for t in labels), tuple(type_ids[n] for n in names)


def span_boundaries(kind: Array, type_: Array) -> tuple[Array, Array]:
    """Where spans start and end, seqeval's rules on ``kind, type_ int[B, T+1]`` (step T+1: an ``O``).

    Returns:
      ``(starts, ends)``, ``bool[B, T+1]``: a span starts at step t, and a span
      ends at step t - 1 (``ends[:, 0]`` is False).
    """
    o, b, i, e, s = (SPAN_KINDS[k] for k in "OBIES")
    prev_kind = jnp.pad(kind[:, :-1], ((0, 0), (1, 0)), constant_values=o)
    prev_type = jnp.pad(type_[:, :-1], ((0, 0), (1, 0)))
    new_type = prev_type != type_
    ends = ((prev_kind == e) | (prev_kind == s)
            | (((prev_kind == b) | (prev_kind == i)) & ((kind == b) | (kind == s) | (kind == o)))
            | ((prev_kind != o) & new_type))
    starts = ((kind == b) | (kind == s)
              | (((prev_kind == e) | (prev_kind == s) | (prev_kind == o)) & ((kind == e) | (kind == i)))
              | ((kind != o) & new_type))
    return starts, ends


def _spans(tags: Array, lengths: Array, table: SpanTable) -> tuple[Array, Array, Array]:
    """``(starts bool[B, T+1], ends-after int[B, T+1], type int[B, T+1])`` of the spans of ``tags int[B, T]``.

    A span starting at step t covers steps ``t .. end[t] - 1``: ``end[t]`` is
    the first step after t at which a span ends. Steps past each length are ``O``.
    """
    kinds, types = (jnp.asarray(x, jnp.int32) for x in table)
    steps = tags.shape[1] + 1
    valid = jnp.arange(steps)[None, :] < lengths[:, None]
    tags = jnp.pad(tags, ((0, 0), (0, 1)))
    kind = jnp.where(valid, kinds[tags], SPAN_KINDS["O"])
    type_ = jnp.where(valid, types[tags], 0)
    starts, ends = span_boundaries(kind, type_)
    end_steps = jnp.where(ends, jnp.arange(steps), steps)
    following = jnp.pad(end_steps[:, 1:], ((0, 0), (0, 1)), constant_values=steps)  # ends at steps > t
    return starts, jax.lax.cummin(following, axis=1, reverse=True), type_


def span_stats(predicted: Array, targets: Array, lengths: Array, weights: Array, table: SpanTable) -> Stats:
    """Span precision, recall and F1 of ``predicted`` vs ``targets`` (``int[B, T]`` tag ids) as counts.

    A predicted span is a true positive when a gold span has the same first
    and last step and type (seqeval's default mode). ``weights f32[B]`` weigh
    each row's counts.

    Returns:
      ``{"span_precision": (tp, predicted), "span_recall": (tp, gold),
      "span_f1": (2 tp, predicted + gold)}``, each summed over the batch.
    """
    p_start, p_end, p_type = _spans(predicted, lengths, table)
    g_start, g_end, g_type = _spans(targets, lengths, table)
    hit = p_start & g_start & (p_end == g_end) & (p_type == g_type)
    tp, n_pred, n_gold = (jnp.sum(jnp.sum(x, axis=1) * weights) for x in (hit, p_start, g_start))
    return {"span_precision": (tp, n_pred), "span_recall": (tp, n_gold), "span_f1": (2.0 * tp, n_pred + n_gold)}


def tag_stats(outputs: Array, batch: Mapping[str, Array], loss_mask: str = "",
              accuracies: Sequence[tuple[str, str]] = (), spans: Optional[SpanTable] = None) -> Stats:
    """Per-token cross-entropy and accuracy over valid steps: ``outputs f32[B, T, C]``.

    With ``loss_mask`` (a batch key, ``f32[B, T]``) the loss counts only the
    valid steps where the mask is 1; ``accuracy`` stays over all valid steps.
    ``accuracies``: ``(key, name)`` pairs; adds the accuracy over the valid
    steps where ``batch[key] f32[B, T]`` is 1 as ``name`` (e.g. ``("target_mask", "masked_accuracy")``).
    ``spans``: a :func:`span_table`; adds span precision, recall and F1 (:func:`span_stats`).
    """
    targets = batch["targets"]
    weights = _step_weights(batch, targets.shape[1])
    loss = optax.softmax_cross_entropy_with_integer_labels(outputs, targets)
    predicted = jnp.argmax(outputs, axis=-1)
    correct = (predicted == targets).astype(jnp.float32)
    stats = {"loss": _weighted(loss, _loss_weights(batch, weights, loss_mask)),
             "accuracy": _weighted(correct, weights)}
    if spans is not None:
        stats.update(span_stats(predicted, targets, batch["lengths"], _weights(batch), spans))
    return {**stats, **_accuracies(correct, batch, weights, accuracies)}


def density_stats(outputs: Array, batch: Mapping[str, Array], loss_mask: str = "") -> Stats:
    """NLL per valid step: the sum of F Bernoulli NLLs of each frame (``outputs`` are logits).

    With ``loss_mask`` the loss counts only the valid steps where ``batch[loss_mask]``
    is 1; ``nll`` stays over all valid steps.
    """
    targets = jnp.asarray(batch["targets"], jnp.float32)
    weights = _step_weights(batch, targets.shape[1])
    nll = jnp.sum(optax.sigmoid_binary_cross_entropy(outputs, targets), axis=-1)
    return {"loss": _weighted(nll, _loss_weights(batch, weights, loss_mask)), "nll": _weighted(nll, weights)}


def regress_stats(outputs: Array, batch: Mapping[str, Array]) -> Stats:
    """Mean squared error of ``outputs f32[B]`` (or ``[B, 1]``) against ``targets f32[B]``.

    Per step: ``outputs f32[B, T, 1]`` (or ``[B, T]``) against ``targets f32[B, T]``,
    the mean over the valid steps.

    Raises:
      ValueError: (when traced) outputs of one value per sequence for per-step
        targets or the other way round: the model kind does not fit the targets.
    """
    targets = batch["targets"]
    per_step = jnp.ndim(targets) == 2
    if jnp.size(outputs) != jnp.size(targets):
        need = "one output per step (config.model.kind = 'step_regressor')" if per_step else \
            "one output per sequence (config.model.kind = 'classifier' or 'bag_of_words')"
        raise ValueError(f"regress: outputs of shape {jnp.shape(outputs)} for targets of shape "
                         f"{jnp.shape(targets)}; these targets need {need}")
    error = jnp.square(jnp.reshape(outputs, jnp.shape(targets)) - targets)
    weights = _step_weights(batch, targets.shape[1]) if per_step else _weights(batch)
    stats = _weighted(error, weights)
    return {"loss": stats, "mse": stats}


TASKS: dict[str, Callable[[Array, Mapping[str, Array]], Stats]] = {
    "classify": classify_stats,
    "tag": tag_stats,
    "density": density_stats,
    "regress": regress_stats,
}


PER_STEP_TASKS = ("density", "tag")  # the tasks whose loss a ``loss_mask`` can restrict
ACCURACY_TASKS = ("classify", "tag")  # the tasks that report ``accuracies`` over subsets


def check_loss_mask(loss_mask: str, task: str, batch_keys: Optional[Sequence[str]] = None) -> None:
    """Raises ``ValueError`` naming ``config.train.loss_mask`` unless it fits the dataset.

    Args:
      loss_mask: "" (no mask) or the name of a per-step batch key.
      task: the dataset's task.
      batch_keys: the optional keys its batches carry (``DatasetSpec.extras``);
        ``None``: not checked.
    """
    if not loss_mask:
        return
    if task not in PER_STEP_TASKS:
        raise ValueError(f"config.train.loss_mask {loss_mask!r} needs a per-step task "
                         f"({', '.join(PER_STEP_TASKS)}), but the dataset is a {task!r} task; set it to ''")
    if batch_keys is not None and loss_mask not in batch_keys:
        known = ", ".join(repr(k) for k in batch_keys) or "none"
        raise ValueError(f"config.train.loss_mask {loss_mask!r} is not a key of the dataset's batches; "
                         f"its optional keys: {known}")


def get_task(name: str, loss_mask: str = "", accuracies: Sequence[tuple[str, str]] = (),
             labels: Optional[Sequence[str]] = None) -> Callable[[Array, Mapping[str, Array]], Stats]:
    """The ``stats`` function of a task; an unknown name lists the known ones.

    Args:
      name: a key of :data:`TASKS`.
      loss_mask: "" or a per-step batch key that restricts the loss (``tag``, ``density`` only).
      accuracies: the dataset's ``(batch key, metric name)`` subset accuracies
        (``DatasetSpec.accuracies``; reported by ``classify`` and ``tag``).
      labels: the tag names (``DatasetSpec.labels``); ``tag`` with BIO / BIOES
        names adds span precision, recall and F1 (:func:`span_table`).
    """
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(sorted(TASKS))}")
    options = {}
    if loss_mask:
        check_loss_mask(loss_mask, name)
        options["loss_mask"] = loss_mask
    if accuracies and name in ACCURACY_TASKS:
        options["accuracies"] = tuple(tuple(pair) for pair in accuracies)
    table = span_table(labels) if name == "tag" else None
    if table is not None:
        options["spans"] = table
    return functools.partial(TASKS[name], **options) if options else TASKS[name]


def finalize(totals: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """``{name: sum / count}`` from accumulated stats (NaN where nothing was counted)."""
    return {name: float(s) / float(c) if float(c) > 0 else float("nan") for name, (s, c) in totals.items()}


def accumulate(totals: Stats | None, stats: Stats) -> Stats:
    """Adds one batch's stats to running totals (``None`` starts them)."""
    if totals is None:
        return dict(stats)
    return jax.tree.map(jnp.add, totals, stats)

"""Batches from examples: the order of an epoch (the batch plan) and the padding of a batch.

The order of an epoch is a *batch plan*, a pure function of ``(lengths,
buckets, batch_size, seed, epoch, shuffle)``:

1. visit the examples in a seeded random order (or in index order without
   ``shuffle``);
2. send each to the smallest bucket that holds it; cut each bucket's list into
   batches of ``batch_size``;
3. fill a bucket's last, short batch: with ``num_epochs=None`` (training) by
   more examples of the same bucket (``weights`` 1); with a finite
   ``num_epochs`` (evaluation) by copies of the batch's first example with
   ``weights`` 0, so every example counts exactly once per epoch;
4. shuffle the batches (or keep buckets in ascending order).

:func:`collate` pads and stacks one batch's examples, each key in the dtype its
dataset declares (:data:`rnnlab.data.registry.INPUT_DTYPES`, ``TARGET_DTYPES``,
``Dataset.extras``).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from rnnlab.data.registry import INPUT_DTYPES, TARGET_DTYPES, Dataset, DatasetSpec


def bucket_of(lengths: np.ndarray, buckets: Sequence[int]) -> np.ndarray:
    """``int[N]``: the index of the smallest bucket ``>= length`` (crop: the last).

    Args:
      lengths: ``int[N]``.
      buckets: ascending padded lengths.
    """
    return np.minimum(np.searchsorted(np.asarray(buckets), lengths, side="left"), len(buckets) - 1)


def batch_plan(
    lengths: np.ndarray,
    buckets: Sequence[int],
    batch_size: int,
    *,
    seed: int,
    epoch: int,
    shuffle: bool,
    fill_with_examples: bool,
) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """One epoch's batches: a list of ``(indices int[B], weights f32[B], bucket T)``.

    Every example appears in exactly one batch with weight 1. A bucket's last,
    short batch is filled with more examples of that bucket (weight 1) when
    ``fill_with_examples``, else with copies of its first example (weight 0).
    """
    rng = np.random.default_rng([seed, epoch])
    n = len(lengths)
    order = rng.permutation(n) if shuffle else np.arange(n)
    which = bucket_of(np.asarray(lengths)[order], buckets)
    batches = []
    for b, size in enumerate(buckets):
        members = order[which == b]
        for start in range(0, len(members), batch_size):
            idx = members[start : start + batch_size]
            weights = np.ones(batch_size, np.float32)
            short = batch_size - len(idx)
            if short:
                if fill_with_examples:
                    extra = np.resize(members, short + len(members))[len(members) :]
                else:
                    extra = np.full(short, idx[0])
                    weights[len(idx) :] = 0.0
                idx = np.concatenate([idx, extra])
            batches.append((idx, weights, int(size)))
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def check_token_ids(inputs: np.ndarray, vocab_size: int, where: str) -> None:
    """Raises ``ValueError`` if any id lies outside ``[0, vocab_size)`` (never clamps).

    Args:
      inputs: ``int[...]`` token ids.
      vocab_size: the vocabulary size.
      where: names the data in the message (dataset, split, example).
    """
    bad = (inputs < 0) | (inputs >= vocab_size)
    if bad.any():
        raise ValueError(
            f"{where}: token ids {sorted(set(inputs[bad].tolist()))[:10]} lie outside the "
            f"vocabulary [0, {vocab_size})"
        )


def _pad_to(x: np.ndarray, length: int, size: int) -> np.ndarray:
    """``x[:length]`` zero-padded along axis 0 to ``size`` steps."""
    x = np.asarray(x)[:length]
    out = np.zeros((size,) + x.shape[1:], x.dtype)
    out[: len(x)] = x
    return out


def collate(
    examples: Sequence[Mapping[str, Any]],
    weights: np.ndarray,
    size: int,
    dataset: Dataset,
    spec: DatasetSpec,
    where: str,
) -> dict[str, np.ndarray]:
    """Pads and stacks examples into one batch with time axis ``size`` (cropping longer ones).

    Returns a dict ``inputs, lengths, targets, weights`` plus the dataset's extras.
    """
    lengths = np.asarray([min(int(ex["length"]), size) for ex in examples], np.int32)
    batch = {"lengths": lengths, "weights": np.asarray(weights, np.float32)}
    dtypes = {"inputs": INPUT_DTYPES[spec.input_kind], "targets": TARGET_DTYPES[spec.task],
              **{key: extra.dtype for key, extra in dataset.extras.items()}}
    for key, dtype in dtypes.items():
        if key in spec.per_step:
            values = np.stack([_pad_to(ex[key], n, size) for ex, n in zip(examples, lengths)])
        else:
            values = np.asarray([ex[key] for ex in examples])
        batch[key] = values.astype(dtype)
    if spec.input_kind == "tokens":
        check_token_ids(batch["inputs"], spec.vocab_size, where)
    return batch

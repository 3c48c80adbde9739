"""``prepare`` and ``make_loader``: bucketed, padded NumPy batches through grain.

The order of an epoch is a *batch plan* (:func:`rnnlab.data.batching.batch_plan`,
which says how); a ``grain.MapDataset`` over the global batch number reads each
batch's examples from the ``tfds.data_source`` and pads them
(:func:`rnnlab.data.batching.collate`). The grain iterator's state is the next
batch number, so ``set_state(get_state())`` resumes exactly.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import json
import sys
import threading
from typing import Any, Iterator, Mapping, Optional, Sequence

import grain
import numpy as np

from rnnlab.data.batching import batch_plan, collate
from rnnlab.data.builder import prepared_builder
from rnnlab.data.chunking import ChunkLoader, ChunkOptions, chunk_options
from rnnlab.data.registry import (
    Dataset,
    DatasetSpec,
    LoaderOptions,
    config_value,
    get_dataset,
    read_options,
)


def _resolve(data_config: Any) -> tuple[Dataset, Any, LoaderOptions]:
    """The dataset named by ``data_config.name`` with its options and the loader options."""
    dataset = get_dataset(config_value(data_config, "name", None))
    return dataset, dataset.options(data_config), read_options(LoaderOptions, data_config)


def _check_lengths(name: str, lengths: Mapping[str, Sequence[int]], common: LoaderOptions,
                   chunks: ChunkOptions) -> None:
    """Refuses examples longer than the largest bucket unless ``crop``, or every split is read in chunks."""
    if chunks.chunk_eval:
        return
    longest = max(common.buckets)
    for split, ls in lengths.items():
        too_long = [i for i, n in enumerate(ls) if n > longest]
        if too_long and not common.crop:
            raise ValueError(
                f"dataset {name!r} split {split!r}: {len(too_long)} examples are longer than "
                f"the largest bucket (data.buckets max = {longest}; the longest has "
                f"{max(ls)} steps, e.g. example {too_long[0]}). Add a larger bucket to "
                "data.buckets, set data.crop = True, or read in chunks (data.chunk_len with data.chunk_eval)."
            )


def _prepare(data_config: Any) -> tuple[Dataset, LoaderOptions, Any, DatasetSpec]:
    """Resolves, prepares and checks the dataset: ``(dataset, loader options, builder, spec)``."""
    dataset, options, common = _resolve(data_config)
    builder = prepared_builder(dataset, options, common.data_dir)
    metadata = builder.info.metadata
    _check_lengths(dataset.name, metadata["lengths"], common, chunk_options(data_config))
    described = {"task": dataset.task, "per_step": tuple(dataset.per_step), **dataset.describe(options, metadata)}
    spec = DatasetSpec(
        name=dataset.name,
        input_kind=dataset.input_kind,
        splits=tuple(s for s in dataset.splits if s in metadata["lengths"]),
        num_examples={k: len(v) for k, v in metadata["lengths"].items()},
        extras=tuple(dataset.extras),
        accuracies=tuple((key, extra.accuracy) for key, extra in dataset.extras.items() if extra.accuracy),
        **described,
    )
    return dataset, common, builder, spec


def prepare(data_config: Any) -> DatasetSpec:
    """Prepares the dataset named by ``data_config.name`` if needed; returns its spec.

    Generated datasets are generated into ``data_config.data_dir`` on first use
    (later calls read them back); file-based ones are read from
    ``data_config.path``.

    Raises:
      ValueError: unknown dataset name, a bad config field (named in the
        message), or examples longer than ``max(data.buckets)`` without
        ``data.crop``.
      FileNotFoundError: a dataset file is missing (the message says where it
        was looked for and how to get it).
    """
    return _prepare(data_config)[3]


def data_fingerprint(data_config: Any) -> dict[str, Any]:
    """What identifies the data a run reads: record it with the run, compare it on resume.

    Returns:
      ``{"dataset": name, "fingerprint": the prepared copy's name (a hash of the
      options, the dataset version and the source file contents), "files":
      {path: SHA-256}, "examples": a hash of every split's example lengths}``.
      Prepares the dataset if needed (see :func:`prepare`).
    """
    dataset, _, builder, spec = _prepare(data_config)
    options = dataset.options(data_config)
    lengths = json.dumps(builder.info.metadata["lengths"], sort_keys=True)
    return {
        "dataset": spec.name,
        "fingerprint": dataset.fingerprint(options),
        "files": dataset.source_digests(options),
        "examples": hashlib.sha256(lengths.encode()).hexdigest()[:16],
    }


class _MemoSource:
    """A split's data source that keeps each decoded example after its first read.

    tfds decoding costs far more than assembling a batch, and rnnlab's splits
    fit in memory, so epochs after the first read no records.
    """

    def __init__(self, source):
        self._source = source
        self._memo: dict[int, dict] = {}
        self._lock = threading.Lock()

    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        missing = sorted({i for i in indices if i not in self._memo})
        if missing:
            examples = self._source.__getitems__(missing)
            with self._lock:
                self._memo.update(zip(missing, examples))
        return [self._memo[i] for i in indices]


_SOURCES: "collections.OrderedDict[tuple[str, str], _MemoSource]" = collections.OrderedDict()
_MAX_SOURCES = 8


def _split_source(builder, split: str) -> _MemoSource:
    """The shared, memoising source of ``split`` (the last few splits used stay cached)."""
    key = (str(builder.data_dir), split)
    if key not in _SOURCES:
        _SOURCES[key] = _MemoSource(builder.as_data_source(split=split))
        while len(_SOURCES) > _MAX_SOURCES:
            _SOURCES.popitem(last=False)
    _SOURCES.move_to_end(key)
    return _SOURCES[key]


class _Batches:
    """Maps a global batch number to a padded batch (thread-safe plan cache)."""

    def __init__(self, source, lengths, dataset, spec, common, split, seed, shuffle, fill, rows):
        self._source = source
        self._rows = rows  # this process's slice of every global batch
        self._lengths = np.asarray(lengths)
        self._dataset = dataset
        self._spec = spec
        self._common = common
        self._split = split
        self._plan = functools.partial(
            batch_plan,
            self._lengths,
            common.buckets,
            common.batch_size,
            seed=seed,
            shuffle=shuffle,
            fill_with_examples=fill,
        )
        self.per_epoch = len(self._plan(epoch=0)) if len(self._lengths) else 0
        self._cache: dict[int, list] = {}
        self._lock = threading.Lock()

    def _epoch(self, epoch: int) -> list:
        with self._lock:
            if epoch not in self._cache:
                if len(self._cache) > 2:
                    self._cache.pop(min(self._cache))
                self._cache[epoch] = self._plan(epoch=epoch)
            return self._cache[epoch]

    def __call__(self, step: int) -> dict[str, np.ndarray]:
        epoch, k = divmod(int(step), self.per_epoch)
        idx, weights, size = self._epoch(epoch)[k]
        idx, weights = idx[self._rows], weights[self._rows]
        examples = self._source.__getitems__([int(i) for i in idx])
        where = f"dataset {self._spec.name!r} split {self._split!r} examples {idx[:4].tolist()}..."
        return collate(examples, weights, size, self._dataset, self._spec, where)


class Loader:
    """An iterator of batches with exact, JSON-serialisable position state.

    Attributes:
      spec: the :class:`DatasetSpec`.
      batches_per_epoch: batches in one pass over the split.
    """

    def __init__(self, batches: _Batches, spec: DatasetSpec, num_epochs: Optional[int],
                 num_threads: int, identity: dict):
        self.spec = spec
        self.batches_per_epoch = batches.per_epoch
        total = sys.maxsize if num_epochs is None else batches.per_epoch * num_epochs
        read = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=max(2 * num_threads, 1))
        dataset = grain.MapDataset.range(total).map(batches)
        self._iterator = iter(dataset.to_iter_dataset(read))
        self._identity = identity

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        return next(self._iterator)

    def get_state(self) -> dict:
        """The position as a JSON-serialisable dict (the grain iterator state)."""
        return {**self._identity, "grain": self._iterator.get_state()}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores a position saved by :meth:`get_state` of a loader built the same way.

        Raises:
          ValueError: the state was saved by a loader of another dataset, split,
            seed, shuffle or epoch setting.
        """
        differing = {k: (state.get(k), v) for k, v in self._identity.items() if state.get(k) != v}
        if differing or "grain" not in state:
            raise ValueError(f"loader state does not match this loader (saved, expected): {differing}")
        self._iterator.set_state(dict(state["grain"]))


def make_loader(
    data_config: Any,
    split: str,
    *,
    seed: int,
    shuffle: bool,
    num_epochs: Optional[int],
    process_index: int = 0,
    process_count: int = 1,
    chunked: bool = False,
) -> Loader | ChunkLoader:
    """Bucketed, padded batches of ``split``; see the module docstring for the order.

    Each batch is a dict of NumPy arrays with ``B = data_config.batch_size`` rows:
    ``inputs`` (``int32[B, T]`` tokens or ``float32[B, T, D]`` features, zero past
    each length), ``lengths int32[B]``, ``targets`` (``int32[B]`` classify,
    ``int32[B, T]`` tag, ``float32[B, T, F]`` density, ``float32[B]`` regress),
    ``weights float32[B]`` and the dataset's extras (``spec.extras``). T is one of
    ``data_config.buckets``.

    With several processes (hosts), every process builds the same global
    batches and keeps rows ``[i * B / n, (i + 1) * B / n)`` of each, so all
    processes step in lockstep with the same T and together see each example
    once per epoch.

    Args:
      data_config: the data config section.
      split: one of ``spec.splits``.
      seed: seeds the shuffle (each epoch reshuffles from ``(seed, epoch)``).
      shuffle: shuffle examples and the order of batches.
      num_epochs: passes over the split; ``None`` repeats forever.
      process_index: this process's index i (``jax.process_index()``).
      process_count: n processes sharing each global batch (``jax.process_count()``);
        must divide ``data_config.batch_size``.
      chunked: consecutive chunks of ``data_config.chunk_len`` steps instead of
        whole sequences, each row reading one sequence after another (truncated
        BPTT: :mod:`rnnlab.data.chunking`; batches add ``reset bool[B]``, T is
        the chunk length).

    Raises:
      ValueError: unknown split, bad ``num_epochs`` or process arguments, or any
        error of :func:`prepare`.
    """
    dataset, common, builder, spec = _prepare(data_config)
    if split not in spec.splits:
        raise ValueError(f"dataset {spec.name!r} has no split {split!r}; splits: {spec.splits}")
    if not spec.num_examples[split]:
        raise ValueError(f"dataset {spec.name!r} split {split!r} has no examples")
    if num_epochs is not None and (not isinstance(num_epochs, int) or num_epochs < 1):
        raise ValueError(f"num_epochs must be None or a positive integer, got {num_epochs!r}")
    if process_count < 1 or not 0 <= process_index < process_count or common.batch_size % process_count:
        raise ValueError(
            f"process_index {process_index} / process_count {process_count}: need 0 <= index < count "
            f"and count dividing data.batch_size = {common.batch_size}"
        )
    per_process = common.batch_size // process_count
    rows = slice(process_index * per_process, (process_index + 1) * per_process)
    identity = {"dataset": spec.name, "split": split, "seed": int(seed), "shuffle": bool(shuffle),
                "num_epochs": num_epochs, "process_count": process_count}
    if chunked:
        chunk_len = chunk_options(data_config).chunk_len
        if not chunk_len:
            raise ValueError("a chunked loader needs data.chunk_len > 0")
        return ChunkLoader(_split_source(builder, split), builder.info.metadata["lengths"][split], dataset, spec,
                           chunk_len, split, seed, shuffle, num_epochs, rows, common.batch_size, common.buckets,
                           identity)
    batches = _Batches(
        _split_source(builder, split),
        builder.info.metadata["lengths"][split],
        dataset,
        spec,
        common,
        split,
        seed,
        shuffle,
        fill=num_epochs is None,
        rows=rows,
    )
    return Loader(batches, spec, num_epochs, common.num_threads, identity)

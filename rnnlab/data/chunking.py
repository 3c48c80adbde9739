"""Truncated-BPTT input: sequences cut into consecutive chunks, each batch row reading one sequence after another.

With ``data.chunk_len = C > 0`` a batch holds ``B`` rows of at most ``C``
steps (``T = C`` always). A row reads one sequence chunk after chunk (its steps
``[0, C)``, ``[C, 2C)``, ...); when the sequence ends the row takes the next
sequence of the *stream*: every example once per epoch, in the order of the
epoch's batch plan (:func:`rnnlab.data.batching.batch_plan` with its batches
flattened and no filling), epoch after epoch. The last chunk of a sequence
holds its remaining steps (``lengths < C``); a chunk never mixes two
sequences.

A chunk batch has the keys of :func:`rnnlab.data.loader.make_loader`'s batches
(``inputs``, ``lengths``, ``targets``, ``weights``, extras; per-step keys hold
the chunk's steps) plus ``reset bool[B]``: the row starts a new sequence here,
so the model starts it from the initial carry instead of the carry its row left
at the previous batch. ``weights`` is 1 for a row holding a chunk, 0 for an
empty row (a finite loader whose stream has run dry pads with them); with one
target per sequence (``targets`` not per step: classify, regress) it is 1 only
on the sequence's last chunk, so each sequence's target counts once, with the
carry of all its steps, exactly as with whole sequences.

The position is the :class:`StreamState`: the epoch, the next sequence of its
order, and each row's sequence and next step. ``set_state(get_state())``
resumes exactly, mid-sequence included.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Optional, Sequence

import numpy as np

from rnnlab.data.batching import batch_plan, collate
from rnnlab.data.registry import read_options, require

Row = Optional[tuple[int, int]]  # (example index, first step of its next chunk); None: the row is empty


@dataclasses.dataclass(frozen=True)
class ChunkOptions:
    """Data config fields of truncated BPTT (defaults used when a field is absent).

    Attributes:
      chunk_len: C > 0 trains on consecutive chunks of C steps with the carry
        passed on between them (truncated BPTT); 0 trains on whole sequences.
      chunk_eval: with ``chunk_len``, evaluate in chunks too (the carry passed
        on: the same metrics as whole sequences, to float rounding, with memory
        and compile shapes bounded by C and no split needing to fit
        ``data.buckets``); False evaluates whole sequences.
    """

    chunk_len: int = 0
    chunk_eval: bool = False

    def validate(self) -> None:
        require(self.chunk_len >= 0, "chunk_len", "must be >= 0 (0 = whole sequences)", self.chunk_len)
        require(self.chunk_len > 0 or not self.chunk_eval, "chunk_eval", "needs data.chunk_len > 0",
                self.chunk_eval)


def chunk_options(data_config: Any) -> ChunkOptions:
    """The :class:`ChunkOptions` of a data config (validated; absent fields at their defaults)."""
    return read_options(ChunkOptions, data_config)


class StreamState(NamedTuple):
    """Where the rows of a chunk stream stand.

    Attributes:
      epoch: the epoch whose order the next new sequence comes from.
      next: the position in that order of the next new sequence.
      rows: per row, ``(example, first step of its next chunk)`` or ``None`` (empty).
    """

    epoch: int
    next: int
    rows: tuple[Row, ...]

    @classmethod
    def start(cls, num_rows: int) -> "StreamState":
        """Before the first chunk: every row empty, epoch 0."""
        return cls(0, 0, (None,) * num_rows)

    def to_json(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "next": self.next, "rows": [None if r is None else list(r) for r in self.rows]}

    @classmethod
    def from_json(cls, saved: Mapping[str, Any]) -> "StreamState":
        rows = tuple(None if r is None else (int(r[0]), int(r[1])) for r in saved["rows"])
        return cls(int(saved["epoch"]), int(saved["next"]), rows)


class Chunk(NamedTuple):
    """One row of a chunk batch: ``example``'s steps ``[start, start + length)``."""

    example: int
    start: int
    length: int
    reset: bool  # the chunk starts its sequence
    last: bool  # the chunk ends its sequence


def epoch_order(lengths: np.ndarray, buckets: Sequence[int], batch_size: int, *, seed: int, epoch: int,
                shuffle: bool) -> np.ndarray:
    """``int[N]``: every example once, in the order of the epoch's batch plan (its batches flattened)."""
    plan = batch_plan(lengths, buckets, batch_size, seed=seed, epoch=epoch, shuffle=shuffle, fill_with_examples=False)
    return np.concatenate([idx[weights > 0] for idx, weights, _ in plan]) if plan else np.zeros(0, np.int64)


def next_chunks(state: StreamState, order: Callable[[int], np.ndarray], lengths: np.ndarray, chunk_len: int,
                num_epochs: Optional[int]) -> Optional[tuple[list[Optional[Chunk]], StreamState]]:
    """The next batch's chunks and the state after them; ``None`` when every row is empty and the stream is dry.

    An empty row takes the next sequence of the stream (rows in order), moving
    to the next epoch's order when one ends (never past ``num_epochs``; ``None``:
    endless). A row whose chunk ends its sequence is empty afterwards.

    Args:
      state: the stream before the batch.
      order: ``order(epoch) -> int[N]`` (:func:`epoch_order`).
      lengths: ``int[N]`` the examples' lengths.
      chunk_len: C.
      num_epochs: passes over the examples (``None``: endless).

    Returns:
      ``(chunks, state)``: one :class:`Chunk` per row (``None`` for an empty one).
    """
    epoch, position, chunks, rows = state.epoch, state.next, [], []
    for row in state.rows:
        if row is None:
            while position >= len(order(epoch)) and (num_epochs is None or epoch + 1 < num_epochs) and len(lengths):
                epoch, position = epoch + 1, 0
            if position < len(order(epoch)):
                row, position = (int(order(epoch)[position]), 0), position + 1
        if row is None:
            chunks.append(None)
            rows.append(None)
            continue
        example, start = row
        total = int(lengths[example])
        length = max(min(chunk_len, total - start), 0)
        last = start + chunk_len >= total
        chunks.append(Chunk(example, start, length, start == 0, last))
        rows.append(None if last else (example, start + chunk_len))
    if all(c is None for c in chunks):
        return None
    return chunks, StreamState(epoch, position, tuple(rows))


def chunk_of(example: Mapping[str, Any], chunk: Chunk, per_step: Sequence[str]) -> dict[str, Any]:
    """``example`` cut to ``chunk``'s steps: the ``per_step`` keys sliced, ``length`` the chunk's."""
    cut = {k: (np.asarray(v)[chunk.start: chunk.start + chunk.length] if k in per_step else v)
           for k, v in example.items()}
    cut["length"] = chunk.length
    return cut


def chunk_weights(chunks: Sequence[Optional[Chunk]], per_sequence_targets: bool) -> np.ndarray:
    """``f32[B]``: 1 for a row holding a chunk (with per-sequence targets: its sequence's last), else 0."""
    return np.asarray([c is not None and (c.last or not per_sequence_targets) for c in chunks], np.float32)


class ChunkLoader:
    """An iterator of chunk batches (module docstring) with exact, JSON-serialisable state.

    Attributes:
      spec: the :class:`rnnlab.data.DatasetSpec`.
      batches_per_epoch: ``None``: a chunk batch's place in an epoch depends on the rows.
    """

    batches_per_epoch = None

    def __init__(self, source, lengths: np.ndarray, dataset, spec, chunk_len: int, split: str, seed: int,
                 shuffle: bool, num_epochs: Optional[int], rows: slice, batch_size: int, buckets: Sequence[int],
                 identity: dict):
        self.spec = spec
        self._source, self._dataset, self._split = source, dataset, split
        self._lengths = np.asarray(lengths)
        self._chunk_len, self._num_epochs, self._rows = chunk_len, num_epochs, rows
        self._order = functools.lru_cache(maxsize=3)(functools.partial(
            epoch_order, self._lengths, buckets, batch_size, seed=seed, shuffle=shuffle))
        self._state = StreamState.start(batch_size)
        self._identity = {**identity, "chunk_len": chunk_len}

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        step = next_chunks(self._state, lambda e: self._order(epoch=e), self._lengths, self._chunk_len,
                           self._num_epochs)
        if step is None:
            raise StopIteration
        chunks, self._state = step
        return self._batch(chunks[self._rows])

    def _batch(self, chunks: list[Optional[Chunk]]) -> dict[str, np.ndarray]:
        """The padded batch of this process's rows (empty rows: a 0-step piece of a real row's example)."""
        filler = next((c for c in chunks if c is not None), None) or Chunk(0, 0, 0, True, True)
        rows = [c if c is not None else filler._replace(length=0, reset=True) for c in chunks]
        examples = self._source.__getitems__([c.example for c in rows])
        cut = [chunk_of(ex, c, self.spec.per_step) for ex, c in zip(examples, rows)]
        where = f"dataset {self.spec.name!r} split {self._split!r} examples {[c.example for c in rows[:4]]}..."
        batch = collate(cut, chunk_weights(chunks, "targets" not in self.spec.per_step), self._chunk_len,
                        self._dataset, self.spec, where)
        batch["reset"] = np.asarray([c.reset for c in rows], np.bool_)
        return batch

    def get_state(self) -> dict:
        """The position as a JSON-serialisable dict (the :class:`StreamState` of every row)."""
        return {**self._identity, "stream": self._state.to_json()}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores a position saved by :meth:`get_state` of a loader built the same way.

        Raises:
          ValueError: the state was saved by a loader of another dataset, split,
            seed, shuffle, epoch setting or chunk length, or by a whole-sequence loader.
        """
        differing = {k: (state.get(k), v) for k, v in self._identity.items() if state.get(k) != v}
        if differing or "stream" not in state:
            raise ValueError(f"loader state does not match this loader (saved, expected): {differing}"
                             + ("" if "stream" in state else "; it holds no chunk stream (a whole-sequence loader's)"))
        self._state = StreamState.from_json(state["stream"])

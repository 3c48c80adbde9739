"""How the recurrence runs: ONE contract, resolved once, dispatched once.

``rnnlab.unroll(..., backend=Backend.X)`` and ``rnnlab.unroll_batch(...)``
pick the implementation; every backend computes the same function (outputs,
final carry and gradients) as the reference ``lax.scan`` of ``cell.recur``.
As in recurrentgemma's ``jax/scan.py``, the backend is resolved once
(:func:`resolve_backend`: a name or ``None`` -> a member that runs the cell),
then :func:`rnnlab.scan.run_backend` makes one ``match`` over implementations
that all take the same arguments::

    impl(cell, params, xs, keep, carry0, reverse, options) -> (carry, ys)

    cell     the Cell: its definition (what every backend derives its loop from), H and dtype
    params   the cell's params
    xs       f32[T, B, D], time-major, padding already zeroed
    keep     bool[T, B] (True where t < lengths[b]), or None: every sequence whole
    carry0   carry leaves [B, H]
    reverse  run t = lengths[b]-1, ..., 0 (ys still in input order)
    options  a ScanOptions (hashable): remat, unroll, kernel settings

    ys       f32[T, B, H], zero where keep is False

``Backend.REFERENCE`` (:mod:`rnnlab.backends.reference`)
    ``lax.scan`` of ``cell.recur`` (vmapped over the batch); autodiff of the scan. Runs every cell.
``Backend.FUSED`` (:mod:`rnnlab.backends.fused`)
    A time-major batched scan of the definition's equations with per-gate
    products and a custom VJP (weight gradients as one product after the
    loop). Runs every cell with recurrent products (``CellDef.recurrent``).
``Backend.PARALLEL`` (:mod:`rnnlab.backends.parallel`)
    An associative scan over time for cells linear in ``h`` whose gates read
    the input only (``CellDef.linear``: minGRU, minLSTM): O(log T) depth.
``Backend.CUDNN`` (:mod:`rnnlab.backends.cudnn`)
    cuDNN's LSTM through ``jax.experimental.rnn``, on a GPU only, for cells
    whose definition says they compute it exactly (``CellDef.cudnn``).
``Backend.PALLAS`` (:mod:`rnnlab.backends.pallas`)
    A Pallas kernel that runs the whole time loop with ``W_h`` held on chip
    (compiled on a GPU, interpreted elsewhere: slow, for tests), for cells
    whose every recurrent product reads the previous ``h`` (found once, when
    the cell is built: ``cell.facts.reads_hidden``).

No backend holds per-cell code, and nothing here traces a cell: what runs a
cell is read from its definition and from the facts stored with it by
:func:`rnnlab.build_cell`.
"""

from __future__ import annotations

import enum
from typing import Any, NamedTuple, Optional

import jax
import numpy as np

from rnnlab.cells import Cell


class Backend(enum.Enum):
    """How :func:`rnnlab.unroll` runs the recurrence (see the module docstring)."""

    REFERENCE = "reference"
    FUSED = "fused"
    PARALLEL = "parallel"
    CUDNN = "cudnn"
    PALLAS = "pallas"


# Steps per loop iteration when the caller leaves ``unroll`` unset. One table, to be filled from the
# grid of benchmarks/speed.py --unroll_grid (docs/performance.md); 1 until that grid is timed on an
# idle machine (on this CPU, unroll > 1 slowed rnnlab's backward pass before: docs/performance.md).
DEFAULT_UNROLL = {Backend.REFERENCE: 1, Backend.FUSED: 1, Backend.PALLAS: 1}
SEQUENTIAL = tuple(DEFAULT_UNROLL)  # the backends with a loop over time of their own


class ScanOptions(NamedTuple):
    """How a backend runs, beyond which one: one hashable record (a static argument of the kernels).

    Attributes:
      remat: ``None``, or K: keep only every K-th carry for the backward pass and
        recompute the rest (REFERENCE, FUSED). T is padded to a multiple of K
        with masked steps once, before the backend runs.
      unroll: steps per loop iteration of the sequential backends (REFERENCE,
        FUSED forward and backward, PALLAS kernel and its recomputation);
        ``None``: :data:`DEFAULT_UNROLL`.
      hand_backward: FUSED uses the definition's hand-written backward step
        when it has one (False: ``jax.vjp`` of the equations, for measurements).
      interpret: PALLAS runs its kernel in Pallas' interpreter, CUDNN runs
        ``jax.experimental.rnn.lstm_ref`` on the packed weights (any platform);
        ``None``: resolved once by :func:`resolve_options` (interpret unless JAX
        runs on a GPU).
      block_b: PALLAS batch rows per kernel program (``None``: 16 compiled, B interpreted).
      hold_weights: PALLAS loads ``W_h`` once before the time loop (``None``:
        when it takes at most ``pallas.HOLD_WEIGHTS_BYTES``).
    """

    remat: Optional[int] = None
    unroll: Optional[int] = None
    hand_backward: bool = True
    interpret: Optional[bool] = None
    block_b: Optional[int] = None
    hold_weights: Optional[bool] = None


def _positive_or_none(name: str, value: Any) -> Optional[int]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be None or a positive number of steps, got {value!r}")
    return int(value)


def resolve_options(backend: Backend, num_steps: int, remat: Optional[int] = None, unroll: Optional[int] = None,
                    options: Optional[ScanOptions] = None) -> ScanOptions:
    """The :class:`ScanOptions` a resolved ``backend`` runs with on T = ``num_steps``: every ``None`` given its
    value, once (``remat`` at most T, ``unroll`` from :data:`DEFAULT_UNROLL`).

    ``remat`` and ``unroll`` (the keyword arguments of the public calls) override ``options``.

    Raises:
      ValueError: ``remat`` or ``unroll`` not ``None`` or a positive integer, or
        ``remat`` for a backend without its own loop to rematerialise.
    """
    options = options or ScanOptions()
    remat = _positive_or_none("remat", options.remat if remat is None else remat)
    unroll = _positive_or_none("unroll", options.unroll if unroll is None else unroll)
    if remat is not None and backend not in (Backend.REFERENCE, Backend.FUSED):
        raise ValueError(f"remat applies to Backend.REFERENCE and FUSED, not {backend.name}")
    interpret = options.interpret
    if interpret is None:
        interpret = jax.default_backend() != "gpu"
    if remat is not None:
        remat = min(remat, max(int(num_steps), 1))
    return options._replace(remat=remat, unroll=unroll or DEFAULT_UNROLL.get(backend, 1),
                            interpret=bool(interpret), hand_backward=bool(options.hand_backward))


def supported(cell: Cell) -> tuple[Backend, ...]:
    """The backends that run ``cell``, read from its definition and stored facts (REFERENCE always).

    ``CUDNN`` is listed only where JAX runs on a GPU. Nothing is traced here:
    :func:`rnnlab.build_cell` traced the equations once (``cell.facts``).
    """
    from rnnlab.backends import cudnn  # here: it imports jax.experimental.rnn

    definition = cell.definition
    found = [Backend.REFERENCE]
    if definition.recurrent:
        found.append(Backend.FUSED)
    if definition.linear is not None:
        found.append(Backend.PARALLEL)
    if cudnn.supports(cell) and jax.default_backend() == "gpu":
        found.append(Backend.CUDNN)
    if cell.facts.reads_hidden:
        found.append(Backend.PALLAS)
    return tuple(found)


def default_backend(cell: Cell, batched: bool) -> Backend:
    """The fastest correct backend for this call (measured in ``docs/performance.md``).

    For a batch: ``PARALLEL`` for cells linear in ``h``, else ``FUSED``. For a
    single sequence: ``REFERENCE`` (a batch is for :func:`rnnlab.unroll_batch`).
    """
    if not batched:
        return Backend.REFERENCE
    return Backend.PARALLEL if cell.definition.linear is not None else Backend.FUSED


_NEEDS = {
    Backend.FUSED: "recurrent products",
    Backend.PARALLEL: "a linear recurrence",
    Backend.CUDNN: "a plain LSTM in float32 or bfloat16, and a GPU",
    Backend.PALLAS: "recurrent products that all read the previous h",
}


def parse_backend(backend: Any) -> Optional[Backend]:
    """The :class:`Backend` named by an enum member or its value (``"fused"``); ``None`` stays ``None``.

    The one check of a backend name (configs ask it too, before building a model).

    Raises:
      ValueError: an unknown name (the message lists the known ones).
    """
    if backend is None or isinstance(backend, Backend):
        return backend
    try:
        return Backend(backend)
    except ValueError:
        known = ", ".join(b.value for b in Backend)
        raise ValueError(f"unknown backend {backend!r}; known backends: {known}") from None


def resolve_backend(backend: Any, cell: Cell, batched: bool) -> Backend:
    """The member that runs ``cell`` in this call, from a member, its value (``"fused"``) or ``None`` (the default).

    Raises:
      ValueError: an unknown name (:func:`parse_backend`), or a backend that
        cannot run this cell (the message lists those that can).
    """
    backend = parse_backend(backend)
    if backend is None:
        return default_backend(cell, batched)
    runs = supported(cell)
    if backend not in runs:
        raise ValueError(
            f"Backend.{backend.name} cannot run the {cell.kind!r} cell (it needs "
            f"{_NEEDS[backend]}); backends for it: {', '.join(b.value for b in runs)}"
        )
    return backend

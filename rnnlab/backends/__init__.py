"""How the recurrence runs, chosen by one enum argument; what runs a cell is a property of its definition.

``rnnlab.unroll(..., backend=Backend.X)`` and ``rnnlab.unroll_batch(...)``
pick the implementation; every backend computes the same function (outputs,
final carry and gradients) as the reference ``lax.scan`` of ``cell.recur``.

``Backend.REFERENCE``
    ``lax.scan`` of ``cell.recur`` over one sequence, batched by ``jax.vmap``;
    gradients by JAX's autodiff of the scan. Runs every cell.
``Backend.FUSED`` (:mod:`rnnlab.backends.fused`)
    A time-major batched scan of the definition's ``step`` with per-gate
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
    whose every recurrent product reads the previous ``h``
    (:func:`products_read_hidden`).

No backend holds per-cell code: each derives its loop from the
:class:`rnnlab.CellDef`.
"""

from __future__ import annotations

import enum
import functools
from typing import Any

import jax
import jax.numpy as jnp

from rnnlab.cells import Cell, CellDef, hidden
from rnnlab.cells.core import abstract_step


class Backend(enum.Enum):
    """How :func:`rnnlab.unroll` runs the recurrence (see the module docstring)."""

    REFERENCE = "reference"
    FUSED = "fused"
    PARALLEL = "parallel"
    CUDNN = "cudnn"
    PALLAS = "pallas"


@functools.lru_cache(maxsize=None)
def products_read_hidden(definition: CellDef, hidden_size: int = 2) -> bool:
    """Whether every ``dot`` call of the definition's step reads the previous hidden state itself.

    Found by tracing the step abstractly (``jax.eval_shape``) with a ``dot``
    that records its left operands: True for the tanh RNN, LSTM and its
    variants, the reset-after GRU; False for the reset-before GRU, whose
    candidate product reads ``r * h``.
    """
    if not definition.recurrent:
        return False
    reads = []

    def make_dot(carry):
        h = hidden(carry)

        def dot(a, blocks):
            reads.append(a is h)
            return tuple(jnp.zeros_like(h) for _ in blocks)

        return dot

    abstract_step(definition, hidden_size, make_dot=make_dot)
    return bool(reads) and all(reads)


def supported(cell: Cell) -> tuple[Backend, ...]:
    """The backends that run ``cell``, read from its definition (REFERENCE always).

    ``CUDNN`` is listed only where JAX runs on a GPU.
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
    if products_read_hidden(definition):
        found.append(Backend.PALLAS)
    return tuple(found)


def default_backend(cell: Cell, batched: bool) -> Backend:
    """The fastest correct backend for this call (measured in ``docs/performance.md``).

    For a batch: ``PARALLEL`` for cells linear in ``h``, else ``FUSED``. For a
    single sequence: ``REFERENCE`` (under ``jax.vmap``, :func:`rnnlab.unroll`
    hands the whole batch to the batched default; see :mod:`rnnlab.scan`).
    """
    if not batched:
        return Backend.REFERENCE
    runs = supported(cell)
    return Backend.PARALLEL if Backend.PARALLEL in runs else Backend.FUSED


_NEEDS = {
    Backend.FUSED: "recurrent products",
    Backend.PARALLEL: "a linear recurrence",
    Backend.CUDNN: "a plain LSTM in float32 or bfloat16, and a GPU",
    Backend.PALLAS: "recurrent products that all read the previous h",
}


def parse_backend(backend: Any) -> Backend | None:
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


def get_backend(backend: Any, cell: Cell, batched: bool) -> Backend:
    """``Backend`` from an enum member, its value (``"fused"``) or ``None`` (the default for this call).

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

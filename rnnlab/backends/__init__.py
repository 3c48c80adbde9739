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

No backend holds per-cell code: each derives its loop from the
:class:`rnnlab.CellDef`.
"""

from __future__ import annotations

import enum
from typing import Any

from rnnlab.cells import Cell


class Backend(enum.Enum):
    """How :func:`rnnlab.unroll` runs the recurrence (see the module docstring)."""

    REFERENCE = "reference"
    FUSED = "fused"
    PARALLEL = "parallel"


def supported(cell: Cell) -> tuple[Backend, ...]:
    """The backends that run ``cell``, read from its definition (REFERENCE always)."""
    definition = cell.definition
    found = [Backend.REFERENCE]
    if definition.recurrent:
        found.append(Backend.FUSED)
    if definition.linear is not None:
        found.append(Backend.PARALLEL)
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


def get_backend(backend: Any, cell: Cell, batched: bool) -> Backend:
    """``Backend`` from an enum member, its value (``"fused"``) or ``None`` (the default).

    Raises:
      ValueError: an unknown name (the message lists the known ones), or a
        backend that cannot run this cell (the message lists those that can).
    """
    if backend is None:
        return default_backend(cell, batched)
    if not isinstance(backend, Backend):
        try:
            backend = Backend(backend)
        except ValueError:
            known = ", ".join(b.value for b in Backend)
            raise ValueError(f"unknown backend {backend!r}; known backends: {known}") from None
    runs = supported(cell)
    if backend not in runs:
        raise ValueError(
            f"Backend.{backend.name} cannot run the {cell.kind!r} cell (it needs "
            f"{'recurrent products' if backend is Backend.FUSED else 'a linear recurrence'}); "
            f"backends for it: {', '.join(b.value for b in runs)}"
        )
    return backend

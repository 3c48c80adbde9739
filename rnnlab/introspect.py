"""Looking inside a cell: the activation of every gate over a sequence."""

from __future__ import annotations

from typing import Optional

from rnnlab.backends import Backend
from rnnlab.cells import Cell
from rnnlab.scan import unroll
from rnnlab.types import Array, Params


def _tracing(cell: Cell) -> Cell:
    """A cell whose output at each step is ``{gate: f32[H]}`` instead of ``y``.

    Its ``project`` is the identity, so ``recur`` sees the raw input and can
    call the original ``step`` and ``gates`` (XLA computes the shared
    projection once).
    """

    def recur(params, carry, x):
        new_carry, _ = cell.step(params, carry, x)
        return new_carry, cell.gates(params, carry, x)

    return cell._replace(project=lambda params, xs: xs, recur=recur)


def gate_trace(
    cell: Cell,
    params: Params,
    xs: Array,
    length: Optional[Array] = None,
    reverse: bool = False,
) -> dict[str, Array]:
    """Every gate's activation at every step of one sequence.

    Args:
      cell: the cell.
      params: its parameters.
      xs: ``f32[T, D]``.
      length: ``int[]`` valid steps (``None``: all T).
      reverse: trace the cell as run by ``unroll(..., reverse=True)``.

    Returns:
      ``{gate name: f32[T, H]}`` (``cell.gate_names``: LSTM input, forget,
      candidate, output; GRU reset, update, candidate; tanh candidate), zero
      at ``t >= length``. Batch with ``jax.vmap``.
    """
    # The tracing cell swaps project/recur, so it needs the backend that calls them.
    _, traces = unroll(_tracing(cell), params, xs, length, reverse=reverse, backend=Backend.REFERENCE)
    return traces

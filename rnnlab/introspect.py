"""Looking inside a cell: the activation of every gate over a sequence."""

from __future__ import annotations

from typing import Optional

from rnnlab.backends import Backend
from rnnlab.cells import Cell, CellDef, build_cell
from rnnlab.scan import unroll
from rnnlab.types import Array, Params


def tracing_definition(definition: CellDef) -> CellDef:
    """The same cell with ``y`` replaced by ``{gate: f32[..., H]}`` (its ``gate_names``).

    Derived from the definition, so a cell's gates are traced by the same
    equations that every backend runs.
    """
    step = definition.step

    def traced(dot, vecs, carry, px):
        new_carry, _, acts = step(dot, vecs, carry, px)
        return new_carry, {name: acts[name] for name in definition.gate_names}, acts

    return definition._replace(step=traced, backward=None)


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
    tracer = build_cell(tracing_definition(cell.definition), cell.hidden_size,
                        dtype=cell.dtype, options=dict(cell.options))
    _, traces = unroll(tracer, params, xs, length, reverse=reverse, backend=Backend.REFERENCE)
    return traces

"""Looking inside a cell: the activation of every gate over a sequence."""

from __future__ import annotations

from typing import Optional

import jax

from rnnlab.backends import Backend, resolve_options
from rnnlab.cells import Cell, CellDef, build_cell
from rnnlab.contract import check_unroll_arguments
from rnnlab.scan import Layout, run_checked
from rnnlab.types import Array, Params


class GateNameError(KeyError, ValueError):
    """A gate name the cell does not have (a ``KeyError`` for dict lookups, and a ``ValueError``)."""

    def __str__(self) -> str:
        return str(self.args[0])


class GateTraces(dict):
    """``{gate name: f32[T, H]}`` of :func:`gate_trace`: a dict (and pytree) whose missing keys name the cell's gates."""

    cell_kind: str = "?"

    def __missing__(self, name):
        raise GateNameError(f"{name!r} is not a gate of the {self.cell_kind!r} cell; its gates: "
                            f"{', '.join(self)}")


def _traces(kind: str, traces: dict) -> GateTraces:
    result = GateTraces(traces)
    result.cell_kind = kind
    return result


jax.tree_util.register_pytree_with_keys(
    GateTraces,
    lambda t: (tuple((jax.tree_util.DictKey(k), v) for k, v in t.items()), (t.cell_kind, tuple(t))),
    lambda aux, values: _traces(aux[0], dict(zip(aux[1], values))),
    flatten_func=lambda t: (tuple(t.values()), (t.cell_kind, tuple(t))),
)


def tracing_definition(definition: CellDef) -> CellDef:
    """The same cell with ``y`` replaced by ``{gate: f32[..., H]}`` (its ``gate_names``).

    Derived from the definition, so a cell's gates are traced by the same
    equations that every backend runs.
    """
    step = definition.equations

    def traced(dot, vecs, carry, px):
        new_carry, _, acts = step(dot, vecs, carry, px)
        return new_carry, {name: acts[name] for name in definition.gate_names}, acts

    return definition._replace(equations=traced, backward=None)


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
      at ``t >= length``; a :class:`GateTraces` dict whose lookup of another
      name raises :class:`GateNameError` listing the cell's gates. Batch with ``jax.vmap``.

    Raises:
      ValueError: the arguments do not fit the cell (as for :func:`rnnlab.unroll`).
    """
    carry0 = check_unroll_arguments(cell, params, xs, None)
    tracer = build_cell(tracing_definition(cell.definition), cell.hidden_size,
                        dtype=cell.dtype, options=dict(cell.options))
    layout = Layout.of(xs, batched=False)
    _, traces = run_checked(tracer, params, xs, length, carry0, reverse, Backend.REFERENCE,
                            resolve_options(Backend.REFERENCE, layout.num_steps), layout)
    return _traces(cell.kind, {name: traces[name] for name in cell.gate_names})

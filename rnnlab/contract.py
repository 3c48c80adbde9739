"""The checks of an unroll call and of a cell's step: one place, at trace time, shapes and dtypes only.

Every entry that runs a cell (``rnnlab.unroll``, ``unroll_batch``, and through
them ``bidirectional``, ``stack``, ``gate_trace`` and the Flax adapters) calls
:func:`check_unroll_arguments` once per trace. It compares what it is given
with what the cell says it takes, and raises a ``ValueError`` that names the
argument (``xs``, ``params["w_h"]``, ``carry0``), the cell and the expected
and given shapes, instead of an error from deep inside a scan:

- ``xs``: ``[T, D]`` (``[*batch, T, D]`` batched, ``[T, *batch, D]`` time-major) with the cell's D;
- ``params``: every array of ``jax.eval_shape(cell.init, key, D)`` present,
  with its shape (dtypes are free: float64 params for gradient checks);
- ``carry0``: the structure, leaf shapes (``[H]``, ``[*batch, H]`` batched) and
  dtypes of ``cell.initial_carry()``;
- the cell's equations (:func:`check_cell_step`): traced abstractly on one
  example once, when the cell was built (``cell.facts``), they must return
  ``(carry, y, acts)`` with the carry they were given (structure, shapes,
  dtypes), ``y [H]`` and every gate of ``gate_names`` in ``acts`` as ``[H]``.

Nothing here runs per step: shapes are static, so every check happens while
JAX traces, and nothing here traces a cell's equations again.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp

from rnnlab.cells import Cell, CellDef
from rnnlab.types import Array, Carry, Params


def describe(tree: Any) -> str:
    """A short text of a pytree's structure and leaf shapes: ``"LSTMState(h=float32[4], c=float32[4])"``."""
    if hasattr(tree, "shape") and hasattr(tree, "dtype"):
        return f"{jnp.dtype(tree.dtype).name}{list(tree.shape)}"
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        inner = ", ".join(f"{name}={describe(value)}" for name, value in zip(tree._fields, tree))
        return f"{type(tree).__name__}({inner})"
    if isinstance(tree, (tuple, list)):
        inner = ", ".join(describe(value) for value in tree)
        return f"({inner})" if isinstance(tree, tuple) else f"[{inner}]"
    if isinstance(tree, Mapping):
        return "{" + ", ".join(f"{k!r}: {describe(v)}" for k, v in tree.items()) + "}"
    if isinstance(tree, (int, float)):
        return f"{type(tree).__name__} {tree!r}"
    return type(tree).__name__


def _same_layout(given: Any, expected: Any) -> bool:
    """Whether two pytrees have one structure and equal leaf shapes and dtypes."""
    if jax.tree.structure(given) != jax.tree.structure(expected):
        return False
    return all(jnp.shape(g) == tuple(e.shape) and jnp.result_type(g) == e.dtype
               for g, e in zip(jax.tree.leaves(given), jax.tree.leaves(expected)))


# ---------------------------------------------------------------------------
# The equations of a cell


def _equations_name(definition: CellDef) -> str:
    equations = definition.equations
    return f"{getattr(equations, '__module__', '?')}.{getattr(equations, '__qualname__', repr(equations))}"


def _step_problem(cell: Cell) -> Optional[str]:
    """What is wrong with the cell's equations (``None``: nothing), from the trace stored when it was built."""
    definition, hidden_size, facts = cell.definition, cell.hidden_size, cell.facts
    if facts.error is not None:
        return f"fails when traced on one example (carry of zeros, px {definition.num_gates} arrays " \
               f"float32[{hidden_size}]): {facts.error}"
    carry, out = facts.carry, facts.out
    if not isinstance(out, tuple) or len(out) != 3:
        count = f"{len(out)} values" if isinstance(out, (tuple, list)) else f"one value {describe(out)}"
        return f"returned {count}; a step returns three: (new_carry, y, acts)"
    new_carry, y, acts = out
    if not _same_layout(new_carry, carry):
        return (f"returned the carry {describe(new_carry)} from the carry {describe(carry)}; the new "
                "carry must have the structure, shapes and dtypes of the one it was given")
    if not hasattr(y, "shape") or tuple(y.shape) != (hidden_size,):
        return f"returned y {describe(y)}; y must be one array [H={hidden_size}] per example"
    if not isinstance(acts, Mapping):
        return f"returned acts {describe(acts)}; acts must be a dict of named [H] activations"
    missing = [name for name in definition.gate_names if name not in acts]
    if missing:
        return (f"returned acts without the gate(s) {', '.join(map(repr, missing))} of its gate_names "
                f"{definition.gate_names}; acts holds {sorted(acts)}")
    wrong = {name: acts[name] for name in definition.gate_names if tuple(getattr(acts[name], "shape", ())) != (hidden_size,)}
    if wrong:
        return f"returned gates {describe(wrong)}; each gate must be [H={hidden_size}] per example"
    return None


def check_cell_step(cell: Cell) -> None:
    """Checks the cell's equations by the abstract trace :func:`rnnlab.build_cell` stored (``cell.facts``).

    Raises:
      ValueError: the equations fail when traced, return other than ``(carry, y,
        acts)``, a carry that differs from the one they were given, ``y`` not
        ``[H]``, or a gate of ``gate_names`` missing or not ``[H]`` (the
        message names the cell, its equations function and what it returned).
    """
    problem = _step_problem(cell)
    if problem:
        raise ValueError(f"the {cell.kind!r} cell's step ({_equations_name(cell.definition)}, H={cell.hidden_size}) "
                         f"{problem}")


# ---------------------------------------------------------------------------
# The arguments of an unroll call


def _param_shapes(cell: Cell, input_size: int) -> dict[str, tuple[int, ...]]:
    """``{name: shape}`` of ``cell.init(key, input_size)``, by ``jax.eval_shape`` (trace time only)."""
    shapes = jax.eval_shape(functools.partial(cell.init, input_size=input_size), jax.random.key(0))
    return {name: tuple(s.shape) for name, s in shapes.items()}


def _layout(batched: bool, time_major: bool) -> str:
    """The layout of ``xs`` a call takes, for messages: ``[T, D]``, ``[*batch, T, D]`` or ``[T, *batch, D]``."""
    if not batched:
        return "[T, D]"
    return "[T, *batch, D]" if time_major else "[*batch, T, D]"


def check_xs(cell: Cell, params: Params, xs: Array, batched: bool = False, time_major: bool = False) -> None:
    """Raises ``ValueError`` unless ``xs`` is ``[T, D]`` (batched: ``[*batch, T, D]`` with at least one batch
    axis, ``[T, *batch, D]`` time-major) with the D of ``params["w_x"]``."""
    if not batched and jnp.ndim(xs) != 2:
        raise ValueError(
            f"xs must have shape [T, D] (one sequence), got shape {jnp.shape(xs)}; "
            "for a batch [B, T, D], use unroll_batch or jax.vmap over xs and lengths"
        )
    if batched and jnp.ndim(xs) < 3:
        raise ValueError(f"xs must have shape {_layout(batched, time_major)} with at least one batch axis "
                         f"(e.g. [B, T, D]), got shape {jnp.shape(xs)}; for one sequence [T, D], use unroll")
    if not isinstance(params, Mapping) or "w_x" not in params or jnp.ndim(params["w_x"]) != 2:
        given = describe(params["w_x"]) if isinstance(params, Mapping) and "w_x" in params else "missing"
        raise ValueError(f'params["w_x"] must have shape [D, G*H={cell.num_gates * cell.hidden_size}] for the '
                         f"{cell.kind!r} cell, got {given}")
    input_size, width = jnp.shape(params["w_x"])
    if width != cell.num_gates * cell.hidden_size:
        raise ValueError(
            f"params do not fit this {cell.kind} cell: w_x has shape {(input_size, width)}, "
            f"expected [D, {cell.num_gates * cell.hidden_size}] (G={cell.num_gates}, "
            f"H={cell.hidden_size})"
        )
    if jnp.shape(xs)[-1] != input_size:
        raise ValueError(
            f"xs must have shape {_layout(batched, time_major)[:-2]}D={input_size}] to match w_x, "
            f"got shape {jnp.shape(xs)}"
        )


def check_params(cell: Cell, params: Params) -> None:
    """Raises ``ValueError`` naming ``params["<name>"]`` when an array of the cell's init is missing or misshapen.

    Shapes come from ``jax.eval_shape(cell.init, key, D)`` with D from
    ``params["w_x"]`` (checked by :func:`check_xs` first); dtypes are not checked.
    """
    input_size = int(jnp.shape(params["w_x"])[0])
    where = f"the {cell.kind!r} cell (H={cell.hidden_size}, D={input_size}, G={cell.num_gates})"
    for name, shape in _param_shapes(cell, input_size).items():
        if name not in params:
            raise ValueError(f'params["{name}"] is missing: {where} has params {sorted(_param_shapes(cell, input_size))}, '
                             f"got {sorted(params)}")
        if tuple(jnp.shape(params[name])) != shape:
            raise ValueError(f'params["{name}"] has shape {tuple(jnp.shape(params[name]))}, expected {shape} '
                             f"for {where}")


def batch_shape_of(xs: Array, batched: bool, time_major: bool = False) -> tuple[int, ...]:
    """The batch axes of ``xs``: ``()`` for one sequence ``[T, D]``, else those of ``[*batch, T, D]`` (``[T, *batch, D]``)."""
    shape = tuple(jnp.shape(xs))
    if not batched:
        return ()
    return shape[1:-1] if time_major else shape[:-2]


def initial_carry0(cell: Cell, batch_shape: tuple[int, ...] = ()) -> Carry:
    """``cell.initial_carry()`` (in the cell's carry dtype) with leaves ``[*batch_shape, H]``."""
    return jax.tree.map(lambda c: jnp.broadcast_to(c, tuple(batch_shape) + c.shape), cell.initial_carry())


def check_carry0(cell: Cell, carry0: Optional[Carry], batch_shape: tuple[int, ...] = (), name: str = "carry0") -> Carry:
    """``carry0``, or the cell's zero carry when it is ``None``, once it fits the cell.

    Args:
      batch_shape: the batch axes of the call (``()`` for one sequence: leaves ``[H]``).
      name: the argument's name in messages (``initial_carry[1]`` for a stack's second layer).

    Raises:
      ValueError: ``carry0`` differs from ``cell.initial_carry()`` (batched) in
        structure, leaf shapes or dtypes (the message shows both).
    """
    if carry0 is None:
        return initial_carry0(cell, batch_shape)
    expected = jax.eval_shape(functools.partial(initial_carry0, cell, tuple(batch_shape)))
    if not _same_layout(carry0, expected):
        dims = (f"B={batch_shape[0]}, " if len(batch_shape) == 1
                else "".join(f"{n}, " for n in batch_shape))
        raise ValueError(f"{name} must be {describe(expected)} for the {cell.kind!r} cell (leaves "
                         f"[{dims}H={cell.hidden_size}], like cell.initial_carry()), got {describe(carry0)}")
    return carry0


def check_unroll_arguments(cell: Cell, params: Params, xs: Array, carry0: Optional[Carry],
                           batched: bool = False, time_major: bool = False, name: str = "carry0") -> Carry:
    """All the checks of an unroll call (module docstring); returns the carry to start from.

    Args:
      cell, params: the cell and its params.
      xs: ``f32[T, D]``, or batched ``f32[*batch, T, D]`` (``[T, *batch, D]`` when ``time_major``).
      carry0: the initial carry, or ``None`` (the cell's zeros, in its carry dtype).
      batched: the call takes a batch (``unroll_batch``, a module).
      name: the name of ``carry0`` in messages.

    Returns:
      ``carry0``, leaves ``[H]`` (``[*batch, H]`` batched).

    Raises:
      ValueError: the first check that fails, naming the argument, the cell and the shapes.
    """
    if not isinstance(cell, Cell):
        raise TypeError(f"cell must be an rnnlab.Cell (e.g. rnnlab.lstm(H)), got {type(cell).__name__}")
    check_xs(cell, params, xs, batched, time_major)
    check_params(cell, params)
    carry0 = check_carry0(cell, carry0, batch_shape_of(xs, batched, time_major), name)
    check_cell_step(cell)
    return carry0

"""The checks of an unroll call and of a cell's step: one place, at trace time, shapes and dtypes only.

Every entry that runs a cell (``rnnlab.unroll``, ``unroll_batch``, and through
them ``bidirectional``, ``stack``, ``gate_trace`` and the Flax adapters) calls
:func:`check_unroll_arguments` once per trace. It compares what it is given
with what the cell says it takes, and raises a ``ValueError`` that names the
argument (``xs``, ``params["w_h"]``, ``carry0``), the cell and the expected
and given shapes, instead of an error from deep inside a scan:

- ``xs``: ``[T, D]`` (``[B, T, D]`` batched) with the cell's D;
- ``params``: every array of ``jax.eval_shape(cell.init, key, D)`` present,
  with its shape (dtypes are free: float64 params for gradient checks);
- ``carry0``: the structure, leaf shapes (``[H]``, ``[B, H]`` batched) and
  dtypes of ``cell.initial_carry()``;
- the cell's step (:func:`check_cell_step`, once per definition, size and
  dtype): traced abstractly on one example, it must return ``(carry, y,
  acts)`` with the carry it was given (structure, shapes, dtypes), ``y [H]``
  and every gate of ``gate_names`` in ``acts`` as ``[H]``.

Nothing here runs per step: shapes are static, so every check happens while
JAX traces, and the results of the abstract traces are cached.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp

from rnnlab.cells import Cell, CellDef
from rnnlab.cells.core import abstract_step
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
# The step of a cell


def _step_name(definition: CellDef) -> str:
    step = definition.step
    return f"{getattr(step, '__module__', '?')}.{getattr(step, '__qualname__', repr(step))}"


@functools.lru_cache(maxsize=256)
def _step_problem(definition: CellDef, hidden_size: int, dtype_name: str) -> Optional[str]:
    """What is wrong with ``definition.step`` at this size and dtype (``None``: nothing)."""
    try:
        carry, out = abstract_step(definition, hidden_size, jnp.dtype(dtype_name))
    except Exception as e:  # noqa: BLE001 - any failure of the user's step is reported with its cause
        return f"fails when traced on one example (carry of zeros, px {definition.num_gates} arrays " \
               f"float32[{hidden_size}]): {type(e).__name__}: {e}"
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
    """Checks the cell's step once (cached per definition, H and dtype) by an abstract trace.

    Raises:
      ValueError: the step fails when traced, returns other than ``(carry, y,
        acts)``, a carry that differs from the one it was given, ``y`` not
        ``[H]``, or a gate of ``gate_names`` missing or not ``[H]`` (the
        message names the cell, its step function and what it returned).
    """
    problem = _step_problem(cell.definition, cell.hidden_size, cell.dtype.name)
    if problem:
        raise ValueError(f"the {cell.kind!r} cell's step ({_step_name(cell.definition)}, H={cell.hidden_size}) "
                         f"{problem}")


# ---------------------------------------------------------------------------
# The arguments of an unroll call


@functools.lru_cache(maxsize=256)
def _param_shapes(cell: Cell, input_size: int) -> dict[str, tuple[int, ...]]:
    """``{name: shape}`` of ``cell.init(key, input_size)``, by ``jax.eval_shape``."""
    shapes = jax.eval_shape(functools.partial(cell.init, input_size=input_size), jax.random.key(0))
    return {name: tuple(s.shape) for name, s in shapes.items()}


def check_xs(cell: Cell, params: Params, xs: Array, batched: bool = False) -> None:
    """Raises ``ValueError`` unless ``xs`` is ``[T, D]`` (``[B, T, D]`` when ``batched``) with the D of ``params["w_x"]``."""
    if not batched and jnp.ndim(xs) != 2:
        raise ValueError(
            f"xs must have shape [T, D] (one sequence), got shape {jnp.shape(xs)}; "
            "for a batch [B, T, D], use unroll_batch or jax.vmap over xs and lengths"
        )
    if batched and jnp.ndim(xs) != 3:
        raise ValueError(f"xs must have shape [B, T, D] (a batch), got shape {jnp.shape(xs)}")
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
            f"xs must have shape [{'B, ' if batched else ''}T, D={input_size}] to match w_x, "
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


def initial_carry0(cell: Cell, batch_size: Optional[int] = None) -> Carry:
    """``cell.initial_carry()`` (in the cell's carry dtype), with leaves ``[B, H]`` when ``batch_size`` is given."""
    carry = cell.initial_carry()
    if batch_size is None:
        return carry
    return jax.tree.map(lambda c: jnp.broadcast_to(c, (batch_size,) + c.shape), carry)


def check_carry0(cell: Cell, carry0: Optional[Carry], batch_size: Optional[int] = None) -> Carry:
    """``carry0``, or the cell's zero carry when it is ``None``, once it fits the cell.

    Args:
      batch_size: B for ``unroll_batch`` (leaves ``[B, H]``); ``None`` for one sequence (``[H]``).

    Raises:
      ValueError: ``carry0`` differs from ``cell.initial_carry()`` (batched) in
        structure, leaf shapes or dtypes (the message shows both).
    """
    if carry0 is None:
        return initial_carry0(cell, batch_size)
    expected = jax.eval_shape(functools.partial(initial_carry0, cell, batch_size))
    if not _same_layout(carry0, expected):
        leaves = f"[B={batch_size}, H={cell.hidden_size}]" if batch_size is not None else f"[H={cell.hidden_size}]"
        raise ValueError(f"carry0 must be {describe(expected)} for the {cell.kind!r} cell (leaves {leaves}, "
                         f"like cell.initial_carry()), got {describe(carry0)}")
    return carry0


def check_unroll_arguments(cell: Cell, params: Params, xs: Array, carry0: Optional[Carry],
                           batched: bool = False) -> Carry:
    """All the checks of an unroll call (module docstring); returns the carry to start from.

    Args:
      cell, params: the cell and its params.
      xs: ``f32[T, D]``, or ``f32[B, T, D]`` when ``batched``.
      carry0: the initial carry, or ``None`` (the cell's zeros, in its carry dtype).
      batched: the call is ``unroll_batch``.

    Returns:
      ``carry0``, leaves ``[H]`` (``[B, H]`` batched).

    Raises:
      ValueError: the first check that fails, naming the argument, the cell and the shapes.
    """
    if not isinstance(cell, Cell):
        raise TypeError(f"cell must be an rnnlab.Cell (e.g. rnnlab.lstm(H)), got {type(cell).__name__}")
    check_xs(cell, params, xs, batched)
    check_params(cell, params)
    carry0 = check_carry0(cell, carry0, jnp.shape(xs)[0] if batched else None)
    check_cell_step(cell)
    return carry0

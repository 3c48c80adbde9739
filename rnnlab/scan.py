"""Running a cell over a sequence: the masked, reversible scan.

``unroll`` takes ONE padded sequence ``xs f32[T, D]`` with its valid length;
batch it with ``jax.vmap``::

    carry_T, ys = jax.vmap(functools.partial(rnnlab.unroll, cell, params))(xs, lengths)

Semantics, for ``0 <= length <= T``::

    forward   t = 0, 1, ..., length-1     reverse   t = length-1, ..., 1, 0
    ys[t] = y_t for t < length, 0 for t >= length (both directions)
    carry_T   = the carry after the last valid step (carry0 when length == 0)

In the reverse direction ``ys`` is still written in input order, so
``ys[t]`` is the output of the step that read ``xs[t]``. Steps past ``length``
leave the carry untouched, so padding changes neither the outputs nor the
final carry, and neither gets any gradient from it.
"""

from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from rnnlab.cells import Cell
from rnnlab.types import Array, Carry, Params


def sequence_mask(lengths: Array, max_length: int) -> Array:
    """``bool[..., T]``: True where ``t < length``.

    Args:
      lengths: ``int[...]`` valid lengths (any leading shape, e.g. ``[B]``).
      max_length: T.
    """
    return jnp.arange(max_length) < jnp.asarray(lengths)[..., None]


def check_length(length: Optional[Array], max_length: int) -> Array:
    """Validates ``length`` for a sequence of ``max_length`` steps; returns ``int32[]``.

    ``None`` means the whole sequence. A concrete value outside ``[0, T]`` is
    an error; a traced value (inside ``jit``, where a value cannot raise) is
    clipped to ``[0, T]``.

    Raises:
      ValueError: ``length`` is not an integer scalar, or a concrete value lies
        outside ``[0, T]``.
    """
    if length is None:
        return jnp.asarray(max_length, jnp.int32)
    if isinstance(length, (bool, np.bool_)) or not hasattr(length, "dtype") and not isinstance(
        length, int
    ):
        raise ValueError(f"length must be an integer scalar, got {length!r}")
    dtype = jnp.asarray(length).dtype
    if jnp.ndim(length) != 0 or not jnp.issubdtype(dtype, jnp.integer):
        raise ValueError(
            f"length must be an integer scalar, got shape {jnp.shape(length)} and dtype {dtype} "
            "(for a batch, jax.vmap over xs and lengths)"
        )
    if not isinstance(length, jax.core.Tracer):
        value = int(length)
        if not 0 <= value <= max_length:
            raise ValueError(f"length must lie in [0, T={max_length}], got {value}")
    return jnp.clip(jnp.asarray(length, jnp.int32), 0, max_length)


def check_inputs(cell: Cell, params: Params, xs: Array) -> None:
    """Raises ``ValueError`` unless ``xs`` is ``[T, D]`` with D the cell's input size."""
    if jnp.ndim(xs) != 2:
        raise ValueError(
            f"xs must have shape [T, D] (one sequence), got shape {jnp.shape(xs)}; "
            "for a batch [B, T, D], jax.vmap over xs and lengths"
        )
    input_size, width = jnp.shape(params["w_x"])
    if width != cell.num_gates * cell.hidden_size:
        raise ValueError(
            f"params do not fit this {cell.kind} cell: w_x has shape {(input_size, width)}, "
            f"expected [D, {cell.num_gates * cell.hidden_size}] (G={cell.num_gates}, "
            f"H={cell.hidden_size})"
        )
    if jnp.shape(xs)[1] != input_size:
        raise ValueError(
            f"xs must have shape [T, D={input_size}] to match w_x, got shape {jnp.shape(xs)}"
        )


def _select(keep: Array, new: Carry, old: Carry) -> Carry:
    return jax.tree.map(lambda n, o: jnp.where(keep, n, o), new, old)


def unroll(
    cell: Cell,
    params: Params,
    xs: Array,
    length: Optional[Array] = None,
    carry0: Optional[Carry] = None,
    reverse: bool = False,
    unroll: int = 1,
) -> tuple[Carry, Array]:
    """Runs ``cell`` over one padded sequence, forward or backward.

    The input projection is computed for all T steps before the loop; only
    the recurrent half (``cell.recur``) runs inside ``lax.scan``.

    Args:
      cell: the cell.
      params: its parameters.
      xs: ``f32[T, D]`` inputs, padded past ``length``.
      length: ``int[]`` valid steps (``None``: all T). Data, not a static
        argument: a new length never recompiles. Concrete values outside
        ``[0, T]`` raise; traced ones are clipped (see :func:`check_length`).
      carry0: the initial carry (default ``cell.initial_carry()``).
      reverse: run from ``length-1`` down to 0 instead of from 0 up.
      unroll: how many steps ``lax.scan`` unrolls per loop iteration.

    Returns:
      ``(carry_T, ys)``: the carry after the last valid step and
      ``ys f32[T, H]``, zero at ``t >= length``, in input order.

    Raises:
      ValueError: ``xs`` is not ``[T, D]`` with the cell's D, or ``length`` is
        not a valid integer scalar.
    """
    check_inputs(cell, params, xs)
    num_steps = jnp.shape(xs)[0]
    length = check_length(length, num_steps)
    if carry0 is None:
        carry0 = cell.initial_carry()
    pxs = cell.project(params, xs)
    valid = jnp.arange(num_steps) < length

    def body(carry, inputs):
        px, keep = inputs
        new_carry, y = cell.recur(params, carry, px)
        zeros = jax.tree.map(jnp.zeros_like, y)
        return _select(keep, new_carry, carry), _select(keep, y, zeros)

    return jax.lax.scan(body, carry0, (pxs, valid), reverse=reverse, unroll=unroll)

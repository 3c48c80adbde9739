"""``Backend.PARALLEL``: cells linear in ``h`` as an associative scan over time.

For a definition with ``linear(vecs, px) -> (a, b, acts)``, i.e.
``h_t = a_t ⊙ h_{t-1} + b_t`` with gates that read the input only (minGRU,
minLSTM), the pairs ``(a_t, b_t)`` compose associatively::

    (a1, b1) then (a2, b2)  =  (a1 * a2,  a2 * b1 + b2)

so ``jax.lax.associative_scan`` gives every prefix ``(A_t, B_t)`` in
O(log T) sequential depth, and ``h_t = A_t ⊙ h_0 + B_t``. Padded steps are
the identity ``(1, 0)``, so the carry is frozen past each length and the
final carry is the last element in scan order.

Linear space, not log space: Feng et al. (2024) run minGRU's scan in log
space because their form divides by cumulative products of ``a``, which
underflow. The pairwise form above never divides: ``a`` lies in ``[0, 1]``,
so products shrink towards 0 (forgetting) without overflow, and signed
``h`` needs no positivity transform of the candidate.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rnnlab.cells import Cell, split_blocks, vectors_of
from rnnlab.types import Array, Params


def _compose(earlier: tuple, later: tuple) -> tuple:
    a1, b1 = earlier
    a2, b2 = later
    return a1 * a2, a2 * b1 + b2


def parallel_unroll(cell: Cell, params: Params, xs: Array, lengths: Array, carry0: Array,
                    reverse: bool = False) -> tuple[Array, Array]:
    """``Backend.PARALLEL``: the batched, time-major unroll of a cell linear in ``h``.

    Inputs are already validated (see :func:`rnnlab.unroll_batch`).

    Args:
      cell: a cell whose definition gives ``linear``.
      params: its parameters.
      xs: ``f32[T, B, D]``, time-major.
      lengths: ``int32[B]`` in ``[0, T]``.
      carry0: ``f32[B, H]``.
      reverse: run from ``length-1`` down to 0.

    Returns:
      ``(carry_T f32[B, H], ys f32[T, B, H])``, ``ys`` zero past each length.
    """
    definition = cell.definition
    if xs.shape[0] == 0:
        return carry0, jnp.zeros(xs.shape[:2] + (cell.hidden_size,), carry0.dtype)
    keep = (jnp.arange(xs.shape[0])[:, None] < lengths[None, :])[..., None]
    px = split_blocks(cell.project(params, xs), cell.num_gates)
    a, b, _ = definition.linear(vectors_of(definition, params), px)
    a = jnp.where(keep, a, 1.0)
    b = jnp.where(keep, b, 0.0)
    prod_a, acc_b = jax.lax.associative_scan(_compose, (a, b), reverse=reverse, axis=0)
    hs = prod_a * carry0[None] + acc_b
    carry = hs[0] if reverse else hs[-1]
    return carry, jnp.where(keep, hs, 0.0)

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

from typing import Optional

import jax
import jax.numpy as jnp

from rnnlab.backends import ScanOptions
from rnnlab.cells import Cell, split_blocks, vectors_of
from rnnlab.lengths import where_kept, zero_unkept
from rnnlab.types import Array, Params


def _compose(earlier: tuple, later: tuple) -> tuple:
    a1, b1 = earlier
    a2, b2 = later
    return a1 * a2, a2 * b1 + b2


def parallel_unroll(cell: Cell, params: Params, xs: Array, keep: Optional[Array], carry0: Array,
                    reverse: bool, options: ScanOptions) -> tuple[Array, Array]:
    """``Backend.PARALLEL`` (the contract of :mod:`rnnlab.backends`): ``xs f32[T, B, D]`` -> ``ys f32[T, B, H]``.

    Not a loop: ``options`` (remat, unroll) has nothing to set here. Steps that
    are not kept are the identity ``(1, 0)``; ``carry0 f32[B, H]``.
    """
    definition = cell.definition
    if xs.shape[0] == 0:
        return carry0, jnp.zeros(xs.shape[:2] + (cell.hidden_size,), carry0.dtype)
    px = split_blocks(cell.project(params, xs), cell.num_gates)
    a, b, _ = definition.linear(vectors_of(definition, params), px)
    a, b = where_kept(keep, a, jnp.ones_like(a)), zero_unkept(keep, b)
    prod_a, acc_b = jax.lax.associative_scan(_compose, (a, b), reverse=reverse, axis=0)
    hs = prod_a * carry0[None] + acc_b
    carry = hs[0] if reverse else hs[-1]
    return carry, zero_unkept(keep, hs)

"""The bidirectional wrapper: one forward and one reverse :func:`~rnnlab.unroll`."""

from __future__ import annotations

from typing import Optional

import jax.numpy as jnp

from rnnlab.cells import Cell
from rnnlab.scan import unroll
from rnnlab.types import Array, Carry, Params

MERGES = ("concat", "sum")


def bidirectional(
    fwd: Cell,
    bwd: Cell,
    params: Params,
    xs: Array,
    length: Optional[Array] = None,
    merge: str = "concat",
) -> tuple[tuple[Carry, Carry], Array]:
    """Reads one sequence in both directions with separate parameters.

    The backward half is ``unroll(bwd, ..., reverse=True)``: it starts at
    ``length-1``, so at every valid ``t`` the output has seen the whole
    sequence, ``xs[:t+1]`` through ``fwd`` and ``xs[t:length]`` through ``bwd``.

    Args:
      fwd: the forward cell.
      bwd: the backward cell (may equal ``fwd``; parameters are still separate).
      params: ``{"fwd": fwd params, "bwd": bwd params}``.
      xs: ``f32[T, D]``.
      length: ``int[]`` valid steps (``None``: all T).
      merge: ``"concat"`` -> ``ys f32[T, H_fwd + H_bwd]`` (forward first);
        ``"sum"`` -> ``ys f32[T, H]`` (needs equal hidden sizes).

    Returns:
      ``((carry_fwd, carry_bwd), ys)``: the forward carry after step
      ``length-1``, the backward carry after step 0, and the merged outputs,
      zero at ``t >= length``.
    """
    if merge not in MERGES:
        raise ValueError(f"unknown merge {merge!r}; known merges: {', '.join(MERGES)}")
    if merge == "sum" and fwd.hidden_size != bwd.hidden_size:
        raise ValueError(
            f"merge='sum' needs equal hidden sizes, got {fwd.hidden_size} and {bwd.hidden_size}"
        )
    if set(params) != {"fwd", "bwd"}:
        raise ValueError(f"params must be {{'fwd': ..., 'bwd': ...}}, got keys {sorted(params)}")
    carry_f, ys_f = unroll(fwd, params["fwd"], xs, length)
    carry_b, ys_b = unroll(bwd, params["bwd"], xs, length, reverse=True)
    ys = jnp.concatenate([ys_f, ys_b], axis=-1) if merge == "concat" else ys_f + ys_b
    return (carry_f, carry_b), ys

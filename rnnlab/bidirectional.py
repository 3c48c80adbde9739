"""Layers built from :func:`~rnnlab.unroll`: the bidirectional wrapper and stacks.

``bidirectional`` runs one forward and one reverse ``unroll``; ``stack`` runs
several layers (each one-directional or bidirectional) with dropout between
them. Both are pure functions that call ``unroll_fn`` for every run, so they
serve two shape conventions:

- one sequence (the default, ``unroll_fn=rnnlab.unroll``): ``xs f32[T, D]``,
  ``length int[]``, carry leaves ``[H]``; batch with ``jax.vmap``;
- a batch (``unroll_fn=rnnlab.unroll_batch``, or
  ``functools.partial(rnnlab.unroll_batch, backend=..., remat=...)``):
  ``xs f32[B, T, D]``, ``length int[B]``, carry leaves ``[B, H]``; this is
  what the Flax adapters in :mod:`rnnlab.nn` do, and the fast path.

``unroll_fn(cell, params, xs, length, reverse=bool) -> (carry, ys)`` is all
they need of it.
"""

from __future__ import annotations

from typing import Callable, Mapping, Optional

import jax
import jax.numpy as jnp

from rnnlab.cells import Cell
from rnnlab.scan import unroll
from rnnlab.types import Array, Carry, Params

MERGES = ("concat", "sum")


def check_num_layers(num_layers: int) -> int:
    """``num_layers`` if it is a positive integer; the one check of a stack's depth.

    Raises:
      ValueError: anything else.
    """
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
    return num_layers


def bidirectional(
    fwd: Cell,
    bwd: Cell,
    params: Params,
    xs: Array,
    length: Optional[Array] = None,
    merge: str = "concat",
    *,
    unroll_fn: Callable[..., tuple[Carry, Array]] = unroll,
) -> tuple[tuple[Carry, Carry], Array]:
    """Reads one sequence in both directions with separate parameters.

    The backward half is ``unroll(bwd, ..., reverse=True)``: it starts at
    ``length-1``, so at every valid ``t`` the output has seen the whole
    sequence, ``xs[:t+1]`` through ``fwd`` and ``xs[t:length]`` through ``bwd``.

    Args:
      fwd: the forward cell.
      bwd: the backward cell (may equal ``fwd``; parameters are still separate).
      params: ``{"fwd": fwd params, "bwd": bwd params}``.
      xs: ``f32[T, D]`` (``f32[B, T, D]`` with a batched ``unroll_fn``).
      length: ``int[]`` valid steps (``int[B]`` batched; ``None``: all T).
      merge: ``"concat"`` -> ``ys f32[T, H_fwd + H_bwd]`` (forward first);
        ``"sum"`` -> ``ys f32[T, H]`` (needs equal hidden sizes); ``[B, T, ...]``
        when batched.
      unroll_fn: runs one direction, ``unroll_fn(cell, params, xs, length,
        reverse=...)``: :func:`rnnlab.unroll` (one sequence) or
        :func:`rnnlab.unroll_batch` (a batch, see the module docstring).

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
    carry_f, ys_f = unroll_fn(fwd, params["fwd"], xs, length, reverse=False)
    carry_b, ys_b = unroll_fn(bwd, params["bwd"], xs, length, reverse=True)
    ys = jnp.concatenate([ys_f, ys_b], axis=-1) if merge == "concat" else ys_f + ys_b
    return (carry_f, carry_b), ys


def layer_output_size(cell: Cell, bidirectional: bool = False, merge: str = "concat") -> int:
    """The feature size of one layer's outputs: H, or 2H for a concatenated bidirectional layer."""
    return 2 * cell.hidden_size if bidirectional and merge == "concat" else cell.hidden_size


def init_layer(cell: Cell, key: Array, input_size: int, bidirectional: bool = False) -> Params:
    """Params of one layer: ``cell.init(key, D)``, or ``{"fwd": ..., "bwd": ...}`` if bidirectional."""
    if not bidirectional:
        return cell.init(key, input_size)
    k_fwd, k_bwd = jax.random.split(key)
    return {"fwd": cell.init(k_fwd, input_size), "bwd": cell.init(k_bwd, input_size)}


def init_stack(
    cell: Cell,
    key: Array,
    input_size: int,
    num_layers: int,
    bidirectional: bool = False,
    merge: str = "concat",
) -> dict[str, Params]:
    """Params of a stack: ``{"layer_0": ..., "layer_1": ...}`` (see :func:`init_layer`).

    Layer 0 reads D features; later layers read the previous layer's outputs
    (H, or 2H for ``bidirectional`` with ``merge="concat"``).
    """
    keys = jax.random.split(key, check_num_layers(num_layers))
    sizes = [input_size] + [layer_output_size(cell, bidirectional, merge)] * (num_layers - 1)
    return {
        f"layer_{i}": init_layer(cell, k, size, bidirectional)
        for i, (k, size) in enumerate(zip(keys, sizes))
    }


def _run_layer(cell: Cell, params: Params, xs: Array, length: Optional[Array], both: bool,
               merge: str, unroll_fn: Callable[..., tuple[Carry, Array]]) -> tuple[Carry, Array]:
    """One layer of :func:`stack`: ``unroll_fn`` forward, or :func:`bidirectional` when ``both``."""
    if both:
        return bidirectional(cell, cell, params, xs, length, merge, unroll_fn=unroll_fn)
    return unroll_fn(cell, params, xs, length, reverse=False)


def stack(
    cell: Cell,
    params: Mapping[str, Params],
    xs: Array,
    length: Optional[Array] = None,
    *,
    bidirectional: bool = False,
    merge: str = "concat",
    dropout: float = 0.0,
    key: Optional[Array] = None,
    unroll_fn: Callable[..., tuple[Carry, Array]] = unroll,
) -> tuple[tuple[Carry, ...], Array]:
    """Runs several layers of ``cell``, each reading the previous layer's outputs.

    Args:
      cell: the cell of every layer.
      params: ``{"layer_0": ..., "layer_{L-1}": ...}`` as made by
        :func:`init_stack` (each a cell's params, or ``{"fwd", "bwd"}``).
      xs: ``f32[T, D]`` (``f32[B, T, D]`` with a batched ``unroll_fn``).
      length: ``int[]`` valid steps (``int[B]`` batched; ``None``: all T).
      bidirectional: every layer reads both directions (:func:`bidirectional`).
      merge: how a bidirectional layer merges its directions.
      dropout: rate of (inverted) dropout on the outputs of every layer but
        the last; applied only when ``key`` is given. The mask has the shape
        of the outputs, so every example of a batch gets its own.
      key: PRNG key for dropout (``None``: no dropout, deterministic).
      unroll_fn: runs one layer in one direction: :func:`rnnlab.unroll` or
        :func:`rnnlab.unroll_batch` (see the module docstring).

    Returns:
      ``(carries, ys)``: one final carry per layer (a ``(fwd, bwd)`` pair for a
      bidirectional layer) and the last layer's ``ys f32[T, H or 2H]``
      (``[B, T, ...]`` batched), zero at ``t >= length``.
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
    names = [f"layer_{i}" for i in range(len(params))]
    if not names or sorted(params) != sorted(names):
        raise ValueError(
            f"params must be {{'layer_0': ..., 'layer_{{L-1}}': ...}} (see init_stack), got keys "
            f"{sorted(params)}"
        )
    carries = []
    for i, name in enumerate(names):
        if i > 0 and key is not None and dropout > 0.0:
            key, sub = jax.random.split(key)
            keep = jax.random.bernoulli(sub, 1.0 - dropout, xs.shape)
            xs = jnp.where(keep, xs / (1.0 - dropout), 0.0).astype(xs.dtype)
        carry, xs = _run_layer(cell, params[name], xs, length, bidirectional, merge, unroll_fn)
        carries.append(carry)
    return tuple(carries), xs

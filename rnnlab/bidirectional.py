"""Layers built on the scan: the bidirectional wrapper and stacks, on the same options as ``unroll_batch``.

``bidirectional`` runs one forward and one reverse run (two cells, separate
params); ``stack`` runs several layers (each one-directional or
bidirectional) with dropout between them. Both take ``xs [*batch, T, D]``
with any number of leading batch axes (none: one sequence ``[T, D]``, vmap
it or pass the batch; ``[T, *batch, D]`` with ``time_major``), call the scan
directly, and share ONE preparation of the inputs and ONE keep mask between
all their runs (:func:`rnnlab.scan.prepare`). The options are those of
:func:`rnnlab.unroll_batch`: ``initial_carry`` (per direction, per layer),
``time_major``, ``backend``, ``remat``, ``unroll``, ``options``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence, Union

import jax
import jax.numpy as jnp

from rnnlab.backends import Backend, ScanOptions, resolve_backend, resolve_options
from rnnlab.cells import Cell
from rnnlab.contract import check_unroll_arguments
from rnnlab.scan import Layout, Sequences, finish, flat_carry, prepare, reenter, run_direction, unflat_carry
from rnnlab.types import Array, Carry, Params

Merge = Union[str, Callable[[Array, Array], Array]]
MERGES: dict[str, Callable[[Array, Array], Array]] = {
    "concat": lambda ys_fwd, ys_bwd: jnp.concatenate([ys_fwd, ys_bwd], axis=-1),
    "sum": lambda ys_fwd, ys_bwd: ys_fwd + ys_bwd,
}


def check_num_layers(num_layers: int) -> int:
    """``num_layers`` if it is a positive integer; the one check of a stack's depth.

    Raises:
      ValueError: anything else.
    """
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
    return num_layers


def merge_function(merge: Merge, fwd: Cell, bwd: Cell) -> Callable[[Array, Array], Array]:
    """``merge(ys_fwd, ys_bwd) -> ys``: a name of :data:`MERGES` or any function of the two outputs.

    Raises:
      ValueError: an unknown name, or ``"sum"`` of unequal hidden sizes.
    """
    if callable(merge):
        return merge
    if merge not in MERGES:
        raise ValueError(f"unknown merge {merge!r}; known merges: {', '.join(MERGES)} (or a function "
                         "merge(ys_fwd, ys_bwd))")
    if merge == "sum" and fwd.hidden_size != bwd.hidden_size:
        raise ValueError(f"merge='sum' needs equal hidden sizes, got {fwd.hidden_size} and {bwd.hidden_size}")
    return MERGES[merge]


def _options(cell: Cell, batched: bool, layout: Layout, backend: Any, remat: Optional[int], unroll: Optional[int],
             options: Optional[ScanOptions]) -> tuple[Backend, ScanOptions]:
    """The backend resolved for ``cell`` and its options, once per cell and call."""
    resolved = resolve_backend(backend, cell, batched)
    return resolved, resolve_options(resolved, layout.num_steps, remat, unroll, options)


def _both_ways(fwd: Cell, bwd: Cell, params: Params, seqs: Sequences, xs: Array, carries: tuple, merge: Callable,
               runs: tuple) -> tuple[tuple[Carry, Carry], Array]:
    """Both directions over prepared inputs; returns flat carries and the merged ``ys`` in the caller's layout."""
    (backend_f, options_f), (backend_b, options_b) = runs
    carry_f, ys_f = run_direction(fwd, params["fwd"], seqs, xs, carries[0], False, backend_f, options_f)
    carry_b, ys_b = run_direction(bwd, params["bwd"], seqs, xs, carries[1], True, backend_b, options_b)
    return (carry_f, carry_b), merge(finish(ys_f, seqs.layout), finish(ys_b, seqs.layout))


def _check_pair(params: Params) -> None:
    if not isinstance(params, Mapping) or set(params) != {"fwd", "bwd"}:
        keys = sorted(params) if isinstance(params, Mapping) else type(params).__name__
        raise ValueError(f"params must be {{'fwd': ..., 'bwd': ...}}, got keys {keys}")


def bidirectional(
    fwd: Cell,
    bwd: Cell,
    params: Params,
    xs: Array,
    lengths: Optional[Array] = None,
    merge: Merge = "concat",
    *,
    initial_carry: Optional[tuple[Optional[Carry], Optional[Carry]]] = None,
    time_major: bool = False,
    backend: Optional[Backend] = None,
    remat: Optional[int] = None,
    unroll: Optional[int] = None,
    options: Optional[ScanOptions] = None,
) -> tuple[tuple[Carry, Carry], Array]:
    """Reads sequences in both directions with separate parameters (and cells, which may differ).

    The backward half runs ``bwd`` with ``reverse=True``: it starts at
    ``length-1``, so at every valid ``t`` the output has seen the whole
    sequence, ``xs[:t+1]`` through ``fwd`` and ``xs[t:length]`` through ``bwd``.

    Args:
      fwd: the forward cell.
      bwd: the backward cell (may equal ``fwd``; parameters are still separate).
      params: ``{"fwd": fwd params, "bwd": bwd params}``.
      xs: ``f32[*batch, T, D]``, any number of leading batch axes (none: one
        sequence ``[T, D]``); ``[T, *batch, D]`` with ``time_major``.
      lengths: ``int[*batch]`` valid steps (``None``: all T).
      merge: ``"concat"`` -> ``ys [..., H_fwd + H_bwd]`` (forward first);
        ``"sum"`` -> ``ys [..., H]`` (equal hidden sizes); or any function
        ``merge(ys_fwd, ys_bwd)`` of the two outputs in the caller's layout.
      initial_carry: ``(carry_fwd, carry_bwd)`` with leaves ``[*batch, H]``
        (either may be ``None``: zeros).
      time_major, backend, remat, unroll, options: as in :func:`rnnlab.unroll_batch`
        (default backend: REFERENCE for one sequence, else the batched default).

    Returns:
      ``((carry_fwd, carry_bwd), ys)``: the forward carry after step
      ``length-1``, the backward carry after step 0, and the merged outputs,
      zero at ``t >= length`` (for the library's merges), in input order.
    """
    _check_pair(params)
    merge = merge_function(merge, fwd, bwd)
    batched = jnp.ndim(xs) > 2
    initial_carry = (None, None) if initial_carry is None else initial_carry
    carries = [check_unroll_arguments(cell, params[name], xs, carry, batched, time_major, f"initial_carry[{i}]")
               for i, (cell, name, carry) in enumerate(zip((fwd, bwd), ("fwd", "bwd"), initial_carry))]
    layout = Layout.of(xs, batched, time_major)
    runs = tuple(_options(cell, batched, layout, backend, remat, unroll, options) for cell in (fwd, bwd))
    seqs = prepare(xs, lengths, layout, runs[0][1].remat)
    flat = tuple(flat_carry(c, layout) for c in carries)
    (carry_f, carry_b), ys = _both_ways(fwd, bwd, params, seqs, seqs.xs, flat, merge, runs)
    return (unflat_carry(carry_f, layout), unflat_carry(carry_b, layout)), ys


def layer_output_size(cell: Cell, bidirectional: bool = False, merge: Merge = "concat") -> int:
    """The feature size of one layer's outputs: H, or for a bidirectional layer the width of ``merge``'s
    output (2H for ``"concat"``; a function's by ``jax.eval_shape``)."""
    if not bidirectional:
        return cell.hidden_size
    ys = jax.ShapeDtypeStruct((1, 1, cell.hidden_size), jnp.float32)
    return int(jax.eval_shape(merge_function(merge, cell, cell), ys, ys).shape[-1])


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
    merge: Merge = "concat",
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


def _layer_names(params: Mapping[str, Params]) -> list[str]:
    names = [f"layer_{i}" for i in range(len(params))]
    if not names or sorted(params) != sorted(names):
        raise ValueError(f"params must be {{'layer_0': ..., 'layer_{{L-1}}': ...}} (see init_stack), got keys "
                         f"{sorted(params)}")
    return names


def _user_shaped(xs: Array, layout: Layout) -> jax.ShapeDtypeStruct:
    """The shape a layer's internal inputs ``[T', B, F]`` have in the caller's layout (for the checks)."""
    shape = (layout.num_steps,) + layout.batch_shape if layout.time_major else layout.batch_shape + (layout.num_steps,)
    return jax.ShapeDtypeStruct(shape + xs.shape[-1:], xs.dtype)


def stack(
    cell: Cell,
    params: Mapping[str, Params],
    xs: Array,
    lengths: Optional[Array] = None,
    *,
    bidirectional: bool = False,
    merge: Merge = "concat",
    dropout: float = 0.0,
    key: Optional[Array] = None,
    initial_carry: Optional[Sequence[Any]] = None,
    time_major: bool = False,
    backend: Optional[Backend] = None,
    remat: Optional[int] = None,
    unroll: Optional[int] = None,
    options: Optional[ScanOptions] = None,
) -> tuple[tuple[Carry, ...], Array]:
    """Runs several layers of ``cell``, each reading the previous layer's outputs.

    Args:
      cell: the cell of every layer.
      params: ``{"layer_0": ..., "layer_{L-1}": ...}`` as made by
        :func:`init_stack` (each a cell's params, or ``{"fwd", "bwd"}``).
      xs: ``f32[*batch, T, D]`` (any number of batch axes; ``[T, *batch, D]`` time-major).
      lengths: ``int[*batch]`` valid steps (``None``: all T).
      bidirectional: every layer is bidirectional (:func:`bidirectional`).
      merge: how a bidirectional layer merges its directions (as in :func:`bidirectional`).
      dropout: rate of (inverted) dropout on the outputs of every layer but
        the last; applied only when ``key`` is given. The mask has the shape
        of the outputs, so every example of a batch gets its own.
      key: PRNG key for dropout (``None``: no dropout, deterministic).
      initial_carry: one entry per layer (a carry with leaves ``[*batch, H]``, a
        ``(fwd, bwd)`` pair for bidirectional layers, or ``None``: zeros); ``None``: all zeros.
      time_major, backend, remat, unroll, options: as in :func:`rnnlab.unroll_batch`.

    Returns:
      ``(carries, ys)``: one final carry per layer (a ``(fwd, bwd)`` pair for a
      bidirectional layer) and the last layer's ``ys f32[*batch, T, H or 2H]``,
      zero at ``t >= length``.
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout}")
    names = _layer_names(params)
    initial_carry = [None] * len(names) if initial_carry is None else list(initial_carry)
    if len(initial_carry) != len(names):
        raise ValueError(f"initial_carry must hold one entry per layer ({len(names)}), got {len(initial_carry)}")
    merge = merge_function(merge, cell, cell)
    batched = jnp.ndim(xs) > 2
    layout = Layout.of(xs, batched, time_major)
    run = _options(cell, batched, layout, backend, remat, unroll, options)
    seqs = prepare(xs, lengths, layout, run[1].remat)
    inputs, ys, carries = seqs.xs, None, []
    for i, name in enumerate(names):
        if i > 0 and key is not None and dropout > 0.0:
            key, sub = jax.random.split(key)
            keep = jax.random.bernoulli(sub, 1.0 - dropout, inputs.shape)
            inputs = jnp.where(keep, inputs / (1.0 - dropout), 0.0).astype(inputs.dtype)
        like = xs if i == 0 else _user_shaped(inputs, layout)
        if bidirectional:
            _check_pair(params[name])
            given = (None, None) if initial_carry[i] is None else initial_carry[i]
            flat = tuple(flat_carry(check_unroll_arguments(cell, params[name][d], like, c, batched, time_major,
                                                           f"initial_carry[{i}][{j}]"), layout)
                         for j, (d, c) in enumerate(zip(("fwd", "bwd"), given)))
            carry, ys = _both_ways(cell, cell, params[name], seqs, inputs, flat, merge, (run, run))
            carry = tuple(unflat_carry(c, layout) for c in carry)
            inputs = reenter(ys, seqs) if i + 1 < len(names) else inputs
        else:
            carry0 = check_unroll_arguments(cell, params[name], like, initial_carry[i], batched, time_major,
                                            f"initial_carry[{i}]")
            carry, inputs = run_direction(cell, params[name], seqs, inputs, flat_carry(carry0, layout), False, *run)
            carry, ys = unflat_carry(carry, layout), None
        carries.append(carry)
    return tuple(carries), finish(inputs, layout) if ys is None else ys

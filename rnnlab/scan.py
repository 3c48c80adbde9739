"""Running a cell over a sequence: the masked, reversible scan.

A batch runs fastest with ``unroll_batch`` (time-major inside, the batch in
the carry, one weight-gradient product for the whole batch; the fused or
parallel backend)::

    carry_T, ys = rnnlab.unroll_batch(cell, params, xs, lengths)   # xs f32[B, T, D]

``unroll`` takes ONE padded sequence ``xs f32[T, D]`` with its valid length;
``jax.vmap`` of it computes the same (on the reference backend)::

    carry_T, ys = jax.vmap(functools.partial(rnnlab.unroll, cell, params))(xs, lengths)

``backend`` (a :class:`rnnlab.Backend`) picks the implementation; all compute
the same function and gradients (see :mod:`rnnlab.backends`). ``remat=K``
keeps only every K-th carry for the backward pass and recomputes the rest
(``jax.checkpoint`` over chunks of K steps), for long sequences.

Semantics, for ``0 <= length <= T``::

    forward   t = 0, 1, ..., length-1     reverse   t = length-1, ..., 1, 0
    ys[t] = y_t for t < length, 0 for t >= length (both directions)
    carry_T   = the carry after the last valid step (carry0 when length == 0)

In the reverse direction ``ys`` is still written in input order, so
``ys[t]`` is the output of the step that read ``xs[t]``. Steps past ``length``
leave the carry untouched and padded inputs are zeroed before the
projection, so padding (NaN included) changes neither the outputs nor the
final carry nor any gradient, and gets a zero gradient itself.
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from rnnlab.backends import Backend, get_backend
from rnnlab.backends import cudnn, pallas
from rnnlab.backends.fused import fused_unroll
from rnnlab.backends.parallel import parallel_unroll
from rnnlab.backends.pallas import cell_pointwise
from rnnlab.cells import Cell
from rnnlab.contract import check_unroll_arguments
from rnnlab.lengths import check_length, check_lengths, sequence_mask  # noqa: F401  (rnnlab.scan.*)
from rnnlab.types import Array, Carry, Params


def _select(keep: Array, new: Carry, old: Carry) -> Carry:
    return jax.tree.map(lambda n, o: jnp.where(keep, n, o), new, old)


def _check_remat(remat: Optional[int]) -> Optional[int]:
    if remat is None:
        return None
    if isinstance(remat, bool) or not isinstance(remat, (int, np.integer)) or remat < 1:
        raise ValueError(f"remat must be None or a positive number of steps, got {remat!r}")
    return int(remat)


def _scan(body, carry0, inputs, reverse: bool, unroll: int, remat: Optional[int], num_steps: int):
    """``lax.scan``, or with ``remat=K`` a scan over chunks of K steps under ``jax.checkpoint``.

    With ``remat`` the inputs are padded to a multiple of K; ``body`` must
    leave the carry alone and output zeros on padded steps (the mask does).
    """
    if remat is None:
        return jax.lax.scan(body, carry0, inputs, reverse=reverse, unroll=unroll)
    chunk = min(remat, max(num_steps, 1))
    padded = -(-num_steps // chunk) * chunk
    inputs = jax.tree.map(
        lambda a: jnp.pad(a, ((0, padded - num_steps),) + ((0, 0),) * (a.ndim - 1)), inputs
    )
    inputs = jax.tree.map(lambda a: a.reshape((padded // chunk, chunk) + a.shape[1:]), inputs)

    @jax.checkpoint
    def chunk_body(carry, chunk_inputs):
        return jax.lax.scan(body, carry, chunk_inputs, reverse=reverse, unroll=unroll)

    carry, ys = jax.lax.scan(chunk_body, carry0, inputs, reverse=reverse)
    ys = jax.tree.map(lambda a: a.reshape((padded,) + a.shape[2:])[:num_steps], ys)
    return carry, ys


def _zero_padding(xs: Array, valid: Array) -> Array:
    """``xs`` with the padded steps set to 0 (``valid bool[..., T]``).

    Padding may hold anything (NaN included); zeroing it before the
    projection keeps it out of the outputs and out of every gradient
    (``jnp.where`` alone would let a NaN through the backward pass).
    """
    return jnp.where(valid[..., None], xs, jnp.zeros_like(xs))


def _reference(cell: Cell, params: Params, xs: Array, length: Array, carry0: Carry, reverse: bool,
               unroll: int, remat: Optional[int]) -> tuple[Carry, Array]:
    """``Backend.REFERENCE`` on one validated sequence: ``lax.scan`` of ``cell.recur``."""
    num_steps = xs.shape[0]
    valid = jnp.arange(num_steps) < length
    pxs = cell.project(params, _zero_padding(xs, valid))

    def body(carry, inputs):
        px, keep = inputs
        new_carry, y = cell.recur(params, carry, px)
        zeros = jax.tree.map(jnp.zeros_like, y)
        return _select(keep, new_carry, carry), _select(keep, y, zeros)

    return _scan(body, carry0, (pxs, valid), reverse, unroll, remat, num_steps)


def _batched(cell: Cell, params: Params, xs: Array, lengths: Optional[Array], carry0: Carry, reverse: bool,
             backend: Backend, remat: Optional[int]) -> tuple[Carry, Array]:
    """A batched backend on a validated batch ``xs [B, T, D]``; returns ``(carry, ys [B, T, H])``.

    ``lengths=None`` (FUSED only, every sequence whole): no padding to zero, no masks in the loops.
    """
    if lengths is not None:
        xs = _zero_padding(xs, sequence_mask(lengths, xs.shape[1]))
    if remat is not None and backend is not Backend.FUSED:
        raise ValueError(f"remat applies to Backend.REFERENCE and FUSED, not {backend.name}")
    if backend is Backend.CUDNN:
        return cudnn.cudnn_unroll(cell, params, xs, lengths, carry0, reverse)
    if backend is Backend.PALLAS:
        return pallas.pallas_unroll(
            cell_pointwise(cell.definition), cell.num_gates, params, xs, lengths, carry0, reverse,
            interpret=jax.default_backend() != "gpu", dtype=cell.dtype, project=cell.project)
    run = fused_unroll if backend is Backend.FUSED else parallel_unroll
    extra = (remat,) if backend is Backend.FUSED else ()
    carry, ys = run(cell, params, jnp.swapaxes(xs, 0, 1), lengths, carry0, reverse, *extra)
    return carry, jnp.swapaxes(ys, 0, 1)


def unroll(
    cell: Cell,
    params: Params,
    xs: Array,
    length: Optional[Array] = None,
    carry0: Optional[Carry] = None,
    reverse: bool = False,
    unroll: int = 1,
    backend: Optional[Backend] = None,
    remat: Optional[int] = None,
) -> tuple[Carry, Array]:
    """Runs ``cell`` over one padded sequence, forward or backward.

    The input projection is computed for all T steps before the loop; only
    the recurrent half runs inside the loop. For a batch, call
    :func:`unroll_batch` (the fast path); ``jax.vmap`` of this function runs
    the reference scan per example (see ``docs/performance.md`` for why).

    Args:
      cell: the cell.
      params: its parameters.
      xs: ``f32[T, D]`` inputs, padded past ``length`` (padding may hold
        anything, NaN included: it never reaches outputs or gradients).
      length: ``int[]`` valid steps (``None``: all T). Data, not a static
        argument: a new length never recompiles. Concrete values outside
        ``[0, T]`` raise; traced ones are clipped (see :func:`check_length`).
      carry0: the initial carry, leaves ``[H]`` (default ``cell.initial_carry()``: zeros in the
        cell's carry dtype, float64 for a float64 cell).
      reverse: run from ``length-1`` down to 0 instead of from 0 up.
      unroll: how many steps ``lax.scan`` unrolls per loop iteration
        (``Backend.REFERENCE`` only).
      backend: a :class:`rnnlab.Backend` or its name (default ``REFERENCE``;
        a batched backend runs this one sequence as a batch of one). All give
        the same results.
      remat: ``None``, or K: save only every K-th carry for the backward pass
        and recompute the steps in between (less memory, ~1/3 more compute).

    Returns:
      ``(carry_T, ys)``: the carry after the last valid step and
      ``ys f32[T, H]``, zero at ``t >= length``, in input order.

    Raises:
      ValueError: ``xs`` is not ``[T, D]`` with the cell's D, ``params`` or
        ``carry0`` do not have the shapes of the cell's (the message names the
        argument, e.g. ``params["w_h"]``, and both shapes), the cell's step
        breaks its contract (:func:`rnnlab.contract.check_cell_step`),
        ``length`` is not a valid integer scalar, or ``backend``/``remat`` is
        unknown or cannot run this cell.
    """
    carry0 = check_unroll_arguments(cell, params, xs, carry0)
    return unroll_checked(cell, params, xs, length, carry0, reverse, unroll, backend, remat)


def unroll_checked(cell: Cell, params: Params, xs: Array, length: Optional[Array], carry0: Carry,
                   reverse: bool = False, unroll: int = 1, backend: Optional[Backend] = None,
                   remat: Optional[int] = None) -> tuple[Carry, Array]:
    """:func:`unroll` on arguments that :func:`rnnlab.contract.check_unroll_arguments` accepted (``carry0`` given).

    :func:`rnnlab.gate_trace` checks the user's cell, then runs its tracing cell (whose ``y`` is a dict) here.
    """
    remat = _check_remat(remat)
    length = check_length(length, jnp.shape(xs)[0])
    backend = get_backend(backend, cell, batched=False)
    if backend is Backend.REFERENCE:
        return _reference(cell, params, xs, length, carry0, reverse, unroll, remat)
    carry, ys = _batched(cell, params, xs[None], length[None],
                         jax.tree.map(lambda c: c[None], carry0), reverse, backend, remat)
    return jax.tree.map(lambda c: c[0], carry), ys[0]


def unroll_batch(
    cell: Cell,
    params: Params,
    xs: Array,
    lengths: Optional[Array] = None,
    carry0: Optional[Carry] = None,
    reverse: bool = False,
    backend: Optional[Backend] = None,
    remat: Optional[int] = None,
) -> tuple[Carry, Array]:
    """:func:`unroll` over a batch: ``jax.vmap(unroll)`` semantics on the batched backends.

    ``Backend.FUSED`` runs one time-major scan with the batch inside the carry
    and computes the weight gradients of the whole batch as one product;
    ``Backend.PARALLEL`` an associative scan (cells linear in ``h``).

    Args:
      cell: the cell.
      params: its parameters (shared by the batch).
      xs: ``f32[B, T, D]``, padded past each length.
      lengths: ``int[B]`` valid steps (``None``: all T); same checks as
        :func:`unroll`'s ``length``.
      carry0: initial carry with leaves ``f32[B, H]`` (default zeros in the cell's carry dtype).
      reverse, backend, remat: as in :func:`unroll` (default backend:
        :func:`rnnlab.backends.default_backend`).

    Returns:
      ``(carry_T, ys)``: carry leaves ``f32[B, H]`` and ``ys f32[B, T, H]``,
      zero at ``t >= lengths[b]``.

    Raises:
      ValueError: ``xs`` is not ``[B, T, D]`` with the cell's D, ``params``,
        ``carry0`` (leaves ``[B, H]``) or the cell's step do not fit (as in
        :func:`unroll`), ``lengths`` is not ``int[B]`` in range, or
        ``backend``/``remat`` is unknown or cannot run this cell.
    """
    carry0 = check_unroll_arguments(cell, params, xs, carry0, batched=True)
    backend = get_backend(backend, cell, batched=True)
    remat = _check_remat(remat)
    batch_size, num_steps = jnp.shape(xs)[:2]
    if lengths is not None or backend is not Backend.FUSED:  # FUSED on whole sequences needs no masks
        lengths = check_lengths(lengths, batch_size, num_steps)
    if backend is Backend.REFERENCE:
        run = functools.partial(_reference, cell, params, reverse=reverse, unroll=1, remat=remat)
        return jax.vmap(lambda x, n, c: run(x, n, c))(xs, lengths, carry0)
    return _batched(cell, params, xs, lengths, carry0, reverse, backend, remat)

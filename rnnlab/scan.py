"""Running a cell over sequences: the masked, reversible scan, and the one dispatch to a backend.

A batch runs fastest with ``unroll_batch`` (time-major inside, the batch in
the carry, one weight-gradient product for the whole batch; the fused or
parallel backend)::

    carry_T, ys = rnnlab.unroll_batch(cell, params, xs, lengths)   # xs f32[*batch, T, D]

``unroll`` takes ONE padded sequence ``xs f32[T, D]`` with its valid length;
``jax.vmap`` of it computes the same (on the reference backend)::

    carry_T, ys = jax.vmap(functools.partial(rnnlab.unroll, cell, params))(xs, lengths)

Semantics, for ``0 <= length <= T``::

    forward   t = 0, 1, ..., length-1     reverse   t = length-1, ..., 1, 0
    ys[t] = y_t for t < length, 0 for t >= length (both directions)
    carry_T   = the carry after the last valid step (carry0 when length == 0)

In the reverse direction ``ys`` is written in input order (``keep_order=True``,
the default), so ``ys[t]`` is the output of the step that read ``xs[t]``;
``keep_order=False`` gives them in processing order (reversed within each
length, Flax's default). Padded inputs are zeroed before the projection, so
padding (NaN included) changes neither the outputs nor the final carry nor
any gradient, and gets a zero gradient itself.

How a call runs (recurrentgemma's ``jax/scan.py`` is the model): the
arguments are checked once (:mod:`rnnlab.contract`), the backend resolved
once (:func:`rnnlab.backends.resolve_backend`), the inputs made time-major and
the keep mask built once (:func:`prepare`), then :func:`run_backend` makes ONE
``match`` over implementations that all take the same arguments (the
contract of :mod:`rnnlab.backends`). ``bidirectional`` and ``stack`` share
one :func:`prepare` between all their runs.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional

import jax
import jax.numpy as jnp

from rnnlab.backends import Backend, ScanOptions, resolve_backend, resolve_options
from rnnlab.backends.cudnn import cudnn_unroll
from rnnlab.backends.fused import fused_unroll
from rnnlab.backends.pallas import pallas_unroll
from rnnlab.backends.parallel import parallel_unroll
from rnnlab.backends.reference import reference_unroll
from rnnlab.cells import Cell
from rnnlab.contract import batch_shape_of, check_unroll_arguments
from rnnlab.lengths import check_lengths, flip_within_lengths, keep_mask, lengths_of, sequence_mask, zero_unkept
from rnnlab.types import Array, Carry, Params

__all__ = ["Layout", "Sequences", "finish", "flat_carry", "prepare", "reenter", "run_backend", "run_checked", "run_direction",
           "sequence_mask", "unflat_carry", "unroll", "unroll_batch"]


def run_backend(backend: Backend, cell: Cell, params: Params, xs: Array, keep: Optional[Array], carry0: Carry,
                reverse: bool, options: ScanOptions) -> tuple[Carry, Array]:
    """THE dispatch: one resolved backend, the arguments of the contract of :mod:`rnnlab.backends`.

    Args:
      backend: a member from :func:`rnnlab.backends.resolve_backend`.
      xs: ``f32[T, B, D]`` time-major, zero where ``keep`` is False.
      keep: ``bool[T, B]`` or ``None`` (every sequence whole).
      carry0: leaves ``[B, H]``.
      options: from :func:`rnnlab.backends.resolve_options`.

    Returns:
      ``(carry, ys f32[T, B, H])``.
    """
    match backend:
        case Backend.REFERENCE:
            run = reference_unroll
        case Backend.FUSED:
            run = fused_unroll
        case Backend.PARALLEL:
            run = parallel_unroll
        case Backend.CUDNN:
            run = cudnn_unroll
        case Backend.PALLAS:
            run = pallas_unroll
    return run(cell, params, xs, keep, carry0, reverse, options)


# ---------------------------------------------------------------------------
# The layout of a call: made once, shared by every run of it


class Layout(NamedTuple):
    """Where a call's axes are: ``xs [*batch, T, D]`` (``[T, *batch, D]`` time-major; ``batch_shape=()``: one sequence)."""

    batch_shape: tuple[int, ...]
    num_steps: int
    time_major: bool = False

    @classmethod
    def of(cls, xs: Array, batched: bool, time_major: bool = False) -> "Layout":
        """The layout of ``xs`` (checked already by :func:`rnnlab.contract.check_xs`)."""
        return cls(batch_shape_of(xs, batched, time_major), jnp.shape(xs)[0 if time_major else -2], time_major)

    @property
    def batch_size(self) -> int:
        """B: the batch axes flattened (1 for one sequence)."""
        return math.prod(self.batch_shape)


class Sequences(NamedTuple):
    """A call's inputs in the backends' layout, made once per call by :func:`prepare`.

    Attributes:
      xs: ``f32[T', B, D]`` time-major, batch axes flattened, zero where ``keep`` is False.
      keep: ``bool[T', B]``, or ``None`` (every sequence whole).
      layout: the caller's layout (:func:`finish` restores it).

    ``T'`` is T rounded up to a multiple of ``remat`` (the added steps are not kept).
    """

    xs: Array
    keep: Optional[Array]
    layout: Layout


def prepare(xs: Array, lengths: Optional[Array], layout: Layout, remat: Optional[int] = None) -> Sequences:
    """The one conversion of a call's inputs: time-major, batch flattened, lengths checked, the keep mask built.

    Args:
      xs: ``f32[*batch, T, D]`` (``[T, *batch, D]`` time-major; ``[T, D]`` for one sequence).
      lengths: ``int[*batch]`` (``int[]`` for one sequence), or ``None``: every sequence whole.
      remat: pad T to a multiple of this chunk size (``ScanOptions.remat``, at most T) with steps that are not kept.

    Raises:
      ValueError: lengths of the wrong shape or dtype, or concrete values outside ``[0, T]``.
    """
    T = layout.num_steps
    lengths = check_lengths(lengths, layout.batch_shape, T)
    padded = T if remat is None else -(-T // remat) * remat
    if padded != T and lengths is None:
        lengths = jnp.full(layout.batch_shape, T, jnp.int32)
    keep = keep_mask(None if lengths is None else lengths.reshape(-1), padded)
    return Sequences(_time_major(xs, layout, padded, keep), keep, layout)


def _time_major(xs: Array, layout: Layout, padded: int, keep: Optional[Array]) -> Array:
    """``xs`` in the caller's layout -> ``[T', B, F]`` time-major, padded to ``T'`` steps, zero where not kept."""
    if not layout.time_major:
        xs = jnp.moveaxis(xs, -2, 0)
    xs = xs.reshape((layout.num_steps, layout.batch_size, xs.shape[-1]))
    xs = jnp.pad(xs, ((0, padded - layout.num_steps), (0, 0), (0, 0)))
    return zero_unkept(keep, xs)


def reenter(ys: Array, seqs: Sequences) -> Array:
    """Outputs in the caller's layout (a merged bidirectional layer) -> the next layer's inputs, as :func:`prepare` makes them."""
    return _time_major(ys, seqs.layout, seqs.xs.shape[0], seqs.keep)


def finish(ys: Array, layout: Layout) -> Array:
    """``ys f32[T', B, H]`` (or a pytree of such leaves) back in the caller's layout: ``[*batch, T, H]``
    (``[T, *batch, H]`` time-major)."""

    def one(y):
        y = y[:layout.num_steps].reshape((layout.num_steps,) + layout.batch_shape + y.shape[2:])
        return y if layout.time_major else jnp.moveaxis(y, 0, -2)

    return jax.tree.map(one, ys)


def flat_carry(carry: Carry, layout: Layout) -> Carry:
    """Carry leaves ``[*batch, H]`` -> ``[B, H]``."""
    return jax.tree.map(lambda c: c.reshape((layout.batch_size,) + c.shape[len(layout.batch_shape):]), carry)


def unflat_carry(carry: Carry, layout: Layout) -> Carry:
    """Carry leaves ``[B, H]`` -> ``[*batch, H]``."""
    return jax.tree.map(lambda c: c.reshape(layout.batch_shape + c.shape[1:]), carry)


def run_direction(cell: Cell, params: Params, seqs: Sequences, xs: Array, carry0: Carry, reverse: bool,
                  backend: Backend, options: ScanOptions, keep_order: bool = True) -> tuple[Carry, Array]:
    """One cell in one direction over prepared inputs: :func:`run_backend`, then the output order.

    Args:
      seqs: the call's :class:`Sequences` (its keep mask; ``xs`` may be a later layer's inputs).
      xs: ``f32[T', B, D]`` time-major inputs, zero where not kept.
      carry0: leaves ``[B, H]``.
      keep_order: with ``reverse``, ``ys`` in input order (True) or in processing order,
        reversed within each length (False, Flax's default).

    Returns:
      ``(carry [B, H] leaves, ys f32[T', B, H])``.
    """
    carry, ys = run_backend(backend, cell, params, xs, seqs.keep, carry0, reverse, options)
    if reverse and not keep_order:
        ys = flip_within_lengths(ys, lengths_of(seqs.keep, ys.shape[0], ys.shape[1]))
    return carry, ys


def run_checked(cell: Cell, params: Params, xs: Array, lengths: Optional[Array], carry0: Carry, reverse: bool,
                backend: Backend, options: ScanOptions, layout: Layout, keep_order: bool = True) -> tuple[Carry, Array]:
    """:func:`unroll` or :func:`unroll_batch` on checked arguments (``carry0`` given, backend and options resolved).

    :func:`rnnlab.gate_trace` checks the user's cell, then runs its tracing cell (whose ``y`` is a dict) here.
    """
    seqs = prepare(xs, lengths, layout, options.remat)
    carry, ys = run_direction(cell, params, seqs, seqs.xs, flat_carry(carry0, layout), reverse, backend, options,
                              keep_order)
    return unflat_carry(carry, layout), finish(ys, layout)


def unroll(
    cell: Cell,
    params: Params,
    xs: Array,
    length: Optional[Array] = None,
    carry0: Optional[Carry] = None,
    reverse: bool = False,
    unroll: Optional[int] = None,
    backend: Optional[Backend] = None,
    remat: Optional[int] = None,
    *,
    keep_order: bool = True,
    options: Optional[ScanOptions] = None,
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
        ``[0, T]`` raise; traced ones are clipped.
      carry0: the initial carry, leaves ``[H]`` (default ``cell.initial_carry()``: zeros in the
        cell's carry dtype, float64 for a float64 cell).
      reverse: run from ``length-1`` down to 0 instead of from 0 up.
      unroll: steps per loop iteration of a sequential backend (``None``: the
        backend's default, :data:`rnnlab.backends.DEFAULT_UNROLL`). The name is
        ``lax.scan``'s and Flax's.
      backend: a :class:`rnnlab.Backend` or its name (default ``REFERENCE``;
        a batched backend runs this one sequence as a batch of one). All give
        the same results.
      remat: ``None``, or K: save only every K-th carry for the backward pass
        and recompute the steps in between (less memory, ~1/3 more compute).
      keep_order: with ``reverse``, ``ys`` in input order (True) or in
        processing order (False).
      options: a :class:`rnnlab.backends.ScanOptions` for the kernel settings
        (``interpret``, ``block_b``, ``hold_weights``, ``hand_backward``).

    Returns:
      ``(carry_T, ys)``: the carry after the last valid step and
      ``ys f32[T, H]``, zero at ``t >= length``.

    Raises:
      ValueError: ``xs`` is not ``[T, D]`` with the cell's D, ``params`` or
        ``carry0`` do not have the shapes of the cell's (the message names the
        argument, e.g. ``params["w_h"]``, and both shapes), the cell's step
        breaks its contract (:func:`rnnlab.contract.check_cell_step`),
        ``length`` is not a valid integer scalar, or ``backend``/``remat``/``unroll``
        is unknown or cannot run this cell.
    """
    carry0 = check_unroll_arguments(cell, params, xs, carry0)
    layout = Layout.of(xs, False)
    backend = resolve_backend(backend, cell, batched=False)
    options = resolve_options(backend, layout.num_steps, remat, unroll, options)
    return run_checked(cell, params, xs, length, carry0, reverse, backend, options, layout, keep_order)


def unroll_batch(
    cell: Cell,
    params: Params,
    xs: Array,
    lengths: Optional[Array] = None,
    carry0: Optional[Carry] = None,
    reverse: bool = False,
    backend: Optional[Backend] = None,
    remat: Optional[int] = None,
    *,
    unroll: Optional[int] = None,
    time_major: bool = False,
    keep_order: bool = True,
    options: Optional[ScanOptions] = None,
) -> tuple[Carry, Array]:
    """:func:`unroll` over a batch: ``jax.vmap(unroll)`` semantics on the batched backends.

    ``Backend.FUSED`` runs one time-major scan with the batch inside the carry
    and computes the weight gradients of the whole batch as one product;
    ``Backend.PARALLEL`` an associative scan (cells linear in ``h``).

    Args:
      cell: the cell.
      params: its parameters (shared by the batch).
      xs: ``f32[*batch, T, D]`` (one or more leading batch axes; ``[T, *batch, D]``
        with ``time_major``), padded past each length.
      lengths: ``int[*batch]`` valid steps (``None``: all T, and the fused loops
        run without masks); same checks as :func:`unroll`'s ``length``.
      carry0: initial carry with leaves ``f32[*batch, H]`` (default zeros in the cell's carry dtype).
      reverse, backend, remat, unroll, keep_order, options: as in :func:`unroll`
        (default backend: :func:`rnnlab.backends.default_backend`).
      time_major: ``xs`` and ``ys`` are ``[T, *batch, ...]``.

    Returns:
      ``(carry_T, ys)``: carry leaves ``f32[*batch, H]`` and ``ys f32[*batch, T, H]``
      (``[T, *batch, H]`` time-major), zero at ``t >= lengths[b]``.

    Raises:
      ValueError: ``xs`` has no batch axis or not the cell's D, ``params``,
        ``carry0`` (leaves ``[*batch, H]``) or the cell's step do not fit (as in
        :func:`unroll`), ``lengths`` is not ``int[*batch]`` in range, or
        ``backend``/``remat``/``unroll`` is unknown or cannot run this cell.
    """
    carry0 = check_unroll_arguments(cell, params, xs, carry0, batched=True, time_major=time_major)
    layout = Layout.of(xs, True, time_major)
    backend = resolve_backend(backend, cell, batched=True)
    options = resolve_options(backend, layout.num_steps, remat, unroll, options)
    return run_checked(cell, params, xs, lengths, carry0, reverse, backend, options, layout, keep_order)

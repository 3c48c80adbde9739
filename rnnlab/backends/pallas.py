"""A Pallas recurrence kernel: the whole time loop in one kernel, the recurrent weights held on chip.

XLA runs a recurrence as a loop of small kernels, one or more per time step,
each reading ``W_h`` from memory again. This kernel runs the loop over T
*inside* one kernel invocation per batch tile: the tile's carry stays on chip
across steps, and ``W_h`` is loaded once before the loop (``hold_weights``)
or, when it is too large for the chip's registers and shared memory, read
each step from the (L2-cached) global copy. Only the recurrent half runs in
the kernel; the input projection ``x @ W_x + b`` for all T steps is one
matrix product before it, as in every rnnlab backend.

The cell is given as a *pointwise* function, so any cell whose recurrent
products all read the previous hidden state (``W_h`` split into G blocks of
``[H, H]``) runs unchanged::

    pointwise(zs, pxs, carry, vecs) -> (carry, y)

    zs     tuple of G f32[b, H]: h_{t-1} @ W_h[:, block g]    (b: the batch tile)
    pxs    tuple of G f32[b, H]: the input part x_t @ W_x + b, block g
    carry  pytree of f32[b, H] leaves, the hidden state first (LSTMState(h, c))
    vecs   dict of the params other than w_x, w_h, b (peepholes, b_hn), as given
    y      f32[b, H]

Semantics are rnnlab's (:mod:`rnnlab.scan`): steps where the keep mask is
False leave the carry alone and output 0; ``reverse=True`` runs
``t = lengths[b]-1, ..., 0`` (the kernel walks ``t = T-1, ..., 0`` and skips
the padding) and writes ``ys`` in input order. ``unroll=U`` runs U steps per
iteration of the kernel's time loop (and of its recomputation).

Gradients: :func:`jax.custom_vjp`. The forward runs the kernel; the backward
*recomputes* the forward as a ``lax.scan`` of the same ``pointwise`` with the
same masking (:func:`scan_recurrence`) and differentiates it with
``jax.vjp``. So training pays the scan's forward once more plus its backward
(no activations are kept from the kernel); the kernel speeds up the forward
(inference, evaluation) and the backward is XLA's.

Platforms (``ScanOptions.interpret``): True runs the kernel in Pallas'
interpreter on any platform (the CPU tests); False compiles it with Pallas' Triton
backend on a GPU, which needs H and the batch tile to be powers of two, at
least 16 (Triton's matrix products); the batch is padded to a multiple of the
tile. One kernel program runs one batch tile, so a small batch with a large
H keeps few of the GPU's cores busy (FlashRNN splits H across programs
instead; Pallas has no grid-wide barrier to do that).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from rnnlab.backends import ScanOptions
from rnnlab.cells import Cell, matmul
from rnnlab.types import Array, Carry, Params

Pointwise = Callable[..., tuple[Carry, Array]]

# Below this size (bytes), W_h is loaded into registers once before the time loop.
HOLD_WEIGHTS_BYTES = 64 * 1024


def cell_pointwise(definition) -> Pointwise:
    """The ``pointwise`` function of a :class:`rnnlab.CellDef` whose products all read ``h``.

    Its ``dot`` returns the kernel's products ``zs`` of the requested blocks,
    so the kernel runs the definition's own equations (nothing written again).
    """

    def pointwise(zs, pxs, carry, vecs):
        new_carry, y, _ = definition.equations(lambda a, blocks: tuple(zs[g] for g in blocks), vecs,
                                               carry, pxs)
        return new_carry, y

    return pointwise


def fori_unrolled(num_steps: int, body: Callable, init: Any, unroll: int) -> Any:
    """``lax.fori_loop(0, num_steps, body, init)`` with ``unroll`` steps written out per iteration.

    Written out by hand (not ``fori_loop(unroll=)``) so that it lowers to
    Triton as a plain loop; the ``num_steps % unroll`` last steps follow the loop.
    """
    groups, rest = divmod(num_steps, unroll)

    def group(i, carry):
        for k in range(unroll):
            carry = body(i * unroll + k, carry)
        return carry

    carry = jax.lax.fori_loop(0, groups, group, init)
    for k in range(rest):
        carry = body(groups * unroll + k, carry)
    return carry


def _is_power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def _masked_step(pointwise, vecs, zs, pxs, carry, keep, carry_def):
    """One step of ``pointwise`` on a tile; rows with ``keep`` False keep their carry, output 0.

    ``keep``: ``[b]`` (nonzero: kept), or ``None`` (every row kept: no select ops).
    """
    new_carry, y = pointwise(zs, pxs, jax.tree.unflatten(carry_def, carry), vecs)
    new_leaves = [n.astype(o.dtype) for n, o in zip(jax.tree.leaves(new_carry), carry)]
    if keep is None:
        return new_leaves, y
    keep = keep[:, None] != 0
    carry = [jnp.where(keep, n, o) for n, o in zip(new_leaves, carry)]
    return carry, jnp.where(keep, y, jnp.zeros_like(y))


def scan_recurrence(pointwise: Pointwise, reverse: bool, dtype: Any, unroll: int, pxs: Array, w_h: Array,
                    vecs: dict, keep: Optional[Array], carry0: Carry) -> tuple[Carry, Array]:
    """The kernel's computation as a ``lax.scan`` (the backward pass differentiates this).

    Args:
      pointwise: the cell's pointwise function (module docstring).
      reverse: walk ``t = T-1, ..., 0``.
      dtype: dtype of the recurrent products.
      unroll: steps per loop iteration.
      pxs: ``f32[T, G, B, H]``, the input part of every gate block.
      w_h: ``f32[G, H, H]``, the recurrent weight blocks.
      vecs: the cell's other params.
      keep: ``int32[T, B]`` (nonzero: kept) or ``None``.
      carry0: pytree of ``f32[B, H]`` leaves.

    Returns:
      ``(carry, ys f32[T, B, H])``.
    """
    G = pxs.shape[1]
    leaves0, carry_def = jax.tree.flatten(carry0)

    def body(leaves, inputs):
        px, keep_t = inputs
        h = leaves[0]  # the hidden state: the carry's first leaf
        zs = tuple(matmul(h, w_h[g], dtype) for g in range(G))
        return _masked_step(pointwise, vecs, zs, tuple(px[g] for g in range(G)), leaves, keep_t, carry_def)

    leaves, ys = jax.lax.scan(body, leaves0, (pxs, keep), reverse=reverse, unroll=unroll)
    return jax.tree.unflatten(carry_def, leaves), ys


class _Kernel(NamedTuple):
    """Every static setting of the kernel, one hashable record (a nondiff argument of its custom VJP)."""

    pointwise: Pointwise
    reverse: bool
    interpret: bool
    dtype: Any
    block_b: int
    hold_weights: bool
    unroll: int


def _kernel_call(spec: _Kernel, pxs, w_h, vecs, keep, carry0):
    """Runs the Pallas kernel: ``pxs f32[T, G, Bp, H]``, Bp a multiple of ``spec.block_b``; ``keep int32[T, Bp]`` or None."""
    T, G, Bp, H = pxs.shape
    leaves0, carry_def = jax.tree.flatten(carry0)
    vec_leaves, vec_def = jax.tree.flatten(vecs)
    masked = keep is not None
    num_in = int(masked) + 2 + len(vec_leaves)
    w_h = w_h.astype(spec.dtype)

    def kernel(*refs):
        keep_ref = refs[0] if masked else None
        px_ref, w_ref = refs[int(masked):int(masked) + 2]
        vec_refs = refs[int(masked) + 2:num_in]
        carry0_refs = refs[num_in:num_in + len(leaves0)]
        ys_ref = refs[num_in + len(leaves0)]
        carry_refs = refs[num_in + len(leaves0) + 1:]
        tile_vecs = jax.tree.unflatten(vec_def, [r[...] for r in vec_refs])
        held = tuple(w_ref[g] for g in range(G)) if spec.hold_weights else None

        def body(s, leaves):
            t = T - 1 - s if spec.reverse else s
            weights = held if held is not None else tuple(w_ref[g] for g in range(G))
            zs = tuple(matmul(leaves[0], w, spec.dtype) for w in weights)  # leaves[0]: the hidden state
            pxs_t = tuple(px_ref[t, g] for g in range(G))
            leaves, y = _masked_step(spec.pointwise, tile_vecs, zs, pxs_t, leaves,
                                     keep_ref[t] if masked else None, carry_def)
            ys_ref[t] = y.astype(ys_ref.dtype)
            return leaves

        leaves = fori_unrolled(T, body, [r[...] for r in carry0_refs], spec.unroll)
        for ref, value in zip(carry_refs, leaves):
            ref[...] = value.astype(ref.dtype)

    block_b = spec.block_b
    tile = lambda i: (i, 0)  # noqa: E731
    whole = lambda shape: pl.BlockSpec(shape, lambda i: (0,) * len(shape))  # noqa: E731
    in_specs = [
        *([pl.BlockSpec((T, block_b), lambda i: (0, i))] if masked else []),
        pl.BlockSpec((T, G, block_b, H), lambda i: (0, 0, i, 0)),
        whole((G, H, H)),
        *(whole(v.shape) for v in vec_leaves),
        *(pl.BlockSpec((block_b, H), tile) for _ in leaves0),
    ]
    out_specs = [pl.BlockSpec((T, block_b, H), lambda i: (0, i, 0)),
                 *(pl.BlockSpec((block_b, H), tile) for _ in leaves0)]
    out_shape = [jax.ShapeDtypeStruct((T, Bp, H), pxs.dtype),
                 *(jax.ShapeDtypeStruct(c.shape, c.dtype) for c in leaves0)]
    compiler_params = None
    if not spec.interpret:  # Pallas' Triton backend (not Mosaic GPU)
        from jax.experimental.pallas import triton as pl_triton

        compiler_params = pl_triton.CompilerParams(num_warps=4 if H <= 128 else 8)
    ys, *leaves = pl.pallas_call(
        kernel, out_shape=out_shape, grid=(Bp // block_b,), in_specs=in_specs,
        out_specs=out_specs, interpret=spec.interpret, compiler_params=compiler_params,
        name="rnnlab_recurrence",
    )(*([keep] if masked else []), pxs, w_h, *vec_leaves, *leaves0)
    return jax.tree.unflatten(carry_def, leaves), ys


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _recurrence(spec: _Kernel, pxs, w_h, vecs, keep, carry0):
    return _kernel_call(spec, pxs, w_h, vecs, keep, carry0)


def _recurrence_fwd(spec, pxs, w_h, vecs, keep, carry0):
    return _kernel_call(spec, pxs, w_h, vecs, keep, carry0), (pxs, w_h, vecs, keep, carry0)


def _recurrence_bwd(spec, residuals, cotangents):
    pxs, w_h, vecs, keep, carry0 = residuals
    recompute = functools.partial(scan_recurrence, spec.pointwise, spec.reverse, spec.dtype, spec.unroll)
    _, vjp = jax.vjp(lambda p, w, v, c: recompute(p, w, v, keep, c), pxs, w_h, vecs, carry0)
    d_pxs, d_w_h, d_vecs, d_carry0 = vjp(cotangents)
    return d_pxs, d_w_h, d_vecs, None, d_carry0


_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


def pallas_unroll(cell: Cell, params: Params, xs: Array, keep: Optional[Array], carry0: Carry,
                  reverse: bool, options: ScanOptions) -> tuple[Carry, Array]:
    """``Backend.PALLAS`` (the contract of :mod:`rnnlab.backends`): ``xs f32[T, B, D]`` -> ``ys f32[T, B, H]``.

    The kernel runs the definition's own equations (:func:`cell_pointwise`) on the
    projection ``cell.project`` made before it; the vectors of the definition
    (peepholes, ``b_hn``) reach it as ``vecs`` and get gradients.

    Args:
      options: ``interpret`` (Pallas' interpreter, any platform; slow),
        ``block_b`` (batch rows per kernel program; default 16 compiled, B
        interpreted), ``hold_weights`` (load ``W_h`` once before the time loop;
        default when it takes at most ``HOLD_WEIGHTS_BYTES``), ``unroll``.

    Returns:
      ``(carry, ys)``; differentiable w.r.t. params, xs and carry0 (backward:
      recomputation with ``lax.scan``, see the module docstring).

    Raises:
      ValueError: compiled (not interpreted), H or ``block_b`` not a power of two >= 16.
    """
    G, H = cell.num_gates, cell.hidden_size
    T, B, _ = jnp.shape(xs)
    dtype = jnp.dtype(cell.dtype)
    block_b = options.block_b or (B if options.interpret else 16)
    if not options.interpret and not (_is_power_of_two(H) and H >= 16 and _is_power_of_two(block_b)
                                      and block_b >= 16):
        raise ValueError(
            f"the compiled (Triton) kernel needs H and block_b powers of two >= 16, got H={H}, "
            f"block_b={block_b}; use ScanOptions(interpret=True) or another backend"
        )
    hold_weights = options.hold_weights
    if hold_weights is None:
        hold_weights = G * H * H * dtype.itemsize <= HOLD_WEIGHTS_BYTES
    vecs = {k: v for k, v in params.items() if k not in ("w_x", "w_h", "b")}
    pxs = cell.project(params, xs).reshape(T, B, G, H).transpose(0, 2, 1, 3)  # [T, G, B, H]
    w_h = params["w_h"].reshape(H, G, H).transpose(1, 0, 2)  # [G, H, H]
    keep = None if keep is None else keep.astype(jnp.int32)
    Bp = -(-B // block_b) * block_b
    if Bp != B:  # padded rows are dropped below (with a mask they are not kept either)
        pxs = jnp.pad(pxs, ((0, 0), (0, 0), (0, Bp - B), (0, 0)))
        keep = None if keep is None else jnp.pad(keep, ((0, 0), (0, Bp - B)))
        carry0 = jax.tree.map(lambda c: jnp.pad(c, ((0, Bp - B), (0, 0))), carry0)
    spec = _Kernel(cell_pointwise(cell.definition), bool(reverse), bool(options.interpret), dtype, int(block_b),
                   bool(hold_weights), int(options.unroll))
    carry, ys = _recurrence(spec, pxs, w_h, vecs, keep, carry0)
    return jax.tree.map(lambda c: c[:B], carry), ys[:, :B]

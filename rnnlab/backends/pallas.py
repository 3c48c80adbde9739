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

Semantics are rnnlab's (:mod:`rnnlab.scan`): steps ``t >= lengths[b]``
leave the carry alone and output 0; ``reverse=True`` runs
``t = lengths[b]-1, ..., 0`` (the kernel walks ``t = T-1, ..., 0`` and skips
the padding) and writes ``ys`` in input order.

Gradients: :func:`jax.custom_vjp`. The forward runs the kernel; the backward
*recomputes* the forward as a ``lax.scan`` of the same ``pointwise`` with the
same masking (:func:`scan_recurrence`) and differentiates it with
``jax.vjp``. So training pays the scan's forward once more plus its backward
(no activations are kept from the kernel); the kernel speeds up the forward
(inference, evaluation) and the backward is XLA's.

Platforms: ``interpret=True`` runs the kernel in Pallas' interpreter on any
platform (the CPU tests); ``interpret=False`` compiles it with Pallas' Triton
backend on a GPU, which needs H and the batch tile to be powers of two, at
least 16 (Triton's matrix products); the batch is padded to a multiple of the
tile. One kernel program runs one batch tile, so a small batch with a large
H keeps few of the GPU's cores busy (FlashRNN splits H across programs
instead; Pallas has no grid-wide barrier to do that).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from rnnlab.lengths import check_lengths
from rnnlab.types import Array, Carry, Params

Pointwise = Callable[..., tuple[Carry, Array]]

# Below this size (bytes), W_h is loaded into registers once before the time loop.
HOLD_WEIGHTS_BYTES = 64 * 1024
_WEIGHT_KEYS = ("w_x", "w_h", "b")


def cell_pointwise(definition) -> Pointwise:
    """The ``pointwise`` function of a :class:`rnnlab.CellDef` whose products all read ``h``.

    Its ``dot`` returns the kernel's products ``zs`` of the requested blocks,
    so the kernel runs the definition's own step (nothing written again).
    """

    def pointwise(zs, pxs, carry, vecs):
        new_carry, y, _ = definition.step(lambda a, blocks: tuple(zs[g] for g in blocks), vecs,
                                          carry, pxs)
        return new_carry, y

    return pointwise


def _is_power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def _hidden(leaves: list) -> Array:
    """The hidden state: the first leaf of the carry."""
    return leaves[0]


def _dot(h: Array, w: Array, dtype: Any) -> Array:
    """``h f32[b, H] @ w [H, H]`` with operands in ``dtype``, accumulated in >= float32."""
    accumulate = jnp.promote_types(dtype, jnp.float32)
    return jnp.dot(h.astype(dtype), w.astype(dtype), preferred_element_type=accumulate)


def _masked_step(pointwise, vecs, zs, pxs, carry, keep, carry_def):
    """One step of ``pointwise`` on a tile; rows with ``keep`` False keep their carry, output 0."""
    new_carry, y = pointwise(zs, pxs, jax.tree.unflatten(carry_def, carry), vecs)
    new_leaves = jax.tree.leaves(new_carry)
    if len(new_leaves) != len(carry):
        raise ValueError(f"pointwise returned a carry with {len(new_leaves)} leaves, "
                         f"expected {len(carry)} (the structure of carry0)")
    keep = keep[:, None]
    carry = [jnp.where(keep, n.astype(o.dtype), o) for n, o in zip(new_leaves, carry)]
    return carry, jnp.where(keep, y, jnp.zeros_like(y))


def scan_recurrence(pointwise: Pointwise, reverse: bool, dtype: Any, pxs: Array, w_h: Array,
                    vecs: dict, lengths: Array, carry0: Carry) -> tuple[Carry, Array]:
    """The kernel's computation as a ``lax.scan`` (the backward pass differentiates this).

    Args:
      pointwise: the cell's pointwise function (module docstring).
      reverse: walk ``t = T-1, ..., 0``.
      dtype: dtype of the recurrent products.
      pxs: ``f32[T, G, B, H]``, the input part of every gate block.
      w_h: ``f32[G, H, H]``, the recurrent weight blocks.
      vecs: the cell's other params.
      lengths: ``int32[B]``.
      carry0: pytree of ``f32[B, H]`` leaves.

    Returns:
      ``(carry, ys f32[T, B, H])``.
    """
    T, G = pxs.shape[:2]
    leaves0, carry_def = jax.tree.flatten(carry0)

    def body(leaves, inputs):
        px, t = inputs
        h = _hidden(leaves)
        zs = tuple(_dot(h, w_h[g], dtype) for g in range(G))
        return _masked_step(pointwise, vecs, zs, tuple(px[g] for g in range(G)), leaves,
                            t < lengths, carry_def)

    leaves, ys = jax.lax.scan(body, leaves0, (pxs, jnp.arange(T)), reverse=reverse)
    return jax.tree.unflatten(carry_def, leaves), ys


def _kernel_call(pointwise, reverse, interpret, dtype, block_b, hold_weights, pxs, w_h, vecs,
                 lengths, carry0):
    """Runs the Pallas kernel: ``pxs f32[T, G, Bp, H]``, Bp a multiple of ``block_b``."""
    T, G, Bp, H = pxs.shape
    leaves0, carry_def = jax.tree.flatten(carry0)
    vec_leaves, vec_def = jax.tree.flatten(vecs)
    num_vecs, num_carry = len(vec_leaves), len(leaves0)
    w_h = w_h.astype(dtype)

    def kernel(lengths_ref, px_ref, w_ref, *refs):
        vec_refs = refs[:num_vecs]
        carry0_refs = refs[num_vecs:num_vecs + num_carry]
        ys_ref = refs[num_vecs + num_carry]
        carry_refs = refs[num_vecs + num_carry + 1:]
        tile_lengths = lengths_ref[...]
        tile_vecs = jax.tree.unflatten(vec_def, [r[...] for r in vec_refs])
        held = tuple(w_ref[g] for g in range(G)) if hold_weights else None

        def body(s, leaves):
            t = T - 1 - s if reverse else s
            weights = held if held is not None else tuple(w_ref[g] for g in range(G))
            h = _hidden(leaves)
            zs = tuple(_dot(h, w, dtype) for w in weights)
            pxs_t = tuple(px_ref[t, g] for g in range(G))
            leaves, y = _masked_step(pointwise, tile_vecs, zs, pxs_t, leaves, t < tile_lengths,
                                     carry_def)
            ys_ref[t] = y.astype(ys_ref.dtype)
            return leaves

        leaves = jax.lax.fori_loop(0, T, body, [r[...] for r in carry0_refs])
        for ref, value in zip(carry_refs, leaves):
            ref[...] = value.astype(ref.dtype)

    tile = lambda i: (i, 0)  # noqa: E731
    whole = lambda shape: pl.BlockSpec(shape, lambda i: (0,) * len(shape))  # noqa: E731
    in_specs = [
        pl.BlockSpec((block_b,), lambda i: (i,)),
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
    if not interpret:  # Pallas' Triton backend (not Mosaic GPU)
        from jax.experimental.pallas import triton as pl_triton

        compiler_params = pl_triton.CompilerParams(num_warps=4 if H <= 128 else 8)
    ys, *leaves = pl.pallas_call(
        kernel, out_shape=out_shape, grid=(Bp // block_b,), in_specs=in_specs,
        out_specs=out_specs, interpret=interpret, compiler_params=compiler_params,
        name="rnnlab_recurrence",
    )(lengths, pxs, w_h, *vec_leaves, *leaves0)
    return jax.tree.unflatten(carry_def, leaves), ys


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3, 4, 5))
def _recurrence(pointwise, reverse, interpret, dtype, block_b, hold_weights, pxs, w_h, vecs,
                lengths, carry0):
    return _kernel_call(pointwise, reverse, interpret, dtype, block_b, hold_weights, pxs, w_h,
                        vecs, lengths, carry0)


def _recurrence_fwd(pointwise, reverse, interpret, dtype, block_b, hold_weights, pxs, w_h, vecs,
                    lengths, carry0):
    out = _kernel_call(pointwise, reverse, interpret, dtype, block_b, hold_weights, pxs, w_h,
                       vecs, lengths, carry0)
    return out, (pxs, w_h, vecs, lengths, carry0)


def _recurrence_bwd(pointwise, reverse, interpret, dtype, block_b, hold_weights, residuals,
                    cotangents):
    pxs, w_h, vecs, lengths, carry0 = residuals
    recompute = functools.partial(scan_recurrence, pointwise, reverse, dtype)
    _, vjp = jax.vjp(lambda p, w, v, c: recompute(p, w, v, lengths, c), pxs, w_h, vecs, carry0)
    d_pxs, d_w_h, d_vecs, d_carry0 = vjp(cotangents)
    return d_pxs, d_w_h, d_vecs, None, d_carry0


_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


def _standard_project(params: Params, xs: Array, dtype: Any) -> Array:
    accumulate = jnp.promote_types(dtype, jnp.float32)
    return jnp.matmul(xs.astype(dtype), params["w_x"].astype(dtype),
                      preferred_element_type=accumulate) + params["b"]


def pallas_unroll(
    pointwise: Pointwise,
    num_gates: int,
    params: Params,
    xs: Array,
    lengths: Optional[Array],
    carry0: Carry,
    reverse: bool = False,
    interpret: bool = False,
    *,
    dtype: Any = jnp.float32,
    project: Optional[Callable[[Params, Array], Array]] = None,
    block_b: Optional[int] = None,
    hold_weights: Optional[bool] = None,
) -> tuple[Carry, Array]:
    """Runs a cell over a batch with the Pallas recurrence kernel: ``unroll_batch`` semantics.

    Args:
      pointwise: ``pointwise(zs, pxs, carry, vecs) -> (carry, y)`` (module docstring).
      num_gates: G, the number of H-wide blocks of ``w_x``/``w_h``/``b``.
      params: ``w_x f32[D, G*H]``, ``w_h f32[H, G*H]``, ``b f32[G*H]``; every
        other entry is passed to ``pointwise`` as ``vecs`` (and gets gradients).
      xs: ``f32[B, T, D]``, batch-major (as :func:`rnnlab.unroll_batch`).
      lengths: ``int32[B]`` valid steps in ``[0, T]`` (``None``: all T).
      carry0: the initial carry, a pytree of ``f32[B, H]`` leaves, hidden state first.
      reverse: run ``t = lengths[b]-1, ..., 0``; ``ys`` stays in input order.
      interpret: run the kernel in Pallas' interpreter (any platform; slow).
      dtype: dtype of the matrix products (float32, bfloat16; float64 for checks).
      project: ``project(params, xs f32[B, T, D]) -> f32[B, T, G*H]``, the
        input part (default ``xs @ w_x + b`` in ``dtype``), e.g. ``cell.project``.
      block_b: batch rows per kernel program (default: 16 compiled, B interpreted).
      hold_weights: load ``W_h`` once before the time loop (default: when it
        takes at most ``HOLD_WEIGHTS_BYTES``); else read it every step.

    Returns:
      ``(carry, ys)``: the carry after each row's last valid step (leaves
      ``f32[B, H]``) and ``ys f32[B, T, H]``, zero at ``t >= lengths[b]``.
      Differentiable w.r.t. params, xs and carry0 (backward: recomputation
      with ``lax.scan``, see the module docstring).

    Raises:
      ValueError: shapes that do not fit ``num_gates`` and ``w_h``, bad
        lengths, or (compiled) H or ``block_b`` not a power of two >= 16.
    """
    missing = [k for k in _WEIGHT_KEYS if k not in params]
    if missing:
        raise ValueError(f"params need w_x, w_h and b; missing {missing}")
    G = num_gates
    H = jnp.shape(params["w_h"])[0]
    if jnp.shape(params["w_h"]) != (H, G * H) or jnp.shape(params["b"]) != (G * H,):
        raise ValueError(
            f"with num_gates={G}, w_h must be [H, G*H] and b [G*H]; got w_h "
            f"{jnp.shape(params['w_h'])} and b {jnp.shape(params['b'])}"
        )
    if jnp.ndim(xs) != 3 or jnp.shape(xs)[-1] != jnp.shape(params["w_x"])[0]:
        raise ValueError(f"xs must have shape [B, T, D={jnp.shape(params['w_x'])[0]}] "
                         f"(batch-major), got {jnp.shape(xs)}")
    B, T, _ = jnp.shape(xs)
    lengths = check_lengths(lengths, B, T)
    leaves0, carry_def = jax.tree.flatten(carry0)
    if not leaves0 or any(jnp.shape(c) != (B, H) for c in leaves0):
        raise ValueError(f"carry0 must be a pytree of [B={B}, H={H}] arrays, got leaves of shapes "
                         f"{[jnp.shape(c) for c in leaves0]}")
    dtype = jnp.dtype(dtype)
    if block_b is None:
        block_b = B if interpret else 16
    if not interpret and not (_is_power_of_two(H) and H >= 16 and _is_power_of_two(block_b)
                              and block_b >= 16):
        raise ValueError(
            f"the compiled (Triton) kernel needs H and block_b powers of two >= 16, got H={H}, "
            f"block_b={block_b}; use interpret=True or another backend"
        )
    if hold_weights is None:
        hold_weights = G * H * H * dtype.itemsize <= HOLD_WEIGHTS_BYTES

    vecs = {k: v for k, v in params.items() if k not in _WEIGHT_KEYS}
    projected = (project(params, xs) if project is not None
                 else _standard_project(params, xs, dtype))
    pxs = projected.reshape(B, T, G, H).transpose(1, 2, 0, 3)  # [T, G, B, H]
    w_h = params["w_h"].reshape(H, G, H).transpose(1, 0, 2)  # [G, H, H]
    Bp = -(-B // block_b) * block_b
    if Bp != B:  # padded rows have length 0: they keep their zero carry and output 0
        pxs = jnp.pad(pxs, ((0, 0), (0, 0), (0, Bp - B), (0, 0)))
        lengths = jnp.pad(lengths, (0, Bp - B))
        carry0 = jax.tree.map(lambda c: jnp.pad(c, ((0, Bp - B), (0, 0))), carry0)
    carry, ys = _recurrence(pointwise, bool(reverse), bool(interpret), dtype, int(block_b),
                            bool(hold_weights), pxs, w_h, vecs, lengths, carry0)
    carry = jax.tree.map(lambda c: c[:B], carry)
    return carry, jnp.swapaxes(ys[:, :B], 0, 1)

"""``Backend.FUSED``: a time-major batched scan of a cell definition's step, with a custom VJP.

Derived from the :class:`rnnlab.CellDef` alone, for every cell with
recurrent products:

- the input projection ``cell.project`` runs inside the loop, one
  ``[B, D] x [D, G*H]`` product per step (its output stays in cache), except
  when the generic backward step needs the projections saved: then it is one
  product for all T steps before the loop;
- the loop runs ``definition.step`` with the batch inside the carry and the
  gates as G separate ``[B, H]`` arrays. When the backward pass needs the
  residuals, ``dot`` makes one ``[B, H] x [H, H]`` product per gate block (in
  an XLA CPU loop, arithmetic on slices of one fused ``[B, G*H]`` array costs
  several times the same on G arrays, see ``docs/performance.md``); forward
  only (inference, evaluation, gate traces), one ``[B, H] x [H, G*H]``
  product split into blocks, measured 10-13% faster at (64, 200, 256, 256);
- the backward loop carries only ``dcarry``. With the definition's optional
  hand-written ``backward`` (tanh RNN, LSTM and its gate variants, GRU with
  one product) the forward pass saves the activations and each backward
  step computes ``dh`` as ONE ``[B, G*H] x [G*H, H]`` product; otherwise
  each backward step is ``jax.vjp`` of ``step`` whose ``dot`` returns the
  products saved by the forward pass (:func:`_tap`, VJP ``da = dz @ W^T``);
- the weight gradients are one ``[H, T*B] x [T*B, G*H]`` product after the
  loop (as cuDNN does); the standard projection's gradients are three flat
  products, a definition's own ``project`` is differentiated by ``jax.vjp``.

``keep=None`` (every sequence whole) leaves the masks of padded steps out
of the loops (no select ops). ``unroll=U`` runs U steps per iteration of the
forward loop and of either backward loop.

Rematerialisation (``remat=K``): the forward pass keeps only the carry at
the start of every chunk of K steps; the backward pass recomputes each
chunk's forward residuals before running back through it. Peak memory then
grows as ``T/K + K`` instead of ``T``.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from rnnlab.backends import ScanOptions
from rnnlab.backends.reference import chunked
from rnnlab.cells import Cell, CellDef, hidden, split_blocks, vectors_of
from rnnlab.cells import matmul as _mm
from rnnlab.lengths import where_kept, zero_unkept
from rnnlab.types import Array, Carry, Params


class _Spec(NamedTuple):
    """Static description of a cell for the fused backend."""

    definition: CellDef
    hidden_size: int
    dtype: Any
    hand: bool  # the definition's hand-written backward is used
    unroll: int  # steps per loop iteration, forward and backward


def _spec(cell: Cell, options: ScanOptions) -> _Spec:
    definition = cell.definition
    return _Spec(definition, cell.hidden_size, cell.dtype,
                 options.hand_backward and definition.backward is not None, options.unroll)


# ---------------------------------------------------------------------------
# Products


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _tap(a: Array, zs: tuple, w: tuple, dtype: Any) -> tuple:
    """Returns the saved products ``zs`` (= ``a @ w[g]``); VJP ``da = sum_g dz_g @ w[g]^T``.

    ``a: f32[B, H]``, ``zs``: tuple of ``f32[B, H]``, ``w``: tuple of ``f32[H, H]``.
    The cotangent of ``zs`` is passed through unchanged (it is the product's
    cotangent, used for the weight gradient); ``w`` gets none here.
    """
    return zs


def _tap_fwd(a, zs, w, dtype):
    return zs, w


def _tap_bwd(dtype, w, dzs):
    da = functools.reduce(jnp.add, [_mm(dz, wg.T, dtype) for dz, wg in zip(dzs, w)])
    return da, dzs, None


_tap.defvjp(_tap_fwd, _tap_bwd)


def _masked_step(spec: _Spec, dot: Callable, vecs, carry, px, keep):
    new_carry, y, _ = spec.definition.equations(dot, vecs, carry, px)
    return where_kept(keep, new_carry, carry), zero_unkept(keep, y)


# ---------------------------------------------------------------------------
# Forward and backward over one chunk of steps (time-major, batched)


def _forward(spec: _Spec, w_h: tuple, vecs, px: tuple, keep: Array, carry0, reverse: bool,
             save: bool, project: Optional[Callable] = None):
    """Runs the chunk forward.

    Args:
      w_h: G blocks ``f32[H, H]``; px: G arrays ``f32[K, B, H]``, or with
        ``project`` the inputs ``f32[K, B, D]``; keep: ``bool[K, B]``,
        or ``None`` when no step is padding (no select ops in the loop).
      project: ``x_t f32[B, D] -> f32[B, G*H]``, run inside the loop (forward
        only: each step's projection stays in cache instead of a ``[K, B, G*H]``
        array written before the loop and read back).

    Returns:
      ``(carry, ys f32[K, B, H], residuals)``; residuals (when ``save``) are
      the carry before every step and either the step's activations (hand
      backward) or its recurrent products.
    """
    every_block = tuple(range(len(w_h)))
    # [H, G*H], concatenated once: one product per step unless the generic backward reads the products
    w_all = None if save and not spec.hand else jnp.concatenate(w_h, axis=-1)

    def body(carry, inputs):
        px_t, keep_t = inputs
        if project is not None:
            px_t = split_blocks(project(px_t), len(w_h))
        products = []

        def dot(a, blocks):
            if w_all is not None and tuple(blocks) == every_block:
                # Forward only: ONE [B, H] x [H, G*H] product (measured faster than G products);
                # with residuals for the backward, one product per block (the backward reads them).
                return split_blocks(_mm(a, w_all, spec.dtype), len(blocks))
            zs = tuple(_mm(a, w_h[g], spec.dtype) for g in blocks)
            products.extend(zs)
            return zs

        new_carry, y, acts = spec.definition.equations(dot, vecs, carry, px_t)
        saved = acts if spec.hand else tuple(products)
        return where_kept(keep_t, new_carry, carry), (zero_unkept(keep_t, y), (carry, saved) if save else None)

    carry, (ys, res) = jax.lax.scan(body, carry0, (px, keep), reverse=reverse, unroll=spec.unroll)
    return carry, ys, res


def _backward(spec: _Spec, w_h: tuple, vecs, px: tuple, keep: Array, res, dys: Array, dcarry,
              reverse: bool):
    """Runs back through a chunk by ``jax.vjp`` of the step; returns ``(dcarry0, dvecs, dpx, dw_h)``.

    ``dpx``: G arrays ``f32[K, B, H]``; ``dw_h f32[H, G*H]``: from the left
    operand and the product cotangents of every ``dot`` call.
    """
    carries, products = res
    groups = []  # the blocks of every dot call, recorded while tracing

    def body(acc, inputs):
        dcarry, dvecs = acc
        px_t, keep_t, carry_t, zs_t, dy_t = inputs

        def f(carry, px_t, vecs, zs_t):
            lefts = []
            del groups[:]
            position = iter(range(len(zs_t)))

            def dot(a, blocks):
                lefts.append(a)
                groups.append(blocks)
                saved = tuple(zs_t[next(position)] for _ in blocks)
                return _tap(a, saved, tuple(w_h[g] for g in blocks), spec.dtype)

            return _masked_step(spec, dot, vecs, carry, px_t, keep_t), tuple(lefts)

        _, vjp, lefts = jax.vjp(f, carry_t, px_t, vecs, zs_t, has_aux=True)
        dcarry, dpx, dv, dzs = vjp((dcarry, dy_t))
        return (dcarry, jax.tree.map(jnp.add, dvecs, dv)), (dpx, dzs, lefts)

    dvecs0 = _accumulator_zeros(vecs)
    (dcarry, dvecs), (dpx, dzs, lefts) = jax.lax.scan(
        body, (dcarry, dvecs0), (px, keep, carries, products, dys), reverse=not reverse, unroll=spec.unroll
    )
    flat = lambda a: a.reshape((-1, a.shape[-1]))
    blocks_dw = {}
    position = 0
    for a, blocks in zip(lefts, groups):
        dz = jnp.concatenate([flat(dzs[position + k]) for k in range(len(blocks))], axis=-1)
        dw = split_blocks(flat(a).T @ dz, len(blocks))
        blocks_dw.update(zip(blocks, dw))
        position += len(blocks)
    dw_h = jnp.concatenate([blocks_dw[g] for g in range(len(w_h))], axis=-1)
    return dcarry, dvecs, dpx, dw_h


def _accumulator_zeros(tree):
    """Zeros shaped like ``tree``'s leaves, at least float32 (bfloat16 params' gradients accumulate in float32)."""
    return jax.tree.map(lambda v: jnp.zeros(jnp.shape(v), jnp.promote_types(jnp.result_type(v), jnp.float32)),
                        tree)


def _add_to_hidden(direct: Carry, dh: Array) -> Carry:
    if isinstance(direct, tuple):
        return direct._replace(**{direct._fields[0]: direct[0] + dh})
    return direct + dh


def _hand_backward(spec: _Spec, w_h: Array, vecs, keep: Array, res, dys: Array, dcarry,
                   reverse: bool):
    """Runs back through a chunk with the definition's hand-written backward step.

    Returns ``(dcarry0, dvecs, dpx, dw_h)``: ``dpx f32[K, B, G*H]``; the
    carry's cotangent through the products is one ``[B, G*H] x [G*H, H]``
    product per step.
    """
    carries, acts = res
    w_t = w_h.T  # [G*H, H]
    backward = spec.definition.backward

    def body(acc, inputs):
        dcarry, dvecs = acc
        keep_t, carry_t, acts_t, dy_t = inputs
        direct, dpx, dz, dv = backward(vecs, carry_t, acts_t, dcarry, dy_t)
        dpx = zero_unkept(keep_t, jnp.concatenate(dpx, axis=-1))
        dz = dpx if dz is None else zero_unkept(keep_t, jnp.concatenate(dz, axis=-1))
        direct = _add_to_hidden(direct, _mm(dz, w_t, spec.dtype))
        dvecs = {k: dvecs[k] + jnp.sum(zero_unkept(keep_t, dv[k]), axis=0) if k in dv else dvecs[k]
                 for k in dvecs}
        return (where_kept(keep_t, direct, dcarry), dvecs), (dpx, dz)

    dvecs0 = _accumulator_zeros(vecs)
    (dcarry, dvecs), (dpx, dz) = jax.lax.scan(
        body, (dcarry, dvecs0), (keep, carries, acts, dys), reverse=not reverse, unroll=spec.unroll
    )
    flat = lambda a: a.reshape((-1, a.shape[-1]))
    dw_h = flat(hidden(carries)).T @ flat(dz)
    return dcarry, dvecs, dpx, dw_h


def _project(cell: Cell, params: Params, xs: Array) -> tuple:
    return split_blocks(cell.project(params, xs), cell.num_gates)


def _chunk_grads(spec: _Spec, cell: Cell, params: Params, xs: Array, px: tuple, keep: Array, res,
                 dys, dcarry, reverse: bool):
    """Backward through one chunk plus its weight gradients as single products.

    Returns ``(dcarry0, grads, dxs f32[K, B, D])`` with ``grads`` shaped like ``params``.
    """
    vecs = vectors_of(spec.definition, params)
    if spec.hand:
        dcarry, dvecs, dpx, dw_h = _hand_backward(spec, params["w_h"], vecs, keep, res, dys,
                                                  dcarry, reverse)
    else:
        dcarry, dvecs, dpx, dw_h = _backward(spec, _blocks(cell, params), vecs, px, keep, res, dys,
                                             dcarry, reverse)
        dpx = jnp.concatenate(dpx, axis=-1)
    if spec.definition.project is None:
        # The standard projection xs @ w_x + b: its gradients as three flat products (measured 7%
        # faster fwd+bwd for the LSTM at (64, 200, 256, 256) than jax.vjp of the projection).
        flat = lambda a: a.reshape((-1, a.shape[-1]))  # [K, B, F] -> [K*B, F]
        w_x = params["w_x"]
        grads = {**dvecs, "w_h": dw_h, "w_x": flat(xs).astype(w_x.dtype).T @ flat(dpx),
                 "b": jnp.sum(flat(dpx), axis=0)}
        dxs = (flat(dpx) @ w_x.T).reshape(xs.shape)
        return dcarry, grads, dxs.astype(xs.dtype)
    _, project_vjp = jax.vjp(cell.project, dict(params), xs)
    grads, dxs = project_vjp(dpx.astype(jnp.result_type(*jax.tree.leaves(params))))
    grads = dict(grads)
    grads["w_h"] = grads["w_h"] + dw_h
    for name, dv in dvecs.items():
        grads[name] = grads[name] + dv
    return dcarry, grads, dxs.astype(xs.dtype)


# ---------------------------------------------------------------------------
# The fused unroll with its custom VJP


def _blocks(cell: Cell, params: Params) -> tuple:
    """``w_h [H, G*H]`` as G separate ``[H, H]`` blocks (split once, outside the loop)."""
    return split_blocks(params["w_h"], cell.num_gates)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 5, 6))
def _fused(cell: Cell, params: Params, xs: Array, keep: Optional[Array], carry0, reverse: bool,
           options: ScanOptions):
    carry, ys, _ = _fused_fwd_impl(cell, params, xs, keep, carry0, reverse, options, save=False)
    return carry, ys


def _run_chunk(spec: _Spec, cell: Cell, params: Params, vecs, xs: Array, keep, carry0, reverse: bool,
               save: bool):
    """:func:`_forward` over inputs ``xs f32[K, B, D]``; returns ``(carry, ys, px, residuals)``.

    The input projection runs inside the loop, one ``[B, D] x [D, G*H]`` product per step,
    unless the generic backward needs the projections saved (``save`` without a hand-written
    backward): then it is one product before the loop, and ``px`` (G arrays ``f32[K, B, H]``)
    is returned with the residuals (else ``px`` is None). In the loop each step's projection
    stays in cache; before it, a ``[K, B, G*H]`` array is written, split and read back
    (measured: LSTM forward at (64, 200, 256, 256), see docs/performance.md).
    """
    if save and not spec.hand:
        px = _project(cell, params, xs)
        carry, ys, res = _forward(spec, _blocks(cell, params), vecs, px, keep, carry0, reverse, save)
        return carry, ys, px, res
    carry, ys, res = _forward(spec, _blocks(cell, params), vecs, xs, keep, carry0, reverse, save,
                              project=functools.partial(cell.project, params))
    return carry, ys, None, res


def _fused_fwd_impl(cell, params, xs, keep, carry0, reverse, options, save):
    spec = _spec(cell, options)
    vecs = vectors_of(spec.definition, params)
    if options.remat is None:
        carry, ys, px, res = _run_chunk(spec, cell, params, vecs, xs, keep, carry0, reverse, save)
        return carry, ys, (px, res)

    def chunk_body(carry, inputs):
        xs_c, keep_c = inputs
        new_carry, ys_c, _, _ = _run_chunk(spec, cell, params, vecs, xs_c, keep_c, carry, reverse, save=False)
        return new_carry, (ys_c, carry)

    carry, (ys, starts) = jax.lax.scan(chunk_body, carry0, chunked((xs, keep), options.remat), reverse=reverse)
    return carry, ys.reshape((-1,) + ys.shape[2:]), starts


def _fused_fwd(cell, params, xs, keep, carry0, reverse, options):
    carry, ys, res = _fused_fwd_impl(cell, params, xs, keep, carry0, reverse, options, save=True)
    return (carry, ys), (params, xs, keep, res)


def _fused_bwd(cell, reverse, options, residuals, cotangents):
    params, xs, keep, res = residuals
    dcarry, dys = cotangents
    spec = _spec(cell, options)
    if options.remat is None:
        px, fwd_res = res
        dcarry0, grads, dxs = _chunk_grads(spec, cell, params, xs, px, keep, fwd_res, dys, dcarry,
                                           reverse)
        return _like(grads, params), dxs, None, dcarry0

    vecs = vectors_of(spec.definition, params)

    def chunk_body(acc, inputs):
        dcarry, grads = acc
        xs_c, keep_c, start_c, dys_c = inputs
        _, _, px_c, fwd_res = _run_chunk(spec, cell, params, vecs, xs_c, keep_c, start_c, reverse, save=True)
        dcarry, grads_c, dxs_c = _chunk_grads(spec, cell, params, xs_c, px_c, keep_c, fwd_res,
                                              dys_c, dcarry, reverse)
        return (dcarry, jax.tree.map(lambda g, c: g + c.astype(g.dtype), grads, grads_c)), dxs_c

    (dcarry0, grads), dxs = jax.lax.scan(
        chunk_body, (dcarry, _accumulator_zeros(dict(params))),
        (*chunked((xs, keep), options.remat), res, chunked(dys, options.remat)), reverse=not reverse,
    )
    return _like(grads, params), dxs.reshape(xs.shape), None, dcarry0


def _like(grads: Params, params: Params) -> Params:
    """``grads`` in the dtypes of ``params`` (a custom VJP returns cotangents of its primals' dtypes)."""
    return {k: grads[k].astype(params[k].dtype) for k in params}


_fused.defvjp(_fused_fwd, _fused_bwd)


def fused_unroll(cell: Cell, params: Params, xs: Array, keep: Optional[Array], carry0: Carry,
                 reverse: bool, options: ScanOptions) -> tuple[Carry, Array]:
    """``Backend.FUSED`` (the contract of :mod:`rnnlab.backends`): ``xs f32[T, B, D]`` -> ``ys f32[T, B, H]``.

    ``keep=None`` runs the loops without select ops; ``options.remat=K`` (T a
    multiple of K) keeps only every K-th carry and recomputes the rest in the
    backward pass; ``options.unroll`` steps per loop iteration, forward and
    backward; ``options.hand_backward=False`` uses ``jax.vjp`` of the equations
    even where the definition has a hand-written backward (for measurements).
    """
    params = {k: jnp.asarray(v) for k, v in params.items()}
    return _fused(cell, params, xs, keep, carry0, reverse, options)

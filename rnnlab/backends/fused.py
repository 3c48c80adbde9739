"""Fast implementations of the recurrence, chosen by one enum argument.

``rnnlab.unroll(..., backend=Backend.X)`` and ``rnnlab.unroll_batch(...)``
pick the implementation; every backend computes the same function (outputs,
final carry and gradients) as the reference ``lax.scan`` of ``cell.recur``.

``Backend.REFERENCE``
    ``lax.scan`` of ``cell.recur`` over one sequence, batched by ``jax.vmap``;
    gradients by JAX's autodiff of the scan.
``Backend.FUSED``
    A time-major batched scan (the batch lives inside the carry) with the
    gates as G separate ``[B, H]`` arrays, the input projection hoisted out of
    the loop, and a custom VJP for the whole unroll: the backward loop only
    carries ``dcarry`` and computes ``dh = dz @ W_h^T``; the weight gradients
    are one large ``[H, T*B] x [T*B, G*H]`` product after the loop (as cuDNN
    does), and ``dW_x``, ``db``, ``dxs`` are one product each.

The backward step is written out by hand for the cells whose recurrent
products all read the previous ``h`` (tanh RNN, LSTM with or without
peepholes, GRU with ``reset_after=True``; ``_HANDS`` below): the forward
pass saves the gate activations, and each backward step computes all gate
cotangents as one ``[B, G*H]`` array and ``dh`` as ONE ``[B, G*H] x [G*H, H]``
product. The GRU with the reset before the product uses the generic backward
(``jax.vjp`` of the step inside the loop, through :func:`_tap`).

Why the gates are separate arrays: in an XLA CPU loop, arithmetic on slices
of one fused ``[B, G*H]`` array costs several times the same arithmetic on G
``[B, H]`` arrays (see ``docs/performance.md``).

The fast path needs each cell's step written once more in terms of a
``dot(a, gates)`` callback (``_STEPS`` below), derived from ``cell.kind`` and
``cell.options``; the params layout is the one documented in
:mod:`rnnlab.cells` (``w_h [H, G*H]`` holds G blocks in gate order).
The ``dot`` callback is what lets one generic backward pass serve every
cell: in the backward loop it returns the products saved by the forward pass
through :func:`_tap`, whose VJP is ``da = dz @ W^T``, and records the left
operand ``a`` for the weight gradient after the loop.

Rematerialisation (``remat=K``): the forward pass keeps only the carry at
the start of every chunk of K steps; the backward pass recomputes each
chunk's forward residuals before running back through it, and accumulates
the weight gradients chunk by chunk. Peak memory then grows as
``T/K + K`` instead of ``T``.
"""

from __future__ import annotations

import enum
import functools
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from rnnlab.cells import Cell, LSTMState
from rnnlab.types import Array, Carry, Params


class Backend(enum.Enum):
    """How :func:`rnnlab.unroll` runs the recurrence (see the module docstring)."""

    REFERENCE = "reference"
    FUSED = "fused"


def default_backend(cell: Cell, batched: bool) -> Backend:
    """The fastest correct backend for this call (measured in ``docs/performance.md``).

    ``FUSED`` for :func:`rnnlab.unroll_batch` on the library's own cells;
    ``REFERENCE`` for a single sequence (under ``jax.vmap`` the fused VJP
    would form per-example weight gradients) and for cells whose functions
    were replaced (e.g. by ``gate_trace``), which only ``REFERENCE`` runs.
    """
    return Backend.FUSED if batched and is_fusable(cell) else Backend.REFERENCE


def is_fusable(cell: Cell) -> bool:
    """Whether ``Backend.FUSED`` computes this cell: a library cell, unmodified.

    The fused backend derives the step from ``cell.kind`` and ``cell.options``,
    so a cell whose ``project``/``recur`` were replaced (``cell._replace``)
    must run on ``Backend.REFERENCE``.
    """
    project = cell.project
    return (
        cell.kind in _STEPS
        and getattr(cell.recur, "__qualname__", "") == "_make_cell.<locals>.recur"
        and isinstance(project, functools.partial)
        and getattr(project.func, "__qualname__", "") == "_project"
    )


def get_backend(backend: Any, cell: Cell, batched: bool) -> Backend:
    """``Backend`` from an enum member, its value (``"fused"``) or ``None`` (the default).

    Raises:
      ValueError: an unknown name (the message lists the known ones), or
        ``FUSED`` asked for a cell it cannot run.
    """
    if backend is None:
        return default_backend(cell, batched)
    if not isinstance(backend, Backend):
        try:
            backend = Backend(backend)
        except ValueError:
            known = ", ".join(b.value for b in Backend)
            raise ValueError(f"unknown backend {backend!r}; known backends: {known}") from None
    if backend is Backend.FUSED and not is_fusable(cell):
        raise ValueError(
            f"Backend.FUSED runs only the library's unmodified cells ({', '.join(sorted(_STEPS))}); "
            f"this {cell.kind!r} cell has replaced functions: use Backend.REFERENCE"
        )
    return backend


# ---------------------------------------------------------------------------
# The cells' steps on G separate gate arrays.
#
# step(dot, small, carry, px) -> (carry, y), batched: carry leaves and y are
# [B, H], px is a tuple of G arrays [B, H] (the hoisted input projection,
# bias included), small the dict of the cell's [H]-vectors (peepholes, b_hn).
# dot(a, gates) returns a tuple of the products a @ W_h[:, block g] for g in
# gates; the calls must cover the gates 0..G-1 in order.


def _sigmoid(a: Array) -> Array:
    return jax.nn.sigmoid(a)


def _without_acts(hand: Callable) -> Callable:
    """The step of a hand-written cell (see below): its forward without the saved activations."""

    def make(cell: Cell) -> Callable:
        forward = hand(cell).forward
        return lambda dot, small, carry, px: forward(dot, small, carry, px)[:2]

    return make


def _gru_reset_before_step(cell: Cell) -> Callable:
    """The GRU with the reset before the product (Cho et al.): its product for n reads ``r * h``."""

    def step(dot, small, h, px):
        z_r, z_z = dot(h, (0, 1))
        r, z = _sigmoid(px[0] + z_r), _sigmoid(px[1] + z_z)
        (z_n,) = dot(r * h, (2,))
        n = jnp.tanh(px[2] + z_n)
        h = n + z * (h - n)
        return h, h

    return step


_PER_GATE = True
_SMALL = ("p_i", "p_f", "p_o", "b_hn")


# ---------------------------------------------------------------------------
# Hand-written steps: forward saving activations, backward written out.
#
# forward(dot, small, carry, px) -> (carry, y, acts): ``acts`` (a tuple of
# [B, H] arrays) is what the backward step needs besides the carry before the
# step. backward(small, carry, acts, dcarry, dy) -> (dcarry_direct, dpx, dz,
# dsmall): the cotangents of the input projection (G arrays [B, H]) and of the
# recurrent products ``h @ W_h[:, block g]`` (G arrays, or None when equal to
# dpx); ``dcarry_direct`` is the carry's cotangent without the part through
# the products (``dz @ W_h^T``, added by the caller as ONE [B, G*H] x [G*H, H]
# product); ``dsmall`` holds per-example [B, H] terms of the small params.
# Every product's left operand must be the previous ``h`` (so not the GRU with
# the reset before the product, which keeps the generic backward).


class _Hand(NamedTuple):
    forward: Callable
    backward: Callable


def _tanh_hand(cell: Cell) -> _Hand:
    def forward(dot, small, h, px):
        (z,) = dot(h, (0,))
        h = jnp.tanh(px[0] + z)
        return h, h, (h,)

    def backward(small, h, acts, dh, dy):
        (h2,) = acts
        return jnp.zeros_like(h), ((dy + dh) * (1.0 - h2 * h2),), None, {}

    return _Hand(forward, backward)


def _lstm_hand(cell: Cell) -> _Hand:
    forget_bias = cell.option("forget_bias")
    peephole = cell.option("peephole")

    def forward(dot, small, carry, px):
        h, c = carry
        z_i, z_f, z_g, z_o = dot(h, (0, 1, 2, 3))
        a_i, a_f, a_o = px[0] + z_i, px[1] + z_f + forget_bias, px[3] + z_o
        if peephole:
            a_i = a_i + small["p_i"] * c
            a_f = a_f + small["p_f"] * c
        i, f, g = _sigmoid(a_i), _sigmoid(a_f), jnp.tanh(px[2] + z_g)
        c2 = f * c + i * g
        if peephole:
            a_o = a_o + small["p_o"] * c2
        o = _sigmoid(a_o)
        h2 = o * jnp.tanh(c2)
        return LSTMState(h=h2, c=c2), h2, (i, f, g, o)

    def backward(small, carry, acts, dcarry, dy):
        c = carry.c
        i, f, g, o = acts
        c2 = f * c + i * g
        tc = jnp.tanh(c2)
        dh2 = dy + dcarry.h
        da_o = dh2 * tc * o * (1.0 - o)
        dc2 = dcarry.c + dh2 * o * (1.0 - tc * tc)
        if peephole:
            dc2 = dc2 + da_o * small["p_o"]
        da_i = dc2 * g * i * (1.0 - i)
        da_f = dc2 * c * f * (1.0 - f)
        da_g = dc2 * i * (1.0 - g * g)
        dc = dc2 * f
        dsmall = {}
        if peephole:
            dc = dc + da_i * small["p_i"] + da_f * small["p_f"]
            dsmall = {"p_i": da_i * c, "p_f": da_f * c, "p_o": da_o * c2}
        return LSTMState(h=jnp.zeros_like(dc), c=dc), (da_i, da_f, da_g, da_o), None, dsmall

    return _Hand(forward, backward)


def _gru_hand(cell: Cell) -> Optional[_Hand]:
    if not cell.option("reset_after"):
        return None  # the product for n reads r * h: the generic backward

    def forward(dot, small, h, px):
        z_r, z_z, z_n = dot(h, (0, 1, 2))
        r, u = _sigmoid(px[0] + z_r), _sigmoid(px[1] + z_z)
        zb = z_n + small["b_hn"]
        n = jnp.tanh(px[2] + r * zb)
        h2 = n + u * (h - n)
        return h2, h2, (r, u, n, zb)

    def backward(small, h, acts, dh, dy):
        r, u, n, zb = acts
        dh2 = dy + dh
        da_n = dh2 * (1.0 - u) * (1.0 - n * n)
        da_r = da_n * zb * r * (1.0 - r)
        da_u = dh2 * (h - n) * u * (1.0 - u)
        dzb = da_n * r
        return dh2 * u, (da_r, da_u, da_n), (da_r, da_u, dzb), {"b_hn": dzb}

    return _Hand(forward, backward)


_HANDS = {"tanh": _tanh_hand, "lstm": _lstm_hand, "gru": _gru_hand}


def _gru_step(cell: Cell) -> Callable:
    """The fused GRU step: the hand-written forward (reset after) or the reset-before step."""
    if cell.option("reset_after"):
        return _without_acts(_gru_hand)(cell)
    return _gru_reset_before_step(cell)


_STEPS = {"tanh": _without_acts(_tanh_hand), "lstm": _without_acts(_lstm_hand), "gru": _gru_step}
_USE_HAND = True  # False: every cell on the generic backward (for measurements)


class _Spec(NamedTuple):
    """Static description of a cell for the fused backend."""

    step: Callable
    num_gates: int
    hidden_size: int
    dtype: Any
    hand: Optional[_Hand]  # the hand-written step, or None: backward by jax.vjp of ``step``


def _spec(cell: Cell) -> _Spec:
    if cell.kind not in _STEPS:
        raise ValueError(
            f"Backend.FUSED has no step for cell kind {cell.kind!r}; "
            f"it knows {', '.join(sorted(_STEPS))} (use Backend.REFERENCE)"
        )
    return _Spec(
        _STEPS[cell.kind](cell),
        cell.num_gates,
        cell.hidden_size,
        jnp.dtype(dict(cell.options).get("dtype", "float32")),
        _HANDS[cell.kind](cell) if _USE_HAND else None,
    )


# ---------------------------------------------------------------------------
# Products


def _mm(a: Array, w: Array, dtype: Any) -> Array:
    """``a @ w`` in ``dtype``, accumulated in float32."""
    return jnp.matmul(a.astype(dtype), w.astype(dtype), preferred_element_type=jnp.float32)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _tap(a: Array, zs: tuple, w: Array, dtype: Any) -> tuple:
    """Returns the saved products ``zs`` (= ``a @ w`` split in blocks); VJP ``da = dz @ w^T``.

    ``a: f32[B, H]``, ``zs``: tuple of ``f32[B, H]``, ``w: f32[H, len(zs)*H]``.
    The cotangent of ``zs`` is passed through unchanged (it is the product's
    cotangent, used for the weight gradient); ``w`` gets none here.
    """
    return zs


def _tap_fwd(a, zs, w, dtype):
    return zs, w


def _tap_bwd(dtype, w, dzs):
    if _PER_GATE:
        da = functools.reduce(jnp.add, [_mm(dz, wg.T, dtype) for dz, wg in zip(dzs, w)])
    else:
        da = _mm(jnp.concatenate(dzs, axis=-1), jnp.concatenate(w, axis=-1).T, dtype)
    return da, dzs, None


_tap.defvjp(_tap_fwd, _tap_bwd)


def _split_gates(a: Array, num: int) -> tuple:
    return tuple(jnp.split(a, num, axis=-1))


def _where_tree(keep: Array, new: Carry, old: Carry) -> Carry:
    return jax.tree.map(lambda n, o: jnp.where(keep, n, o), new, old)


def _masked_step(spec: _Spec, dot: Callable, small, carry, px, keep):
    new_carry, y = spec.step(dot, small, carry, px)
    return _where_tree(keep, new_carry, carry), jnp.where(keep, y, jnp.zeros_like(y))


# ---------------------------------------------------------------------------
# Forward and backward over one chunk of steps (time-major, batched)


def _forward(spec: _Spec, w_h: Array, small, px: tuple, keep: Array, carry0, reverse: bool,
             save: bool):
    """Runs the chunk forward.

    Args:
      px: G arrays ``f32[K, B, H]``; keep: ``bool[K, B, 1]``.

    Returns:
      ``(carry, ys f32[K, B, H], residuals)``; residuals (when ``save``) are
      the carry before every step and the G recurrent products of every step
      (with a hand-written step: its activations).
    """
    def body(carry, inputs):
        px_t, keep_t = inputs
        products = []

        def dot(a, gates):
            if _PER_GATE:
                zs = tuple(_mm(a, w_h[g], spec.dtype) for g in gates)
            else:
                z = _mm(a, jnp.concatenate([w_h[g] for g in gates], axis=-1), spec.dtype)
                zs = _split_gates(z, len(gates)) if len(gates) > 1 else (z,)
            products.extend(zs)
            return zs

        if spec.hand is None:
            new_carry, y = _masked_step(spec, dot, small, carry, px_t, keep_t)
            saved = tuple(products)
        else:
            new_carry, y, saved = spec.hand.forward(dot, small, carry, px_t)
            new_carry = _where_tree(keep_t, new_carry, carry)
            y = jnp.where(keep_t, y, jnp.zeros_like(y))
        return new_carry, (y, (carry, saved) if save else None)

    carry, (ys, res) = jax.lax.scan(body, carry0, (px, keep), reverse=reverse)
    return carry, ys, res


def _backward(spec: _Spec, w_h: Array, small, px: tuple, keep: Array, res, dys: Array, dcarry,
              reverse: bool):
    """Runs back through a chunk; returns ``(dcarry0, dsmall, dpx, dzs, lefts)``.

    ``dpx``/``dzs``: G arrays ``f32[K, B, H]``, the cotangents of the input
    projection and of the recurrent products; ``lefts``: ``(a f32[K, B, H],
    gates)`` for every ``dot`` call: its left operand and its gates, for the
    weight gradient.
    """
    H = spec.hidden_size
    carries, products = res
    groups = []  # the gates of every dot call, recorded while tracing

    def body(acc, inputs):
        dcarry, dsmall = acc
        px_t, keep_t, carry_t, zs_t, dy_t = inputs

        def f(carry, px_t, small, zs_t):
            lefts = []
            del groups[:]

            def dot(a, gates):
                lefts.append(a)
                groups.append(gates)
                return _tap(a, tuple(zs_t[g] for g in gates), tuple(w_h[g] for g in gates),
                            spec.dtype)

            return _masked_step(spec, dot, small, carry, px_t, keep_t), tuple(lefts)

        _, vjp, lefts = jax.vjp(f, carry_t, px_t, small, zs_t, has_aux=True)
        dcarry, dpx, dsm, dzs = vjp((dcarry, dy_t))
        return (dcarry, jax.tree.map(jnp.add, dsmall, dsm)), (dpx, dzs, lefts)

    dsmall0 = jax.tree.map(jnp.zeros_like, small)
    (dcarry, dsmall), (dpx, dzs, lefts) = jax.lax.scan(
        body, (dcarry, dsmall0), (px, keep, carries, products, dys), reverse=not reverse
    )
    return dcarry, dsmall, dpx, dzs, tuple(zip(lefts, groups))


def _hand_backward(spec: _Spec, w_h: Array, small, keep: Array, res, dys: Array, dcarry,
                   reverse: bool):
    """Runs back through a chunk with the hand-written step.

    Returns ``(dcarry0, dsmall, dpx, dz, h_prev)``: ``dpx``/``dz`` are
    ``f32[K, B, G*H]``, the cotangents of the input projection and of the
    recurrent products, ``h_prev f32[K, B, H]`` the products' left operand.
    The carry's cotangent through the products is one ``[B, G*H] x [G*H, H]``
    product per step.
    """
    carries, acts = res
    w_t = w_h.T  # [G*H, H]

    def body(acc, inputs):
        dcarry, dsmall = acc
        keep_t, carry_t, acts_t, dy_t = inputs
        direct, dpx, dz, dsm = spec.hand.backward(small, carry_t, acts_t, dcarry, dy_t)
        dpx = jnp.where(keep_t, jnp.concatenate(dpx, axis=-1), 0.0)
        dz = dpx if dz is None else jnp.where(keep_t, jnp.concatenate(dz, axis=-1), 0.0)
        dh = _mm(dz, w_t, spec.dtype)
        if isinstance(direct, LSTMState):
            direct = direct._replace(h=direct.h + dh)
        else:
            direct = direct + dh
        dsmall = {k: dsmall[k] + jnp.sum(jnp.where(keep_t, v, 0.0), axis=0) for k, v in dsm.items()}
        out = (dpx, None) if dz is dpx else (dpx, dz)
        return (_where_tree(keep_t, direct, dcarry), dsmall), out

    dsmall0 = jax.tree.map(jnp.zeros_like, small)
    (dcarry, dsmall), (dpx, dz) = jax.lax.scan(
        body, (dcarry, dsmall0), (keep, carries, acts, dys), reverse=not reverse
    )
    h_prev = carries.h if isinstance(carries, LSTMState) else carries
    return dcarry, dsmall, dpx, dpx if dz is None else dz, h_prev


def _chunk_grads(spec: _Spec, params: Params, xs: Array, px: tuple, keep: Array, res, dys,
                 dcarry, reverse: bool):
    """Backward through one chunk plus its weight gradients as single products.

    Returns ``(dcarry0, grads, dxs f32[K, B, D])`` with ``grads`` shaped like
    ``params``.
    """
    flat = lambda a: a.reshape((-1, a.shape[-1]))  # [K, B, F] -> [K*B, F]
    if spec.hand is not None:
        dcarry, dsmall, dpx, dz, h_prev = _hand_backward(
            spec, params["w_h"], _small(params), keep, res, dys, dcarry, reverse)
        grads = dict(dsmall)
        grads["w_h"] = flat(h_prev).T @ flat(dz)
    else:
        dcarry, dsmall, dpx, dzs, lefts = _backward(spec, _blocks(params), _small(params), px,
                                                    keep, res, dys, dcarry, reverse)
        dpx = jnp.concatenate(dpx, axis=-1)
        grads = dict(dsmall)
        dw_h = [
            flat(a).T @ flat(jnp.concatenate([dzs[g] for g in gates], axis=-1))
            for a, gates in lefts
        ]
        grads["w_h"] = jnp.concatenate(dw_h, axis=-1) if len(dw_h) > 1 else dw_h[0]
    w_x = params["w_x"]
    grads["w_x"] = flat(xs).astype(w_x.dtype).T @ flat(dpx)
    grads["b"] = jnp.sum(flat(dpx), axis=0)
    dxs = (flat(dpx) @ w_x.T).reshape(xs.shape).astype(xs.dtype)
    return dcarry, grads, dxs


# ---------------------------------------------------------------------------
# The fused unroll with its custom VJP


def _project(cell: Cell, params: Params, xs: Array) -> tuple:
    return _split_gates(cell.project(params, xs), cell.num_gates)


def _blocks(params: Params) -> tuple:
    """``w_h [H, G*H]`` as G separate ``[H, H]`` blocks (split once, outside the loop)."""
    num = params["w_h"].shape[-1] // params["w_h"].shape[0]
    return _split_gates(params["w_h"], num)


def _small(params: Params) -> dict:
    return {k: v for k, v in params.items() if k in _SMALL}


def _chunked(a: Array, chunk: int) -> Array:
    return a.reshape((a.shape[0] // chunk, chunk) + a.shape[1:])


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 5, 6))
def _fused(cell: Cell, params: Params, xs: Array, keep: Array, carry0, reverse: bool,
           remat: Optional[int]):
    carry, ys, _ = _fused_fwd_impl(cell, params, xs, keep, carry0, reverse, remat, save=False)
    return carry, ys


def _fused_fwd_impl(cell, params, xs, keep, carry0, reverse, remat, save):
    spec = _spec(cell)
    small = _small(params)
    if remat is None:
        px = _project(cell, params, xs)
        carry, ys, res = _forward(spec, _blocks(params), small, px, keep, carry0, reverse, save)
        return carry, ys, (px, res)

    def chunk_body(carry, inputs):
        xs_c, keep_c = inputs
        px_c = _project(cell, params, xs_c)
        new_carry, ys_c, _ = _forward(spec, _blocks(params), small, px_c, keep_c, carry, reverse,
                                      save=False)
        return new_carry, (ys_c, carry)

    carry, (ys, starts) = jax.lax.scan(
        chunk_body, carry0, (_chunked(xs, remat), _chunked(keep, remat)), reverse=reverse
    )
    return carry, ys.reshape((-1,) + ys.shape[2:]), starts


def _fused_fwd(cell, params, xs, keep, carry0, reverse, remat):
    carry, ys, res = _fused_fwd_impl(cell, params, xs, keep, carry0, reverse, remat, save=True)
    return (carry, ys), (params, xs, keep, res)


def _fused_bwd(cell, reverse, remat, residuals, cotangents):
    params, xs, keep, res = residuals
    dcarry, dys = cotangents
    spec = _spec(cell)
    if remat is None:
        px, fwd_res = res
        dcarry0, grads, dxs = _chunk_grads(spec, params, xs, px, keep, fwd_res, dys, dcarry,
                                           reverse)
        return grads, dxs, None, dcarry0

    small = _small(params)

    def chunk_body(acc, inputs):
        dcarry, grads = acc
        xs_c, keep_c, start_c, dys_c = inputs
        px_c = _project(cell, params, xs_c)
        _, _, fwd_res = _forward(spec, _blocks(params), small, px_c, keep_c, start_c, reverse,
                                 save=True)
        dcarry, grads_c, dxs_c = _chunk_grads(spec, params, xs_c, px_c, keep_c, fwd_res, dys_c,
                                              dcarry, reverse)
        return (dcarry, jax.tree.map(jnp.add, grads, grads_c)), dxs_c

    grads0 = jax.tree.map(jnp.zeros_like, dict(params))
    (dcarry0, grads), dxs = jax.lax.scan(
        chunk_body,
        (dcarry, grads0),
        (_chunked(xs, remat), _chunked(keep, remat), res, _chunked(dys, remat)),
        reverse=not reverse,
    )
    return grads, dxs.reshape(xs.shape), None, dcarry0


_fused.defvjp(_fused_fwd, _fused_bwd)


def fused_unroll(
    cell: Cell,
    params: Params,
    xs: Array,
    lengths: Array,
    carry0: Carry,
    reverse: bool = False,
    remat: Optional[int] = None,
) -> tuple[Carry, Array]:
    """``Backend.FUSED``: the batched, time-major unroll with a custom VJP.

    Inputs are already validated (see :func:`rnnlab.unroll_batch`).

    Args:
      cell: the cell (kinds ``tanh``, ``lstm``, ``gru``).
      params: its parameters (layout of :mod:`rnnlab.cells`).
      xs: ``f32[T, B, D]``, time-major.
      lengths: ``int32[B]`` in ``[0, T]``.
      carry0: the initial carry, leaves ``f32[B, H]``.
      reverse: run from ``length-1`` down to 0.
      remat: ``None`` or K: keep only every K-th carry and recompute the rest
        in the backward pass (T is padded to a multiple of K with masked steps).

    Returns:
      ``(carry_T, ys f32[T, B, H])``.
    """
    num_steps = xs.shape[0]
    if remat is not None:
        remat = min(int(remat), max(num_steps, 1))
        padded = -(-num_steps // remat) * remat
        xs = jnp.pad(xs, ((0, padded - num_steps),) + ((0, 0),) * (xs.ndim - 1))
    keep = (jnp.arange(xs.shape[0])[:, None] < lengths[None, :])[..., None]
    params = {k: jnp.asarray(v) for k, v in params.items()}
    carry, ys = _fused(cell, params, xs, keep, carry0, reverse, remat)
    return carry, ys[:num_steps]

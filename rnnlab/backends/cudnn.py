"""The LSTM on cuDNN, through ``jax.experimental.rnn`` (GPU only).

``jax.experimental.rnn.lstm`` calls cuDNN's fused LSTM (forward and
backward) on one flat weight vector in cuDNN's layout. This module packs
rnnlab's LSTM params into that vector and back, and wraps the call with
rnnlab's masking and ``reverse`` semantics (see :mod:`rnnlab.scan`), under
the contract of every backend (:mod:`rnnlab.backends`)::

    carry, ys = cudnn_unroll(cell, params, xs, keep, carry0, reverse, options)   # xs f32[T, B, D]

Layouts. rnnlab: ``w_x f32[D, 4H]``, ``w_h f32[H, 4H]``, ``b f32[4H]``, gate
blocks ``i, f, g, o``, and a constant ``forget_bias`` added to the forget
pre-activation. cuDNN (one layer, one direction, "double bias", as PyTorch):
``W_ih f32[4H, D]``, ``W_hh f32[4H, H]``, ``b_ih f32[4H]``, ``b_hh f32[4H]``,
the same gate order, flattened as ``(W_ih, W_hh, b_ih, b_hh)``. So
``W_ih = w_x.T``, ``W_hh = w_h.T``, ``b_ih = b`` with ``forget_bias`` added to
its ``f`` block, ``b_hh = 0``. The forget bias is read from the cell's
definition itself (:func:`forget_bias`: its equations at zero inputs), its one
home, never from the constructor's recorded options.

Semantics kept from rnnlab: ``ys[:, t] = 0`` for ``t >= lengths[b]``; the
final carry is the carry after the last valid step (``carry0`` when the length
is 0, which cuDNN itself does not allow: such rows run one step and are then
replaced); ``reverse=True`` runs ``t = length-1, ..., 0`` by flipping each
sequence within its length, running forward, and flipping the outputs back.

Numerics: ``jax.experimental.rnn`` runs float32 only. A cell whose products
are bfloat16 runs in float32 here with cuDNN's TF32 tensor-core products
(10-bit mantissa, more precise than bfloat16's 7); float32 cells follow
``jax_default_matmul_precision`` as the rest of JAX on GPU does (TF32 unless
set to ``"highest"``).

CPU: the cuDNN call raises a clear error; ``ScanOptions(interpret=True)`` runs
``jax.experimental.rnn.lstm_ref`` (its pure-JAX reference) on the same packed
weights, so the packing and every wrapper step above are tested on CPU.
"""

from __future__ import annotations

import math
from typing import Optional

import jax
import jax.numpy as jnp
from jax.experimental import rnn as jax_rnn

from rnnlab.backends import ScanOptions
from rnnlab.cells import Cell, CellDef, LSTMState
from rnnlab.lengths import flip_within_lengths, lengths_of, zero_unkept
from rnnlab.types import Array, Params

_KEYS = frozenset({"w_x", "w_h", "b"})
_DTYPES = ("float32", "bfloat16")


def supports(cell: Cell) -> bool:
    """Whether :func:`cudnn_unroll` computes ``cell`` exactly: a plain LSTM in float32 or bfloat16.

    Read from the cell's definition (``CellDef.cudnn == "lstm"``: four gates,
    no peepholes, no gate ablation), never from its name.
    """
    definition = getattr(cell, "definition", None)
    if getattr(definition, "cudnn", None) != "lstm":
        return False
    return cell.num_gates == 4 and cell.dtype.name in _DTYPES


def _why_not(cell: Cell) -> str:
    if getattr(getattr(cell, "definition", None), "cudnn", None) != "lstm":
        return (f"the {cell.kind!r} cell is not a plain LSTM (cuDNN computes only the LSTM "
                "without peepholes or gate ablations)")
    return f"cuDNN through jax.experimental.rnn runs float32 or bfloat16 cells, not {cell.dtype}"


def _check_params(params: Params) -> tuple[int, int]:
    """``(D, H)`` of plain LSTM params; raises ``ValueError`` on any other layout."""
    extra = set(params) - _KEYS
    if extra:
        raise ValueError(
            f"cuDNN runs the plain LSTM only (params w_x, w_h, b); got extra params "
            f"{sorted(extra)} (peepholes and other per-unit vectors are not cuDNN-able)"
        )
    missing = _KEYS - set(params)
    if missing:
        raise ValueError(f"LSTM params need w_x, w_h and b; missing {sorted(missing)}")
    D, width = jnp.shape(params["w_x"])
    if width % 4:
        raise ValueError(f"w_x must be [D, 4H] (an LSTM), got shape {(D, width)}")
    H = width // 4
    if jnp.shape(params["w_h"]) != (H, 4 * H) or jnp.shape(params["b"]) != (4 * H,):
        raise ValueError(
            f"LSTM params with w_x [D={D}, 4H={4 * H}] need w_h [{H}, {4 * H}] and b [{4 * H}], "
            f"got {jnp.shape(params['w_h'])} and {jnp.shape(params['b'])}"
        )
    return D, H


def num_weights(input_size: int, hidden_size: int) -> int:
    """Length of the flat cuDNN weight vector of a one-layer, one-direction LSTM."""
    return jax_rnn.get_num_params_in_lstm(input_size, hidden_size, 1, False)


def _forget_block(hidden_size: int, value: float) -> Array:
    """``f32[4H]``: ``value`` on the forget block (the second), zero elsewhere."""
    H = hidden_size
    return jnp.zeros((4 * H,), jnp.float32).at[H:2 * H].set(value)


def pack_lstm(params: Params, forget_bias: float = 0.0) -> Array:
    """rnnlab LSTM params -> cuDNN's flat weight vector (one layer, one direction).

    Args:
      params: ``{"w_x": f32[D, 4H], "w_h": f32[H, 4H], "b": f32[4H]}``, gate
        order i, f, g, o (no peepholes).
      forget_bias: the cell's constant added to the forget pre-activation; it
        is folded into ``b_ih`` (cuDNN has no such constant).

    Returns:
      ``f32[num_weights(D, H)]``: ``(W_ih [4H, D], W_hh [4H, H], b_ih [4H],
      b_hh [4H])`` flattened, with ``b_hh = 0``. Differentiable: gradients
      w.r.t. the flat vector flow back to ``params``.

    Raises:
      ValueError: params that are not a plain LSTM's (extra vectors, bad shapes).
    """
    D, H = _check_params(params)
    f32 = jnp.float32
    b_ih = params["b"].astype(f32) + _forget_block(H, forget_bias)
    return jnp.concatenate([
        params["w_x"].astype(f32).T.reshape(-1),
        params["w_h"].astype(f32).T.reshape(-1),
        b_ih,
        jnp.zeros((4 * H,), f32),
    ])


def unpack_lstm(weights: Array, input_size: int, hidden_size: int,
                forget_bias: float = 0.0) -> dict[str, Array]:
    """cuDNN's flat LSTM weights -> rnnlab params for a cell with this ``forget_bias``.

    Args:
      weights: ``f32[num_weights(D, H)]`` (e.g. ``jax.experimental.rnn.init_lstm_weight``
        with one layer, one direction).
      input_size: D.
      hidden_size: H.
      forget_bias: the target cell's constant; subtracted from the forget
        block of ``b = b_ih + b_hh`` so that the cell computes what cuDNN does.

    Returns:
      ``{"w_x": f32[D, 4H], "w_h": f32[H, 4H], "b": f32[4H]}``.

    Raises:
      ValueError: ``weights`` has the wrong length for (D, H).
    """
    D, H = input_size, hidden_size
    expected = num_weights(D, H)
    if jnp.shape(weights) != (expected,):
        raise ValueError(
            f"cuDNN LSTM weights for D={D}, H={H} must have shape [{expected}], "
            f"got {jnp.shape(weights)}"
        )
    W_ih, W_hh, b_ih, b_hh = (d[0] for d in jax_rnn.unpack_lstm_weights(weights, D, H, 1, False))
    return {"w_x": W_ih.T, "w_h": W_hh.T, "b": b_ih + b_hh - _forget_block(H, forget_bias)}


def forget_bias(definition: CellDef) -> float:
    """The constant a plain LSTM definition adds to its forget pre-activation, read from its equations.

    With zero inputs, products and carry the forget gate is ``σ(forget_bias)``,
    so ``forget_bias = logit(acts["forget"])``, evaluated once in float64 (exact
    to ~1e-16) while JAX traces: whatever built the definition (``rnnlab.lstm``,
    ``build_cell(lstm_def(forget_bias=...), H)``), the bias cuDNN gets is the one
    the equations add.
    """
    with jax.ensure_compile_time_eval(), jax.enable_x64(True):
        zeros = jnp.zeros((1,), jnp.float64)
        px = tuple(zeros for _ in definition.blocks)
        _, _, acts = definition.equations(lambda a, blocks: tuple(zeros for _ in blocks), {},
                                          definition.zero_carry(1, jnp.float64), px)
        forget = float(acts["forget"][0])
    return math.log(forget / (1.0 - forget))


def cudnn_unroll(cell: Cell, params: Params, xs: Array, keep: Optional[Array], carry0: LSTMState,
                 reverse: bool, options: ScanOptions) -> tuple[LSTMState, Array]:
    """``Backend.CUDNN`` (the contract of :mod:`rnnlab.backends`): a plain LSTM, ``xs f32[T, B, D]`` -> ``ys [T, B, H]``.

    Args:
      cell: a cell for which :func:`supports` is true.
      params: its params (``w_x``, ``w_h``, ``b``).
      xs: ``f32[T, B, D]`` time-major (transposed to cuDNN's batch-major here), zero where not kept.
      keep: ``bool[T, B]`` or ``None``; cuDNN takes the lengths it stands for.
      carry0: ``LSTMState(h=f32[B, H], c=f32[B, H])``.
      reverse: run ``t = lengths[b]-1, ..., 0``; ``ys`` stays in input order.
      options: ``interpret=True`` runs ``jax.experimental.rnn.lstm_ref`` on the
        same packed weights instead of cuDNN (any platform; for tests).

    Returns:
      ``(carry, ys)``: the carry after each sequence's last valid step and
      ``ys f32[T, B, H]``, zero where not kept. Differentiable (cuDNN's own backward).

    Raises:
      ValueError: a cell cuDNN cannot run.
      RuntimeError: ``interpret=False`` and JAX's default backend is not a GPU.
    """
    if not supports(cell):
        raise ValueError(f"the cuDNN backend cannot run this cell: {_why_not(cell)}")
    if not options.interpret and jax.default_backend() != "gpu":
        raise RuntimeError(
            "the cuDNN backend calls jax.experimental.rnn.lstm, which needs a GPU; JAX's default backend is "
            f"{jax.default_backend()!r}. Use Backend.FUSED here (or ScanOptions(interpret=True) to run "
            "jax.experimental.rnn.lstm_ref with the same packing)."
        )
    D, H = _check_params(params)
    T, B, _ = jnp.shape(xs)
    lengths = lengths_of(keep, T, B)
    weights = pack_lstm(params, forget_bias(cell.definition))
    x = xs.astype(jnp.float32)
    if reverse:
        x = flip_within_lengths(x, lengths)
    x = jnp.swapaxes(x, 0, 1)  # cuDNN's batch-major layout
    # cuDNN wants 1 <= length: rows of length 0 run one step, then get carry0 and zeros back.
    run_lengths = jnp.maximum(lengths, 1).astype(jnp.int32)
    h0 = carry0.h.astype(jnp.float32)[None]
    c0 = carry0.c.astype(jnp.float32)[None]
    if options.interpret:
        W_ih, W_hh, b_ih, b_hh = jax_rnn.unpack_lstm_weights(weights, D, H, 1, False)
        ys, h_n, c_n = jax_rnn.lstm_ref(x, h0, c0, W_ih, W_hh, b_ih, b_hh, run_lengths,
                                        D, H, 1, 0.0, False)
    else:
        ys, h_n, c_n = jax_rnn.lstm(x, h0, c0, weights, run_lengths, input_size=D,
                                    hidden_size=H, num_layers=1, dropout=0.0,
                                    bidirectional=False)
    ys = jnp.swapaxes(ys, 0, 1)
    if reverse:
        ys = flip_within_lengths(ys, lengths)
    empty = (lengths == 0)[:, None]
    carry = LSTMState(h=jnp.where(empty, carry0.h, h_n[0]), c=jnp.where(empty, carry0.c, c_n[0]))
    return carry, zero_unkept(keep, ys)

"""The plain (Elman) tanh RNN."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from rnnlab.cells.core import Cell, CellDef, build_cell


def tanh_rnn_def() -> CellDef:
    r"""The plain (Elman) RNN: :math:`h_t = \tanh(W_x x_t + W_h h_{t-1} + b)`, :math:`y_t = h_t`.

    One block (``candidate``); the carry is ``h f32[H]``.
    """

    def step(dot, vecs, h, px):
        (z,) = dot(h, (0,))
        h = jnp.tanh(px[0] + z)
        return h, h, {"candidate": h}

    def backward(vecs, h, acts, dh, dy):
        h2 = acts["candidate"]
        return jnp.zeros_like(h), ((dy + dh) * (1.0 - h2 * h2),), None, {}

    return CellDef("tanh", ("candidate",), ("candidate",), step, backward=backward)


def tanh_rnn(hidden_size: int, *, dtype: Any = jnp.float32, kernel_init: Any = None, recurrent_init: Any = None,
             param_dtype: Any = None) -> Cell:
    """The plain tanh RNN (:func:`tanh_rnn_def`), H = ``hidden_size``.

    ``kernel_init``, ``recurrent_init``, ``param_dtype``: as for :func:`rnnlab.lstm`.
    """
    return build_cell(tanh_rnn_def(), hidden_size, dtype=dtype, kernel_init=kernel_init,
                      recurrent_init=recurrent_init, param_dtype=param_dtype)

"""The layer-normalised LSTM (Ba et al. 2016)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from rnnlab.cells.core import CellDef, Vector, split_blocks
from rnnlab.cells.lstm import LSTMState
from rnnlab.types import Array


def _layer_norm(blocks: tuple[Array, ...], gain: Array, eps: float = 1e-5) -> tuple[Array, ...]:
    """Layer norm over the concatenation of ``blocks`` (G arrays ``[..., H]``), times ``gain f32[G*H]``."""
    width = sum(b.shape[-1] for b in blocks)
    mean = sum(jnp.sum(b, axis=-1, keepdims=True) for b in blocks) / width
    var = sum(jnp.sum(jnp.square(b - mean), axis=-1, keepdims=True) for b in blocks) / width
    scale = jax.lax.rsqrt(var + eps)
    gains = split_blocks(gain, len(blocks))
    return tuple((b - mean) * scale * g for b, g in zip(blocks, gains))


def layer_norm_lstm_def(forget_bias: float = 1.0) -> CellDef:
    r"""The layer-normalised LSTM (Ba et al. 2016), in Haste's form.

    .. math::
        a &= \mathrm{LN}(W_x x_t; \gamma_x) + \mathrm{LN}(W_h h_{t-1}; \gamma_h) + b \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t, \qquad
        h_t = o_t \odot \tanh(\mathrm{LN}(c_t; \gamma_c, \beta_c))

    with the LSTM's gates (``forget_bias`` added to ``a_f``). Each LN
    normalises over all its units; gains start at 1, ``beta_c`` at 0.
    Vectors: ``gamma_x, gamma_h f32[4H]``, ``gamma_c, beta_c f32[H]``.
    """
    blocks = ("input", "forget", "candidate", "output")

    def project(params, xs, mm):
        G = len(blocks)
        wx = split_blocks(mm(xs, params["w_x"]), G)
        normed = _layer_norm(wx, params["gamma_x"])
        return jnp.concatenate(normed, axis=-1) + params["b"]

    def step(dot, vecs, carry, px):
        h, c = carry
        zs = _layer_norm(dot(h, (0, 1, 2, 3)), vecs["gamma_h"])
        a_i, a_f, a_g, a_o = (p + z for p, z in zip(px, zs))
        i, f = jax.nn.sigmoid(a_i), jax.nn.sigmoid(a_f + forget_bias)
        g, o = jnp.tanh(a_g), jax.nn.sigmoid(a_o)
        c2 = f * c + i * g
        (c_norm,) = _layer_norm((c2,), vecs["gamma_c"])
        h2 = o * jnp.tanh(c_norm + vecs["beta_c"])
        return LSTMState(h=h2, c=c2), h2, {"input": i, "forget": f, "candidate": g, "output": o}

    vectors = (Vector("gamma_x", 4, 1.0), Vector("gamma_h", 4, 1.0), Vector("gamma_c", 1, 1.0),
               Vector("beta_c", 1, 0.0))
    return CellDef("layer_norm_lstm", blocks, blocks, step, carry_type=LSTMState, vectors=vectors,
                   project=project)

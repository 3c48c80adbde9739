"""A researcher's own cell, written outside the rnnlab package: the coupled input-forget gate LSTM.

Nothing here is rnnlab's code: it uses only public names (``rnnlab.CellDef``,
``rnnlab.build_cell``, ``rnnlab.register_cell``, ``rnnlab.LSTMState``).
"""

import jax
import jax.numpy as jnp

import rnnlab


def cifg_step(dot, vecs, carry, px):
    """Blocks (forget, candidate, output); the input gate is ``1 - f``."""
    h, c = carry
    z_f, z_g, z_o = dot(h, (0, 1, 2))
    f = jax.nn.sigmoid(px[0] + z_f + 1.0)
    g = jnp.tanh(px[1] + z_g)
    c = f * c + (1.0 - f) * g
    o = jax.nn.sigmoid(px[2] + z_o)
    h = o * jnp.tanh(c)
    return rnnlab.LSTMState(h, c), h, {"forget": f, "candidate": g, "output": o}


CIFG = rnnlab.CellDef(
    name="my_cifg",
    blocks=("forget", "candidate", "output"),
    gate_names=("forget", "candidate", "output"),
    equations=cifg_step,
    carry_type=rnnlab.LSTMState,
)


def my_cifg(hidden_size, dtype=jnp.float32):
    """``rnnlab.get_cell("my_cifg", H)`` once registered."""
    return rnnlab.build_cell(CIFG, hidden_size, dtype=dtype)


def register():
    rnnlab.register_cell("my_cifg", my_cifg, replace=True)

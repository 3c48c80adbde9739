"""The GRU (both reset placements) and its gate ablations, and the Minimal Gated Unit (MGU)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from rnnlab.cells.core import Cell, CellDef, Vector, build_cell, sigmoid_grad


def gru_def(reset_after: bool = False, reset_gate: bool = True, update_gate: bool = True) -> CellDef:
    r"""The GRU (Cho et al. 2014; Chung et al. 2014) and its gate ablations.

    Blocks in layout order: reset ``r``, update ``z``, candidate ``n``
    (PyTorch's order), minus the removed gates. With :math:`a = W_x x_t + b`
    and :math:`W_h = [U_r, U_z, U_n]`:

    .. math::
        r_t &= \sigma(a_r + U_r h_{t-1})   &&(1 \text{ without reset gate}) \\
        z_t &= \sigma(a_z + U_z h_{t-1})   &&(0 \text{ without update gate}) \\
        n_t &= \tanh(a_n + U_n (r_t \odot h_{t-1}))
              &&\text{reset\_after=False (Cho et al., Chung et al.)} \\
        n_t &= \tanh(a_n + r_t \odot (U_n h_{t-1} + b_{hn}))
              &&\text{reset\_after=True (cuDNN, PyTorch, Keras v2, Flax)} \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    ``z`` is the fraction of the old state kept (PyTorch's convention). The
    reset-after form has the recurrent bias ``b_hn f32[H]``. The reset-before
    form makes two dependent products per step (so it has no hand-written
    backward); the reset-after form one.
    """
    blocks = tuple(name for name, on in (("reset", reset_gate), ("update", update_gate),
                                         ("candidate", True)) if on)
    index = {name: k for k, name in enumerate(blocks)}
    gate_names = blocks
    n_k = index["candidate"]
    fused_product = reset_after or not reset_gate  # one product dot(h, all blocks)

    def gate(px, zs, name):
        return jax.nn.sigmoid(px[index[name]] + zs[index[name]])

    def step(dot, vecs, h, px):
        acts = {}
        zs = dot(h, tuple(range(len(blocks) if fused_product else n_k)))
        r = 1.0
        if reset_gate:
            acts["reset"] = r = gate(px, zs, "reset")
        if update_gate:
            acts["update"] = z = gate(px, zs, "update")
        if fused_product:
            zb = zs[n_k] + vecs["b_hn"] if reset_after else zs[n_k]
            acts["recurrent_candidate"] = zb
            n = jnp.tanh(px[n_k] + r * zb)
        else:
            (z_n,) = dot(r * h, (n_k,))
            n = jnp.tanh(px[n_k] + z_n)
        acts["candidate"] = n
        h2 = n + z * (h - n) if update_gate else n
        return h2, h2, acts

    def backward(vecs, h, acts, dh, dy):
        n, zb = acts["candidate"], acts["recurrent_candidate"]
        u = acts.get("update")
        dh2 = dy + dh
        grads = {}
        dn = dh2 * (1.0 - u) if update_gate else dh2
        grads["candidate"] = dn * (1.0 - n * n)
        r = acts.get("reset", 1.0)
        dzb = grads["candidate"] * r
        if reset_gate:
            grads["reset"] = grads["candidate"] * zb * sigmoid_grad(r)
        if update_gate:
            grads["update"] = dh2 * (h - n) * sigmoid_grad(u)
        dpx = tuple(grads[name] for name in blocks)
        dz = tuple(dzb if name == "candidate" else grads[name] for name in blocks)
        direct = dh2 * u if update_gate else jnp.zeros_like(dh2)
        return direct, dpx, dz, ({"b_hn": dzb} if reset_after else {})

    vectors = (Vector("b_hn"),) if reset_after else ()
    return CellDef("gru", blocks, gate_names, step, vectors=vectors,
                   backward=backward if fused_product else None)


def gru(hidden_size: int, *, reset_after: bool = False, dtype: Any = jnp.float32, kernel_init: Any = None,
        recurrent_init: Any = None, param_dtype: Any = None, **variant: bool) -> Cell:
    """The GRU (:func:`gru_def`), H = ``hidden_size``; ``variant``: ``reset_gate``, ``update_gate``.

    ``kernel_init``, ``recurrent_init``, ``param_dtype``: as for :func:`rnnlab.lstm`.
    """
    options = {"reset_after": bool(reset_after), **variant}
    return build_cell(gru_def(**options), hidden_size, dtype=dtype, options=options, kernel_init=kernel_init,
                      recurrent_init=recurrent_init, param_dtype=param_dtype)


def mgu_def(reset_gate: bool = True) -> CellDef:
    r"""The Minimal Gated Unit (Zhou et al. 2016) in Flax's form (``flax.linen.MGUCell``).

    Blocks in layout order: forget ``f``, candidate ``n``. With
    :math:`a = W_x x_t + b` and :math:`W_h = [U_f, U_n]`:

    .. math::
        f_t &= \sigma(a_f + U_f h_{t-1}) \\
        n_t &= \tanh(a_n + f_t \odot (U_n h_{t-1} + b_{hn}))  &&\text{reset\_gate=True (Flax's default)} \\
        n_t &= \tanh(a_n + U_n h_{t-1})                        &&\text{reset\_gate=False} \\
        h_t &= (1 - f_t) \odot n_t + f_t \odot h_{t-1}

    One gate does both jobs of the GRU's two: it is the reset (applied after
    the recurrent product, like the reset-after GRU) and the fraction of the
    old state kept (the GRU's ``z``). Zhou et al. write the update as
    :math:`(1 - f) \odot h + f \odot \tilde h` with the reset before the
    product, :math:`U_h (f \odot h)`; that is another cell, not a relabelling
    of this one. ``reset_gate=True`` has the recurrent bias ``b_hn f32[H]``.
    """

    def step(dot, vecs, h, px):
        z_f, z_n = dot(h, (0, 1))
        f = jax.nn.sigmoid(px[0] + z_f)
        zb = z_n + vecs["b_hn"] if reset_gate else z_n
        n = jnp.tanh(px[1] + f * zb) if reset_gate else jnp.tanh(px[1] + zb)
        h2 = n + f * (h - n)
        return h2, h2, {"forget": f, "candidate": n, "recurrent_candidate": zb}

    def backward(vecs, h, acts, dh, dy):
        f, n, zb = acts["forget"], acts["candidate"], acts["recurrent_candidate"]
        dh2 = dy + dh
        dan = dh2 * (1.0 - f) * (1.0 - n * n)
        df = dh2 * (h - n) + (dan * zb if reset_gate else 0.0)
        daf = df * sigmoid_grad(f)
        dzb = dan * f if reset_gate else dan
        return dh2 * f, (daf, dan), (daf, dzb), ({"b_hn": dzb} if reset_gate else {})

    return CellDef("mgu", ("forget", "candidate"), ("forget", "candidate"), step,
                   vectors=(Vector("b_hn"),) if reset_gate else (), backward=backward)


def mgu(hidden_size: int, *, reset_gate: bool = True, dtype: Any = jnp.float32, kernel_init: Any = None,
        recurrent_init: Any = None, param_dtype: Any = None) -> Cell:
    """The Minimal Gated Unit (:func:`mgu_def`, Flax's ``MGUCell``), H = ``hidden_size``.

    ``kernel_init``, ``recurrent_init``, ``param_dtype``: as for :func:`rnnlab.lstm`.
    """
    options = {"reset_gate": bool(reset_gate)}
    return build_cell(mgu_def(**options), hidden_size, dtype=dtype, options=options, kernel_init=kernel_init,
                      recurrent_init=recurrent_init, param_dtype=param_dtype)

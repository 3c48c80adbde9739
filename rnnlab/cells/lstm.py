"""The LSTM and its gate variants (Greff et al. 2017), from one definition."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from rnnlab.cells.core import Cell, CellDef, Vector, build_cell, sigmoid_grad, split_blocks
from rnnlab.types import Array


class LSTMState(NamedTuple):
    """The LSTM carry: hidden state ``h f32[H]`` and cell state ``c f32[H]``."""

    h: Array
    c: Array


class FGRState(NamedTuple):
    """The carry of the full-gate-recurrence LSTM: ``h``, ``c`` and the previous gates ``i, f, o`` (all ``f32[H]``)."""

    h: Array
    c: Array
    i: Array
    f: Array
    o: Array


_NO_GATE_RECURRENCE = {"input": 0.0, "forget": 0.0, "output": 0.0}


def _gate_recurrence(vecs: dict[str, Array], carry: FGRState) -> dict[str, Array]:
    """``{gate: f32[..., H]}``: the previous gates' contribution to ``i, f, o`` (FGR): ``[i, f, o] @ r_g``."""
    prev = jnp.concatenate([carry.i, carry.f, carry.o], axis=-1)
    return dict(zip(("input", "forget", "output"), split_blocks(prev @ vecs["r_g"], 3)))


def _lstm_backward(blocks: tuple[str, ...], peeps: dict[str, str], *, input_gate: bool, forget_gate: bool,
                   output_gate: bool, input_activation: bool, output_activation: bool, coupled: bool,
                   cell_clip: float = 0.0):
    """The hand-written backward of :func:`lstm_def`'s step without full gate recurrence
    (``CellDef.backward``): ``backward(vecs, carry, acts, dcarry, dy) -> (dcarry, dpx, None, dvecs)``."""

    def backward(vecs, carry, acts, dcarry, dy):
        c = carry.c
        one = jnp.ones_like(c)
        f = acts.get("forget", one)
        i = acts.get("input", one)
        g, o = acts["candidate"], acts.get("output", one)
        c2 = f * c + i * g
        inside = jnp.abs(c2) <= cell_clip if cell_clip else None  # where the clip passes the gradient
        if cell_clip:
            c2 = jnp.clip(c2, -cell_clip, cell_clip)
        tc = jnp.tanh(c2) if output_activation else c2
        dh2 = dy + dcarry.h
        grads, dvecs = {}, {}
        dc2 = dcarry.c + dh2 * o * ((1.0 - tc * tc) if output_activation else 1.0)
        if output_gate:
            grads["output"] = dh2 * tc * sigmoid_grad(o)
            if "output" in peeps:
                dc2 = dc2 + grads["output"] * vecs[peeps["output"]]
                dvecs[peeps["output"]] = grads["output"] * c2
        if cell_clip:
            dc2 = jnp.where(inside, dc2, 0.0)
        di = dc2 * g
        df = dc2 * c - (di if coupled else 0.0)
        grads["candidate"] = dc2 * i * ((1.0 - g * g) if input_activation else 1.0)
        dc = dc2 * f
        if forget_gate:
            grads["forget"] = df * sigmoid_grad(f)
        if input_gate and not coupled:
            grads["input"] = di * sigmoid_grad(i)
        for gate, name in peeps.items():
            if gate != "output":
                dc = dc + grads[gate] * vecs[name]
                dvecs[name] = grads[gate] * c
        dpx = tuple(grads[name] for name in blocks)
        return LSTMState(h=jnp.zeros_like(dc), c=dc), dpx, None, dvecs

    return backward


def lstm_def(
    forget_bias: float = 1.0,
    peephole: bool = False,
    input_gate: bool = True,
    forget_gate: bool = True,
    output_gate: bool = True,
    input_activation: bool = True,
    output_activation: bool = True,
    coupled: bool = False,
    full_gate_recurrence: bool = False,
    cell_clip: float = 0.0,
) -> CellDef:
    r"""The LSTM and its gate variants (Greff et al. 2017, "LSTM: A Search Space Odyssey").

    Blocks, in layout order: input ``i``, forget ``f``, candidate ``g``,
    output ``o`` (PyTorch's and Keras' order), minus the removed gates. With
    :math:`a = W_x x_t + b + W_h h_{t-1}` split into those blocks:

    .. math::
        f_t &= \sigma(a_f + p_f \odot c_{t-1} + \text{forget\_bias})  &&(1 \text{ without forget gate}) \\
        i_t &= \sigma(a_i + p_i \odot c_{t-1})  &&(1 \text{ without input gate}; 1 - f_t \text{ coupled}) \\
        g_t &= \tanh(a_g)                      &&(a_g \text{ without input activation}) \\
        c_t &= f_t \odot c_{t-1} + i_t \odot g_t \\
        o_t &= \sigma(a_o + p_o \odot c_t)      &&(1 \text{ without output gate}) \\
        h_t &= o_t \odot \tanh(c_t)            &&(o_t \odot c_t \text{ without output activation})

    Peepholes (``p_* f32[H]``, Gers & Schmidhuber 2000; the output gate reads
    :math:`c_t`, as in Graves 2013) exist only with ``peephole=True``, one per
    present gate. ``forget_bias`` is a constant added inside the step (as in
    Haiku), not stored in ``b``. ``coupled=True`` is CIFG: the input gate is
    ``1 - f`` and has no block. The carry is :class:`LSTMState`.

    ``full_gate_recurrence=True`` (FGR) adds to the pre-activations of ``i, f,
    o`` the previous step's gates: :math:`[i_{t-1}, f_{t-1}, o_{t-1}] R_g` with
    ``r_g f32[3H, 3H]`` (zeros at init); the carry is then :class:`FGRState`.
    It needs all three gates (and no coupling).

    ``cell_clip > 0`` clips the new cell state to ``[-cell_clip, cell_clip]``
    (TensorFlow's ``LSTMCell(cell_clip=...)``), before the output gate's
    peephole and the output read it: with peepholes, it bounds the terms
    :math:`p \odot c` that otherwise saturate every gate once :math:`|c|` grows
    over long sequences. The gradient is zero where the clip binds.
    """
    if cell_clip < 0:
        raise ValueError(f"lstm: cell_clip must be >= 0 (0 = no clip), got {cell_clip}")
    if coupled and not forget_gate:
        raise ValueError("lstm: coupled=True (CIFG) needs the forget gate")
    if full_gate_recurrence and (coupled or not (input_gate and forget_gate and output_gate)):
        raise ValueError("lstm: full_gate_recurrence needs the input, forget and output gates, uncoupled")
    has = {"input": input_gate and not coupled, "forget": forget_gate, "candidate": True,
           "output": output_gate}
    blocks = tuple(name for name in ("input", "forget", "candidate", "output") if has[name])
    index = {name: k for k, name in enumerate(blocks)}
    peeps = {gate: f"p_{gate[0]}" for gate in ("input", "forget", "output") if peephole and has[gate]}
    gate_names = tuple(g for g in ("input", "forget", "candidate", "output")
                       if has[g] or (g == "input" and coupled))

    def pre(px, zs, name):
        return px[index[name]] + zs[index[name]]

    def step(dot, vecs, carry, px):
        h, c = carry.h, carry.c
        zs = dot(h, tuple(range(len(blocks))))
        fgr = _gate_recurrence(vecs, carry) if full_gate_recurrence else _NO_GATE_RECURRENCE
        acts = {}

        def gate(name, cell_state, bias=0.0):
            """sigma(a + the previous gates' term + the peephole on ``cell_state`` + bias)."""
            a = pre(px, zs, name) + fgr[name] + bias
            if name in peeps:
                a = a + vecs[peeps[name]] * cell_state
            acts[name] = value = jax.nn.sigmoid(a)
            return value

        f = gate("forget", c, forget_bias) if forget_gate else 1.0
        if coupled:
            acts["input"] = i = 1.0 - f
        else:
            i = gate("input", c) if input_gate else 1.0
        a_g = pre(px, zs, "candidate")
        acts["candidate"] = g = jnp.tanh(a_g) if input_activation else a_g
        c2 = f * c + i * g
        if cell_clip:
            c2 = jnp.clip(c2, -cell_clip, cell_clip)
        o = gate("output", c2) if output_gate else 1.0
        h2 = o * (jnp.tanh(c2) if output_activation else c2)
        if full_gate_recurrence:
            return FGRState(h2, c2, acts["input"], acts["forget"], acts["output"]), h2, acts
        return LSTMState(h=h2, c=c2), h2, acts

    vectors = tuple(Vector(name) for name in peeps.values())
    if full_gate_recurrence:
        vectors += (Vector("r_g", blocks=3, rows=3),)
    plain = peephole is False and not (coupled or full_gate_recurrence or cell_clip) and all(
        (input_gate, forget_gate, output_gate, input_activation, output_activation))
    return CellDef("lstm", blocks, gate_names, step,
                   carry_type=FGRState if full_gate_recurrence else LSTMState, vectors=vectors,
                   backward=None if full_gate_recurrence else _lstm_backward(
                       blocks, peeps, input_gate=input_gate, forget_gate=forget_gate, output_gate=output_gate,
                       input_activation=input_activation, output_activation=output_activation, coupled=coupled,
                       cell_clip=cell_clip),
                   cudnn="lstm" if plain else None)


def lstm(hidden_size: int, *, forget_bias: float = 1.0, peephole: bool = False, cell_clip: float = 0.0,
         dtype: Any = jnp.float32, kernel_init: Any = None, recurrent_init: Any = None,
         param_dtype: Any = None, **variant: bool) -> Cell:
    """The LSTM (:func:`lstm_def`), H = ``hidden_size``.

    Args:
      hidden_size: H.
      forget_bias: constant added to the forget gate's pre-activation.
      peephole: diagonal peepholes from the cell state.
      cell_clip: clip of the cell state to ``[-cell_clip, cell_clip]`` (0: none).
      dtype: dtype of the matrix products.
      kernel_init, recurrent_init, param_dtype: initialisation of the params
        (:func:`rnnlab.build_cell`; ``None``: ``"glorot_uniform"``,
        ``"orthogonal"`` per gate block, float32).
      **variant: gate ablations of :func:`lstm_def` (``input_gate``,
        ``forget_gate``, ``output_gate``, ``input_activation``,
        ``output_activation``, ``coupled``).
    """
    options = {"forget_bias": float(forget_bias), "peephole": bool(peephole), **variant}
    if cell_clip:
        options["cell_clip"] = float(cell_clip)
    return build_cell(lstm_def(**options), hidden_size, dtype=dtype, options=options, kernel_init=kernel_init,
                      recurrent_init=recurrent_init, param_dtype=param_dtype)

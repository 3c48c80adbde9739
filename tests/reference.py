"""Independent NumPy references for every cell, written from the equations.

Plain float64 loops over time with the gates as separate matrices, sharing no
code with rnnlab, so that a bug in rnnlab's fused layout or masking shows up as
a mismatch. Params use rnnlab's dict layout (``w_x [D, G*H]`` etc., gate order
as in ``rnnlab.cells``) and are split here by hand.
"""

from __future__ import annotations

import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _blocks(w, num):
    w = np.asarray(w, np.float64)
    return np.split(w, num, axis=-1)


def tanh_step(params, h, x):
    w_x, w_h, b = (np.asarray(params[k], np.float64) for k in ("w_x", "w_h", "b"))
    h = np.tanh(x @ w_x + h @ w_h + b)
    return h, h


def lstm_step(params, carry, x, forget_bias=1.0, peephole=False, input_gate=True, forget_gate=True,
              output_gate=True, input_activation=True, output_activation=True, coupled=False,
              full_gate_recurrence=False, cell_clip=0.0):
    """The LSTM and Greff et al.'s variants; a removed gate has no block (CIFG: no input block).

    With ``full_gate_recurrence`` the carry is ``(h, c, i, f, o)`` and the previous gates feed
    ``i, f, o`` through ``r_g [3H, 3H]``.
    """
    h, c = carry[0], carry[1]
    names = [n for n, on in (("i", input_gate and not coupled), ("f", forget_gate), ("g", True),
                             ("o", output_gate)) if on]
    G = len(names)
    w = dict(zip(names, _blocks(params["w_x"], G)))
    u = dict(zip(names, _blocks(params["w_h"], G)))
    b = dict(zip(names, _blocks(params["b"], G)))
    a = {n: x @ w[n] + h @ u[n] + b[n] for n in names}
    if full_gate_recurrence:
        prev = np.concatenate([carry[2], carry[3], carry[4]])
        extra = np.split(prev @ np.asarray(params["r_g"], np.float64), 3)
        for n, e in zip("ifo", extra):
            a[n] = a[n] + e
    p = {n: np.asarray(params[f"p_{n}"], np.float64) if peephole and f"p_{n}" in params else 0.0
         for n in "ifo"}
    f = sigmoid(a["f"] + p["f"] * c + forget_bias) if forget_gate else 1.0
    if coupled:
        i = 1.0 - f
    else:
        i = sigmoid(a["i"] + p["i"] * c) if input_gate else 1.0
    g = np.tanh(a["g"]) if input_activation else a["g"]
    c_new = f * c + i * g
    if cell_clip:
        c_new = np.clip(c_new, -cell_clip, cell_clip)
    o = sigmoid(a["o"] + p["o"] * c_new) if output_gate else 1.0
    h_new = o * (np.tanh(c_new) if output_activation else c_new)
    if full_gate_recurrence:
        return (h_new, c_new, i, f, o), h_new
    return (h_new, c_new), h_new


def gru_step(params, h, x, reset_after=False, reset_gate=True, update_gate=True):
    names = [n for n, on in (("r", reset_gate), ("z", update_gate), ("n", True)) if on]
    G = len(names)
    w = dict(zip(names, _blocks(params["w_x"], G)))
    u = dict(zip(names, _blocks(params["w_h"], G)))
    b = dict(zip(names, _blocks(params["b"], G)))
    r = sigmoid(x @ w["r"] + h @ u["r"] + b["r"]) if reset_gate else 1.0
    z = sigmoid(x @ w["z"] + h @ u["z"] + b["z"]) if update_gate else 0.0
    if reset_after:
        n = np.tanh(x @ w["n"] + b["n"] + r * (h @ u["n"] + np.asarray(params["b_hn"], np.float64)))
    else:
        n = np.tanh(x @ w["n"] + b["n"] + (r * h) @ u["n"])
    h_new = (1.0 - z) * n + z * h
    return h_new, h_new


def mgu_step(params, h, x, reset_gate=True):
    """The MGU in Flax's form: ``f`` resets the candidate's recurrent product and keeps the old state."""
    w_f, w_n = _blocks(params["w_x"], 2)
    u_f, u_n = _blocks(params["w_h"], 2)
    b_f, b_n = _blocks(params["b"], 2)
    f = sigmoid(x @ w_f + h @ u_f + b_f)
    if reset_gate:
        n = np.tanh(x @ w_n + b_n + f * (h @ u_n + np.asarray(params["b_hn"], np.float64)))
    else:
        n = np.tanh(x @ w_n + b_n + h @ u_n)
    h_new = (1.0 - f) * n + f * h
    return h_new, h_new


def _layer_norm(a, gain, eps=1e-5):
    return (a - a.mean()) / np.sqrt(a.var() + eps) * gain


def layer_norm_lstm_step(params, carry, x, forget_bias=1.0):
    h, c = carry
    P = {k: np.asarray(v, np.float64) for k, v in params.items()}
    a = _layer_norm(x @ P["w_x"], P["gamma_x"]) + _layer_norm(h @ P["w_h"], P["gamma_h"]) + P["b"]
    ai, af, ag, ao = np.split(a, 4)
    i, f, g, o = sigmoid(ai), sigmoid(af + forget_bias), np.tanh(ag), sigmoid(ao)
    c_new = f * c + i * g
    h_new = o * np.tanh(_layer_norm(c_new, P["gamma_c"]) + P["beta_c"])
    return (h_new, c_new), h_new


def min_gru_step(params, h, x):
    az, ah = np.split(x @ np.asarray(params["w_x"], np.float64) + np.asarray(params["b"], np.float64), 2)
    z = sigmoid(az)
    h_new = (1.0 - z) * h + z * ah
    return h_new, h_new


def min_lstm_step(params, h, x):
    af, ai, ah = np.split(x @ np.asarray(params["w_x"], np.float64) + np.asarray(params["b"], np.float64), 3)
    f, i = sigmoid(af), sigmoid(ai)
    h_new = f / (f + i) * h + i / (f + i) * ah
    return h_new, h_new


def step_fn(kind, **options):
    """The reference step for a cell kind with rnnlab's constructor options."""
    options = {k: v for k, v in options.items()
               if k not in ("dtype", "kernel_init", "recurrent_init", "param_dtype")}  # not the equations
    steps = {"tanh": tanh_step, "lstm": lstm_step, "gru": gru_step,
             "layer_norm_lstm": layer_norm_lstm_step, "min_gru": min_gru_step,
             "min_lstm": min_lstm_step, "mgu": mgu_step}
    return lambda params, carry, x: steps[kind](params, carry, x, **options)


def zero_carry(kind, hidden_size, full_gate_recurrence=False):
    zeros = np.zeros(hidden_size)
    if full_gate_recurrence:
        return tuple(zeros.copy() for _ in range(5))
    return (zeros, zeros.copy()) if kind in ("lstm", "layer_norm_lstm") else zeros


def _hidden_size(kind, params):
    if "w_h" in params:
        return np.asarray(params["w_h"]).shape[0]
    return np.asarray(params["b"]).shape[0] // {"min_gru": 2, "min_lstm": 3}[kind]


def unroll(kind, params, xs, length=None, reverse=False, carry0=None, **options):
    """NumPy loop: ``(carry_T, ys [T, H])``, ys zero past ``length``."""
    step = step_fn(kind, **options)
    xs = np.asarray(xs, np.float64)
    num_steps = xs.shape[0]
    length = num_steps if length is None else int(length)
    hidden_size = _hidden_size(kind, params)
    fgr = bool(options.get("full_gate_recurrence", False))
    carry = zero_carry(kind, hidden_size, fgr) if carry0 is None else carry0
    ys = np.zeros((num_steps, hidden_size))
    order = range(length - 1, -1, -1) if reverse else range(length)
    for t in order:
        carry, ys[t] = step(params, carry, xs[t])
    return carry, ys

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


def lstm_step(params, carry, x, forget_bias=1.0, peephole=False):
    h, c = carry
    wi, wf, wg, wo = _blocks(params["w_x"], 4)
    ui, uf, ug, uo = _blocks(params["w_h"], 4)
    bi, bf, bg, bo = _blocks(params["b"], 4)
    pi = pf = po = 0.0
    if peephole:
        pi, pf, po = (np.asarray(params[k], np.float64) for k in ("p_i", "p_f", "p_o"))
    i = sigmoid(x @ wi + h @ ui + bi + pi * c)
    f = sigmoid(x @ wf + h @ uf + bf + pf * c + forget_bias)
    g = np.tanh(x @ wg + h @ ug + bg)
    c_new = f * c + i * g
    o = sigmoid(x @ wo + h @ uo + bo + po * c_new)
    h_new = o * np.tanh(c_new)
    return (h_new, c_new), h_new


def gru_step(params, h, x, reset_after=False):
    wr, wz, wn = _blocks(params["w_x"], 3)
    ur, uz, un = _blocks(params["w_h"], 3)
    br, bz, bn = _blocks(params["b"], 3)
    r = sigmoid(x @ wr + h @ ur + br)
    z = sigmoid(x @ wz + h @ uz + bz)
    if reset_after:
        n = np.tanh(x @ wn + bn + r * (h @ un + np.asarray(params["b_hn"], np.float64)))
    else:
        n = np.tanh(x @ wn + bn + (r * h) @ un)
    h_new = (1.0 - z) * n + z * h
    return h_new, h_new


def step_fn(kind, **options):
    """The reference step for a cell kind with rnnlab's constructor options."""
    options = {k: v for k, v in options.items() if k != "dtype"}
    steps = {"tanh": tanh_step, "lstm": lstm_step, "gru": gru_step}
    return lambda params, carry, x: steps[kind](params, carry, x, **options)


def zero_carry(kind, hidden_size):
    zeros = np.zeros(hidden_size)
    return (zeros, zeros.copy()) if kind == "lstm" else zeros


def unroll(kind, params, xs, length=None, reverse=False, carry0=None, **options):
    """NumPy loop: ``(carry_T, ys [T, H])``, ys zero past ``length``."""
    step = step_fn(kind, **options)
    xs = np.asarray(xs, np.float64)
    num_steps = xs.shape[0]
    length = num_steps if length is None else int(length)
    hidden_size = np.asarray(params["w_h"]).shape[0]
    carry = zero_carry(kind, hidden_size) if carry0 is None else carry0
    ys = np.zeros((num_steps, hidden_size))
    order = range(length - 1, -1, -1) if reverse else range(length)
    for t in order:
        carry, ys[t] = step(params, carry, xs[t])
    return carry, ys

"""gate_trace: every gate at every step, equal to a loop of ``cell.gates``; zero past length."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import rnnlab
from tests.conftest import cell_variant, random_params

H, D, T = 4, 3, 6


def inputs(seed, shape=(T, D)):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_gate_trace_equals_loop_of_gates(which):
    cell = cell_variant(which, H)
    params = random_params(cell, which, D)
    xs, length = inputs(which), 4
    both = jax.jit(lambda p, x: [rnnlab.gate_trace(cell, p, x, length, reverse=r) for r in (False, True)])
    gates, step = jax.jit(cell.gates), jax.jit(cell.step)
    for reverse, traces in zip((False, True), both(params, xs)):
        assert set(traces) == set(cell.gate_names)
        carry = cell.initial_carry()
        for t in range(length - 1, -1, -1) if reverse else range(length):
            want = gates(params, carry, xs[t])
            for name in cell.gate_names:
                np.testing.assert_allclose(traces[name][t], want[name], rtol=1e-5, atol=1e-6)
            carry, _ = step(params, carry, xs[t])
        for name in cell.gate_names:
            assert traces[name].shape == (T, H)
            assert not np.asarray(traces[name][length:]).any()


def test_lstm_trace_reproduces_outputs():
    # h_t = o_t * tanh(c_t) with c_t = f_t c_{t-1} + i_t g_t: the trace explains the outputs
    cell = rnnlab.lstm(H)
    params = random_params(cell, 1, D)
    xs = inputs(2)
    tr = rnnlab.gate_trace(cell, params, xs)
    _, ys = rnnlab.unroll(cell, params, xs)
    c = np.zeros(H)
    for t in range(T):
        c = tr["forget"][t] * c + tr["input"][t] * tr["candidate"][t]
        np.testing.assert_allclose(ys[t], tr["output"][t] * np.tanh(c), rtol=1e-5, atol=1e-6)


def test_gate_trace_vmaps_and_gates_lie_in_range():
    cell = rnnlab.gru(H)
    params = random_params(cell, 3, D)
    traces = jax.vmap(lambda x, n: rnnlab.gate_trace(cell, params, x, n))(
        inputs(4, (2, T, D)), jnp.array([6, 3])
    )
    assert traces["update"].shape == (2, T, H)
    assert (np.asarray(traces["reset"]) >= 0).all() and (np.asarray(traces["reset"]) <= 1).all()
    assert (np.abs(np.asarray(traces["candidate"])) <= 1).all()
    assert not np.asarray(traces["update"][1, 3:]).any()


def test_a_gate_the_cell_lacks_names_the_cell_and_its_gates():
    cell = rnnlab.gru(H)
    traces = rnnlab.gate_trace(cell, random_params(cell, 0, D), inputs(0))
    try:
        traces["forget"]
    except ValueError as e:  # also a KeyError, for dict lookups
        assert isinstance(e, KeyError)
        assert str(e) == "'forget' is not a gate of the 'gru' cell; its gates: reset, update, candidate"
    else:
        raise AssertionError("no error")
    assert "forget" not in traces and traces.get("forget") is None
    batched = jax.vmap(lambda x: rnnlab.gate_trace(cell, random_params(cell, 0, D), x))(np.stack([inputs(1)] * 2))
    assert batched["reset"].shape == (2, T, H) and list(batched) == ["reset", "update", "candidate"]

"""bidirectional and stack: halves equal separate runs, the NumPy reference, dropout, errors."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnlab
from tests import reference
from tests.conftest import random_params

H, D, T = 4, 3, 6


def inputs(seed, shape=(T, D)):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def close(a, b, tol=1e-5):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=tol, atol=tol)


FWD, BWD = rnnlab.gru(H, reset_after=True), rnnlab.lstm(H + 1, peephole=True)


def test_bidirectional_halves_equal_separate_runs_and_reference():
    # Given different forward and backward cells with their own params
    params = {"fwd": random_params(FWD, 0, D), "bwd": random_params(BWD, 1, D)}
    xs = inputs(2)
    # When both directions run over a padded sequence of length 4
    (carry_f, carry_b), ys = jax.jit(lambda p, x: rnnlab.bidirectional(FWD, BWD, p, x, 4))(params, xs)
    # Then the halves are the forward run and the reverse run, and equal the NumPy loops
    assert ys.shape == (T, 2 * H + 1)
    close((carry_f, ys[:, :H]), rnnlab.unroll(FWD, params["fwd"], xs, 4))
    close((carry_b, ys[:, H:]), rnnlab.unroll(BWD, params["bwd"], xs, 4, reverse=True))
    ref_cf, ref_f = reference.unroll("gru", params["fwd"], xs, 4, reset_after=True)
    (ref_h, ref_c), ref_b = reference.unroll("lstm", params["bwd"], xs, 4, reverse=True, peephole=True)
    close((carry_f, carry_b.h, carry_b.c, ys), (ref_cf, ref_h, ref_c, np.concatenate([ref_f, ref_b], 1)))
    assert not np.asarray(ys[4:]).any()


def test_bidirectional_sum_merge():
    cell = rnnlab.tanh_rnn(H)
    params = {"fwd": random_params(cell, 3, D), "bwd": random_params(cell, 4, D)}
    xs = inputs(5)
    _, cat = rnnlab.bidirectional(cell, cell, params, xs, 5)
    carries, summed = rnnlab.bidirectional(cell, cell, params, xs, 5, merge="sum")
    close(summed, cat[:, :H] + cat[:, H:], tol=1e-6)
    assert summed.shape == (T, H)


def test_bidirectional_errors():
    cell = rnnlab.tanh_rnn(H)
    params = {"fwd": random_params(cell, 3, D), "bwd": random_params(cell, 4, D)}
    with pytest.raises(ValueError, match="unknown merge 'mean'; known merges: concat, sum"):
        rnnlab.bidirectional(cell, cell, params, inputs(0), merge="mean")
    with pytest.raises(ValueError, match="merge='sum' needs equal hidden sizes, got 4 and 5"):
        rnnlab.bidirectional(cell, rnnlab.tanh_rnn(H + 1), params, inputs(0), merge="sum")
    with pytest.raises(ValueError, match=r"params must be \{'fwd': ..., 'bwd': ...\}, got keys \['b', 'w_h', 'w_x'\]"):
        rnnlab.bidirectional(cell, cell, params["fwd"], inputs(0))


def test_init_stack_layout_and_sizes():
    cell = rnnlab.lstm(H)
    params = rnnlab.init_stack(cell, jax.random.key(0), D, num_layers=3, bidirectional=True)
    assert sorted(params) == ["layer_0", "layer_1", "layer_2"]
    assert params["layer_0"]["fwd"]["w_x"].shape == (D, 4 * H)
    assert params["layer_1"]["bwd"]["w_x"].shape == (2 * H, 4 * H)
    assert not np.allclose(params["layer_0"]["fwd"]["w_x"], params["layer_0"]["bwd"]["w_x"])
    summed = rnnlab.init_stack(cell, jax.random.key(0), D, 2, bidirectional=True, merge="sum")
    assert summed["layer_1"]["fwd"]["w_x"].shape == (H, 4 * H)
    plain = rnnlab.init_stack(cell, jax.random.key(0), D, 2)
    assert set(plain["layer_1"]) == {"w_x", "w_h", "b"}


def layer_params(cell, seed, sizes, bidirectional):
    params = {}
    for i, size in enumerate(sizes):
        one = lambda s: random_params(cell, seed + 10 * i + s, size)
        params[f"layer_{i}"] = {"fwd": one(0), "bwd": one(1)} if bidirectional else one(0)
    return params


@pytest.mark.parametrize("bidirectional", [False, True])
def test_stack_equals_layers_run_by_hand(bidirectional):
    cell = rnnlab.gru(H)
    width = 2 * H if bidirectional else H
    params = layer_params(cell, 0, [D, width, width], bidirectional)
    xs = inputs(6)
    carries, ys = jax.jit(
        lambda p, x: rnnlab.stack(cell, p, x, 5, bidirectional=bidirectional)
    )(params, xs)
    hidden, want = xs, []
    for i in range(3):
        p = params[f"layer_{i}"]
        if bidirectional:
            carry, hidden = rnnlab.bidirectional(cell, cell, p, hidden, 5)
        else:
            carry, hidden = rnnlab.unroll(cell, p, hidden, 5)
        want.append(carry)
    close((carries, ys), (tuple(want), hidden))
    assert ys.shape == (T, width) and not np.asarray(ys[5:]).any()


def test_stack_dropout():
    cell = rnnlab.lstm(H)
    params = layer_params(cell, 1, [D, H], False)
    xs = inputs(7)
    run = jax.jit(lambda key: rnnlab.stack(cell, params, xs, 4, dropout=0.5, key=key)[1])
    plain = rnnlab.stack(cell, params, xs, 4, dropout=0.5)[1]  # no key: no dropout
    close(plain, rnnlab.stack(cell, params, xs, 4)[1], tol=0)
    a, b, c = run(jax.random.key(0)), run(jax.random.key(0)), run(jax.random.key(1))
    close(a, b, tol=0)
    assert not np.allclose(a, c) and not np.allclose(a, plain)
    assert not np.asarray(a[4:]).any()
    one_layer = layer_params(cell, 1, [D], False)
    close(rnnlab.stack(cell, one_layer, xs, 4, dropout=0.5, key=jax.random.key(0)),
          rnnlab.stack(cell, one_layer, xs, 4), tol=0)  # nothing between layers to drop


def test_stack_errors():
    cell = rnnlab.tanh_rnn(H)
    params = layer_params(cell, 0, [D], False)
    with pytest.raises(ValueError, match=r"dropout must lie in \[0, 1\), got 1.0"):
        rnnlab.stack(cell, params, inputs(0), dropout=1.0)
    with pytest.raises(ValueError, match=r"params must be \{'layer_0': ...,.*got keys \['layer_1'\]"):
        rnnlab.stack(cell, {"layer_1": params["layer_0"]}, inputs(0))
    with pytest.raises(ValueError, match="num_layers must be a positive integer, got 0"):
        rnnlab.init_stack(cell, jax.random.key(0), D, 0)


def test_bidirectional_and_stack_take_a_batch_directly():
    # Given a batch with lengths T, 0 and in between
    cell = rnnlab.lstm(H)
    params = {"fwd": random_params(cell, 8, D), "bwd": random_params(cell, 9, D)}
    xs = inputs(10, (3, T, D))
    lengths = jnp.array([T, 0, 2])
    stacked = layer_params(cell, 2, [D, 2 * H], True)

    def run(x, n, backend=None):
        return (rnnlab.bidirectional(cell, cell, params, x, n, backend=backend),
                rnnlab.stack(cell, stacked, x, n, bidirectional=True, backend=backend))

    # When it runs vmapped one sequence at a time, and as a batch (leading axes: the fused backend)
    per_example = jax.jit(jax.vmap(run))(xs, lengths)
    whole = jax.jit(functools.partial(run, backend=rnnlab.Backend.FUSED))(xs, lengths)
    # Then both equal each sequence run alone
    close(whole, per_example)
    one = jax.jit(run)
    for i in range(3):
        close(jax.tree.map(lambda a: a[i], per_example), one(xs[i], lengths[i]))
    # and batched dropout draws one mask per example: twin sequences come out different
    drop = jax.jit(lambda x, key: rnnlab.stack(cell, stacked, x, None, bidirectional=True,
                                               dropout=0.5, key=key)[1])
    twins = drop(jnp.stack([xs[0], xs[0]]), jax.random.key(0))
    assert twins.shape == (2, T, 2 * H) and not np.allclose(twins[0], twins[1])

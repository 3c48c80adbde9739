"""Flax adapters: params are the pure cell's params, outputs equal the pure functions, dropout, errors."""

from __future__ import annotations

import functools
import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnlab
from rnnlab import nn as rnn
from rnnlab.backends import Backend

H, D, T = 4, 3, 6
LENGTHS = jnp.array([6, 2, 0])


def inputs(seed, shape=(3, T, D)):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def close(a, b, tol=1e-5):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=tol, atol=tol)


def init(layer, xs, lengths=LENGTHS, seed=0):
    return layer.init(jax.random.key(seed), xs, lengths)


def apply(layer, variables, xs, lengths=LENGTHS):
    return jax.jit(layer.apply)(variables, xs, lengths)


def per_example(f, *args):
    """``jit(vmap(f))(*args)``: the pure function, batched the documented way."""
    return jax.jit(jax.vmap(f))(*args)


def random_variables(layer, xs, seed=0):
    """Variables shaped like ``layer.init``'s, every entry random (NumPy, so nothing compiles)."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(layer.init, jax.random.key(0), xs, LENGTHS)
    return jax.tree.map(lambda s: 0.5 * rng.standard_normal(s.shape).astype(np.float32), shapes)


@pytest.mark.parametrize("reverse", [False, True])
def test_rnn_params_are_the_cells_and_output_equals_unroll(reverse):
    # Given an RNN layer of a peephole LSTM
    layer = rnn.RNN("lstm", H, cell_options={"peephole": True}, reverse=reverse, return_carry=True)
    xs = inputs(0)
    variables = random_variables(layer, xs)
    cell = rnnlab.lstm(H, peephole=True)
    # Then its params are exactly the pure cell's params
    expected = jax.eval_shape(lambda k: cell.init(k, D), jax.random.key(0))
    assert jax.tree.map(jnp.shape, variables["params"]) == jax.tree.map(jnp.shape, expected)
    # and the layer equals unroll over each example
    carry, ys = apply(layer, variables, xs)
    assert ys.shape == (3, T, H) and carry.h.shape == (3, H)
    pure = lambda x, n: rnnlab.unroll(cell, variables["params"], x, n, reverse=reverse)
    close((carry, ys), per_example(pure, xs, LENGTHS))
    assert not np.asarray(ys[1, 2:]).any() and not np.asarray(ys[2]).any()


def test_rnn_accepts_a_cell_and_same_key_gives_same_params():
    cell = rnnlab.gru(H, reset_after=True)
    by_cell, by_name = rnn.RNN(cell), rnn.RNN("gru", H, cell_options=(("reset_after", True),))
    xs = inputs(1)
    a, b = init(by_cell, xs, seed=3), init(by_name, xs, seed=3)
    close(a, b, tol=0)
    assert set(a["params"]) == {"w_x", "w_h", "b", "b_hn"}
    c = init(by_cell, xs, seed=4)
    assert not np.allclose(a["params"]["w_x"], c["params"]["w_x"])
    ys = jax.jit(by_cell.apply)(a, xs)  # lengths=None: every sequence is whole
    # another compiled program than the masked one, so equal to float precision (XLA may fuse them apart)
    close(ys, apply(by_cell, a, xs, jnp.full((3,), T)), tol=1e-6)


def test_bidirectional_layout_and_output_equal_pure_bidirectional():
    layer = rnn.Bidirectional("gru", H, return_carry=True)
    xs = inputs(2)
    variables = random_variables(layer, xs, 1)
    assert set(variables["params"]) == {"fwd", "bwd"}
    assert set(variables["params"]["fwd"]) == {"w_x", "w_h", "b"}
    carries, ys = apply(layer, variables, xs)
    cell = rnnlab.gru(H)
    assert ys.shape == (3, T, 2 * H)
    pure = lambda x, n: rnnlab.bidirectional(cell, cell, variables["params"], x, n)
    close((carries, ys), per_example(pure, xs, LENGTHS))
    summed = apply(rnn.Bidirectional("gru", H, merge="sum"), variables, xs)
    close(summed, ys[..., :H] + ys[..., H:], tol=1e-6)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_stacked_rnn_equals_pure_stack(bidirectional):
    layer = rnn.StackedRNN("lstm", H, num_layers=2, bidirectional=bidirectional, dropout=0.3,
                           return_carry=True)
    xs = inputs(3)
    variables = random_variables(layer, xs, 2)
    assert sorted(variables["params"]) == ["layer_0", "layer_1"]
    width = 2 * H if bidirectional else H
    first = variables["params"]["layer_1"]["fwd"] if bidirectional else variables["params"]["layer_1"]
    assert first["w_x"].shape == (width, 4 * H)
    carries, ys = apply(layer, variables, xs)  # deterministic by default
    cell = rnnlab.lstm(H)
    pure = lambda x, n: rnnlab.stack(cell, variables["params"], x, n, bidirectional=bidirectional)
    close((carries, ys), per_example(pure, xs, LENGTHS))
    assert ys.shape == (3, T, width)


def test_stacked_rnn_dropout_uses_the_dropout_rng():
    layer = rnn.StackedRNN("gru", H, num_layers=3, dropout=0.5)
    xs = inputs(4)
    variables = random_variables(layer, xs, 3)
    plain = apply(layer, variables, xs)
    run = jax.jit(lambda xs, lengths, key: layer.apply(variables, xs, lengths, deterministic=False,
                                                       rngs={"dropout": key}))
    a, b, c = (run(xs, LENGTHS, jax.random.key(k)) for k in (1, 1, 2))
    close(a, b, tol=0)
    assert not np.allclose(a, c) and not np.allclose(a, plain)
    assert not np.asarray(a[1, 2:]).any()  # dropout keeps padding at zero
    # different examples of the batch get different masks: two copies of one sequence differ
    twins = jnp.stack([xs[0], xs[0], xs[0]])
    out = run(twins, jnp.array([T, T, T]), jax.random.key(3))
    assert not np.allclose(out[0], out[1])
    with pytest.raises(Exception, match="dropout"):
        layer.apply(variables, xs, LENGTHS, deterministic=False)  # no "dropout" rng given


def test_jit_apply_does_not_retrace_across_lengths_and_grads_reach_every_param():
    layer = rnn.StackedRNN("lstm", H, num_layers=2, bidirectional=True)
    xs = inputs(5)
    variables = random_variables(layer, xs, 4)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def loss(params, lengths):
        return jnp.sum(layer.apply({"params": params}, xs, lengths) ** 2)

    for lengths in ([6, 2, 0], [1, 1, 1], [6, 6, 6]):
        loss(variables["params"], jnp.array(lengths))
    chex.clear_trace_counter()
    grads = jax.jit(jax.grad(lambda p: jnp.sum(layer.apply({"params": p}, xs, LENGTHS) ** 2)))(
        variables["params"])
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
        assert np.abs(np.asarray(g)).sum() > 0, path


RAGGED = jnp.array([T, 0, 3])  # lengths T, 0 and in between


def equivalents(backend):
    """``{name: (adapter on backend, its cell, the pure function of one sequence)}``."""
    return {
        "rnn": (rnn.RNN("lstm", H, cell_options={"peephole": True}, reverse=True,
                        return_carry=True, backend=backend),
                rnnlab.lstm(H, peephole=True),
                lambda cell, p, x, n: rnnlab.unroll(cell, p, x, n, reverse=True)),
        "bi": (rnn.Bidirectional("gru", H, cell_options={"reset_after": True}, return_carry=True,
                                 backend=backend and backend.value),
               rnnlab.gru(H, reset_after=True),
               lambda cell, p, x, n: rnnlab.bidirectional(cell, cell, p, x, n)),
        "stack": (rnn.StackedRNN("gru", H, num_layers=2, bidirectional=True, return_carry=True,
                                 backend=backend, remat=None),
                  rnnlab.gru(H),
                  lambda cell, p, x, n: rnnlab.stack(cell, p, x, n, bidirectional=True)),
    }


def outputs_and_grads(f, params, xs):
    """``(f(params, xs), grad of a weighted sum of f's outputs w.r.t. (params, xs))``, jitted."""

    def weighted(out):
        return sum(jnp.sum(jnp.sin(jnp.arange(a.size, dtype=a.dtype).reshape(a.shape)) * a)
                   for a in jax.tree.leaves(out))

    grads = jax.grad(lambda p, x: weighted(f(p, x)), argnums=(0, 1))
    return jax.jit(lambda p, x: (f(p, x), grads(p, x)))(params, xs)


@functools.lru_cache(maxsize=None)
def pure_outputs_and_grads():
    """The params, inputs and the pure functions' outputs and gradients, vmapped (computed once)."""
    xs = inputs(7)
    layers = equivalents(None)
    params = {k: random_variables(layer, xs, i)["params"]
              for i, (k, (layer, _, _)) in enumerate(layers.items())}

    def by_pure(params, xs):
        return {k: jax.vmap(lambda x, n: pure(cell, params[k], x, n))(xs, RAGGED)
                for k, (_, cell, pure) in layers.items()}

    return params, xs, outputs_and_grads(by_pure, params, xs)


@pytest.mark.parametrize("backend", [Backend.REFERENCE, Backend.FUSED])
def test_adapters_equal_pure_functions_forward_and_gradients_on_every_backend(backend):
    # Given the three adapters on one backend, and ragged lengths with 0 and T
    layers = equivalents(backend)
    params, xs, want = pure_outputs_and_grads()

    def by_adapters(params, xs):
        return {k: layer.apply({"params": params[k]}, xs, RAGGED)
                for k, (layer, _, _) in layers.items()}

    # When outputs and gradients (w.r.t. params and inputs) are taken
    got = outputs_and_grads(by_adapters, params, xs)
    # Then they equal the pure functions', and outputs past each length are zero
    close(got, want)
    for name, (_, ys) in got[0].items():
        assert not np.asarray(ys[1]).any() and not np.asarray(ys[2, 3:]).any(), name


def test_adapter_errors():
    xs = inputs(6)
    with pytest.raises(ValueError, match="unknown cell 'lstn'; known cells: gru, .*lstm, .*tanh"):
        rnn.RNN("lstn", H).init(jax.random.key(0), xs, LENGTHS)
    with pytest.raises(ValueError, match="cell 'lstm' given by name needs hidden_size"):
        rnn.RNN("lstm").init(jax.random.key(0), xs, LENGTHS)
    with pytest.raises(ValueError, match="pass either a Cell or a cell name"):
        rnn.RNN(rnnlab.lstm(H), hidden_size=H + 1).init(jax.random.key(0), xs, LENGTHS)
    with pytest.raises(ValueError, match="hidden_size must be a positive integer, got 0"):
        rnn.RNN("gru", 0).init(jax.random.key(0), xs, LENGTHS)
    with pytest.raises(ValueError, match=r"inputs must have shape \[\*batch, T, D\] \(e.g. \[B, T, D\]\), got shape \(6, 3\)"):
        rnn.RNN("gru", H).init(jax.random.key(0), xs[0], LENGTHS)
    with pytest.raises(ValueError, match=r"lengths must be an integer vector of shape \[B=3\]"):
        rnn.RNN("gru", H).init(jax.random.key(0), xs, jnp.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match=r"\[0, T=6\]"):
        rnn.RNN("gru", H).init(jax.random.key(0), xs, jnp.array([7, 1, 1]))
    with pytest.raises(ValueError, match="unknown merge 'max'"):
        rnn.Bidirectional("gru", H, merge="max").init(jax.random.key(0), xs, LENGTHS)
    with pytest.raises(ValueError, match="num_layers must be a positive integer, got 0"):
        rnn.StackedRNN("gru", H, num_layers=0).init(jax.random.key(0), xs, LENGTHS)
    with pytest.raises(ValueError, match="unknown backend 'cudnm'; known backends: reference, fused"):
        rnn.StackedRNN("gru", H, backend="cudnm").init(jax.random.key(0), xs, LENGTHS)
    with pytest.raises(ValueError, match="remat must be None or a positive number of steps"):
        rnn.RNN("gru", H, remat=0).init(jax.random.key(0), xs, LENGTHS)


def test_recurrent_dropout_and_zoneout_any_cell_fixed_masks_off_at_eval():
    # Given the regularisers on a library cell and on a gate variant, through the adapters:
    from rnnlab.cells import regularized, regularizer_seeds
    xs = jax.random.normal(jax.random.key(1), (3, 6, 4))
    lengths = jnp.array([6, 4, 0])
    for cell_name in ("lstm", "gru_nrg"):
        plain = rnnlab.nn.StackedRNN(cell=cell_name, hidden_size=5, num_layers=2, bidirectional=True)
        reg = plain.clone(recurrent_dropout=0.3, zoneout=0.2)
        variables = jax.jit(plain.init)(jax.random.key(0), xs, lengths)
        # then the params are the plain cell's,
        regularized_shapes = jax.eval_shape(reg.init, jax.random.key(0), xs, lengths)
        assert jax.tree.structure(regularized_shapes) == jax.tree.structure(variables)
        # at evaluation no RNG is needed and dropout-only equals the plain cell,
        drop_only = plain.clone(recurrent_dropout=0.3)
        np.testing.assert_allclose(jax.jit(drop_only.apply)(variables, xs, lengths),
                                   jax.jit(plain.apply)(variables, xs, lengths), atol=1e-6)
        # in training the masks depend on the RNG (same key, same outputs; other key, others),
        train = jax.jit(lambda k: reg.apply(variables, xs, lengths, deterministic=False, rngs={"dropout": k}))
        a, b, c = train(jax.random.key(3)), train(jax.random.key(3)), train(jax.random.key(4))
        np.testing.assert_array_equal(a, b)
        assert float(jnp.abs(a - c).max()) > 1e-3
        assert not np.any(np.asarray(a)[1, 4:]) and not np.any(np.asarray(a)[2])  # padding stays 0
    # and a recurrent dropout mask is fixed per sequence: one sequence repeated in time sees the
    # same mask at every step (the pure form, checked against an explicit masked loop).
    cell = rnnlab.tanh_rnn(4)
    params = cell.init(jax.random.key(0), 2)
    reg = rnnlab.build_cell(regularized(cell.definition, recurrent_dropout=0.5), 4)
    carry0 = reg.initial_carry()._replace(seed=regularizer_seeds(jax.random.key(9), (4,)))
    seq = jax.random.normal(jax.random.key(2), (5, 2))
    _, ys = rnnlab.unroll(reg, params, seq, carry0=carry0)
    keep = None
    # recover the mask from the first two steps: it must explain every later step (a NumPy loop).
    seq_np, w_x, w_h, b = (np.asarray(a, np.float64) for a in (seq, params["w_x"], params["w_h"], params["b"]))
    for mask in itertools.product((0.0, 2.0), repeat=4):
        mask = np.array(mask)
        h, out = np.zeros(4), []
        for t in range(5):
            h = np.tanh(seq_np[t] @ w_x + (h * mask) @ w_h + b)
            out.append(h)
        if np.allclose(np.stack(out), ys, atol=1e-5):
            keep = mask
    assert keep is not None, "no single per-sequence mask reproduces the dropout run"

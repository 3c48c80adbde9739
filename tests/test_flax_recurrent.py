"""Flax's own recurrent tests, ported onto rnnlab as a Flax user would write them; and the options the
modules share with Flax: initial_carry, return_carry per call, time_major, batch axes, keep_order, merge
functions, two cells, unroll, dtype and param_dtype, explicit-key regularisers.

Ported from google/flax ``tests/linen/linen_recurrent_test.py`` (``RNNTest``, ``BidirectionalTest``),
where they apply: ``nn.RNN(nn.LSTMCell(H))`` becomes ``rnnlab.nn.RNN("lstm", H)``, ``cell.apply`` one
step becomes ``cell.step``, ``seq_lengths`` becomes ``lengths``, and Flax's ``keep_order=False`` default
is passed explicitly (rnnlab's default is input order). Not ported: ``ConvLSTMCell`` (rnnlab has no
convolutional cells), ``nn.scan`` of a Flax cell, and the ``RNNCellBase`` deprecation tests.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnlab
from rnnlab import nn as rnn
from rnnlab.backends import Backend, ScanOptions
from rnnlab.lengths import flip_within_lengths


def _close(a, b, tol=1e-5):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(u, np.float32), np.asarray(v, np.float32), rtol=tol, atol=tol)


def _loop(cell, params, xs, carry):
    """Flax's check: the cell applied step by step (``xs [B, T, D]``); returns (carries per step, ys)."""
    step = jax.vmap(cell.step, in_axes=(None, 0, 0))
    carries, ys = [], []
    for t in range(xs.shape[1]):
        carry, y = step(params, carry, xs[:, t])
        carries.append(carry)
        ys.append(y)
    return carries, jnp.stack(ys, axis=1)


def _zeros(cell, batch):
    return jax.tree.map(lambda c: jnp.broadcast_to(c, (batch,) + c.shape), cell.initial_carry())


# ---------------------------------------------------------------------------
# RNNTest


@pytest.mark.parametrize("batch_dims, options", [((10,), {}), ((10, 11), {}), ((10,), {"unroll": 10})])
def test_rnn_basic_forward_multiple_batch_dims_and_unroll(batch_dims, options):
    layer = rnn.RNN("lstm", 15, return_carry=True, **options)
    xs = jnp.ones((*batch_dims, 40, 5))
    variables = layer.init(jax.random.PRNGKey(0), xs)
    carry, ys = layer.apply(variables, xs)
    assert ys.shape == (*batch_dims, 40, 15)
    assert carry.h.shape == carry.c.shape == (*batch_dims, 15)
    params = variables["params"]
    assert params["w_x"].shape == (5, 60) and params["w_h"].shape == (15, 60) and params["b"].shape == (60,)


def test_rnn_time_major():
    layer = rnn.RNN("lstm", 15, time_major=True, return_carry=True)
    xs = jnp.ones((40, 10, 5))
    variables = layer.init(jax.random.PRNGKey(0), xs)
    carry, ys = layer.apply(variables, xs)
    for leaf in jax.tree.leaves(carry):  # the carry is not zeros after apply
        assert not np.allclose(leaf, 0.0) and leaf.shape == (10, 15)
    assert ys.shape == (40, 10, 15)
    batch_major = layer.apply(variables, jnp.swapaxes(xs, 0, 1), time_major=False)  # per call
    _close((carry, ys), (batch_major[0], jnp.swapaxes(batch_major[1], 0, 1)))


def test_numerical_equivalence():
    layer = rnn.RNN("lstm", 6, return_carry=True)
    xs = jnp.ones((3, 4, 5))
    (carry, ys), variables = layer.init_with_output(jax.random.PRNGKey(0), xs)
    cell = layer.make_cell()
    carries, want = _loop(cell, variables["params"], xs, _zeros(cell, 3))
    _close(ys, want)
    _close(carry, carries[-1])


def test_numerical_equivalence_with_mask():
    lengths = jax.random.randint(jax.random.PRNGKey(0), (3,), minval=1, maxval=5)
    layer = rnn.RNN("lstm", 6, return_carry=True)
    xs = jnp.ones((3, 4, 5))
    (carry, ys), variables = layer.init_with_output(jax.random.PRNGKey(0), xs, lengths)
    cell = layer.make_cell()
    carries, want = _loop(cell, variables["params"], xs, _zeros(cell, 3))
    for b, length in enumerate(np.asarray(lengths)):
        _close(ys[b, :length], want[b, :length])
        assert not np.asarray(ys[b, length:]).any()  # rnnlab: zero past the length (Flax: unspecified)
        _close(jax.tree.map(lambda c: c[b], carry), jax.tree.map(lambda c: c[b], carries[length - 1]))


def test_numerical_equivalence_single_batch_and_jax_scan():
    layer = rnn.RNN("lstm", 6, return_carry=True)
    xs = jax.random.uniform(jax.random.PRNGKey(0), (3, 4, 5))
    (carry, ys), variables = layer.init_with_output(jax.random.PRNGKey(0), xs)
    cell, params = layer.make_cell(), variables["params"]
    for b in range(3):
        carries, want = _loop(cell, params, xs[b:b + 1], _zeros(cell, 1))
        _close(ys[b:b + 1], want, 1e-6)
        _close(jax.tree.map(lambda c: c[b:b + 1], carry), carries[-1], 1e-6)
    scanned = jax.lax.scan(lambda c, x: jax.vmap(cell.step, in_axes=(None, 0, 0))(params, c, x), _zeros(cell, 3),
                           jnp.swapaxes(xs, 0, 1))
    _close((carry, ys), (scanned[0], jnp.swapaxes(scanned[1], 0, 1)), 1e-6)


@pytest.mark.parametrize("keep_order", [False, True])
def test_reverse_and_reverse_but_keep_order(keep_order):
    layer = rnn.RNN("lstm", 6, return_carry=True, reverse=True, keep_order=keep_order)
    xs = jax.random.normal(jax.random.PRNGKey(1), (3, 4, 5))
    (carry, ys), variables = layer.init_with_output(jax.random.PRNGKey(0), xs)
    cell = layer.make_cell()
    carries, want = _loop(cell, variables["params"], xs[:, ::-1], _zeros(cell, 3))  # processing order
    _close(ys, want if not keep_order else want[:, ::-1])
    _close(carry, carries[-1])


def _flip(x, lengths, time_major):
    """Flax's ``flip_sequences(x, seq_lengths, num_batch_dims=1, time_major)`` by rnnlab's time-major flip."""
    if time_major:
        return flip_within_lengths(x, lengths)
    return jnp.swapaxes(flip_within_lengths(jnp.swapaxes(x, 0, 1), lengths), 0, 1)


@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("features", [(), (3,)])
def test_flip_sequence(time_major, features):
    x = jnp.arange(2 * 5 * int(np.prod(features))).reshape((5, 2) + features if time_major else (2, 5) + features)
    lengths = jnp.array([4, 2])
    flipped = _flip(x, lengths, time_major)
    assert flipped.shape == x.shape
    seq = (lambda a, b: a[:, b]) if time_major else (lambda a, b: a[b])
    np.testing.assert_array_equal(seq(flipped, 0)[:4], seq(x, 0)[:4][::-1])
    np.testing.assert_array_equal(seq(flipped, 1)[:2], seq(x, 1)[:2][::-1])
    np.testing.assert_array_equal(seq(flipped, 1)[2:], seq(x, 1)[2:])  # padding stays


# ---------------------------------------------------------------------------
# BidirectionalTest


def test_bidirectional_shared_cell_custom_merge_and_return_carry():
    xs = jnp.ones((3, 4, 5))
    ys, _ = rnn.Bidirectional("lstm", 6).init_with_output(jax.random.PRNGKey(0), xs)
    assert ys.shape == (3, 4, 12)
    cell = rnnlab.lstm(6)
    ys, _ = rnn.Bidirectional(cell, cell).init_with_output(jax.random.PRNGKey(0), xs)  # one Cell both ways
    assert ys.shape == (3, 4, 12)
    ys, _ = rnn.Bidirectional("lstm", 6, merge=lambda x, y: x + y).init_with_output(jax.random.PRNGKey(0), xs)
    assert ys.shape == (3, 4, 6)
    (carry, ys), _ = rnn.Bidirectional("lstm", 6, return_carry=True).init_with_output(jax.random.PRNGKey(0), xs)
    carry_forward, carry_backward = carry
    assert ys.shape == (3, 4, 12)
    assert jax.tree.map(jnp.shape, carry_forward) == rnnlab.LSTMState((3, 6), (3, 6))
    assert jax.tree.map(jnp.shape, carry_backward) == rnnlab.LSTMState((3, 6), (3, 6))


def test_bidirectional_two_different_cells_equal_two_runs():
    fwd, bwd = rnnlab.lstm(6), rnnlab.gru(4, reset_after=True)
    layer = rnn.Bidirectional(fwd, bwd, merge=lambda f, b: jnp.concatenate([b, f], axis=-1))
    xs = jax.random.normal(jax.random.PRNGKey(1), (3, 5, 2))
    lengths = jnp.array([5, 2, 0])
    variables = layer.init(jax.random.PRNGKey(0), xs, lengths)
    ys = layer.apply(variables, xs, lengths)
    p = variables["params"]
    want_f = rnnlab.unroll_batch(fwd, p["fwd"], xs, lengths)[1]
    want_b = rnnlab.unroll_batch(bwd, p["bwd"], xs, lengths, reverse=True)[1]
    _close(ys, jnp.concatenate([want_b, want_f], axis=-1))


# ---------------------------------------------------------------------------
# initial_carry: chunks with carried state, and an encoder-decoder, equal the whole sequence


B, T, D, H = 3, 7, 4, 5
LENGTHS = np.array([7, 2, 0])
SPLIT = 3


def _chunked_and_whole(cell, backend):
    """Both runs as functions of (params, xs): the whole sequence, and two chunks with the carry passed on."""
    options = ScanOptions(interpret=True)

    def whole(p, x):
        return rnnlab.unroll_batch(cell, p, x, LENGTHS, backend=backend, options=options)

    def chunks(p, x):
        first = np.minimum(LENGTHS, SPLIT)
        carry, ys1 = rnnlab.unroll_batch(cell, p, x[:, :SPLIT], first, backend=backend, options=options)
        carry, ys2 = rnnlab.unroll_batch(cell, p, x[:, SPLIT:], LENGTHS - first, carry, backend=backend,
                                         options=options)
        return carry, jnp.concatenate([ys1, ys2], axis=1)

    return whole, chunks


def _loss(run):
    def loss(p, x):
        carry, ys = run(p, x)
        return jnp.sum(jnp.sin(ys)) + sum(jnp.sum(jnp.cos(c)) for c in jax.tree.leaves(carry))

    return loss


@pytest.mark.parametrize("name, backend", [("lstm", Backend.REFERENCE), ("lstm", Backend.FUSED),
                                           ("gru", Backend.FUSED), ("min_gru", Backend.PARALLEL),
                                           ("gru_reset_after", Backend.PALLAS)])
def test_chunks_with_carried_state_equal_the_whole_sequence_forward_and_gradients(name, backend):
    cell = rnnlab.gru(H, reset_after=True) if name == "gru_reset_after" else rnnlab.get_cell(name, H)
    params = cell.init(jax.random.PRNGKey(0), D)
    xs = jax.random.normal(jax.random.PRNGKey(1), (B, T, D))
    whole, chunks = _chunked_and_whole(cell, backend)
    _close(jax.jit(chunks)(params, xs), jax.jit(whole)(params, xs))
    grads = [jax.jit(jax.grad(_loss(f), argnums=(0, 1)))(params, xs) for f in (chunks, whole)]
    _close(grads[0], grads[1], 1e-4)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_encoder_decoder_through_the_modules_equals_the_whole_sequence(bidirectional):
    # An encoder's final carries (per layer) start a decoder with the same weights: for a forward
    # stack, reading source then target equals reading their concatenation.
    layer = rnn.StackedRNN("lstm", H, num_layers=2)
    source = jax.random.normal(jax.random.PRNGKey(1), (B, 4, D))
    target = jax.random.normal(jax.random.PRNGKey(2), (B, 3, D))
    variables = layer.init(jax.random.PRNGKey(0), source)

    def encode_decode(v, src, tgt):
        carries, _ = layer.apply(v, src, return_carry=True)
        return layer.apply(v, tgt, initial_carry=carries)

    def whole(v, src, tgt):
        return layer.apply(v, jnp.concatenate([src, tgt], axis=1))[:, src.shape[1]:]

    _close(jax.jit(encode_decode)(variables, source, target), jax.jit(whole)(variables, source, target))
    grads = [jax.jit(jax.grad(lambda v, f=f: jnp.sum(jnp.sin(f(v, source, target)))))(variables)
             for f in (encode_decode, whole)]
    _close(grads[0], grads[1], 1e-4)
    if bidirectional:  # a bidirectional layer takes one carry per direction; the forward one starts there
        bi = rnn.Bidirectional("lstm", H, return_carry=True)
        v = bi.init(jax.random.PRNGKey(0), source)
        start = rnnlab.LSTMState(jnp.ones((B, H)), jnp.ones((B, H)))
        (carry_f, _), ys = bi.apply(v, source, initial_carry=(start, None))
        want_carry, want = rnnlab.unroll_batch(rnnlab.lstm(H), v["params"]["fwd"], source, carry0=start)
        _close((carry_f, ys[..., :H]), (want_carry, want))


# ---------------------------------------------------------------------------
# dtypes, and regularisers drawn from explicit keys


def test_bfloat16_products_with_float32_params_and_carries_are_close_to_float32():
    xs = jax.random.normal(jax.random.PRNGKey(1), (3, 6, 4))
    lengths = jnp.array([6, 3, 0])
    full = rnn.StackedRNN("lstm", 8, num_layers=2, bidirectional=True, return_carry=True)
    half = full.clone(dtype=jnp.bfloat16)
    variables = full.init(jax.random.PRNGKey(0), xs, lengths)
    assert jax.tree.structure(half.init(jax.random.PRNGKey(0), xs, lengths)) == jax.tree.structure(variables)
    assert {p.dtype for p in jax.tree.leaves(half.init(jax.random.PRNGKey(0), xs, lengths))} == {jnp.dtype("float32")}
    carries, ys = jax.jit(half.apply)(variables, xs, lengths)
    want_carries, want = jax.jit(full.apply)(variables, xs, lengths)
    assert ys.shape == want.shape == (3, 6, 16)
    assert {a.dtype for a in jax.tree.leaves((carries, ys))} == {jnp.dtype("float32")}
    _close((carries, ys), (want_carries, want), 5e-2)
    assert float(jnp.abs(ys - want).max()) > 0  # the products did run in bfloat16


def test_param_dtype_and_init_options_reach_the_cell():
    xs = jnp.ones((2, 3, 4))
    layer = rnn.RNN("lstm", 5, param_dtype=jnp.bfloat16, cell_options={"forget_bias": 0.0,
                                                                        "recurrent_init": "orthogonal"})
    variables = layer.init(jax.random.PRNGKey(0), xs)
    assert {p.dtype for p in jax.tree.leaves(variables)} == {jnp.dtype("bfloat16")}
    assert layer.make_cell().option("forget_bias") == 0.0
    assert layer.apply(variables, xs).shape == (2, 3, 5)


def test_explicit_key_regularisers_give_the_same_outputs_whatever_the_call_order(monkeypatch):
    # Given a 2-layer bidirectional stack with zoneout and recurrent dropout, in training (the call's one
    # "dropout" key recorded as the module folds it per layer and direction)
    keys = []
    fold = rnn.regularizer_key
    monkeypatch.setattr(rnn, "regularizer_key", lambda key, i, d: keys.append(key) or fold(key, i, d))
    layer = rnn.StackedRNN("gru", H, num_layers=2, bidirectional=True, zoneout=0.3, recurrent_dropout=0.2)
    xs = jax.random.normal(jax.random.PRNGKey(1), (B, T, D))
    variables = layer.init(jax.random.PRNGKey(0), xs, LENGTHS)
    keys.clear()
    ys = layer.apply(variables, xs, LENGTHS, deterministic=False, rngs={"dropout": jax.random.PRNGKey(5)})
    key = keys[0]
    assert len(keys) == 4 and all(np.array_equal(k, key) for k in keys)  # one key, folded 4 ways
    # When every layer and direction is run by hand, the backward direction first, each starting
    # from the seeds of regularizer_key(key, layer, direction)
    reg = rnnlab.build_cell(rnnlab.cells.regularized(rnnlab.gru(H).definition, 0.2, 0.3), H)

    def start(i, d):
        seeds = rnnlab.cells.regularizer_seeds(fold(key, i, d), (B, H))
        return jax.tree.map(lambda c: jnp.broadcast_to(c, (B,) + c.shape), reg.initial_carry())._replace(seed=seeds)

    inputs = xs
    for i in range(2):
        p = variables["params"][f"layer_{i}"]
        _, ys_b = rnnlab.unroll_batch(reg, p["bwd"], inputs, LENGTHS, start(i, 1), reverse=True)
        _, ys_f = rnnlab.unroll_batch(reg, p["fwd"], inputs, LENGTHS, start(i, 0))
        inputs = jnp.concatenate([ys_f, ys_b], axis=-1)
    # Then the outputs are the module's
    _close(ys, inputs)

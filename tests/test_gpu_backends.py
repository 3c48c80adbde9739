"""The GPU backends, tested on CPU: cuDNN weight packing (against jax.experimental.rnn.lstm_ref)
and the Pallas recurrence kernel in interpret mode (against the reference backend), both called
through the backend contract (rnnlab.backends) with ScanOptions(interpret=True).

Tests marked ``gpu`` run the compiled paths and are skipped without a GPU.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import rnn as jax_rnn

import rnnlab
from rnnlab import Backend
from rnnlab.backends import ScanOptions, cudnn
from rnnlab.cells import lstm_def
from rnnlab.lengths import flip_within_lengths

ON_GPU = jax.default_backend() == "gpu"
gpu = pytest.mark.skipif(not ON_GPU, reason="needs a GPU")
B, T, D, H = 4, 6, 3, 5
LENGTHS = np.array([6, 3, 0, 1], np.int32)  # full, partial, empty, one step


def _inputs(cell, key=0, batch=B, steps=T, random_bias=True):
    """Params (random bias), xs f32[B, T, D] and a random carry0 for ``cell``."""
    k = jax.random.split(jax.random.PRNGKey(key), 5)
    params = cell.init(k[0], D)
    if random_bias:
        params = {**params, "b": jax.random.normal(k[1], params["b"].shape)}
    xs = jax.random.normal(k[2], (batch, steps, D))
    leaves = [jax.random.normal(kk, (batch, cell.hidden_size)) for kk in k[3:]]
    carry0 = rnnlab.LSTMState(*leaves) if cell.kind == "lstm" else leaves[0]
    return params, xs, carry0


def _max_diff(a, b):
    return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a),
                                                              jax.tree.leaves(b)))


def _loss(run):
    """A scalar of every output and the final carry, so that all cotangents are nonzero."""

    def loss(params, xs, carry0):
        carry, ys = run(params, xs, carry0)
        weights = jnp.arange(ys.size, dtype=ys.dtype).reshape(ys.shape) / ys.size
        return jnp.sum(weights * ys) + sum(jnp.sum(c * c) for c in jax.tree.leaves(carry))

    return loss


# ---------------------------------------------------------------------------
# cuDNN: packing, lstm_ref, the wrapper's semantics


def test_pack_lstm_layout_matches_jax_unpack():
    # Given LSTM params with a random bias and forget_bias 1.5
    params, _, _ = _inputs(rnnlab.lstm(H))
    # When packed and unpacked by jax.experimental.rnn's own reader
    weights = cudnn.pack_lstm(params, forget_bias=1.5)
    assert weights.shape == (jax_rnn.get_num_params_in_lstm(D, H, 1, False),)
    W_ih, W_hh, b_ih, b_hh = (d[0] for d in jax_rnn.unpack_lstm_weights(weights, D, H, 1, False))
    # Then the blocks are the transposed matrices and the forget bias sits in b_ih's f block only
    np.testing.assert_array_equal(W_ih, params["w_x"].T)
    np.testing.assert_array_equal(W_hh, params["w_h"].T)
    np.testing.assert_allclose(b_ih - params["b"], np.repeat([0.0, 1.5, 0.0, 0.0], H), atol=1e-6)
    np.testing.assert_array_equal(b_hh, np.zeros(4 * H))


def test_unpack_pack_round_trip():
    params, xs, _ = _inputs(rnnlab.lstm(H))
    back = cudnn.unpack_lstm(cudnn.pack_lstm(params, 1.0), D, H, forget_bias=1.0)
    assert set(back) == {"w_x", "w_h", "b"}
    for name in params:
        np.testing.assert_allclose(back[name], params[name], atol=1e-6)
    # cuDNN weights with both biases -> params -> weights: lstm_ref computes the same function
    weights = jax_rnn.init_lstm_weight(jax.random.PRNGKey(3), D, H, 1, False)
    again = cudnn.pack_lstm(cudnn.unpack_lstm(weights, D, H, forget_bias=0.7), forget_bias=0.7)
    zeros = jnp.zeros((1, B, H))
    lengths = jnp.asarray(np.maximum(LENGTHS, 1))
    outs = [jax_rnn.lstm_ref(xs, zeros, zeros, *jax_rnn.unpack_lstm_weights(w, D, H, 1, False),
                             lengths, D, H, 1, 0.0, False) for w in (weights, again)]
    assert _max_diff(outs[0], outs[1]) < 1e-5
    with pytest.raises(ValueError, match="shape"):
        cudnn.unpack_lstm(weights[:-1], D, H)


def test_lstm_ref_with_packed_weights_equals_reference_backend():
    # Given an LSTM with a forget bias, variable lengths (lstm_ref needs >= 1) and a carry0
    cell = rnnlab.lstm(H, forget_bias=1.0)
    params, xs, carry0 = _inputs(cell)
    lengths = jnp.asarray(np.maximum(LENGTHS, 1))
    # When jax's reference LSTM runs the packed weights
    weights = cudnn.pack_lstm(params, forget_bias=1.0)
    ys, h_n, c_n = jax_rnn.lstm_ref(xs, carry0.h[None], carry0.c[None],
                                    *jax_rnn.unpack_lstm_weights(weights, D, H, 1, False),
                                    lengths, D, H, 1, 0.0, False)
    # Then outputs and final (h, c) equal rnnlab's reference backend
    carry, want = rnnlab.unroll_batch(cell, params, xs, lengths, carry0,
                                      backend=Backend.REFERENCE)
    np.testing.assert_allclose(ys, want, atol=1e-5)
    np.testing.assert_allclose(h_n[0], carry.h, atol=1e-5)
    np.testing.assert_allclose(c_n[0], carry.c, atol=1e-5)


def _cudnn(cell, lengths, reverse, interpret=True):
    """The cuDNN backend through the contract: ``(params, xs [B, T, D], carry0) -> (carry, ys [B, T, H])``."""

    def run(p, x, c):
        keep = rnnlab.sequence_mask(lengths, x.shape[1]).T
        carry, ys = cudnn.cudnn_unroll(cell, p, jnp.swapaxes(x, 0, 1), keep, c, reverse,
                                       ScanOptions(interpret=interpret))
        return carry, jnp.swapaxes(ys, 0, 1)

    return run


@pytest.mark.parametrize("reverse", [False, True])
def test_cudnn_unroll_reference_mode_equals_unroll_batch(reverse):
    # lengths include 0 and T; reverse flips within each length; gradients through the packing
    cell = rnnlab.lstm(H, forget_bias=1.0)
    params, xs, carry0 = _inputs(cell)
    lengths = jnp.asarray(LENGTHS)
    ours = _cudnn(cell, lengths, reverse)

    def ref(p, x, c):
        return rnnlab.unroll_batch(cell, p, x, lengths, c, reverse, backend=Backend.REFERENCE)

    got, want = jax.jit(ours)(params, xs, carry0), jax.jit(ref)(params, xs, carry0)
    assert isinstance(got[0], rnnlab.LSTMState) and got[1].shape == (B, T, H)
    assert _max_diff(got, want) < 1e-5
    np.testing.assert_array_equal(got[0].h[2], carry0.h[2])  # length 0 keeps carry0
    assert not np.any(np.asarray(got[1])[1, 3:])  # zero past the length
    grads = [jax.jit(jax.grad(_loss(f), argnums=(0, 1, 2)))(params, xs, carry0) for f in (ours, ref)]
    assert _max_diff(*grads) < 1e-4


def test_cudnn_packing_reads_the_forget_bias_from_the_definition():
    # Given the documented own-cell path: a built lstm_def with a non-default forget bias, whose
    # options record no forget_bias (the bias lives in the definition's equations only)
    cell = rnnlab.build_cell(lstm_def(forget_bias=2.5), H)
    assert cell.option("forget_bias") is None and cudnn.supports(cell)
    assert abs(cudnn.forget_bias(cell.definition) - 2.5) < 1e-12
    params, xs, carry0 = _inputs(cell)
    lengths = jnp.asarray(LENGTHS)
    # When the cuDNN backend runs it through jax.experimental.rnn.lstm_ref on the packed weights
    got = jax.jit(_cudnn(cell, lengths, False))(params, xs, carry0)
    # Then it equals the reference scan of the same definition (packed with 0, it would not)
    want = jax.jit(lambda p, x, c: rnnlab.unroll_batch(cell, p, x, lengths, c, backend=Backend.REFERENCE))(
        params, xs, carry0)
    assert _max_diff(got, want) < 1e-5
    zero_bias = rnnlab.unroll_batch(rnnlab.build_cell(lstm_def(forget_bias=0.0), H), params, xs, lengths, carry0,
                                    backend=Backend.REFERENCE)
    assert _max_diff(got, zero_bias) > 1e-2


def test_flip_within_lengths_is_its_own_inverse():
    xs = jnp.arange(2 * 4, dtype=jnp.float32).reshape(2, 4).T[..., None]  # time-major [T, B, 1]
    flipped = flip_within_lengths(xs, jnp.array([3, 0], jnp.int32))
    np.testing.assert_array_equal(flipped[:, 0, 0], [2, 1, 0, 3])
    np.testing.assert_array_equal(flipped[:, 1], xs[:, 1])
    np.testing.assert_array_equal(flip_within_lengths(flipped, jnp.array([3, 0])), xs)


def test_cudnn_supports_plain_lstm_only():
    assert cudnn.supports(rnnlab.lstm(H))
    assert cudnn.supports(rnnlab.lstm(H, dtype=jnp.bfloat16))
    assert not cudnn.supports(rnnlab.lstm(H, peephole=True))
    assert not cudnn.supports(rnnlab.gru(H, reset_after=True))
    assert not cudnn.supports(rnnlab.tanh_rnn(H))
    peephole = rnnlab.lstm(H, peephole=True)
    params, xs, carry0 = _inputs(peephole)
    with pytest.raises(ValueError, match="not a plain LSTM"):
        _cudnn(peephole, jnp.asarray(LENGTHS), False)(params, xs, carry0)
    with pytest.raises(ValueError, match="peephole"):
        cudnn.pack_lstm(params)


@pytest.mark.skipif(ON_GPU, reason="checks the error off GPU")
def test_cudnn_unroll_without_gpu_raises_clearly():
    cell = rnnlab.lstm(H)
    params, xs, carry0 = _inputs(cell)
    with pytest.raises(RuntimeError, match="needs a GPU"):
        _cudnn(cell, jnp.asarray(LENGTHS), False, interpret=False)(params, xs, carry0)
    with pytest.raises(ValueError, match="CUDNN cannot run the 'lstm' cell"):
        rnnlab.unroll_batch(cell, params, xs, backend="cudnn")


@gpu
@pytest.mark.parametrize("reverse", [False, True])
def test_cudnn_unroll_on_gpu_equals_reference(reverse):
    cell = rnnlab.lstm(H, forget_bias=1.0)
    params, xs, carry0 = _inputs(cell)
    lengths = jnp.asarray(LENGTHS)
    with jax.default_matmul_precision("highest"):
        got = jax.jit(_cudnn(cell, lengths, reverse, interpret=False))(params, xs, carry0)
        want = rnnlab.unroll_batch(cell, params, xs, lengths, carry0, reverse,
                                   backend=Backend.REFERENCE)
        assert _max_diff(got, want) < 1e-4
        grads = [jax.grad(_loss(f), argnums=(0, 1, 2))(params, xs, carry0) for f in (
            _cudnn(cell, lengths, reverse, interpret=False),
            lambda p, x, c: rnnlab.unroll_batch(cell, p, x, lengths, c, reverse,
                                                backend=Backend.REFERENCE))]
        assert _max_diff(*grads) < 1e-3


# ---------------------------------------------------------------------------
# Pallas: the library's cells through the contract (the kernel runs each definition's own equations)


CASES = {
    "lstm": lambda: rnnlab.lstm(H, forget_bias=1.0),
    "tanh": lambda: rnnlab.tanh_rnn(H),
    "gru": lambda: rnnlab.gru(H, reset_after=True),  # with the vector b_hn (tests vecs)
}


def _pallas_and_reference(name, reverse, **options):
    cell = CASES[name]()
    lengths = jnp.asarray(LENGTHS)

    def ours(p, x, c):
        return rnnlab.unroll_batch(cell, p, x, lengths, c, reverse, backend=Backend.PALLAS,
                                   options=ScanOptions(interpret=True, **options))

    def ref(p, x, c):
        return rnnlab.unroll_batch(cell, p, x, lengths, c, reverse, backend=Backend.REFERENCE)

    params, xs, carry0 = _inputs(cell)
    if "b_hn" in params:
        params = {**params, "b_hn": jax.random.normal(jax.random.PRNGKey(9), params["b_hn"].shape)}
    return ours, ref, (params, xs, carry0)


@pytest.mark.parametrize("name, reverse, options", [
    ("lstm", False, {}),
    ("lstm", True, {"block_b": 3}),  # B=4 padded to 6: two programs, padded rows dropped
    ("tanh", True, {"hold_weights": False}),  # W_h read every step
    ("gru", False, {}),
    ("lstm", True, {"unroll": 4}),  # T=6: one loop iteration of 4 steps, then 2 written out
])
def test_pallas_unroll_forward_equals_reference(name, reverse, options):
    ours, ref, args = _pallas_and_reference(name, reverse, **options)
    got, want = jax.jit(ours)(*args), jax.jit(ref)(*args)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    assert got[1].shape == (B, T, H)
    assert _max_diff(got, want) < 1e-5
    assert not np.any(np.asarray(got[1])[2])  # length 0: no outputs


@pytest.mark.parametrize("name, reverse, options", [("lstm", True, {}), ("gru", False, {}),
                                                    ("gru", True, {"unroll": 4})])
def test_pallas_unroll_gradients_equal_reference(name, reverse, options):
    # w.r.t. params (b_hn of the GRU: a vector passed to the kernel), xs and carry0
    ours, ref, args = _pallas_and_reference(name, reverse, **options)
    grads = [jax.jit(jax.grad(_loss(f), argnums=(0, 1, 2)))(*args) for f in (ours, ref)]
    assert jax.tree.structure(grads[0]) == jax.tree.structure(grads[1])
    assert _max_diff(*grads) < 1e-4
    np.testing.assert_array_equal(grads[0][1][2], 0.0)  # the empty row's inputs get nothing


def test_pallas_compiled_kernel_needs_powers_of_two():
    cell = rnnlab.lstm(H)  # H = 5
    params, xs, carry0 = _inputs(cell)
    with pytest.raises(ValueError, match="powers of two"):
        rnnlab.unroll_batch(cell, params, xs, None, carry0, backend="pallas", options=ScanOptions(interpret=False))


@gpu
@pytest.mark.parametrize("dtype, atol", [(jnp.float32, 1e-4), (jnp.bfloat16, 5e-2)])
def test_pallas_unroll_compiled_on_gpu(dtype, atol):
    cell = rnnlab.lstm(16, forget_bias=1.0, dtype=dtype)
    k = jax.random.split(jax.random.PRNGKey(0), 3)
    params = cell.init(k[0], 8)
    xs = jax.random.normal(k[1], (20, 12, 8))
    lengths = jnp.arange(20, dtype=jnp.int32) % 13
    zeros = jnp.zeros((20, 16))
    carry0 = rnnlab.LSTMState(zeros, zeros)
    with jax.default_matmul_precision("highest"):
        got = jax.jit(lambda p, x: rnnlab.unroll_batch(cell, p, x, lengths, carry0, True, backend="pallas",
                                                       options=ScanOptions(interpret=False)))(params, xs)
        want = rnnlab.unroll_batch(cell, params, xs, lengths, carry0, True,
                                   backend=Backend.REFERENCE)
    assert _max_diff(got, want) < atol


@pytest.mark.parametrize("dtype, hold_weights, unroll", [(jnp.float32, True, 1), (jnp.bfloat16, False, 3)])
def test_pallas_kernel_lowers_for_triton_without_a_gpu(dtype, hold_weights, unroll):
    # Lowering to Triton IR runs in Python on any machine: it catches unsupported operations
    # (non-power-of-two loads, slicing) before a GPU is ever available. B=20 pads to 2 tiles.
    cell = rnnlab.lstm(16, forget_bias=1.0, dtype=dtype)
    params = cell.init(jax.random.PRNGKey(0), 8)
    xs = jnp.zeros((20, 7, 8))
    lengths = jnp.full((20,), 7, jnp.int32)
    carry0 = rnnlab.LSTMState(jnp.zeros((20, 16)), jnp.zeros((20, 16)))

    def loss(p, x):
        carry, ys = rnnlab.unroll_batch(cell, p, x, lengths, carry0, reverse=True, backend="pallas", unroll=unroll,
                                        options=ScanOptions(interpret=False, hold_weights=hold_weights))
        return jnp.sum(ys) + jnp.sum(carry.c)

    lowered = jax.jit(jax.value_and_grad(loss)).trace(params, xs).lower(
        lowering_platforms=("cuda",))
    text = lowered.as_text()
    assert "rnnlab_recurrence" in text and "__gpu$xla.gpu.triton" in text

"""Weight import: converted weights reproduce PyTorch, Flax and Keras layers; bad weights raise.

PyTorch runs for real (CI installs torch 2.13.0 CPU); Flax cells run through
``flax.linen.RNN`` with ``seq_lengths``; Keras (not installed: it needs
TensorFlow) is checked against its equations written out in NumPy below.
"""

from __future__ import annotations

import flax.linen as fnn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import rnnlab

H, D, T = 5, 3, 6
LENGTHS = np.array([T, 3, 1])  # pack_padded_sequence needs lengths >= 1


def padded_inputs(seed, lengths=LENGTHS):
    xs = np.random.default_rng(seed).standard_normal((len(lengths), T, D)).astype(np.float32)
    return xs * (np.arange(T)[None, :, None] < lengths[:, None, None])


def close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


# --- PyTorch -------------------------------------------------------------------------

TORCH = {
    "lstm": (torch.nn.LSTM, lambda: rnnlab.lstm(H, forget_bias=0.0)),
    "gru": (torch.nn.GRU, lambda: rnnlab.gru(H, reset_after=True)),
    "tanh": (torch.nn.RNN, lambda: rnnlab.tanh_rnn(H)),
}


def run_torch(module, xs, lengths):
    """Padded batch through pack_padded_sequence: ``(outputs [B, T, H*dirs], h_n, c_n or None)``."""
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        torch.from_numpy(xs), torch.from_numpy(lengths), batch_first=True, enforce_sorted=False
    )
    with torch.no_grad():
        out, state = module(packed)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
    h_n, c_n = state if isinstance(state, tuple) else (state, None)
    return out.numpy(), h_n.numpy(), None if c_n is None else c_n.numpy()


@pytest.mark.parametrize("kind", ["lstm", "gru", "tanh"])
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, True)], ids=["1-layer", "2-layer-bidi"])
def test_from_torch_reproduces_torch(kind, num_layers, bidirectional):
    # Given a PyTorch layer with random weights and biases and a padded batch
    torch.manual_seed(0)
    constructor, make_cell = TORCH[kind]
    module = constructor(D, H, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)
    state_dict = module.state_dict()
    xs = padded_inputs(1)
    cell = make_cell()
    # When its weights are converted layer by layer and direction by direction
    params = {}
    for layer in range(num_layers):
        convert = lambda reverse: rnnlab.from_torch(state_dict, cell, layer=layer, reverse=reverse)
        params[f"layer_{layer}"] = (
            {"fwd": convert(False), "bwd": convert(True)} if bidirectional else convert(False)
        )
    run = lambda x, n: rnnlab.stack(cell, params, x, n, bidirectional=bidirectional)
    carries, ys = jax.jit(jax.vmap(run))(xs, LENGTHS)
    # Then outputs and final states equal PyTorch's to 1e-5
    out, h_n, c_n = run_torch(module, xs, LENGTHS)
    close(ys, out)
    for layer in range(num_layers):
        directions = carries[layer] if bidirectional else (carries[layer],)
        for direction, carry in enumerate(directions):
            index = layer * (2 if bidirectional else 1) + direction
            if kind == "lstm":
                close(carry.h, h_n[index])
                close(carry.c, c_n[index])
            else:
                close(carry, h_n[index])


def test_from_torch_accepts_tensors_and_returns_float32_jax_arrays():
    module = torch.nn.GRU(D, H)
    params = rnnlab.from_torch(module.state_dict(), rnnlab.gru(H, reset_after=True))
    assert set(params) == {"w_x", "w_h", "b", "b_hn"}
    assert all(isinstance(v, jax.Array) and v.dtype == jnp.float32 for v in params.values())
    assert params["w_x"].shape == (D, 3 * H) and params["b_hn"].shape == (H,)


def test_from_torch_without_biases():
    torch.manual_seed(1)
    module = torch.nn.LSTM(D, H, bias=False, batch_first=True)
    cell = rnnlab.lstm(H, forget_bias=0.0)
    params = rnnlab.from_torch(module.state_dict(), cell)
    assert not np.asarray(params["b"]).any()
    xs = padded_inputs(2)
    _, ys = jax.vmap(lambda x, n: rnnlab.unroll(cell, params, x, n))(xs, LENGTHS)
    close(ys, run_torch(module, xs, LENGTHS)[0])


def test_from_torch_errors():
    lstm_sd = torch.nn.LSTM(D, H).state_dict()
    gru_sd = torch.nn.GRU(D, H).state_dict()
    with pytest.raises(ValueError, match="no constant forget bias: build the target cell with forget_bias=0.0"):
        rnnlab.from_torch(lstm_sd, rnnlab.lstm(H))
    with pytest.raises(ValueError, match="no peepholes"):
        rnnlab.from_torch(lstm_sd, rnnlab.lstm(H, forget_bias=0.0, peephole=True))
    with pytest.raises(ValueError, match=r"PyTorch GRU is the reset-after form.*gru\(H, reset_after=True\)"):
        rnnlab.from_torch(gru_sd, rnnlab.gru(H))
    with pytest.raises(ValueError, match=r"weight_ih_l0 .*must have shape \(20, 'D'\), got \(15, 3\)"):
        rnnlab.from_torch(gru_sd, rnnlab.lstm(H, forget_bias=0.0))  # a GRU's weights into an LSTM
    with pytest.raises(ValueError, match=r"weight_ih_l0 .*must have shape \(12, 'D'\), got \(15, 3\)"):
        rnnlab.from_torch(gru_sd, rnnlab.gru(4, reset_after=True))  # H=5 weights into H=4
    bad = dict(gru_sd, weight_hh_l0=torch.zeros(15, 4))
    with pytest.raises(ValueError, match=r"weight_hh_l0 .*must have shape \(15, 5\), got \(15, 4\)"):
        rnnlab.from_torch(bad, rnnlab.gru(H, reset_after=True))
    with pytest.raises(ValueError, match=r"state_dict has no 'weight_ih_l1'"):
        rnnlab.from_torch(gru_sd, rnnlab.gru(H, reset_after=True), layer=1)
    with pytest.raises(ValueError, match=r"state_dict has no 'weight_ih_l0_reverse'"):
        rnnlab.from_torch(gru_sd, rnnlab.gru(H, reset_after=True), reverse=True)
    with pytest.raises(ValueError, match="proj_size"):
        rnnlab.from_torch(torch.nn.LSTM(D, H, proj_size=2).state_dict(), rnnlab.lstm(H, forget_bias=0.0))
    with pytest.raises(ValueError, match="cell must be an rnnlab Cell"):
        rnnlab.from_torch(gru_sd, "gru")
    bad = dict(gru_sd, bias_ih_l0=torch.zeros(7))
    with pytest.raises(ValueError, match=r"bias_ih_l0 .*must have shape \(15,\), got \(7,\)"):
        rnnlab.from_torch(bad, rnnlab.gru(H, reset_after=True))
    # One bias without the other is a damaged state dict, never zeros in its place.
    no_hh = {k: v for k, v in lstm_sd.items() if k != "bias_hh_l0"}
    with pytest.raises(ValueError, match="has 'bias_ih_l0' but no 'bias_hh_l0'"):
        rnnlab.from_torch(no_hh, rnnlab.lstm(H, forget_bias=0.0))
    # Gate variants have no PyTorch layer: refused, whatever their parameter shapes.
    with pytest.raises(ValueError, match="no PyTorch equivalent"):
        rnnlab.from_torch(lstm_sd, rnnlab.get_cell("lstm_niaf", H, forget_bias=0.0))
    with pytest.raises(ValueError, match="no PyTorch equivalent"):
        rnnlab.from_torch(gru_sd, rnnlab.get_cell("min_gru", H))


# --- Flax ----------------------------------------------------------------------------

FLAX = {
    "LSTMCell": (fnn.LSTMCell, lambda: rnnlab.lstm(H, forget_bias=0.0)),
    "OptimizedLSTMCell": (fnn.OptimizedLSTMCell, lambda: rnnlab.lstm(H, forget_bias=0.0)),
    "GRUCell": (fnn.GRUCell, lambda: rnnlab.gru(H, reset_after=True)),
    "SimpleCell": (fnn.SimpleCell, lambda: rnnlab.tanh_rnn(H)),
}


@pytest.mark.parametrize("name", list(FLAX))
def test_from_flax_reproduces_flax_rnn(name):
    # Given a Flax cell inside flax.linen.RNN, with random (non-zero) biases
    flax_cell, make_cell = FLAX[name]
    layer = fnn.RNN(flax_cell(features=H), return_carry=True)
    xs = padded_inputs(3)
    lengths = jnp.asarray(LENGTHS)
    variables = layer.init(jax.random.key(0), xs, seq_lengths=lengths)
    rng = np.random.default_rng(0)
    variables = jax.tree.map(lambda a: np.asarray(a) + 0.3 * rng.standard_normal(a.shape).astype(np.float32),
                             variables)
    carry, out = layer.apply(variables, xs, seq_lengths=lengths)
    # When its params are converted
    cell = make_cell()
    params = rnnlab.from_flax(variables["params"]["cell"], cell)
    # Then rnnlab's outputs (valid steps) and final carries equal Flax's
    got_carry, ys = jax.vmap(lambda x, n: rnnlab.unroll(cell, params, x, n))(xs, lengths)
    mask = (np.arange(T)[None, :] < LENGTHS[:, None])[..., None]
    close(np.asarray(ys) * mask, np.asarray(out) * mask)
    if cell.kind == "lstm":
        flax_c, flax_h = carry
        close(got_carry.c, flax_c)
        close(got_carry.h, flax_h)
    else:
        close(got_carry, carry)


def test_from_flax_accepts_a_variables_dict():
    variables = fnn.GRUCell(features=H).init(jax.random.key(0), jnp.zeros(H), jnp.zeros(D))
    params = rnnlab.from_flax(variables, rnnlab.gru(H, reset_after=True))
    assert params["w_x"].shape == (D, 3 * H)


def test_from_flax_errors():
    gru_params = fnn.GRUCell(features=H).init(jax.random.key(0), jnp.zeros(H), jnp.zeros(D))["params"]
    lstm_cell = fnn.LSTMCell(features=H)
    lstm_params = lstm_cell.init(jax.random.key(0), lstm_cell.initialize_carry(jax.random.key(0), (D,)),
                                 jnp.zeros(D))["params"]
    with pytest.raises(ValueError, match=r"Flax GRU is the reset-after form"):
        rnnlab.from_flax(gru_params, rnnlab.gru(H))
    with pytest.raises(ValueError, match="forget_bias=0.0"):
        rnnlab.from_flax(lstm_params, rnnlab.lstm(H))
    with pytest.raises(ValueError, match=r"not the params of a Flax lstm cell: expected keys \['if', 'ig'"):
        rnnlab.from_flax(gru_params, rnnlab.lstm(H, forget_bias=0.0))
    with pytest.raises(ValueError, match=r"Flax ir/kernel must have shape \(3, 4\), got \(3, 5\)"):
        rnnlab.from_flax(gru_params, rnnlab.gru(4, reset_after=True))
    with pytest.raises(ValueError, match="must be a Flax params tree"):
        rnnlab.from_flax(np.zeros(3), rnnlab.gru(H, reset_after=True))


# --- Keras (its equations in NumPy) ----------------------------------------------------


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def keras_run(kind, kernel, recurrent_kernel, bias, xs, reset_after=True):
    """Keras LSTM / GRU / SimpleRNN over ``xs [T, D]``, written from Keras' source: outputs [T, H]."""
    h = np.zeros(recurrent_kernel.shape[0])
    c = np.zeros_like(h)
    ys = []
    for x in xs:
        if kind == "lstm":
            i, f, g, o = np.split(x @ kernel + h @ recurrent_kernel + bias, 4)
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
        elif kind == "gru":
            b_in, b_rec = (bias[0], bias[1]) if reset_after else (bias, np.zeros_like(bias))
            x_z, x_r, x_h = np.split(x @ kernel + b_in, 3)
            u_z, u_r, u_h = np.split(recurrent_kernel, 3, axis=1)
            r_z, r_r, r_h = np.split(h @ recurrent_kernel + b_rec, 3)
            z, r = sigmoid(x_z + r_z), sigmoid(x_r + r_r)
            hh = np.tanh(x_h + r * r_h) if reset_after else np.tanh(x_h + (r * h) @ u_h)
            h = z * h + (1 - z) * hh
        else:
            h = np.tanh(x @ kernel + bias + h @ recurrent_kernel)
        ys.append(h)
    return np.stack(ys)


@pytest.mark.parametrize(
    "kind,reset_after,cell",
    [
        ("lstm", None, rnnlab.lstm(H, forget_bias=0.0)),
        ("gru", True, rnnlab.gru(H, reset_after=True)),
        ("gru", False, rnnlab.gru(H, reset_after=False)),
        ("tanh", None, rnnlab.tanh_rnn(H)),
    ],
)
def test_from_keras_reproduces_keras_equations(kind, reset_after, cell):
    rng = np.random.default_rng(4)
    G = cell.num_gates
    kernel = 0.5 * rng.standard_normal((D, G * H))
    recurrent_kernel = 0.5 * rng.standard_normal((H, G * H))
    bias = 0.5 * rng.standard_normal((2, G * H) if reset_after else (G * H,))
    xs = padded_inputs(5)[0]
    params = rnnlab.from_keras(kernel, recurrent_kernel, bias, cell)
    _, ys = rnnlab.unroll(cell, params, xs)
    close(ys, keras_run(kind, kernel, recurrent_kernel, bias, xs, bool(reset_after)))
    no_bias = rnnlab.from_keras(kernel, recurrent_kernel, None, cell)
    assert not np.asarray(no_bias["b"]).any()


def test_from_keras_errors():
    rng = np.random.default_rng(0)
    kernel, rec = rng.standard_normal((D, 3 * H)), rng.standard_normal((H, 3 * H))
    with pytest.raises(ValueError, match=r"Keras GRU bias of shape \(15,\).*reset_after=False.*gru\(H, reset_after=False\)"):
        rnnlab.from_keras(kernel, rec, np.zeros(3 * H), rnnlab.gru(H, reset_after=True))
    with pytest.raises(ValueError, match=r"bias of shape \(2, 15\).*gru\(H, reset_after=True\)"):
        rnnlab.from_keras(kernel, rec, np.zeros((2, 3 * H)), rnnlab.gru(H))
    with pytest.raises(ValueError, match=r"Keras lstm kernel must have shape \('D', 20\), got \(3, 15\)"):
        rnnlab.from_keras(kernel, rec, np.zeros(3 * H), rnnlab.lstm(H, forget_bias=0.0))
    with pytest.raises(ValueError, match=r"Keras gru recurrent_kernel must have shape \(5, 15\), got \(3, 15\)"):
        rnnlab.from_keras(kernel, kernel, np.zeros(3 * H), rnnlab.gru(H))
    with pytest.raises(ValueError, match="forget_bias=0.0"):
        rnnlab.from_keras(kernel, rec, None, rnnlab.lstm(H))
    with pytest.raises(ValueError, match="not a numeric array"):
        rnnlab.from_keras([["a"]], rec, None, rnnlab.gru(H))

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

FLAX = {  # the Flax cell, the rnnlab cell its weights convert to (import target: forget_bias=0.0)
    "LSTMCell": (lambda: fnn.LSTMCell(features=H), lambda: rnnlab.lstm(H, forget_bias=0.0)),
    "OptimizedLSTMCell": (lambda: fnn.OptimizedLSTMCell(features=H), lambda: rnnlab.lstm(H, forget_bias=0.0)),
    "GRUCell": (lambda: fnn.GRUCell(features=H), lambda: rnnlab.gru(H, reset_after=True)),
    "MGUCell": (lambda: fnn.MGUCell(features=H), lambda: rnnlab.mgu(H)),
    "MGUCell-no-reset": (lambda: fnn.MGUCell(features=H, reset_gate=False), lambda: rnnlab.mgu(H, reset_gate=False)),
    "SimpleCell": (lambda: fnn.SimpleCell(features=H), lambda: rnnlab.tanh_rnn(H)),
    "SimpleCell-residual": (lambda: fnn.SimpleCell(features=H, residual=True), lambda: rnnlab.tanh_rnn(H)),
}


def run_flax(module, tree, xs, lengths=LENGTHS):
    """``(carry, outputs [B, T, H])`` of ``nn.RNN(module)`` with cell params ``tree``."""
    return fnn.RNN(module, return_carry=True).apply({"params": {"cell": tree}}, xs, seq_lengths=jnp.asarray(lengths))


def valid(ys, lengths=LENGTHS):
    """``ys [B, T, H]`` with the steps past each length zeroed (Flax leaves them undefined)."""
    return np.asarray(ys) * (np.arange(T)[None, :] < lengths[:, None])[..., None]


def flax_carry_as_rnnlab(cell, carry):
    """Flax's LSTM carry is (c, h); rnnlab's LSTMState(h, c)."""
    return rnnlab.LSTMState(h=carry[1], c=carry[0]) if cell.kind == "lstm" else carry


@pytest.mark.parametrize("name", list(FLAX))
def test_from_flax_reproduces_flax_rnn(name):
    # Given a Flax cell inside flax.linen.RNN, with random (non-zero) biases
    flax_cell, make_cell = FLAX[name]
    layer = fnn.RNN(flax_cell(), return_carry=True)
    xs = padded_inputs(3)
    lengths = jnp.asarray(LENGTHS)
    variables = layer.init(jax.random.key(0), xs, seq_lengths=lengths)
    rng = np.random.default_rng(0)
    variables = jax.tree.map(lambda a: np.asarray(a) + 0.3 * rng.standard_normal(a.shape).astype(np.float32),
                             variables)
    carry, out = layer.apply(variables, xs, seq_lengths=lengths)
    # When its params are converted (with the module: a residual SimpleCell converts exactly)
    cell = make_cell()
    params = rnnlab.from_flax(variables["params"]["cell"], cell, module=layer.cell)
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


# --- Export: to_torch, to_flax, to_keras, tested by loading into the real peers ---------------

EXPORT = {  # rnnlab cell to export (LSTM with the default forget_bias 1.0: folded into the bias)
    "lstm": lambda: rnnlab.lstm(H),
    "gru": lambda: rnnlab.gru(H, reset_after=True),
    "tanh": lambda: rnnlab.tanh_rnn(H),
}


def noisy(params, seed):
    """``params`` with every entry (biases too) moved by 0.3 * N(0, 1), so every parameter matters."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda a: jnp.asarray(a + 0.3 * rng.standard_normal(a.shape), jnp.float32), params)


def assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    jax.tree.map(np.testing.assert_array_equal, a, b)


@pytest.mark.parametrize("kind", ["lstm", "gru", "tanh"])
@pytest.mark.parametrize("num_layers,bidirectional", [(1, False), (2, True)], ids=["1-layer", "2-layer-bidi"])
def test_to_torch_loads_into_torch_and_round_trips(kind, num_layers, bidirectional):
    # Given rnnlab stack params with non-zero biases (and, for the LSTM, forget_bias=1.0)
    cell = EXPORT[kind]()
    params = noisy(rnnlab.init_stack(cell, jax.random.key(0), D, num_layers, bidirectional), seed=1)
    xs = padded_inputs(6)
    run = lambda c, p: jax.vmap(lambda x, n: rnnlab.stack(c, p, x, n, bidirectional=bidirectional))(xs, LENGTHS)
    carries, ys = run(cell, params)
    # When they are exported and loaded (strictly) into a real PyTorch module
    state_dict = rnnlab.to_torch(params, cell)
    module = TORCH[kind][0](D, H, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)
    module.load_state_dict(state_dict)
    # Then PyTorch computes rnnlab's outputs and final hidden states
    out, h_n, _ = run_torch(module, xs, LENGTHS)
    close(ys, out)
    directions = [c for layer in carries for c in (layer if bidirectional else (layer,))]
    for index, carry in enumerate(directions):
        close(rnnlab.cells.hidden(carry), h_n[index])
    # And from_torch of the module (every layer at once) gives params computing the same
    target = TORCH[kind][1]()
    back = rnnlab.from_torch(module, target, layer=None)
    close(run(target, back)[1], ys)
    if kind != "lstm":  # same form both ways: the very same params
        assert_trees_equal(back, params)


def test_to_torch_single_cell_params_and_bias_false():
    cell = rnnlab.gru(H, reset_after=True)
    params = cell.init(jax.random.key(0), D)  # zero biases
    state_dict = rnnlab.to_torch(params, cell, bias=False)
    assert sorted(state_dict) == ["weight_hh_l0", "weight_ih_l0"]
    module = torch.nn.GRU(D, H, bias=False, batch_first=True)
    module.load_state_dict(state_dict)
    _, ys = jax.vmap(lambda x, n: rnnlab.unroll(cell, params, x, n))(padded_inputs(7), LENGTHS)
    close(ys, run_torch(module, padded_inputs(7), LENGTHS)[0])
    assert all(v.dtype == torch.float32 for v in rnnlab.to_torch(noisy(params, 0), cell).values())


@pytest.mark.parametrize("name", list(FLAX))
def test_to_flax_loads_into_flax_rnn_and_round_trips(name):
    # Given rnnlab params with non-zero biases (the LSTM with forget_bias=1.0, folded into hf's bias)
    flax_cell, make_cell = FLAX[name]
    module = flax_cell()
    cell = rnnlab.lstm(H) if "LSTM" in name else make_cell()
    params = noisy(cell.init(jax.random.key(1), D), seed=2)
    xs = padded_inputs(8)
    carry, ys = jax.vmap(lambda x, n: rnnlab.unroll(cell, params, x, n))(xs, LENGTHS)
    # When they are written as the Flax cell's params tree and run by flax.linen.RNN
    tree = rnnlab.to_flax(params, cell, module=module)
    reference = module.init(jax.random.key(0), module.initialize_carry(jax.random.key(0), (D,)), jnp.zeros(D))
    assert jax.tree.map(jnp.shape, tree) == jax.tree.map(jnp.shape, reference["params"])
    flax_carry, out = run_flax(module, tree, xs)
    # Then Flax computes rnnlab's outputs and final carries
    close(valid(out), valid(ys))
    jax.tree.map(close, flax_carry_as_rnnlab(cell, flax_carry), carry)
    # And from_flax reads them back (the very same params where the forms agree; a residual
    # SimpleCell's W_h = w_h - I rounds to float32 on the way)
    back = rnnlab.from_flax(tree, make_cell(), module=module)
    if "LSTM" not in name:
        (assert_trees_equal if "residual" not in name else lambda a, b: jax.tree.map(close, a, b))(back, params)
    close(jax.vmap(lambda x, n: rnnlab.unroll(make_cell(), back, x, n))(xs, LENGTHS)[1], ys)


@pytest.mark.parametrize(
    "kind,reset_after,cell",
    [("lstm", None, rnnlab.lstm(H)), ("gru", True, rnnlab.gru(H, reset_after=True)),
     ("gru", False, rnnlab.gru(H, reset_after=False)), ("tanh", None, rnnlab.tanh_rnn(H))],
)
def test_to_keras_equals_keras_equations_and_round_trips(kind, reset_after, cell):
    params = noisy(cell.init(jax.random.key(2), D), seed=3)
    xs = padded_inputs(9)[0]
    kernel, recurrent_kernel, bias = rnnlab.to_keras(params, cell)
    assert bias.shape == ((2, 3 * H) if reset_after else (cell.num_gates * H,))
    _, ys = rnnlab.unroll(cell, params, xs)
    close(keras_run(kind, kernel, recurrent_kernel, bias, xs, bool(reset_after)), ys)
    target = rnnlab.lstm(H, forget_bias=0.0) if kind == "lstm" else cell
    back = rnnlab.from_keras(kernel, recurrent_kernel, bias, target)
    if kind != "lstm":
        assert_trees_equal(back, params)
    close(rnnlab.unroll(target, back, xs)[1], ys)


# --- Refusals: what a converter cannot represent is named, never computed differently ---------

FLAX_GRU_PARAMS = fnn.GRUCell(features=H).init(jax.random.key(0), jnp.zeros(H), jnp.zeros(D))["params"]
MGU_PARAMS = fnn.MGUCell(features=H).init(jax.random.key(0), jnp.zeros(H), jnp.zeros(D))["params"]
SIMPLE_PARAMS = fnn.SimpleCell(features=H).init(jax.random.key(0), jnp.zeros(H), jnp.zeros(D))["params"]


@pytest.mark.parametrize("module,cell,match", [
    (fnn.SimpleCell(features=H, activation_fn=jax.nn.relu), rnnlab.tanh_rnn(H),
     "SimpleCell's activation_fn is 'relu'; rnnlab's cells use tanh there"),
    (fnn.GRUCell(features=H, gate_fn=jax.nn.hard_sigmoid), rnnlab.gru(H, reset_after=True),
     "GRUCell's gate_fn is 'hard_sigmoid'; rnnlab's cells use sigmoid"),
    (fnn.LSTMCell(features=H, activation_fn=jax.nn.gelu), rnnlab.lstm(H, forget_bias=0.0),
     "LSTMCell's activation_fn is 'gelu'"),
    (fnn.MGUCell(features=H, reset_gate=False), rnnlab.mgu(H), r"reset_gate=False: build the cell with "
     r"rnnlab.mgu\(H, reset_gate=False\)"),
    (fnn.GRUCell(features=H), rnnlab.lstm(H, forget_bias=0.0), "a Flax GRUCell converts to a 'gru' cell, not"),
    (fnn.GRUCell(features=H + 1), rnnlab.gru(H, reset_after=True), "features=6, the cell H=5"),
    (fnn.Dense(H), rnnlab.gru(H, reset_after=True), "a Flax Dense has no rnnlab equivalent; known: GRUCell"),
    (fnn.RNN(fnn.SimpleCell(features=H, activation_fn=jnp.sin)), rnnlab.tanh_rnn(H), "activation_fn is 'sin'"),
])
def test_flax_modules_with_options_rnnlab_lacks_are_refused_both_ways(module, cell, match):
    params = rnnlab.tanh_rnn(H).init(jax.random.key(0), D) if cell.kind == "tanh" else None
    with pytest.raises(ValueError, match=match):
        rnnlab.from_flax(SIMPLE_PARAMS if cell.kind == "tanh" else {}, cell, module=module)
    with pytest.raises(ValueError, match=match):
        rnnlab.to_flax(params if params is not None else cell.init(jax.random.key(0), D), cell, module=module)


def test_from_flax_refuses_missing_and_extra_biases():
    no_in_bias = {**FLAX_GRU_PARAMS, "in": {"kernel": FLAX_GRU_PARAMS["in"]["kernel"]}}
    with pytest.raises(ValueError, match="Flax in has no bias, but the Flax gru cell this cell converts has one"):
        rnnlab.from_flax(no_in_bias, rnnlab.gru(H, reset_after=True))
    extra = {**SIMPLE_PARAMS, "h": {**SIMPLE_PARAMS["h"], "bias": jnp.ones(H)}}
    with pytest.raises(ValueError, match="Flax h has a bias, but the Flax tanh cell this cell converts has none"):
        rnnlab.from_flax(extra, rnnlab.tanh_rnn(H))
    # An MGUCell's reset_gate shows in its params: hn has a bias exactly when reset_gate=True.
    with pytest.raises(ValueError, match=r"MGUCell with reset_gate=True; build the cell with "
                                         r"rnnlab.mgu\(H, reset_gate=True\)"):
        rnnlab.from_flax(MGU_PARAMS, rnnlab.mgu(H, reset_gate=False))
    with pytest.raises(ValueError, match=r"not the params of a Flax mgu cell: expected keys \['if', 'in', 'hf', 'hn'\]"):
        rnnlab.from_flax(FLAX_GRU_PARAMS, rnnlab.mgu(H))


def test_residual_simple_cell_needs_its_module_and_then_converts_exactly():
    # Params cannot show residual=True: without the module, residual=False is assumed (documented);
    # with it, w_h = W_h + I reproduces Flax (the silently wrong conversion, off by 1.21).
    module = fnn.SimpleCell(features=H, residual=True)
    xs = padded_inputs(10)
    tree = noisy(SIMPLE_PARAMS, seed=4)
    _, out = run_flax(module, tree, xs)
    cell = rnnlab.tanh_rnn(H)
    assumed = rnnlab.from_flax(tree, cell)
    exact = rnnlab.from_flax(tree, cell, module=module)
    np.testing.assert_allclose(np.asarray(exact["w_h"]) - np.asarray(assumed["w_h"]), np.eye(H), atol=1e-6)
    ys = jax.vmap(lambda x, n: rnnlab.unroll(cell, exact, x, n))(xs, LENGTHS)[1]
    close(valid(ys), valid(out))


@pytest.mark.parametrize("cell,match", [
    (rnnlab.gru(H), r"a Flax GRU is the reset-after form .*: build the cell with rnnlab.gru\(H, reset_after=True\)"),
    (rnnlab.lstm(H, peephole=True), "Flax LSTMs have no peepholes"),
    (rnnlab.get_cell("lstm_cifg", H), "'lstm' cell .* has no Flax equivalent"),
    (rnnlab.get_cell("lstm_fgr", H), "has no Flax equivalent"),
    (rnnlab.get_cell("layer_norm_lstm", H), "'layer_norm_lstm' cell .* has no Flax equivalent"),
    (rnnlab.get_cell("min_gru", H), "has no Flax equivalent"),
])
def test_to_flax_refuses_cells_flax_lacks(cell, match):
    with pytest.raises(ValueError, match=match):
        rnnlab.to_flax(cell.init(jax.random.key(0), D), cell)


def test_torch_refusals_both_ways():
    # Modules: their settings are checked; a state dict cannot show them.
    with pytest.raises(ValueError, match="nonlinearity='relu' cannot be converted"):
        rnnlab.from_torch(torch.nn.RNN(D, H, nonlinearity="relu"), rnnlab.tanh_rnn(H))
    with pytest.raises(ValueError, match=r"proj_size > 0 \(here 2\)"):
        rnnlab.from_torch(torch.nn.LSTM(D, H, proj_size=2), rnnlab.lstm(H, forget_bias=0.0))
    with pytest.raises(ValueError, match="a PyTorch GRU .*converts to a 'gru' cell, not to this 'tanh' cell"):
        rnnlab.from_torch(torch.nn.GRU(D, H), rnnlab.tanh_rnn(H))
    # Exports: cells and params PyTorch cannot hold.
    gru = rnnlab.gru(H, reset_after=True)
    params = noisy(gru.init(jax.random.key(0), D), 0)
    with pytest.raises(ValueError, match=r"bias=False cannot hold the non-zero biases of layer 0"):
        rnnlab.to_torch(params, gru, bias=False)
    with pytest.raises(ValueError, match=r"bias=False cannot hold .*forget_bias"):
        lstm = rnnlab.lstm(H)  # zero stored biases, but forget_bias=1.0
        rnnlab.to_torch(lstm.init(jax.random.key(0), D), lstm, bias=False)
    with pytest.raises(ValueError, match=r"PyTorch GRU is the reset-after form.*rnnlab.gru\(H, reset_after=True\)"):
        rnnlab.to_torch(params, rnnlab.gru(H))
    with pytest.raises(ValueError, match="PyTorch LSTMs have no peepholes"):
        rnnlab.to_torch(rnnlab.lstm(H, peephole=True).init(jax.random.key(0), D), rnnlab.lstm(H, peephole=True))
    with pytest.raises(ValueError, match="'mgu' cell .* has no PyTorch equivalent"):
        rnnlab.to_torch(rnnlab.mgu(H).init(jax.random.key(0), D), rnnlab.mgu(H))
    with pytest.raises(ValueError, match="every layer must be bidirectional"):
        rnnlab.to_torch({"layer_0": {"fwd": params, "bwd": params}, "layer_1": params}, gru)
    with pytest.raises(ValueError, match=r"params of layer 0 of this gru cell have no \['b_hn'\]"):
        rnnlab.to_torch({k: v for k, v in params.items() if k != "b_hn"}, gru)
    with pytest.raises(ValueError, match=r"'w_h' in params of layer 0 of this gru cell must have shape \(5, 15\), got \(4, 15\)"):
        rnnlab.to_torch(dict(params, w_h=params["w_h"][:4]), gru)


def test_keras_configs_rnnlab_lacks_are_refused():
    rng = np.random.default_rng(0)
    kernel, rec, bias = rng.standard_normal((D, 4 * H)), rng.standard_normal((H, 4 * H)), rng.standard_normal(4 * H)
    lstm = rnnlab.lstm(H, forget_bias=0.0)
    keras_lstm = {"units": H, "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True,
                  "unit_forget_bias": True}
    # unit_forget_bias only set the initial bias: the trained bias is taken as it is.
    assert_trees_equal(rnnlab.from_keras(kernel, rec, bias, lstm, config=keras_lstm),
                       rnnlab.from_keras(kernel, rec, bias, lstm))
    refusals = [
        (dict(keras_lstm, recurrent_activation="hard_sigmoid"), "recurrent_activation is 'hard_sigmoid'; rnnlab"),
        (dict(keras_lstm, activation="relu"), "activation is 'relu'"),
        (dict(keras_lstm, activation=None), "activation is 'None'"),
        (dict(keras_lstm, units=7), "units=7, the cell H=5"),
        (dict(keras_lstm, use_bias=False), "use_bias=False but a bias was given"),
    ]
    for config, match in refusals:
        with pytest.raises(ValueError, match=match):
            rnnlab.from_keras(kernel, rec, bias, lstm, config=config)
    gru_kernel, gru_rec = kernel[:, : 3 * H], rec[:, : 3 * H]
    with pytest.raises(ValueError, match=r"Keras GRU has reset_after=True: build the target cell with "
                                         r"rnnlab.gru\(H, reset_after=True\)"):
        rnnlab.from_keras(gru_kernel, gru_rec, None, rnnlab.gru(H), config={"use_bias": False})
    with pytest.raises(ValueError, match="Keras has layers for the lstm, gru, tanh cells only; this 'mgu' cell"):
        rnnlab.to_keras(rnnlab.mgu(H).init(jax.random.key(0), D), rnnlab.mgu(H))
    with pytest.raises(ValueError, match="Keras LSTMs have no peepholes"):
        rnnlab.to_keras(rnnlab.lstm(H, peephole=True).init(jax.random.key(0), D), rnnlab.lstm(H, peephole=True))

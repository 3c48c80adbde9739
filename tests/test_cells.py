"""Cells: shapes, init, equality with the NumPy reference, hand-computed steps, errors."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnlab
from tests import reference
from tests.conftest import CELL_VARIANTS, random_params

H, D = 4, 3


def sigmoid(a):
    return 1.0 / (1.0 + math.exp(-a))


def make(kind, options, hidden_size=H):
    return rnnlab.get_cell(kind, hidden_size, **options)


def step_and_gates(cell, params, h, x):
    """``(carry, y, gates)`` of one step of a cell with H = D = 1 from scalars ``h`` and ``x``."""
    carry, y = cell.step(params, jnp.array([h]), jnp.array([x]))
    return carry, y, cell.gates(params, jnp.array([h]), jnp.array([x]))


def to_ref_carry(kind, carry):
    return (np.asarray(carry.h), np.asarray(carry.c)) if kind == "lstm" else np.asarray(carry)


# --- 1. shapes and dtypes ---------------------------------------------------------------


def test_cell_params_carry_and_output_shapes(variant):
    kind, options = variant
    cell = make(kind, options)
    params = cell.init(jax.random.key(0), D)
    G = cell.num_gates
    expected = {"w_x": (D, G * H), "w_h": (H, G * H), "b": (G * H,)}
    if options.get("peephole"):
        expected.update({"p_i": (H,), "p_f": (H,), "p_o": (H,)})
    if options.get("reset_after"):
        expected["b_hn"] = (H,)
    assert {k: v.shape for k, v in params.items()} == expected
    assert all(v.dtype == jnp.float32 for v in params.values())
    carry = cell.initial_carry()
    assert all(leaf.shape == (H,) and leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(carry))
    new_carry, y = cell.step(params, carry, jnp.ones(D))
    assert y.shape == (H,) and y.dtype == jnp.float32
    assert jax.tree.structure(new_carry) == jax.tree.structure(carry)
    gates = cell.gates(params, carry, jnp.ones(D))
    assert tuple(gates) == cell.gate_names
    assert all(g.shape == (H,) for g in gates.values())


def test_cell_step_vmapped_shapes(variant):
    kind, options = variant
    cell = make(kind, options)
    params = cell.init(jax.random.key(0), D)
    carry = jax.tree.map(lambda a: jnp.zeros((4,) + a.shape), cell.initial_carry())
    new_carry, ys = jax.vmap(cell.step, in_axes=(None, 0, 0))(params, carry, jnp.ones((4, D)))
    assert ys.shape == (4, H)
    assert all(leaf.shape == (4, H) for leaf in jax.tree.leaves(new_carry))


def test_cell_metadata():
    cell = rnnlab.lstm(7, forget_bias=0.5, peephole=True)
    assert (cell.kind, cell.hidden_size, cell.num_gates) == ("lstm", 7, 4)
    assert cell.option("forget_bias") == 0.5 and cell.option("peephole") is True
    assert rnnlab.gru(2, reset_after=True).option("reset_after") is True
    assert {"gru", "lstm", "tanh", "min_gru", "min_lstm", "layer_norm_lstm"} <= set(rnnlab.cell_names())
    assert rnnlab.tanh_rnn(3).gate_names == ("candidate",)
    hash(cell)  # usable as a static argument / Flax module field


# --- init ----------------------------------------------------------------------------


def test_init_glorot_orthogonal_zero_bias(variant):
    kind, options = variant
    cell = make(kind, options)
    params = cell.init(jax.random.key(1), D)
    G = cell.num_gates
    limit = math.sqrt(6.0 / (D + G * H))
    w_x = np.asarray(params["w_x"])
    assert np.abs(w_x).max() <= limit and np.abs(w_x).max() > 0.5 * limit
    for block in np.split(np.asarray(params["w_h"]), G, axis=1):
        np.testing.assert_allclose(block.T @ block, np.eye(H), atol=1e-5)
    blocks = np.split(np.asarray(params["w_h"]), G, axis=1)
    if G > 1:
        assert not np.allclose(blocks[0], blocks[1])
    for name in set(params) - {"w_x", "w_h"}:
        assert not np.asarray(params[name]).any(), name


@pytest.mark.parametrize("kind,options", [CELL_VARIANTS[i] for i in (0, 3, 5)])
def test_init_same_key_same_params_other_key_other_params(kind, options):
    cell = make(kind, options)
    a, b, c = (cell.init(jax.random.key(k), D) for k in (3, 3, 4))
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.allclose(a["w_x"], c["w_x"])


# --- 2. equal to the NumPy reference; hand-computed steps ------------------------------


@pytest.mark.parametrize("kind,options", CELL_VARIANTS)
def test_step_equals_reference(kind, options):
    cell = make(kind, options)
    params = random_params(cell, seed=0, input_size=D)
    rng = np.random.default_rng(1)
    carry = jax.tree.map(
        lambda a: jnp.asarray(rng.standard_normal(a.shape), jnp.float32), cell.initial_carry()
    )
    x = rng.standard_normal(D).astype(np.float32)
    new_carry, y = cell.step(params, carry, x)
    ref_carry, ref_y = reference.step_fn(kind, **options)(params, to_ref_carry(kind, carry), x)
    np.testing.assert_allclose(y, ref_y, rtol=1e-5, atol=1e-6)
    for got, want in zip(jax.tree.leaves(new_carry), jax.tree.leaves(ref_carry)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_step_is_recur_of_project(variant):
    cell = make(*variant)
    params = random_params(cell, seed=2, input_size=D)
    x = jnp.linspace(-1.0, 1.0, D)
    carry = jax.tree.map(lambda a: a + 0.3, cell.initial_carry())
    a = cell.step(params, carry, x)
    b = cell.recur(params, carry, cell.project(params, x))
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(u, v, rtol=1e-6)


def test_lstm_hand_computed_step_pins_gate_order():
    # Given H = D = 1, gate blocks i, f, g, o with distinct weights and biases
    cell = rnnlab.lstm(1, forget_bias=1.0, peephole=True)
    params = {
        "w_x": jnp.array([[0.1, 0.2, 0.3, 0.4]]),
        "w_h": jnp.array([[-0.5, 0.6, -0.7, 0.8]]),
        "b": jnp.array([0.01, 0.02, 0.03, 0.04]),
        "p_i": jnp.array([0.3]),
        "p_f": jnp.array([-0.2]),
        "p_o": jnp.array([0.5]),
    }
    x, h, c = 2.0, 0.5, -1.0
    # When one step runs
    carry, y = cell.step(params, rnnlab.LSTMState(h=jnp.array([h]), c=jnp.array([c])), jnp.array([x]))
    gates = cell.gates(params, rnnlab.LSTMState(h=jnp.array([h]), c=jnp.array([c])), jnp.array([x]))
    # Then it equals the equations written out by hand
    i = sigmoid(0.1 * x - 0.5 * h + 0.01 + 0.3 * c)
    f = sigmoid(0.2 * x + 0.6 * h + 0.02 - 0.2 * c + 1.0)
    g = math.tanh(0.3 * x - 0.7 * h + 0.03)
    c_new = f * c + i * g
    o = sigmoid(0.4 * x + 0.8 * h + 0.04 + 0.5 * c_new)
    h_new = o * math.tanh(c_new)
    np.testing.assert_allclose([float(carry.h[0]), float(carry.c[0]), float(y[0])], [h_new, c_new, h_new], rtol=1e-6)
    np.testing.assert_allclose(
        [float(gates[k][0]) for k in ("input", "forget", "candidate", "output")], [i, f, g, o], rtol=1e-6
    )


@pytest.mark.parametrize("reset_after", [False, True])
def test_gru_hand_computed_step_pins_gate_order(reset_after):
    cell = rnnlab.gru(1, reset_after=reset_after)
    params = {
        "w_x": jnp.array([[0.1, 0.2, 0.3]]),
        "w_h": jnp.array([[-0.4, 0.5, -0.6]]),
        "b": jnp.array([0.01, 0.02, 0.03]),
    }
    if reset_after:
        params["b_hn"] = jnp.array([0.7])
    x, h = 2.0, 0.5
    carry, y, gates = step_and_gates(cell, params, h, x)
    r = sigmoid(0.1 * x - 0.4 * h + 0.01)
    z = sigmoid(0.2 * x + 0.5 * h + 0.02)
    if reset_after:
        n = math.tanh(0.3 * x + 0.03 + r * (-0.6 * h + 0.7))
    else:
        n = math.tanh(0.3 * x + 0.03 - 0.6 * (r * h))
    h_new = (1 - z) * n + z * h
    np.testing.assert_allclose([float(carry[0]), float(y[0])], [h_new, h_new], rtol=1e-6)
    np.testing.assert_allclose(
        [float(gates[k][0]) for k in ("reset", "update", "candidate")], [r, z, n], rtol=1e-6
    )


def test_tanh_hand_computed_step():
    cell = rnnlab.tanh_rnn(2)
    params = {"w_x": jnp.array([[1.0, -1.0]]), "w_h": jnp.array([[0.5, 0.0], [0.0, 2.0]]), "b": jnp.array([0.1, 0.2])}
    carry, y = cell.step(params, jnp.array([0.2, -0.3]), jnp.array([0.4]))
    want = [math.tanh(0.4 + 0.1 + 0.1), math.tanh(-0.4 - 0.6 + 0.2)]
    np.testing.assert_allclose(y, want, rtol=1e-6)
    np.testing.assert_allclose(carry, want, rtol=1e-6)


def test_lstm_forget_bias_is_added_not_stored():
    params = rnnlab.lstm(4).init(jax.random.key(0), 2)
    assert not np.asarray(params["b"]).any()
    gates = rnnlab.lstm(4).gates(params, rnnlab.lstm(4).initial_carry(), jnp.zeros(2))
    np.testing.assert_allclose(gates["forget"], sigmoid(1.0), rtol=1e-6)
    gates0 = rnnlab.lstm(4, forget_bias=0.0).gates(params, rnnlab.lstm(4).initial_carry(), jnp.zeros(2))
    np.testing.assert_allclose(gates0["forget"], 0.5, rtol=1e-6)


# --- dtype ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind,options", [CELL_VARIANTS[i] for i in (0, 3, 4, 5)])
def test_bfloat16_runs_with_float32_carry_and_stays_close(kind, options):
    cell16 = make(kind, dict(options, dtype=jnp.bfloat16))
    cell32 = make(kind, options)
    params = random_params(cell32, seed=3, input_size=D)
    xs = jnp.asarray(np.random.default_rng(4).standard_normal((6, D)), jnp.float32)
    carry16, ys16 = jax.jit(lambda p, x: rnnlab.unroll(cell16, p, x))(params, xs)
    carry32, ys32 = jax.jit(lambda p, x: rnnlab.unroll(cell32, p, x))(params, xs)
    assert ys16.dtype == jnp.float32
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(carry16))
    np.testing.assert_allclose(ys16, ys32, atol=5e-2)
    assert not np.array_equal(ys16, ys32)  # the products really ran in bfloat16


# --- 6. jit and vmap compose -----------------------------------------------------------


@pytest.mark.parametrize("kind,options", [CELL_VARIANTS[i] for i in (0, 3, 4, 5)])
def test_step_jit_and_vmap_agree(kind, options):
    cell = make(kind, options)
    params = random_params(cell, seed=5, input_size=D)
    xs = jnp.asarray(np.random.default_rng(6).standard_normal((4, D)), jnp.float32)
    carry = cell.initial_carry()
    _, eager = cell.step(params, carry, xs[2])
    _, jitted = jax.jit(cell.step)(params, carry, xs[2])
    _, batched = jax.vmap(cell.step, in_axes=(None, None, 0))(params, carry, xs)
    np.testing.assert_allclose(jitted, eager, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(batched[2], eager, rtol=1e-6, atol=1e-7)


# --- errors --------------------------------------------------------------------------


def test_get_cell_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match="unknown cell 'lsmt'.*gru, .*lstm, .*tanh"):
        rnnlab.get_cell("lsmt", 4)


def test_get_cell_bad_option_names_the_cell():
    with pytest.raises(ValueError, match="bad options for cell 'gru'.*peephole"):
        rnnlab.get_cell("gru", 4, peephole=True)


@pytest.mark.parametrize("size", [0, -3, 2.5, True, "8"])
@pytest.mark.parametrize("kind", ["tanh", "lstm", "gru"])
def test_hidden_size_must_be_positive_integer(kind, size):
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        rnnlab.get_cell(kind, size)


def test_input_size_must_be_positive_integer():
    with pytest.raises(ValueError, match="input_size must be a positive integer, got 0"):
        rnnlab.lstm(4).init(jax.random.key(0), 0)


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.float16, "complex64", "no-such-type"])
def test_bad_dtype_is_refused(dtype):
    with pytest.raises(ValueError, match="dtype .*must be one of float32, bfloat16, float64"):
        rnnlab.gru(4, dtype=dtype)


@pytest.mark.parametrize("name", [n for n in rnnlab.cell_names() if n not in ("tanh", "lstm", "gru")])
def test_every_registered_cell_equals_its_numpy_equations(name):
    # Gate variants, layer-norm LSTM, minGRU and minLSTM against independent NumPy loops
    # (tests/reference.py), ragged lengths, both directions.
    cell = rnnlab.get_cell(name, 3, **({"forget_bias": 0.5} if "forget_bias" in
                                       rnnlab.cells.cell_option_names(name) else {}))
    params = cell.init(jax.random.PRNGKey(0), 2)
    keys = jax.random.split(jax.random.PRNGKey(1), len(params))
    params = {k: v + 0.3 * jax.random.normal(s, v.shape) for (k, v), s in zip(params.items(), keys)}
    kind = {"lstm": "lstm", "gru": "gru"}.get(cell.kind, cell.kind)
    options = {k: v for k, v in cell.options if k != "dtype"}
    xs = jax.random.normal(jax.random.PRNGKey(2), (5, 2))
    for length, reverse in ((5, False), (3, True), (0, False)):
        carry, ys = rnnlab.unroll(cell, params, xs, length, reverse=reverse)
        ref_carry, ref_ys = reference.unroll(kind, params, xs, length, reverse=reverse, **options)
        np.testing.assert_allclose(ys, ref_ys, rtol=1e-5, atol=1e-5)
        ref_leaves = ref_carry if isinstance(ref_carry, tuple) else (ref_carry,)
        for got, want in zip(jax.tree.leaves(carry), ref_leaves, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_min_gru_and_cifg_hand_computed_steps():
    # One step by hand pins the block order of the newer cells.
    x, h = jnp.array([1.0]), jnp.array([0.5])
    min_gru = rnnlab.get_cell("min_gru", 1)
    params = {"w_x": jnp.array([[2.0, 3.0]]), "b": jnp.array([-1.0, 0.5])}  # blocks: update, candidate
    z = 1 / (1 + np.exp(-(2.0 - 1.0)))
    np.testing.assert_allclose(min_gru.step(params, h, x)[1], [(1 - z) * 0.5 + z * 3.5], rtol=1e-6)
    cifg = rnnlab.lstm(1, forget_bias=0.0, coupled=True)  # blocks: forget, candidate, output
    params = {"w_x": jnp.array([[1.0, 2.0, 3.0]]), "w_h": jnp.zeros((1, 3)), "b": jnp.zeros(3)}
    carry = rnnlab.LSTMState(h=jnp.zeros(1), c=jnp.array([0.4]))
    f, g, o = 1 / (1 + np.exp(-1.0)), np.tanh(2.0), 1 / (1 + np.exp(-3.0))
    c = f * 0.4 + (1 - f) * g
    new, y = cifg.step(params, carry, x)
    np.testing.assert_allclose(new.c, [c], rtol=1e-6)
    np.testing.assert_allclose(y, [o * np.tanh(c)], rtol=1e-6)


# --- init-side options: kernel_init, recurrent_init, param_dtype ------------------------

CONSTRUCTORS = {
    "lstm": rnnlab.lstm, "gru": rnnlab.gru, "tanh": rnnlab.tanh_rnn,
    "get_cell": lambda h, **o: rnnlab.get_cell("lstm_cifg", h, **o),
    "build_cell": lambda h, **o: rnnlab.build_cell(rnnlab.cells.gru_def(reset_after=True), h, **o),
}


@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
def test_init_defaults_are_todays_glorot_and_orthogonal_blocks(name):
    # The defaults draw exactly what init drew before the options existed: glorot_uniform on the
    # whole [D, G*H] w_x, one orthogonal [H, H] block per gate from split keys, float32.
    cell = CONSTRUCTORS[name](H)
    params = cell.init(jax.random.key(5), D)
    k_x, k_h = jax.random.split(jax.random.key(5))
    G = cell.num_gates
    np.testing.assert_array_equal(params["w_x"],
                                  jax.nn.initializers.glorot_uniform()(k_x, (D, G * H), jnp.float32))
    blocks = [jax.nn.initializers.orthogonal()(k, (H, H), jnp.float32) for k in jax.random.split(k_h, G)]
    np.testing.assert_array_equal(params["w_h"], np.concatenate(blocks, axis=1))
    assert dict(cell.options)["kernel_init"] == "glorot_uniform"
    assert (cell.option("recurrent_init"), cell.option("param_dtype")) == ("orthogonal", "float32")


@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
def test_init_options_on_every_constructor(name):
    # Given kernel_init by name, recurrent_init as a JAX callable and param_dtype bfloat16
    cell = CONSTRUCTORS[name](H, kernel_init="zeros", recurrent_init=jax.nn.initializers.constant(0.25),
                              param_dtype=jnp.bfloat16)
    params = cell.init(jax.random.key(0), D)
    # Then init honours all three, and the cell still runs (float32 carry and outputs)
    assert all(v.dtype == jnp.bfloat16 for v in params.values())
    assert not np.asarray(params["w_x"], np.float32).any()
    np.testing.assert_array_equal(np.asarray(params["w_h"], np.float32), 0.25)
    _, ys = rnnlab.unroll(cell, params, jnp.ones((3, D)))
    assert ys.shape == (3, H) and ys.dtype == jnp.float32


def test_orthogonal_recurrent_init_is_orthogonal_per_gate_block_as_flax_draws_it():
    # Flax's LSTMCell has one Dense per gate (hi, hf, hg, ho), each [H, H] kernel drawn by
    # orthogonal(): every block is orthogonal. orthogonal() on the fused [H, 4H] matrix instead gives
    # orthonormal rows only, blocks that are not orthogonal; rnnlab draws per block, like Flax.
    import flax.linen as fnn

    H8 = 8
    flax_cell = fnn.LSTMCell(features=H8)
    flax_params = flax_cell.init(jax.random.key(0), flax_cell.initialize_carry(jax.random.key(0), (D,)),
                                 jnp.zeros(D))["params"]
    fused = jax.nn.initializers.orthogonal()(jax.random.key(0), (H8, 4 * H8))
    w_h = rnnlab.lstm(H8, kernel_init="lecun_normal", recurrent_init="orthogonal").init(jax.random.key(1), D)["w_h"]
    for k, gate in enumerate("ifgo"):
        eye = np.eye(H8)
        np.testing.assert_allclose(flax_params["h" + gate]["kernel"].T @ flax_params["h" + gate]["kernel"], eye,
                                   atol=1e-5)
        block = np.asarray(w_h[:, k * H8:(k + 1) * H8])
        np.testing.assert_allclose(block.T @ block, eye, atol=1e-5)
        fused_block = np.asarray(fused[:, k * H8:(k + 1) * H8])
        assert not np.allclose(fused_block.T @ fused_block, eye, atol=1e-2)


def test_kernel_init_by_name_draws_that_distribution():
    w_x = rnnlab.gru(64, kernel_init="lecun_normal").init(jax.random.key(2), 400)["w_x"]
    assert abs(float(jnp.std(w_x)) - 1 / math.sqrt(400)) < 0.002  # fan_in only: per gate or fused alike
    w_x = rnnlab.gru(64, kernel_init="he_uniform").init(jax.random.key(2), 400)["w_x"]
    assert 0.9 * math.sqrt(6 / 400) < float(jnp.max(jnp.abs(w_x))) <= math.sqrt(6 / 400)


def test_param_dtype_float64_under_x64():
    with jax.enable_x64(True):
        params = rnnlab.lstm(H, param_dtype="float64", peephole=True).init(jax.random.key(0), D)
        assert all(v.dtype == jnp.float64 for v in params.values())


def test_init_options_rebuild_from_recorded_options_and_stay_out_of_cell_option_names():
    cell = rnnlab.get_cell("gru", H, reset_after=True, kernel_init="lecun_normal", param_dtype="bfloat16")
    again = rnnlab.build_cell(cell.definition, H, dtype=cell.dtype, options=dict(cell.options))
    assert again.options == cell.options
    for name, value in again.init(jax.random.key(3), D).items():
        np.testing.assert_array_equal(value, cell.init(jax.random.key(3), D)[name])
    assert not {"kernel_init", "recurrent_init", "param_dtype"} & set(rnnlab.cells.cell_option_names("gru"))


@pytest.mark.parametrize("option", ["kernel_init", "recurrent_init"])
def test_unknown_initializer_name_lists_the_known_ones(option):
    with pytest.raises(ValueError, match=rf"{option} must be one of glorot_normal, glorot_uniform, he_normal, "
                                         r"he_uniform, lecun_normal, lecun_uniform, orthogonal, zeros or a JAX "
                                         r"initializer callable .*got 'orthogonl'"):
        rnnlab.get_cell("lstm", H, **{option: "orthogonl"})


def test_bad_param_dtype_is_refused():
    with pytest.raises(ValueError, match="param_dtype must be one of float32, bfloat16, float64, got int32"):
        rnnlab.tanh_rnn(H, param_dtype=jnp.int32)


# --- mgu (Minimal Gated Unit, Flax's MGUCell form) --------------------------------------


@pytest.mark.parametrize("reset_gate", [True, False])
def test_mgu_hand_computed_step_pins_block_order(reset_gate):
    cell = rnnlab.mgu(1, reset_gate=reset_gate)
    params = {"w_x": jnp.array([[0.1, 0.2]]), "w_h": jnp.array([[-0.4, 0.5]]), "b": jnp.array([0.01, 0.02])}
    if reset_gate:
        params["b_hn"] = jnp.array([0.7])
    x, h = 2.0, 0.5
    carry, y, gates = step_and_gates(cell, params, h, x)
    f = sigmoid(0.1 * x - 0.4 * h + 0.01)
    n = math.tanh(0.2 * x + 0.02 + (f * (0.5 * h + 0.7) if reset_gate else 0.5 * h))
    h_new = (1 - f) * n + f * h
    np.testing.assert_allclose([float(carry[0]), float(y[0])], [h_new, h_new], rtol=1e-6)
    np.testing.assert_allclose([float(gates["forget"][0]), float(gates["candidate"][0])], [f, n], rtol=1e-6)
    assert cell.gate_names == ("forget", "candidate") and rnnlab.get_cell("mgu", 2).kind == "mgu"


@pytest.mark.parametrize("reset_gate", [True, False])
def test_mgu_equals_numpy_reference_and_fused_equals_reference_with_gradients(reset_gate):
    # Given an MGU with random params (b_hn too), ragged lengths and both directions
    cell = rnnlab.mgu(H, reset_gate=reset_gate)
    params = random_params(cell, seed=7, input_size=D)
    assert set(params) == {"w_x", "w_h", "b"} | ({"b_hn"} if reset_gate else set())
    xs = jnp.asarray(np.random.default_rng(8).standard_normal((2, 5, D)), jnp.float32)
    lengths = jnp.array([5, 3])
    # Then unroll equals the NumPy loop of tests/reference.py
    for b, reverse in ((0, False), (1, True)):
        carry, ys = rnnlab.unroll(cell, params, xs[b], lengths[b], reverse=reverse)
        ref_carry, ref_ys = reference.unroll("mgu", params, xs[b], int(lengths[b]), reverse=reverse,
                                             reset_gate=reset_gate)
        np.testing.assert_allclose(ys, ref_ys, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(carry, ref_carry, rtol=1e-5, atol=1e-6)

    # And the fused backend (hand-written backward) equals the reference scan, outputs and gradients
    def loss(backend, p, x):
        carry, ys = rnnlab.unroll_batch(cell, p, x, lengths, backend=backend)
        return jnp.sum(ys * jnp.sin(jnp.arange(ys.size).reshape(ys.shape))) + jnp.sum(jnp.cos(carry))

    fused_loss, fused = jax.jit(jax.value_and_grad(functools.partial(loss, rnnlab.Backend.FUSED), argnums=(0, 1)))(
        params, xs)
    ref_loss, ref = jax.jit(jax.value_and_grad(functools.partial(loss, rnnlab.Backend.REFERENCE), argnums=(0, 1)))(
        params, xs)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), fused, ref)
    np.testing.assert_allclose(fused_loss, ref_loss, rtol=1e-5)

"""A cell defined outside rnnlab (tests/user_cells/cifg.py) runs everywhere a library cell does.

It unrolls, runs bidirectionally and stacked, gives gate traces, runs on the
fused backend equal to the reference (forward and gradients), trains through
the Flax adapters, and trains through ``launch.py``'s flags once the user
registers it in their own launcher, with rnnlab unchanged.
"""

import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import rnnlab
import rnnlab.contract
import rnnlab.nn
from rnnlab.backends import Backend, supported
from tests.user_cells import cifg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
B, T, D, H = 3, 6, 4, 5
LENGTHS = np.array([6, 0, 3])


def _setup():
    cell = cifg.my_cifg(H)
    params = cell.init(jax.random.PRNGKey(0), D)
    params = {k: v + 0.2 for k, v in params.items()}
    xs = jax.random.normal(jax.random.PRNGKey(1), (B, T, D))
    return cell, params, xs


def _numpy_cifg(params, xs, length):
    """The CIFG equations as a NumPy loop, independent of rnnlab and of the definition."""
    sig = lambda a: 1 / (1 + np.exp(-a))
    w_x, w_h, b = (np.asarray(params[k], np.float64) for k in ("w_x", "w_h", "b"))
    h, c = np.zeros(H), np.zeros(H)
    ys = np.zeros((len(xs), H))
    for t in range(length):
        a = np.asarray(xs[t], np.float64) @ w_x + h @ w_h + b
        f, g, o = sig(a[:H] + 1.0), np.tanh(a[H:2 * H]), sig(a[2 * H:])
        c = f * c + (1 - f) * g
        h = ys[t] = o * np.tanh(c)
    return h, c, ys


def test_user_cell_unrolls_and_equals_its_equations():
    cell, params, xs = _setup()
    assert supported(cell) == (Backend.REFERENCE, Backend.FUSED, Backend.PALLAS)  # from its definition
    carry, ys = rnnlab.unroll_batch(cell, params, xs, LENGTHS)  # default: the fused backend
    for i in range(B):
        h, c, ys_ref = _numpy_cifg(params, xs[i], LENGTHS[i])
        np.testing.assert_allclose(ys[i], ys_ref, atol=1e-5)
        np.testing.assert_allclose(carry.h[i], h, atol=1e-5)
        np.testing.assert_allclose(carry.c[i], c, atol=1e-5)


def test_user_cell_fused_equals_reference_forward_and_gradients():
    cell, params, xs = _setup()

    def loss(p, x, backend, reverse):
        carry, ys = rnnlab.unroll_batch(cell, p, x, LENGTHS, reverse=reverse, backend=backend)
        return jnp.sum(jnp.sin(ys)) + jnp.sum(carry.c ** 2)

    for reverse in (False, True):
        grads = [jax.jit(jax.value_and_grad(loss, argnums=(0, 1)), static_argnums=(2, 3))(
            params, xs, backend, reverse) for backend in (Backend.REFERENCE, Backend.FUSED)]
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), *grads)


def test_user_cell_bidirectional_stack_and_gate_trace():
    cell, params, xs = _setup()
    (fwd_carry, bwd_carry), ys = rnnlab.bidirectional(cell, cell, {"fwd": params, "bwd": params},
                                                      xs[0], 3)
    assert ys.shape == (T, 2 * H)
    np.testing.assert_allclose(ys[:3, :H], rnnlab.unroll(cell, params, xs[0], 3)[1][:3], atol=1e-6)
    stack_params = rnnlab.init_stack(cell, jax.random.PRNGKey(2), D, num_layers=2)
    _, stacked = rnnlab.stack(cell, stack_params, xs[0], 4)
    assert stacked.shape == (T, H) and not np.any(np.asarray(stacked[4:]))
    traces = rnnlab.gate_trace(cell, params, xs[0], 3)
    assert set(traces) == {"forget", "candidate", "output"}
    f = np.asarray(traces["forget"])
    assert np.all((f[:3] > 0) & (f[:3] < 1)) and not np.any(f[3:])


def test_user_cell_trains_through_the_flax_adapter():
    cell, _, xs = _setup()
    model = rnnlab.nn.RNN(cell)
    params = model.init(jax.random.PRNGKey(0), xs, LENGTHS)
    targets = 0.3 * rnnlab.sequence_mask(LENGTHS, T)[..., None] * jnp.ones((B, T, H))
    optimizer = optax.adam(3e-2)

    @jax.jit
    def step(params, opt_state):
        loss, grads = jax.value_and_grad(
            lambda p: jnp.mean((model.apply(p, xs, LENGTHS) - targets) ** 2))(params)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    opt_state = optimizer.init(params)
    losses = []
    for _ in range(60):
        params, opt_state, loss = step(params, opt_state)
        losses.append(float(loss))
    assert losses[-1] < 0.2 * losses[0]


def test_user_cell_registered_by_the_user_trains_through_launch(tmp_path):
    # The user's launcher registers the cell; rnnlab's flags pick it by name.
    workdir, data_dir = tmp_path / "run", tmp_path / "tfds"
    command = [sys.executable, "-m", "tests.user_cells.launch_cifg",
               "--config=configs/negation.py:smoke", f"--workdir={workdir}",
               f"--config.data.data_dir={data_dir}", "--config.model.cell=my_cifg",
               "--config.train.num_steps=20", "--config.train.eval_every=0"]
    done = subprocess.run(command, cwd=ROOT, env={**os.environ, "JAX_PLATFORMS": "cpu"},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((workdir / "results.json").read_text())
    config = json.loads((workdir / "config.json").read_text())
    assert config["model"]["cell"] == "my_cifg"
    assert results["num_params"] > 0


# --- a user cell that breaks the contract is refused before it runs -----------------------


def _tanh_variant(name, finish):
    """A user tanh cell whose step's return is ``finish(h, h2)``: the contract broken on purpose."""

    def step(dot, vecs, h, px):
        (z,) = dot(h, (0,))
        return finish(h, jnp.tanh(px[0] + z))

    return rnnlab.build_cell(rnnlab.CellDef(name, ("candidate",), ("candidate",), step), H)


BROKEN_STEPS = {
    # what the step does wrong: (its return, the words the message must hold)
    "y_per_sequence": (lambda h, h2: (h2, h2.sum(), {"candidate": h2}), r"returned y float32\[\]; y must be one array \[H=5\]"),
    "narrow_carry": (lambda h, h2: (h2[..., :-1], h2, {"candidate": h2}), r"returned the carry float32\[4\] from the carry float32\[5\]"),
    "two_values": (lambda h, h2: (h2, h2), r"returned 2 values; a step returns three"),
    "tuple_y": (lambda h, h2: (h2, (h2, h2), {"candidate": h2}), r"returned y \(float32\[5\], float32\[5\]\)"),
    "tuple_carry": (lambda h, h2: ((h2, h2), h2, {"candidate": h2}), r"returned the carry \(float32\[5\], float32\[5\]\) from the carry float32\[5\]"),
    "missing_gate": (lambda h, h2: (h2, h2, {}), r"returned acts without the gate\(s\) 'candidate'"),
    "float16_carry": (lambda h, h2: (h2.astype(jnp.float16), h2, {"candidate": h2}), r"returned the carry float16\[5\]"),
}


@pytest.mark.parametrize("backend", ["reference", "fused"])
@pytest.mark.parametrize("broken", sorted(BROKEN_STEPS))
def test_a_user_step_that_breaks_the_contract_is_named_on_every_backend(broken, backend):
    finish, message = BROKEN_STEPS[broken]
    cell = _tanh_variant(f"my_{broken}", finish)
    params = cell.init(jax.random.PRNGKey(0), D)
    xs = jnp.ones((2, T, D))
    with pytest.raises(ValueError, match=rf"the 'my_{broken}' cell's step \(.*step, H=5\) {message}"):
        rnnlab.unroll_batch(cell, params, xs, backend=backend)
    with pytest.raises(ValueError, match=f"'my_{broken}' cell's step"):
        rnnlab.unroll(cell, params, xs[0])


def test_a_dot_block_out_of_range_names_the_cell_and_the_blocks():
    def step(dot, vecs, h, px):
        (z,) = dot(h, (1,))  # the cell has one block: 0
        h2 = jnp.tanh(px[0] + z)
        return h2, h2, {"candidate": h2}

    cell = rnnlab.build_cell(rnnlab.CellDef("my_idx", ("candidate",), ("candidate",), step), H)
    with pytest.raises(ValueError, match=r"'my_idx' cell's step .*dot\(a, blocks=\(1,\)\): every block must be "
                                         r"an index in \[0, 1\)"):
        rnnlab.unroll(cell, cell.init(jax.random.PRNGKey(0), D), jnp.ones((T, D)))


def test_the_user_cell_of_the_docs_passes_the_step_check():
    cell, params, xs = _setup()
    rnnlab.contract.check_cell_step(cell)  # no error
    assert rnnlab.unroll_batch(cell, params, xs)[1].shape == (B, T, H)

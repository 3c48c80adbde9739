"""unroll and sequence_mask: the contract every scan backend must keep.

Equal to a Python loop of ``step`` and to the NumPy reference; masking and
reverse semantics as properties over random lengths (0 and T included); jit,
vmap and grad compose; no retrace across lengths; numerical gradients in
float64; clear errors. Tests that pin the semantics run on every
``rnnlab.Backend``.

Speed: each jitted runner is compiled once per (cell, backend) and runs all
lengths 0..T in one vmapped call; the references are NumPy.
"""

from __future__ import annotations

import functools
import itertools
import re

import chex
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from jax.test_util import check_grads

import rnnlab
from tests import reference
from tests.conftest import CELL_VARIANTS, cell_variant, random_params

H, D, T = 4, 3, 6
BACKENDS = [rnnlab.Backend.REFERENCE, rnnlab.Backend.FUSED]  # PARALLEL: linear cells, tests/test_backends.py
PROPERTY = settings(max_examples=12, deadline=None, derandomize=True)


def inputs(seed, shape=(T, D)):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def close(a, b, tol=1e-5):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=tol, atol=tol)


def as_carry(kind, ref_carry):
    """A reference carry in rnnlab's carry type."""
    return rnnlab.LSTMState(h=ref_carry[0], c=ref_carry[1]) if kind == "lstm" else ref_carry


def take(tree, i):
    return jax.tree.map(lambda a: a[i], tree)


MODES = [(b, r) for b in BACKENDS for r in (False, True)]  # (backend, reverse)
B = T + 1  # every runner call is a batch of T + 1 sequences: one shape, one compile


@functools.lru_cache(maxsize=None)
def runner(which):
    """jit of vmap(unroll) in every mode at once, for one cell variant.

    ``run(params, xs [B,T,D], lengths [B], carry0 [B,...]) -> {(backend, reverse): (carry, ys)}``;
    one compile serves all modes and all lengths.
    """
    cell = cell_variant(which, H)

    def run(params, xs, lengths, carry0):
        def mode(backend, reverse):
            one = lambda x, n, c: rnnlab.unroll(cell, params, x, n, c, reverse=reverse, backend=backend)
            return jax.vmap(one)(xs, lengths, carry0)

        return [mode(*m) for m in MODES]

    return jax.jit(run)


def pick(out, backend, reverse):
    return out[MODES.index((backend, reverse))]


def one_case(xs, length):
    """Pads one sequence ``xs [T, D]`` with ``length`` into a runner batch (row 0)."""
    batch = np.zeros((B, T, D), np.float32)
    batch[0] = xs
    lengths = np.zeros(B, np.int32)
    lengths[0] = length
    return batch, lengths


def batch_carry(cell, batch, value=0.0):
    return jax.tree.map(lambda a: jnp.full((batch,) + a.shape, value, a.dtype), cell.initial_carry())


# --- 1. shapes ------------------------------------------------------------------------


def test_unroll_shapes_single_and_vmapped(which):
    cell = cell_variant(which, H)
    params = random_params(cell, 0, D)
    carry, ys = jax.eval_shape(lambda p, x: rnnlab.unroll(cell, p, x, 5), params, inputs(0))
    assert ys.shape == (T, H) and ys.dtype == jnp.float32
    assert jax.tree.structure(carry) == jax.tree.structure(cell.initial_carry())
    out = jax.eval_shape(runner(which), params, inputs(1, (B, T, D)), np.arange(B, dtype=np.int32),
                         batch_carry(cell, B))
    for carry, ys in out:
        assert ys.shape == (B, T, H) and ys.dtype == jnp.float32
        assert all(leaf.shape == (B, H) and leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(carry))


def test_sequence_mask():
    mask = rnnlab.sequence_mask(jnp.array([0, 2, 4]), 4)
    np.testing.assert_array_equal(mask, [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]])
    assert mask.dtype == jnp.bool_
    assert rnnlab.sequence_mask(jnp.array([[1], [3]]), 3).shape == (2, 1, 3)


# --- 2/3/4/5. equal to the NumPy reference for every length, both directions -----------


def test_unroll_equals_numpy_reference_for_every_length(which):
    # Given one sequence per length 0..T, a non-zero initial carry, random params and biases
    kind, options = CELL_VARIANTS[which]
    cell = cell_variant(which, H)
    params = random_params(cell, which, D)
    xs = inputs(10 + which, (B, T, D))
    lengths = np.arange(B, dtype=np.int32)
    carry0 = batch_carry(cell, B, 0.3)
    # When unroll runs them as one batch, with every backend, in both directions
    out = runner(which)(params, xs, lengths, carry0)
    # Then every sequence equals the float64 NumPy loop (outputs 0 past its length)
    for (backend, reverse), i in itertools.product(MODES, range(B)):
        length = lengths[i]
        carries, ys = pick(out, backend, reverse)
        ref_c, ref_ys = reference.unroll(
            kind, params, xs[i], length, reverse=reverse,
            carry0=as_ref(kind, take(carry0, i)), **options,
        )
        close((take(carries, i), ys[i]), (as_carry(kind, ref_c), ref_ys))
        assert not np.asarray(ys[i, length:]).any()


def as_ref(kind, carry):
    leaves = [np.asarray(a, np.float64) for a in jax.tree.leaves(carry)]
    return tuple(leaves) if kind == "lstm" else leaves[0]


def test_unroll_equals_python_loop_of_step(which):
    cell = cell_variant(which, H)
    params = random_params(cell, 1, D)
    xs = inputs(3)
    carry0 = jax.tree.map(lambda a: a + 0.25, cell.initial_carry())
    carry, ys = jax.jit(lambda p, x: rnnlab.unroll(cell, p, x, 4, carry0))(params, xs)
    loop_carry, loop_ys = carry0, np.zeros((T, H), np.float32)
    step = jax.jit(cell.step)
    for t in range(4):
        loop_carry, loop_ys[t] = step(params, loop_carry, xs[t])
    close((carry, ys), (loop_carry, loop_ys), tol=1e-6)


def test_length_none_is_whole_sequence_and_unroll_option_changes_nothing():
    cell = cell_variant(3, H)  # peephole LSTM
    params = random_params(cell, 4, D)
    whole = rnnlab.unroll(cell, params, inputs(5), backend=rnnlab.Backend.REFERENCE)
    # length=None runs without masks (a program without select ops): equal up to float rounding
    close(whole, rnnlab.unroll(cell, params, inputs(5), T, backend=rnnlab.Backend.REFERENCE), tol=1e-6)
    close(whole, rnnlab.unroll(cell, params, inputs(5), None, unroll=3, backend=rnnlab.Backend.REFERENCE), tol=1e-6)


@st.composite
def cases(draw):
    """(cell variant, length in [0, T], seed, backend); the reference test above covers every variant."""
    return (
        draw(st.sampled_from([3, 4, 5])),  # peephole LSTM, both GRUs
        draw(st.integers(0, T)),
        draw(st.integers(0, 2**16)),
        draw(st.sampled_from(BACKENDS)),
    )


@PROPERTY
@given(cases(), st.booleans())
def test_padding_changes_nothing_property(case, reverse):
    which, length, seed, backend = case
    cell = cell_variant(which, H)
    params = random_params(cell, seed, D)
    xs = inputs(seed)
    garbage = xs.copy()
    garbage[length:] = 100.0 * inputs(seed + 1, (T - length, D))
    carry0 = batch_carry(cell, B)
    clean = pick(runner(which)(params, *one_case(xs, length), carry0), backend, reverse)
    dirty = pick(runner(which)(params, *one_case(garbage, length), carry0), backend, reverse)
    close(take(dirty, 0), take(clean, 0), tol=1e-6)


@PROPERTY
@given(cases())
def test_reverse_is_forward_on_input_flipped_within_length_property(case):
    which, length, seed, backend = case
    cell = cell_variant(which, H)
    params = random_params(cell, seed, D)
    xs = inputs(seed)
    flipped = xs.copy()
    flipped[:length] = xs[:length][::-1]
    carry0 = batch_carry(cell, B)
    carry_r, ys_r = take(pick(runner(which)(params, *one_case(xs, length), carry0), backend, True), 0)
    carry_f, ys_f = take(pick(runner(which)(params, *one_case(flipped, length), carry0), backend, False), 0)
    ys_f = np.asarray(ys_f).copy()
    ys_f[:length] = ys_f[:length][::-1]
    close((carry_r, ys_r), (carry_f, ys_f), tol=1e-6)


def test_longer_padding_changes_nothing():
    cell = cell_variant(4, H)  # GRU
    params = random_params(cell, 6, D)
    xs = inputs(7)
    padded = np.concatenate([xs, 50.0 * inputs(8, (5, D))])
    for reverse in (False, True):
        carry, ys = rnnlab.unroll(cell, params, xs, 4, reverse=reverse)
        carry2, ys2 = rnnlab.unroll(cell, params, padded, 4, reverse=reverse)
        close((carry2, ys2[:T]), (carry, ys), tol=1e-6)
        assert not np.asarray(ys2[T:]).any()


# --- 6. jit, vmap, no retrace -----------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.value)
def test_jit_equals_eager_and_vmap_equals_per_example(backend):
    cell = cell_variant(1, H)  # LSTM
    params = random_params(cell, 6, D)
    xs = inputs(9, (3, T, D))
    lengths = np.array([6, 0, 3], np.int32)
    f = functools.partial(rnnlab.unroll, cell, params, reverse=True, backend=backend)
    batched = jax.jit(jax.vmap(f))(xs, lengths)
    single = jax.jit(f)
    for i in range(3):
        close(take(batched, i), single(xs[i], lengths[i]), tol=1e-6)
    close(f(xs[2], lengths[2]), single(xs[2], lengths[2]), tol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.value)
def test_no_retrace_across_lengths(backend):
    cell = cell_variant(5, H)  # reset-after GRU
    params = random_params(cell, 7, D)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(xs, lengths, length):
        batched = jax.vmap(functools.partial(rnnlab.unroll, cell, params, backend=backend))(xs, lengths)
        return batched, rnnlab.unroll(cell, params, xs[0], length, backend=backend)

    xs = inputs(11, (2, T, D))
    outs = [run(xs, np.array(n, np.int32), np.int32(n[0])) for n in ([6, 6], [0, 3], [5, 1], [2, 6])]
    assert not np.asarray(outs[1][0][1][0]).any()  # the new lengths took effect without a retrace
    chex.clear_trace_counter()


# --- 7. gradients ----------------------------------------------------------------------


@pytest.mark.parametrize("which", [0, 3, 4, 5], ids=["tanh", "lstm-peephole", "gru", "gru-reset-after"])
def test_gradients_match_finite_differences_in_float64(which):
    kind, _ = CELL_VARIANTS[which]
    with jax.enable_x64(True):
        cell = cell_variant(which, 2, "float64")
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), random_params(cell, 9, 2))
        xs = jnp.asarray(np.random.default_rng(14).standard_normal((4, 2)))
        carry0 = jax.tree.map(lambda a: jnp.full(a.shape, 0.1, jnp.float64), cell.initial_carry())

        @jax.jit
        def loss(params, xs, carry0):
            carry, ys = rnnlab.unroll(
                cell, params, xs, 3, carry0, reverse=which % 2 == 1, backend=rnnlab.Backend.REFERENCE
            )
            return jnp.sum(ys**2) + sum(jnp.sum(jnp.sin(c)) for c in jax.tree.leaves(carry))

        check_grads(loss, (params, xs, carry0), order=1, modes=["rev"], atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("which", [3, 5], ids=["lstm-peephole", "gru-reset-after"])
def test_gradients_of_every_backend_equal_reference_backend(which):
    # The reference backend's gradients are checked numerically above; the others must match it.
    cell = cell_variant(which, H)
    params = random_params(cell, 15, D)
    xs = inputs(16, (3, T, D))
    lengths = np.array([6, 2, 0], np.int32)
    carry0 = batch_carry(cell, 3, 0.2)

    def loss(params, xs, carry0, backend):
        total = 0.0
        for reverse in (False, True):
            run = lambda x, n, c: rnnlab.unroll(cell, params, x, n, c, reverse=reverse, backend=backend)
            carry, ys = jax.vmap(run)(xs, lengths, carry0)
            total += jnp.sum(jnp.sin(ys)) + sum(jnp.sum(c**2) for c in jax.tree.leaves(carry))
        return total

    grads = jax.jit(lambda *args: [jax.grad(loss, argnums=(0, 1, 2))(*args, b) for b in BACKENDS])
    grads = grads(params, xs, carry0)
    for backend, grad in zip(BACKENDS, grads):
        close(grad, grads[BACKENDS.index(rnnlab.Backend.REFERENCE)], tol=2e-5)


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.value)
def test_gradient_wrt_padding_is_zero(backend):
    cell = cell_variant(3, H)  # peephole LSTM

    def loss(params, xs, reverse):
        carry, ys = rnnlab.unroll(cell, params, xs, 4, reverse=reverse, backend=backend)
        return jnp.sum(ys) + sum(jnp.sum(c) for c in jax.tree.leaves(carry))

    grads = jax.jit(lambda p, x: [jax.grad(loss, argnums=1)(p, x, r) for r in (False, True)])
    for g in grads(random_params(cell, 10, D), inputs(15)):
        g = np.asarray(g)
        assert not g[4:].any()
        assert np.abs(g[:4]).min() > 0  # while the valid steps do get gradient


@pytest.mark.parametrize("name", ["tanh", "lstm", "gru", "min_gru"])
def test_nan_and_inf_in_padding_give_finite_gradients(name):
    # Padding may hold anything: NaN or inf past each length reach neither the outputs nor
    # any gradient, on every backend that runs the cell (issue: jnp.where let NaN through).
    cell = rnnlab.get_cell(name, H)
    params = random_params(cell, 12, D)
    xs = inputs(17, (3, T, D))
    lengths = np.array([T, 2, 0], np.int32)
    dirty = np.asarray(xs).copy()
    dirty[1, 2:] = np.nan
    dirty[2, :] = np.inf
    runs = rnnlab.backends.supported(cell)

    @jax.jit
    def grads(p, x):
        def loss(p, x, backend):
            carry, ys = rnnlab.unroll_batch(cell, p, x, lengths, reverse=True, backend=backend)
            return jnp.sum(ys) + sum(jnp.sum(c) for c in jax.tree.leaves(carry))
        return [jax.grad(loss, argnums=(0, 1))(p, x, b) for b in runs]

    clean, noisy = grads(params, xs), grads(params, jnp.asarray(dirty))
    for got, want in zip(noisy, clean):
        assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(got))
        close(got[0], want[0], tol=1e-6)
        assert not np.asarray(got[1])[1, 2:].any() and not np.asarray(got[1])[2].any()


def test_grad_vmap_jit_compose():
    cell = cell_variant(1, H)
    params = random_params(cell, 11, D)
    xs = inputs(16, (2, T, D))
    lengths = np.array([6, 2], np.int32)

    def loss(params, xs, length):
        return jnp.sum(rnnlab.unroll(cell, params, xs, length)[1])

    per_example = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0, 0)))(params, xs, lengths)
    total = jax.jit(jax.grad(lambda p: loss(p, xs[0], lengths[0]) + loss(p, xs[1], lengths[1])))(params)
    close(jax.tree.map(lambda g: g.sum(0), per_example), total, tol=1e-5)


# --- 8. determinism --------------------------------------------------------------------


def test_same_key_same_outputs():
    cell = cell_variant(4, H)
    run = jax.jit(lambda p, x: rnnlab.unroll(cell, p, x, 5))
    runs = [run(random_params(cell, 3, D), inputs(18)) for _ in range(2)]
    close(runs[0], runs[1], tol=0)


# --- errors and the length policy ------------------------------------------------------


@pytest.mark.parametrize("shape", [(D,), (2, T, D)])
def test_xs_must_be_rank_2(shape):
    cell = cell_variant(1, H)
    with pytest.raises(ValueError, match=r"xs must have shape \[T, D\].*jax.vmap"):
        rnnlab.unroll(cell, random_params(cell, 0, D), np.zeros(shape, np.float32))


def test_wrong_feature_size_names_expected_shape():
    cell = cell_variant(4, H)
    with pytest.raises(ValueError, match=r"xs must have shape \[T, D=3\].*got shape \(6, 5\)"):
        rnnlab.unroll(cell, random_params(cell, 0, D), np.zeros((T, 5), np.float32))


def test_params_of_another_cell_are_refused():
    params = random_params(cell_variant(4, H), 0, D)
    with pytest.raises(ValueError, match=r"params do not fit this lstm cell.*expected \[D, 16\]"):
        rnnlab.unroll(cell_variant(1, H), params, inputs(0))


@pytest.mark.parametrize("length", [2.0, np.float32(2), np.array([2, 3]), True, "2", jnp.array([3])])
def test_length_must_be_integer_scalar(length):
    cell = cell_variant(0, H)
    with pytest.raises(ValueError, match="length must be an integer scalar"):
        rnnlab.unroll(cell, random_params(cell, 0, D), inputs(0), length)


@pytest.mark.parametrize("length", [-1, T + 1, np.int32(100)])
def test_concrete_length_outside_range_raises(length):
    cell = cell_variant(0, H)
    with pytest.raises(ValueError, match=rf"length must lie in \[0, T={T}\], got {int(length)}"):
        rnnlab.unroll(cell, random_params(cell, 0, D), inputs(0), length)


def test_traced_length_outside_range_is_clipped():
    cell = cell_variant(3, H)
    params = random_params(cell, 12, D)
    xs = np.broadcast_to(inputs(19), (B, T, D))
    lengths = np.array([T + 5, T, -3, 0, 1, 2, 3], np.int32)
    for out in runner(3)(params, xs, lengths, batch_carry(cell, B)):
        close(take(out, 0), take(out, 1), tol=0)
        close(take(out, 2), take(out, 3), tol=0)


def test_float64_gradient_check_of_the_api_guide_runs_as_written():
    # Given the float64 example of docs/api.md (it turns x64 on itself: a subprocess, so x64 leaks nowhere)
    import subprocess
    import sys

    from tests.test_docs import ROOT, python_block

    code = python_block(ROOT / "docs" / "api.md", "### Gradient checks in float64")
    # When it runs as written (no carry0 passed)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    # Then the default carry follows the cell's dtype and the gradient check passes
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "float64"


@pytest.mark.parametrize("run", ["unroll", "unroll_batch", "bidirectional", "stack"])
def test_default_carry_follows_a_float64_cell(run):
    with jax.enable_x64(True):
        cell = rnnlab.gru(3, dtype=jnp.float64)
        params = cell.init(jax.random.key(0), 2)
        xs = jnp.ones((4, 2), jnp.float64)
        calls = {
            "unroll": lambda: rnnlab.unroll(cell, params, xs),
            "unroll_batch": lambda: rnnlab.unroll_batch(cell, params, xs[None], backend="fused"),
            "bidirectional": lambda: rnnlab.bidirectional(cell, cell, {"fwd": params, "bwd": params}, xs),
            "stack": lambda: rnnlab.stack(cell, rnnlab.init_stack(cell, jax.random.key(1), 2, 2), xs),
        }
        carry, ys = calls[run]()
        assert {a.dtype for a in jax.tree.leaves((carry, ys))} == {jnp.dtype(jnp.float64)}


# --- shape errors name the argument, the cell and both shapes --------------------------------


def _lstm_call(**change):
    cell = rnnlab.lstm(H)
    params = {**random_params(cell, 0, D), **change.pop("params", {})}
    return cell, params


@pytest.mark.parametrize("name, bad, expected", [
    ("b", (1,), (16,)), ("w_h", (H - 1, 16), (H, 16)), ("w_h", (H, 12), (H, 16)),
])
def test_params_of_the_wrong_shape_are_named_with_both_shapes(name, bad, expected):
    cell, params = _lstm_call(params={name: jnp.zeros(bad)})
    message = rf'params\["{name}"\] has shape {re.escape(str(bad))}, expected {re.escape(str(expected))} for the \'lstm\' cell'
    with pytest.raises(ValueError, match=message):
        rnnlab.unroll(cell, params, inputs(0))
    with pytest.raises(ValueError, match=message):
        rnnlab.unroll_batch(cell, params, inputs(0, (2, T, D)), backend="fused")


def test_a_missing_param_is_named():
    cell, params = _lstm_call()
    del params["w_h"]
    with pytest.raises(ValueError, match=r'params\["w_h"\] is missing: the \'lstm\' cell'):
        rnnlab.unroll(cell, params, inputs(0))


@pytest.mark.parametrize("carry0, batched, given", [
    (rnnlab.LSTMState(jnp.zeros(H + 1), jnp.zeros(H + 1)), False, r"LSTMState\(h=float32\[5\], c=float32\[5\]\)"),
    (jnp.zeros(H), False, r"float32\[4\]"),
    (rnnlab.LSTMState(jnp.zeros(H), jnp.zeros(H)), True, r"LSTMState\(h=float32\[4\], c=float32\[4\]\)"),
    (rnnlab.LSTMState(jnp.zeros(H, jnp.int32), jnp.zeros(H)), False, r"LSTMState\(h=int32\[4\]"),
])
def test_a_carry0_that_does_not_fit_names_carry0_and_the_expected_carry(carry0, batched, given):
    cell, params = _lstm_call()
    if batched:
        expected, call = r"LSTMState\(h=float32\[2, 4\], c=float32\[2, 4\]\)", lambda: rnnlab.unroll_batch(
            cell, params, inputs(0, (2, T, D)), carry0=carry0)
    else:
        expected, call = r"LSTMState\(h=float32\[4\], c=float32\[4\]\)", lambda: rnnlab.unroll(
            cell, params, inputs(0), carry0=carry0)
    with pytest.raises(ValueError, match=rf"carry0 must be {expected} for the 'lstm' cell .*got {given}"):
        call()


def test_the_checks_run_at_trace_time_only():
    # Given a jitted unroll, When it runs again on new values, Then it is not traced again (the checks are static)
    cell, params = _lstm_call()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def run(params, xs):
        return rnnlab.unroll_batch(cell, params, xs, backend="fused")[1]

    run(params, inputs(0, (2, T, D)))
    run(params, inputs(1, (2, T, D)))

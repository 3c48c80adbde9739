"""Every backend of ``unroll`` / ``unroll_batch`` equals the reference scan, forward and backward."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnlab
from rnnlab import backends
from rnnlab.backends import Backend
from tests import reference

CELLS = {
    "tanh": lambda h: rnnlab.tanh_rnn(h),
    "lstm": lambda h: rnnlab.lstm(h),
    "lstm_peephole": lambda h: rnnlab.lstm(h, peephole=True, forget_bias=0.5),
    # the clip binds on some steps (carry0 starts at 0.5-0.6; |c| reaches about 1.5 unclipped)
    "lstm_peephole_clip": lambda h: rnnlab.lstm(h, peephole=True, forget_bias=0.5, cell_clip=0.7),
    "gru": lambda h: rnnlab.gru(h),
    "gru_reset_after": lambda h: rnnlab.gru(h, reset_after=True),
}
B, T, D, H = 3, 7, 5, 4
LENGTHS = np.array([7, 0, 4])


def _setup(name):
    cell = CELLS[name](H)
    params = cell.init(jax.random.PRNGKey(0), D)
    # Non-zero biases and peepholes, so that every parameter matters.
    keys = jax.random.split(jax.random.PRNGKey(1), len(params))
    params = {k: v + 0.3 * jax.random.normal(s, v.shape) for (k, v), s in zip(params.items(), keys)}
    xs = jax.random.normal(jax.random.PRNGKey(2), (B, T, D))
    carry0 = jax.tree.map(lambda c: 0.5 + 0.1 * jnp.ones((B,) + c.shape), cell.initial_carry())
    return cell, params, xs, carry0


def _outputs_and_grads(cell, backend, remat, params, xs, carry0, lengths, unroll=None):
    """Both directions in one compiled call: outputs, final carries, gradients.

    The loss weights every output and final-carry entry of the forward and
    the reverse run differently; its gradients are taken w.r.t. params, xs
    and carry0.
    """

    def runs(p, x, c):
        return tuple(
            rnnlab.unroll_batch(cell, p, x, lengths, c, reverse=rev, backend=backend, remat=remat, unroll=unroll)
            for rev in (False, True)
        )

    def loss(p, x, c):
        total = 0.0
        for scale, (carry, ys) in zip((1.0, 2.0), runs(p, x, c)):
            weights = jnp.sin(scale * jnp.arange(ys.size, dtype=jnp.float32)).reshape(ys.shape)
            total += jnp.sum(ys * weights)
            total += sum(jnp.sum(jnp.cos(scale * leaf)) for leaf in jax.tree.leaves(carry))
        return total

    def both(p, x, c):
        return runs(p, x, c), jax.grad(loss, argnums=(0, 1, 2))(p, x, c)

    return jax.jit(both)(params, xs, carry0)


@functools.lru_cache(maxsize=None)
def _reference(name):
    cell, params, xs, carry0 = _setup(name)
    return _outputs_and_grads(cell, Backend.REFERENCE, None, params, xs, carry0, LENGTHS)


def _assert_trees_close(a, b, tol=1e-5):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=tol, atol=tol), a, b)


def _generic(cell):
    """The same cell without its hand-written backward: the fused backend then uses jax.vjp of the step."""
    return cell._replace(definition=cell.definition._replace(backward=None))


@pytest.mark.parametrize(
    "name, remat, hand",
    [(name, None, True) for name in sorted(CELLS)]
    + [("lstm_peephole", 3, True), ("gru", 3, True), ("gru_reset_after", 2, True)]
    + [("lstm_peephole", None, False), ("gru_reset_after", 3, False), ("lstm_peephole_clip", None, False),
       ("lstm_peephole_clip", 3, True)],
)
def test_fused_equals_reference_forward_and_gradients(name, remat, hand):
    # Given a cell, a ragged batch (one empty sequence) and a non-zero carry0,
    # when both directions and the gradients w.r.t. params, xs and carry0 are computed,
    # then the fused backend (with and without remat, with the hand-written backward
    # step and with the generic one) equals the reference scan.
    cell, params, xs, carry0 = _setup(name)
    assert (cell.definition.backward is not None) == (name != "gru")
    fused_cell = cell if hand else _generic(cell)
    got = _outputs_and_grads(fused_cell, Backend.FUSED, remat, params, xs, carry0, LENGTHS)
    _assert_trees_close(got, _reference(name))


@pytest.mark.parametrize("backend, name, unroll, remat, hand", [
    (Backend.REFERENCE, "lstm_peephole", 3, None, True),
    (Backend.REFERENCE, "gru", 4, 2, True),
    (Backend.FUSED, "lstm", 3, None, True),  # the hand-written backward, unrolled
    (Backend.FUSED, "gru_reset_after", 2, None, True),
    (Backend.FUSED, "gru", 4, None, True),  # the generic backward (jax.vjp of the equations)
    (Backend.FUSED, "lstm_peephole", 5, 3, False),
])
def test_unroll_changes_nothing_forward_and_gradients(backend, name, unroll, remat, hand):
    # Given a ragged batch (an empty sequence), a non-zero carry0 and both directions,
    # when a sequential backend runs U steps per loop iteration (T=7: U does not divide T),
    # then outputs, final carries and gradients equal the reference scan at unroll 1.
    cell, params, xs, carry0 = _setup(name)
    got = _outputs_and_grads(cell if hand else _generic(cell), backend, remat, params, xs, carry0, LENGTHS, unroll)
    _assert_trees_close(got, _reference(name))


@pytest.mark.parametrize("name, remat, hand", [("lstm_peephole", None, True), ("gru", None, True),
                                               ("lstm_peephole", 3, True), ("gru_reset_after", None, False)])
def test_fused_without_lengths_runs_unmasked_loops_equal_to_whole_lengths(name, remat, hand):
    # lengths=None: the fused loops have no masks (with remat 3 the chunk padding of T=7 is
    # masked again); outputs, carries and gradients equal the reference scan on lengths T.
    cell, params, xs, carry0 = _setup(name)
    fused_cell = cell if hand else _generic(cell)
    whole = np.full((B,), T)
    expected = _outputs_and_grads(cell, Backend.REFERENCE, None, params, xs, carry0, whole)
    _assert_trees_close(_outputs_and_grads(fused_cell, Backend.FUSED, remat, params, xs, carry0, None), expected)


@pytest.mark.parametrize("name", [n for n in rnnlab.cell_names() if n not in ("tanh", "lstm", "gru")])
def test_every_registered_cell_on_every_backend_it_qualifies_for(name):
    # Given every other registered cell (gate variants, layer-norm LSTM, minGRU, minLSTM),
    # then each backend that runs it equals the reference scan, forward and gradients,
    # in float64 on tiny sizes.
    with jax.enable_x64(True):
        cell = rnnlab.get_cell(name, H, dtype=jnp.float64)
        params = jax.tree.map(lambda v: v.astype(jnp.float64), cell.init(jax.random.PRNGKey(0), D))
        keys = jax.random.split(jax.random.PRNGKey(1), len(params))
        params = {k: v + 0.3 * jax.random.normal(s, v.shape, jnp.float64)
                  for (k, v), s in zip(params.items(), keys)}
        xs = jax.random.normal(jax.random.PRNGKey(2), (B, T, D), jnp.float64)
        carry0 = jax.tree.map(lambda c: 0.5 + 0.1 * jnp.ones((B,) + c.shape, jnp.float64),
                              cell.initial_carry(jnp.float64))
        expected = _outputs_and_grads(cell, Backend.REFERENCE, None, params, xs, carry0, LENGTHS)
        # PALLAS (interpreted off GPU, slow) has its own test below.
        others = [b for b in backends.supported(cell) if b not in (Backend.REFERENCE, Backend.PALLAS)]
        assert others, f"{name} runs on no fast backend"
        for backend in others:
            _assert_trees_close(_outputs_and_grads(cell, backend, None, params, xs, carry0, LENGTHS),
                                expected, tol=1e-9)
        if cell.definition.backward is not None:
            _assert_trees_close(_outputs_and_grads(_generic(cell), Backend.FUSED, None, params, xs,
                                                   carry0, LENGTHS), expected, tol=1e-9)


def test_pallas_backend_runs_cell_definitions_equal_to_reference():
    # The Pallas kernel (interpreted on CPU) runs a definition's own step, forward and gradients,
    # for the cells whose products all read h; the reset-before GRU is refused by its definition.
    for name in ("lstm_peephole", "gru_reset_after"):
        cell, params, xs, carry0 = _setup(name)
        assert Backend.PALLAS in backends.supported(cell)
        got = _outputs_and_grads(cell, Backend.PALLAS, None, params, xs, carry0, LENGTHS)
        _assert_trees_close(got, _reference(name))
    gru, params, xs, _ = _setup("gru")
    assert not gru.facts.reads_hidden  # found once, when the cell was built
    with pytest.raises(ValueError, match="PALLAS cannot run the 'gru' cell.*read the previous h"):
        rnnlab.unroll_batch(gru, params, xs, backend="pallas")


@pytest.mark.parametrize("name", ["min_gru", "min_lstm"])
@pytest.mark.parametrize("num_steps", [1, 7, 1000])
def test_parallel_scan_equals_sequential(name, num_steps):
    # The associative scan equals the sequential reference at T = 1, 7, 1000, for lengths
    # spread over 0..T (0, T and values between), in both directions.
    cell = rnnlab.get_cell(name, 3)
    params = cell.init(jax.random.PRNGKey(0), 2)
    params = {k: v + 0.3 for k, v in params.items()}
    lengths = np.unique(np.linspace(0, num_steps, 5).astype(np.int32))
    xs = jax.random.normal(jax.random.PRNGKey(3), (len(lengths), num_steps, 2))
    carry0 = jnp.full((len(lengths), 3), 0.25)

    @jax.jit
    def both(p):
        return [rnnlab.unroll_batch(cell, p, xs, lengths, carry0, reverse=rev, backend=backend)
                for backend in (Backend.REFERENCE, Backend.PARALLEL) for rev in (False, True)]

    ref_f, ref_r, par_f, par_r = both(params)
    _assert_trees_close(par_f, ref_f, tol=2e-5)
    _assert_trees_close(par_r, ref_r, tol=2e-5)


@pytest.mark.parametrize("name", ["lstm_peephole", "lstm_peephole_clip", "gru"])
def test_fused_equals_numpy_reference(name):
    cell, params, xs, carry0 = _setup(name)
    carry, ys = rnnlab.unroll_batch(cell, params, xs, LENGTHS, backend=Backend.FUSED, reverse=True)
    kind = cell.kind
    options = dict(cell.options)
    for b in range(B):
        ref_carry, ref_ys = reference.unroll(
            kind, params, xs[b], LENGTHS[b], reverse=True, **options
        )
        np.testing.assert_allclose(ys[b], ref_ys, rtol=1e-5, atol=1e-5)
        ref_leaves = ref_carry if isinstance(ref_carry, tuple) else (ref_carry,)
        for got, want in zip(jax.tree.leaves(carry), ref_leaves, strict=True):
            np.testing.assert_allclose(got[b], want, rtol=1e-5, atol=1e-5)


def test_vmapped_unroll_equals_reference():
    # The common call: jax.vmap(partial(unroll, cell, params))(xs, lengths), with gradients,
    # on every backend, with and without remat.
    cell, params, xs, carry0 = _setup("lstm")
    lengths = jnp.asarray(LENGTHS)

    def value_and_grads(backend, remat):
        def loss(p, x, c):
            one = functools.partial(rnnlab.unroll, cell, p, backend=backend, remat=remat)
            carry, ys = jax.vmap(one)(x, lengths, c)
            weights = jnp.sin(jnp.arange(ys.size, dtype=jnp.float32)).reshape(ys.shape)
            return jnp.sum(ys * weights) + jnp.sum(jnp.cos(carry.c))

        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))(params, xs, carry0)

    expected = value_and_grads(Backend.REFERENCE, None)
    _assert_trees_close(value_and_grads(Backend.FUSED, None), expected)
    _assert_trees_close(value_and_grads(Backend.REFERENCE, 2), expected)


def test_unroll_batch_keeps_unroll_semantics():
    # Outputs past each length are zero, and padding changes nothing.
    cell, params, xs, _ = _setup("gru_reset_after")
    carry, ys = rnnlab.unroll_batch(cell, params, xs, LENGTHS)
    assert ys.shape == (B, T, H) and carry.shape == (B, H)
    mask = np.arange(T)[None, :, None] < LENGTHS[:, None, None]
    assert np.all(np.asarray(ys)[~np.broadcast_to(mask, ys.shape)] == 0)
    noisy = jnp.where(mask, xs, 100.0)
    carry2, ys2 = rnnlab.unroll_batch(cell, params, noisy, LENGTHS)
    np.testing.assert_array_equal(ys, ys2)
    np.testing.assert_array_equal(carry, carry2)


def test_backend_choice_and_errors():
    cell, params, xs, _ = _setup("lstm")
    assert backends.resolve_backend(None, cell, batched=True) is Backend.FUSED
    assert backends.resolve_backend(None, cell, batched=False) is Backend.REFERENCE
    assert backends.resolve_backend("reference", cell, batched=True) is Backend.REFERENCE
    assert backends.resolve_backend(None, rnnlab.get_cell("min_gru", 3), batched=True) is Backend.PARALLEL
    with pytest.raises(ValueError, match="known backends: reference, fused, parallel, cudnn, pallas"):
        rnnlab.unroll_batch(cell, params, xs, backend="cudnm")
    # What runs a cell is read from its definition, not from names.
    with pytest.raises(ValueError, match="PARALLEL cannot run the 'lstm' cell.*reference, fused"):
        rnnlab.unroll_batch(cell, params, xs, backend=Backend.PARALLEL)
    min_gru = rnnlab.get_cell("min_gru", H)
    with pytest.raises(ValueError, match="FUSED cannot run the 'min_gru' cell.*reference, parallel"):
        rnnlab.unroll_batch(min_gru, min_gru.init(jax.random.PRNGKey(0), D), xs, backend="fused")
    with pytest.raises(ValueError, match="lengths must lie in"):
        rnnlab.unroll_batch(cell, params, xs, np.array([1, 2, T + 1]))
    with pytest.raises(ValueError, match=r"\[\*batch, T, D\] with at least one batch axis"):
        rnnlab.unroll_batch(cell, params, xs[0])
    with pytest.raises(ValueError, match="remat"):
        rnnlab.unroll_batch(cell, params, xs, remat=0)


@pytest.mark.slow
def test_speed_benchmark_quick_path_runs(tmp_path):
    # The benchmark's --quick path on a tiny grid, so that it never rots.
    from benchmarks import speed

    results = speed.run(speed.QUICK_GRID, repeats=1, out_dir=tmp_path, quick=True, cells=("gru",),
                        modes=("fwdbwd",))
    assert results["rows"], "no timings"
    names = {row["impl"] for row in results["rows"]}
    assert {"rnnlab_fused", "rnnlab_reference", "flax"} <= names
    assert all(row["median_s"] > 0 for row in results["rows"])
    assert (tmp_path / "quick.json").exists() and (tmp_path / "quick.md").exists()


def test_train_step_benchmark_sets_the_backend():
    # The training-stack benchmark must really switch the model's backend (else it
    # would time one backend twice): the FUSED model's jaxpr holds the custom VJP.
    from benchmarks import train_step

    model = train_step.models.SequenceClassifier(
        encoder=train_step.models.Encoder(None, 4, "lstm", 4, 1, False), pooling="last",
        mlp_sizes=(), num_outputs=2)
    xs, lengths = jnp.zeros((2, 3, 5)), jnp.array([3, 1])
    params = model.init(jax.random.key(0), xs, lengths)
    jaxprs = {
        b: str(jax.make_jaxpr(lambda p: train_step.with_backend(model, b).apply(p, xs, lengths))(
            params))
        for b in (Backend.REFERENCE, Backend.FUSED)
    }
    assert "custom_vjp" in jaxprs[Backend.FUSED] and "custom_vjp" not in jaxprs[Backend.REFERENCE]


@pytest.mark.parametrize("name, options", [("lstm", {}), ("lstm", {"peephole": True}), ("gru", {}), ("mgu", {})],
                         ids=["lstm", "lstm-peephole", "gru", "mgu"])
@pytest.mark.parametrize("remat", [None, 2])
def test_fused_gradients_keep_bfloat16_params_dtypes(name, options, remat):
    # Given a cell whose params are bfloat16 (per-unit vectors included), batched with padding
    cell = rnnlab.get_cell(name, 6, param_dtype="bfloat16", **options)
    params = cell.init(jax.random.key(3), 4)
    xs = jax.random.normal(jax.random.key(4), (3, 6, 4))
    lengths = jnp.array([6, 2, 0])

    def loss(p, backend):
        _, ys = rnnlab.unroll_batch(cell, p, xs, lengths, backend=backend, remat=remat)
        return jnp.sum(jnp.sin(ys.astype(jnp.float32)))

    # When the fused backend differentiates it (float32 accumulation inside)
    grad = jax.jit(jax.grad(loss), static_argnums=1)
    fused = grad(params, "fused")
    reference_grads = grad(params, "reference")
    # Then every gradient has its param's dtype, and agrees with the reference to bfloat16 precision
    for key in params:
        assert fused[key].dtype == params[key].dtype == jnp.bfloat16, key
        np.testing.assert_allclose(np.asarray(fused[key], np.float32), np.asarray(reference_grads[key], np.float32),
                                   rtol=0.05, atol=0.05, err_msg=key)

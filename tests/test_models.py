"""Tests of rnnlab.training.models: output shapes, pooling, padding invariance, the registry's errors."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import rnnlab
from rnnlab.training import models
from tests.train_fixtures import fake_batch, fake_spec, smoke_config


def _model_config(**fields):
    config = smoke_config("unused").model
    config.hidden_size, config.embed_size, config.mlp_sizes = 6, 5, (4,)
    for k, v in fields.items():
        config[k] = v
    return config


def _apply(config, spec, batch, key=0):
    model = models.build_model(config, spec)
    params = jax.jit(model.init)(jax.random.PRNGKey(key), batch["inputs"], batch["lengths"])["params"]
    return model, params, jax.jit(model.apply)({"params": params}, batch["inputs"], batch["lengths"])


@pytest.mark.parametrize("kind, task, input_kind, shape", [
    ("bag_of_words", "classify", "tokens", (4, 3)),
    ("classifier", "classify", "tokens", (4, 3)),
    ("classifier", "regress", "features", (4, 1)),
    ("tagger", "tag", "tokens", (4, 7, 3)),
    ("density", "density", "features", (4, 7, 3)),
])
def test_model_output_shapes(kind, task, input_kind, shape):
    spec = fake_spec(task, input_kind)
    _, _, out = _apply(_model_config(kind=kind), spec, fake_batch(spec))
    assert out.shape == shape and out.dtype == jnp.float32


def test_pool_matches_numpy_and_last_takes_each_direction_at_its_end():
    rng = np.random.default_rng(0)
    lengths = np.array([5, 2, 1], np.int32)
    ys = rng.normal(size=(3, 6, 4)).astype(np.float32) * (np.arange(6)[None, :, None] < lengths[:, None, None])
    for b, n in enumerate(lengths):
        np.testing.assert_allclose(models.pool(ys, lengths, "mean", 4)[b], ys[b, :n].mean(0), rtol=1e-6)
        np.testing.assert_allclose(models.pool(ys, lengths, "max", 4)[b], ys[b, :n].max(0))
        last = models.pool(ys, lengths, "last", 2)[b]  # forward half [:2], backward half [2:]
        np.testing.assert_allclose(last, np.concatenate([ys[b, n - 1, :2], ys[b, 0, 2:]]))
    with pytest.raises(ValueError, match="known poolings: last, mean, max, attention"):
        models.pool(ys, lengths, "sum", 4)


def test_classifier_last_pooling_equals_the_pure_cell_final_carry():
    spec = fake_spec("classify")
    batch = fake_batch(spec)
    model, params, _ = _apply(_model_config(kind="classifier", mlp_sizes=()), spec, batch)
    embedded = params["encoder"]["inputs"]["embed"]["embedding"][batch["inputs"]]
    cell = rnnlab.lstm(6, forget_bias=1.0)
    carry, _ = jax.vmap(lambda x, n: rnnlab.unroll(cell, params["encoder"]["rnn"]["layer_0"], x, n))(
        embedded, batch["lengths"])
    head = params["head"]["out"]
    want = carry.h @ head["kernel"] + head["bias"]
    got = model.apply({"params": params}, batch["inputs"], batch["lengths"])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_config_backend_reaches_the_recurrence_and_backends_agree():
    # config.model.backend selects the recurrence; both give the same model outputs
    spec = fake_spec("classify")
    batch = fake_batch(spec, steps=5)
    outputs = {}
    for backend in ("reference", "fused"):
        model, params, outputs[backend] = _apply(_model_config(kind="classifier", backend=backend), spec, batch)
        assert rnnlab.backends.parse_backend(model.encoder.backend) is rnnlab.Backend(backend)  # resolved in the scan
    np.testing.assert_allclose(outputs["fused"], outputs["reference"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pooling", models.POOLINGS)
def test_classifier_ignores_extra_padding(pooling):
    spec = fake_spec("classify")
    batch = fake_batch(spec, steps=5)
    config = _model_config(kind="classifier", pooling=pooling, bidirectional=True)
    model, params, out = _apply(config, spec, batch)
    padded = np.concatenate([batch["inputs"], np.zeros((4, 3), np.int32)], axis=1)
    np.testing.assert_allclose(jax.jit(model.apply)({"params": params}, padded, batch["lengths"]), out,
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("field, value, message", [
    ("kind", "cnn", "config.model.kind: unknown model 'cnn'; known kinds: bag_of_words, classifier, density, step_regressor, tagger"),
    ("cell", "rnn", "config.model.cell: unknown cell 'rnn'; known cells: gru, gru_nrg"),
    ("pooling", "sum", "config.model.pooling: unknown pooling 'sum'"),
    ("hidden_size", 0, "config.model.hidden_size must be a positive integer"),
    ("embed_size", -3, "config.model.embed_size must be a positive integer"),
    ("mlp_sizes", (4, -1), "config.model.mlp_sizes must hold positive integers"),
    ("head_dropout", -0.1, r"config.model.head_dropout must lie in \[0, 1\)"),
    ("backend", "cudnm", "config.model.backend: unknown backend 'cudnm'; known backends: reference, fused, parallel"),
])
def test_bad_model_config_names_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        models.check_model_config(_model_config(**{field: value}))


def test_word_dropout_and_recurrent_regularisers_train_only():
    # Given a classifier with word dropout, recurrent dropout and zoneout from the config,
    spec = fake_spec("classify")
    config = _model_config(word_dropout=0.5, recurrent_dropout=0.3, zoneout=0.2)
    model = models.build_model(config, spec)
    batch = fake_batch(spec)
    variables = model.init(jax.random.key(0), batch["inputs"], batch["lengths"])
    run = lambda det, key: model.apply(variables, batch["inputs"], batch["lengths"],
                                       deterministic=det, rngs={"dropout": key})
    # then evaluation is deterministic and training depends on the dropout RNG,
    np.testing.assert_array_equal(run(True, jax.random.key(1)), run(True, jax.random.key(2)))
    assert float(jnp.abs(run(False, jax.random.key(1)) - run(False, jax.random.key(2))).max()) > 1e-4
    # and word dropout alone maps tokens (never padding) to <unk> before the embedding.
    inputs = models.Inputs(vocab_size=20, embed_size=3, word_dropout=0.5)
    ids = jnp.array([[5, 6, 7, 8, 0, 0]] * 64)
    params = inputs.init(jax.random.key(0), ids, deterministic=True)
    table = params["params"]["embed"]["embedding"]
    out = inputs.apply(params, ids, deterministic=False, rngs={"dropout": jax.random.key(3)})
    is_unk = np.all(np.isclose(out, table[1]), axis=-1)
    assert 0.35 < is_unk[:, :4].mean() < 0.65 and not is_unk[:, 4:].any()
    with pytest.raises(ValueError, match="config.model.zoneout must lie in"):
        models.check_model_config(_model_config(zoneout=1.0))


@pytest.mark.parametrize("cell, field, value", [("gru", "peephole", True), ("tanh", "forget_bias", 0.0),
                                                ("lstm", "reset_after", True), ("min_gru", "peephole", True)])
def test_a_cell_option_the_cell_does_not_take_is_refused_naming_field_and_cell(cell, field, value):
    with pytest.raises(ValueError, match=rf"config.model.{field}={value!r} does not apply to the '{cell}' cell: "
                                         rf"it has no option '{field}'"):
        models.check_model_config(_model_config(cell=cell, **{field: value}))
    models.check_model_config(_model_config(cell=cell))  # at its off value: accepted
    models.check_model_config(_model_config(cell="lstm", peephole=True, forget_bias=0.0))  # the cell's own options


def test_a_config_saved_with_an_option_its_cell_ignores_still_resumes():
    # A GRU run saved before such options were refused (configs/music.py set peephole=True for every cell)
    from rnnlab.training import checkpoint

    old = smoke_config("tfds", **{"model.cell": "gru", "model.peephole": True})
    now = smoke_config("tfds", **{"model.cell": "gru"})
    assert checkpoint.pinned_diff(checkpoint.config_to_dict(old), now) == []
    lstm = lambda peephole: smoke_config("tfds", **{"model.cell": "lstm", "model.peephole": peephole})
    assert checkpoint.pinned_diff(lstm(True), lstm(False)) == ["model.peephole: saved True, requested False"]

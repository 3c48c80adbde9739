"""Tests of rnnlab.training.train and rnnlab.training.tasks: losses, steps, optimisers, config checks, the loop."""

from __future__ import annotations

import functools
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.special import expit, log_softmax

import rnnlab.data
from rnnlab.training import checkpoint, models, optim, tasks, train
from rnnlab.training.workdir import RESULTS_FILE, TENSORBOARD_DIR, read_metrics

from rnnlab.inference import trained_run
from tests.train_fixtures import fake_batch, fake_spec, smoke_config

@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("tfds")


# --- tasks ------------------------------------------------------------------


def _numpy_stats(task, outputs, batch):
    """Independent NumPy losses: (loss, metric) weighted means."""
    w = batch["weights"]
    t = batch["targets"]
    if task == "classify":
        ce = -log_softmax(outputs, -1)[np.arange(len(t)), t]
        acc = outputs.argmax(-1) == t
        return (ce * w).sum() / w.sum(), (acc * w).sum() / w.sum()
    if task == "regress":
        mse = (outputs[:, 0] - t) ** 2
        return (mse * w).sum() / w.sum(), (mse * w).sum() / w.sum()
    mask = (np.arange(t.shape[1])[None] < batch["lengths"][:, None]) * w[:, None]
    if task == "tag":
        ce = -np.take_along_axis(log_softmax(outputs, -1), t[..., None], -1)[..., 0]
        acc = outputs.argmax(-1) == t
        return (ce * mask).sum() / mask.sum(), (acc * mask).sum() / mask.sum()
    if task == "density":
        p = expit(outputs.astype(np.float64))
        nll = -(t * np.log(p) + (1 - t) * np.log(1 - p)).sum(-1)
        value = (nll * mask).sum() / mask.sum()
        return value, value
    raise ValueError(task)


@pytest.mark.parametrize("task, metric", [("classify", "accuracy"), ("tag", "accuracy"),
                                          ("density", "nll"), ("regress", "mse")])
def test_task_stats_match_numpy(task, metric):
    spec = fake_spec(task)
    batch = fake_batch(spec, batch_size=5, steps=6, seed=1)
    batch["weights"] = np.array([1, 1, 0, 1, 1], np.float32)
    rng = np.random.default_rng(2)
    shape = {"classify": (5, 3), "tag": (5, 6, 3), "density": (5, 6, 3), "regress": (5, 1)}[task]
    outputs = rng.normal(size=shape).astype(np.float32)
    got = tasks.finalize(jax.device_get(tasks.get_task(task)(jnp.asarray(outputs), batch)))
    want_loss, want_metric = _numpy_stats(task, outputs, batch)
    np.testing.assert_allclose(got["loss"], want_loss, rtol=1e-5)
    np.testing.assert_allclose(got[metric], want_metric, rtol=1e-5)


def test_classify_negated_accuracy_counts_only_negated_rows():
    batch = {"targets": np.array([0, 1, 1, 0]), "lengths": np.ones(4, np.int32),
             "weights": np.ones(4, np.float32), "negated": np.array([True, True, False, False])}
    outputs = jnp.asarray([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])  # right, wrong, right, wrong
    stats = tasks.get_task("classify", accuracies=[("negated", "negated_accuracy")])
    got = tasks.finalize(stats(outputs, batch))
    assert got["accuracy"] == 0.5 and got["negated_accuracy"] == 0.5
    batch["negated"] = np.array([True, False, False, False])
    assert tasks.finalize(stats(outputs, batch))["negated_accuracy"] == 1.0
    assert "negated_accuracy" not in tasks.finalize(tasks.classify_stats(outputs, batch))  # not declared


def test_unknown_task_lists_known():
    with pytest.raises(ValueError, match="known tasks: classify, density, regress, tag"):
        tasks.get_task("rank")


# --- steps ------------------------------------------------------------------


def _setup(kind, task="classify", input_kind="tokens", **model_fields):
    config = smoke_config("unused")
    config.model.kind = kind
    config.model.hidden_size, config.model.embed_size, config.model.mlp_sizes = 6, 5, (4,)
    for k, v in model_fields.items():
        config.model[k] = v
    spec = fake_spec(task, input_kind)
    model = models.build_model(config.model, spec)
    tx = optax.adam(1e-2)
    batch = fake_batch(spec)
    state = train.init_state(model, tx, jax.random.PRNGKey(0), batch)
    return model, tx, spec, batch, state


STEP_CASES = [
    ("bag_of_words", "regress", "features", {}),
    ("classifier", "classify", "tokens",
     {"cell": "gru", "num_layers": 2, "dropout": 0.3, "pooling": "attention", "bidirectional": True}),
    ("tagger", "tag", "tokens", {"cell": "tanh"}),
    ("density", "density", "features", {}),
]


@pytest.mark.parametrize("kind, task, input_kind, fields", STEP_CASES)
def test_train_step_changes_every_parameter_and_keeps_loss_finite(kind, task, input_kind, fields):
    model, tx, spec, batch, state = _setup(kind, task, input_kind, **fields)
    step = jax.jit(functools.partial(train.train_step, model=model, tx=tx, task=tasks.get_task(task)))
    new_state, stats = step(state, batch)
    loss = tasks.finalize(jax.device_get(stats))["loss"]
    assert math.isfinite(loss) and int(new_state.step) == 1
    changed = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
                           state.params, new_state.params)
    unchanged = [jax.tree_util.keystr(p) for p, c in jax.tree_util.tree_leaves_with_path(changed) if not c]
    assert not unchanged, f"parameters not updated: {unchanged}"


def test_train_step_is_deterministic_and_dropout_depends_on_step():
    model, tx, spec, batch, state = _setup("bag_of_words", embed_dropout=0.5)
    step = jax.jit(functools.partial(train.train_step, model=model, tx=tx, task=tasks.classify_stats))
    a, _ = step(state, batch)
    b, _ = step(state, batch)
    c, _ = step(state._replace(step=jnp.asarray(5, jnp.int32)), batch)
    assert jax.tree.all(jax.tree.map(lambda x, y: bool(jnp.all(x == y)), a.params, b.params))
    assert not jax.tree.all(jax.tree.map(lambda x, y: bool(jnp.all(x == y)), a.params, c.params))


def test_weight_noise_is_off_by_default_and_zero_changes_nothing():
    assert smoke_config("unused").train.weight_noise == 0.0
    model, tx, spec, batch, state = _setup("bag_of_words", embed_dropout=0.5)
    plain = jax.jit(functools.partial(train.train_step, model=model, tx=tx, task=tasks.classify_stats))
    zero = jax.jit(functools.partial(train.train_step, model=model, tx=tx, task=tasks.classify_stats,
                                     weight_noise=0.0))
    (a, stats_a), (b, stats_b) = plain(state, batch), zero(state, batch)
    assert jax.tree.all(jax.tree.map(lambda x, y: bool(jnp.all(x == y)), (a, stats_a), (b, stats_b)))


def test_weight_noise_takes_the_gradient_at_noisy_weights_and_updates_the_clean_ones():
    # Given: one state, a step with weight noise 0.1 and the same step by hand
    model, tx, spec, batch, state = _setup("bag_of_words")
    state = state._replace(step=jnp.asarray(4, jnp.int32))
    std = 0.1
    noisy_step = jax.jit(functools.partial(train.train_step, model=model, tx=tx, task=tasks.classify_stats,
                                           weight_noise=std))
    eval_fn = jax.jit(functools.partial(train.eval_step, model=model, task=tasks.classify_stats))

    @jax.jit
    def by_hand(state, s):
        key = jax.random.fold_in(jax.random.fold_in(state.rng, s), train.WEIGHT_NOISE_STREAM)
        noisy = train.add_weight_noise(state.params, key, std)

        def loss(params):
            total, count = tasks.classify_stats(model.apply({"params": params}, batch["inputs"], batch["lengths"],
                                                            deterministic=True), batch)["loss"]
            return total / count

        value, grads = jax.value_and_grad(loss)(noisy)
        updates, _ = tx.update(grads, state.opt_state, state.params)
        return noisy, value, optax.apply_updates(state.params, updates)

    noisy, noisy_loss, want = by_hand(state, 4)

    # When
    new_state, stats = noisy_step(state, batch)

    # Then: every leaf got its own noise of about std; the update is the one at the noisy weights,
    # applied to the clean ones; the loss is the noisy one; evaluation reads the clean weights
    deltas = [np.asarray(n) - np.asarray(p) for n, p in zip(jax.tree.leaves(noisy), jax.tree.leaves(state.params))]
    assert all(np.all(d != 0) for d in deltas)
    assert 0.08 < np.concatenate([d.ravel() for d in deltas]).std() < 0.12
    for got, expected in zip(jax.tree.leaves(new_state.params), jax.tree.leaves(want)):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    loss_of = lambda stats: float(stats["loss"][0] / stats["loss"][1])
    assert loss_of(stats) == pytest.approx(float(noisy_loss), rel=1e-5)
    clean_loss = loss_of(eval_fn(state.params, batch))  # no dropout here: the clean training loss
    assert abs(loss_of(stats) - clean_loss) > 1e-4
    # and the next step draws new noise
    assert not np.array_equal(jax.tree.leaves(by_hand(state, 5)[0])[0], jax.tree.leaves(noisy)[0])


def test_eval_padding_rows_with_weight_zero_change_nothing():
    model, tx, spec, batch, state = _setup("bag_of_words")
    eval_fn = jax.jit(functools.partial(train.eval_step, model=model, task=tasks.classify_stats))
    padded = {k: np.concatenate([v, v[:3]]) for k, v in batch.items()}
    padded["weights"][len(batch["weights"]):] = 0.0
    padded["targets"][len(batch["targets"]):] = 1 - padded["targets"][:3].clip(0, 1)
    np.testing.assert_allclose(
        list(train.evaluate(eval_fn, state.params, [padded]).values()),
        list(train.evaluate(eval_fn, state.params, [batch]).values()), rtol=1e-6)


def test_count_params_leaves_out_paths_containing_exclude():
    params = {"embed": {"embedding": np.zeros((7, 3))}, "encoder": {"w_x": np.zeros((3, 4)), "b": np.zeros(4)}}
    assert train.count_params(params) == 16
    assert train.count_params(params, exclude=()) == 37
    assert train.count_params(params, exclude=("embed", "b")) == 12


# --- optimisers ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(train.OPTIMIZERS))
def test_every_optimizer_lowers_a_quadratic(name):
    config = smoke_config("unused").optim
    config.name, config.learning_rate, config.weight_decay = name, 0.1, 1e-4
    tx = train.make_optimizer(config, num_steps=50)
    params = {"x": jnp.array([3.0, -2.0])}
    opt_state = tx.init(params)
    for _ in range(50):
        grads = jax.grad(lambda p: jnp.sum(p["x"] ** 2))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
    assert float(jnp.sum(params["x"] ** 2)) < 1.0


def test_peephole_lr_scale_scales_only_the_peepholes_steps():
    # Adam's first step moves every parameter by about the learning rate; with peephole_lr_scale the
    # LSTM's peephole vectors (p_i, p_f, p_o, at any depth of the tree) move by that much times the scale.
    config = smoke_config("unused").optim
    config.name, config.learning_rate, config.clip_norm, config.peephole_lr_scale = "adam", 0.1, 0.0, 0.01
    params = {"rnn": {"layer_0": {"w_h": jnp.ones(3), "p_f": jnp.ones(3), "p_o": jnp.ones(3)}}}
    tx = train.make_optimizer(config, num_steps=10)
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = tx.update(grads, tx.init(params), params)
    layer = updates["rnn"]["layer_0"]
    np.testing.assert_allclose(layer["w_h"], -0.1, rtol=1e-4)
    np.testing.assert_allclose(layer["p_f"], -0.001, rtol=1e-4)
    np.testing.assert_allclose(layer["p_o"], -0.001, rtol=1e-4)


def test_average_decay_keeps_the_debiased_moving_average_of_the_params_a_numpy_loop_computes():
    # SGD on a quadratic with optim.average_decay = 0.8: the updates are those of SGD alone, and the optimizer
    # state holds the average (1 - d) * sum_k d^(t-k) p_k / (1 - d^t) of the params after each of the t updates
    config = smoke_config("unused").optim
    config.name, config.learning_rate, config.momentum, config.clip_norm = "sgd", 0.1, 0.0, 0.0
    plain = train.make_optimizer(config, num_steps=10)
    config.average_decay = 0.8
    averaging = train.make_optimizer(config, num_steps=10)
    params = {"x": jnp.array([3.0, -2.0]), "y": jnp.array(1.5)}
    state = averaging.init(params)
    np.testing.assert_array_equal(optim.averaged_params(state, params)["x"], params["x"])  # before any update
    plain_state, trajectory, current = plain.init(params), [], params
    for _ in range(6):
        grads = jax.grad(lambda p: jnp.sum(p["x"] ** 2) + p["y"] ** 4)(current)
        updates, state = averaging.update(grads, state, current)
        same, plain_state = plain.update(grads, plain_state, current)
        jax.tree.map(np.testing.assert_array_equal, updates, same)
        current = optax.apply_updates(current, updates)
        trajectory.append(jax.tree.map(np.asarray, current))
    d, t = 0.8, len(trajectory)
    for name in ("x", "y"):
        expected = sum((1 - d) * d ** (t - k) * p[name] for k, p in enumerate(trajectory, 1)) / (1 - d ** t)
        np.testing.assert_allclose(optim.averaged_params(state, current)[name], expected, rtol=1e-6)
    assert not np.allclose(optim.averaged_params(state, current)["x"], current["x"])
    with pytest.raises(ValueError, match="params"):
        averaging.update(grads, state)


def test_a_run_with_average_decay_evaluates_keeps_and_serves_the_average(data_dir, tmp_path):
    config = smoke_config(data_dir, **{"optim.average_decay": 0.9, "train.early_stopping_metric": ""})
    results = train.train_and_evaluate(config, str(tmp_path / "run"))
    served = trained_run.restore(str(tmp_path / "run"), params="state")
    checkpoints = checkpoint.Checkpointer(os.path.join(str(tmp_path / "run"), "checkpoints"))
    raw = checkpoints._manager.restore(checkpoints.steps()[-1])["arrays"]["state"]
    average, total = raw["opt_state"][-1]["average"], raw["opt_state"][-1]["total"]  # chained last
    assert 0 < float(total) < 1
    expected = jax.tree.map(lambda a: np.asarray(a) / float(total), average)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), served.params, expected)
    assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(served.params), jax.tree.leaves(raw["params"])))
    assert results["step"] == config.train.num_steps


def test_schedule_warms_up_then_decays():
    config = smoke_config("unused").optim
    config.learning_rate, config.warmup_steps, config.schedule, config.decay_rate = 1.0, 10, "cosine", 0.1
    schedule = train.make_schedule(config, num_steps=110)
    assert float(schedule(0)) == 0.0 and float(schedule(5)) == pytest.approx(0.5)
    assert float(schedule(10)) == pytest.approx(1.0) and float(schedule(110)) == pytest.approx(0.1)


# --- config checks ------------------------------------------------------------

BAD_CONFIGS = [
    ("model.cell", "lstmm", "config.model.cell: unknown cell 'lstmm'; known cells: gru, .*lstm, .*tanh"),
    ("train.weight_noise", -0.1, "config.train.weight_noise must be a number >= 0, got -0.1"),
    ("data.name", "imdb", "data.name: unknown dataset 'imdb'; known datasets:"),
    ("optim.name", "adagrad", "config.optim.name must be one of adam, rmsprop, sgd"),
    ("model.pooling", "min", "config.model.pooling: unknown pooling 'min'"),
    ("model.kind", "transformer", "config.model.kind: unknown model 'transformer'"),
    ("model.hidden_size", -4, "config.model.hidden_size must be a positive integer, got -4"),
    ("model.num_layers", 0, "config.model.num_layers must be a positive integer"),
    ("data.batch_size", -1, "config.data.batch_size must be a positive integer"),
    ("optim.learning_rate", -1.0, "config.optim.learning_rate must be a positive number"),
    ("optim.average_decay", 1.0, r"config.optim.average_decay must lie in \[0, 1\)"),
    ("train.num_steps", -10, "config.train.num_steps must be a positive integer"),
    ("model.dropout", 1.5, r"config.model.dropout must lie in \[0, 1\)"),
    ("train.loss_mask", "target_mask", "config.train.loss_mask 'target_mask' needs a per-step task"),
]


@pytest.mark.parametrize("path, value, message", BAD_CONFIGS)
def test_bad_config_value_fails_before_any_compile(tmp_path, path, value, message):
    config = smoke_config(tmp_path / "tfds", **{path: value})
    with train.CompileCounter() as compiles, pytest.raises(ValueError, match=message):
        train.train_and_evaluate(config, str(tmp_path / "run"))
    assert compiles.count == 0
    assert not (tmp_path / "run").exists()


def test_model_kind_must_serve_the_task():
    config = smoke_config("unused")
    config.model.kind = "tagger"
    with pytest.raises(ValueError, match="serves tasks tag, but dataset 'fake' is a 'classify' task; "
                                         "kinds for it: bag_of_words, classifier"):
        models.build_model(config.model, fake_spec("classify"))


# --- the loop -------------------------------------------------------------------


def test_train_and_evaluate_smoke_writes_results_metrics_and_events(data_dir, tmp_path):
    config = smoke_config(data_dir)
    workdir = str(tmp_path / "run")
    results = train.train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, RESULTS_FILE)) as f:
        assert json.load(f) == json.loads(json.dumps(results))
    assert results["step"] == config.train.num_steps
    saved = trained_run.restore(workdir).params
    embedding = saved["encoder"]["inputs"]["embed"]["embedding"]
    assert results["num_params_all"] == sum(np.size(x) for x in jax.tree.leaves(saved))
    assert results["num_params"] == results["num_params_all"] - np.size(embedding) > 0
    assert 0.0 <= results["test"]["accuracy"] <= 1.0 and "negated_accuracy" in results["test"]
    n_buckets = len(config.data.buckets)
    assert 1 <= results["compilations"]["train_step"] <= n_buckets
    assert 1 <= results["compilations"]["eval_step"] <= n_buckets
    assert isinstance(results["compilations"]["total"], int)  # cache hits (tests/session.py) do not count
    records = read_metrics(workdir)
    assert all(isinstance(r["step"], int) for r in records)
    train_lines = [r for r in records if "train/loss" in r]
    assert [r["step"] for r in train_lines] == list(range(2, config.train.num_steps + 1, 2))
    assert all("train/steps_per_sec" in r and "train/tokens_per_sec" in r for r in train_lines)
    assert [r["step"] for r in records if "valid/accuracy" in r] == [3, 6]
    assert os.listdir(os.path.join(workdir, TENSORBOARD_DIR))
    assert checkpoint.Checkpointer(os.path.join(workdir, "checkpoints")).steps() == [3, 6]


class _NaNAfter:
    """A train loader whose batches get NaN weights from the ``n``-th on."""

    def __init__(self, loader, n):
        self._loader, self._n, self._count = loader, n, 0

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self._loader)
        self._count += 1
        if self._count >= self._n:
            batch["weights"] = np.full_like(batch["weights"], np.nan)
        return batch

    def get_state(self):
        return self._loader.get_state()

    def set_state(self, state):
        self._loader.set_state(state)


def test_nan_loss_stops_with_its_step_and_keeps_the_last_good_checkpoint(data_dir, tmp_path, monkeypatch):
    make_loader = rnnlab.data.make_loader

    def loader_with_nan(data_config, split, **kwargs):
        loader = make_loader(data_config, split, **kwargs)
        return _NaNAfter(loader, 5) if split == "train" else loader

    monkeypatch.setattr(rnnlab.data, "make_loader", loader_with_nan)
    workdir = tmp_path / "run"
    with pytest.raises(FloatingPointError, match="stopped at step 5: loss nan.*last good checkpoint is step 3.*"
                                                 "Lower config.optim.learning_rate.*a new --workdir"):
        train.train_and_evaluate(smoke_config(data_dir, "bow,smoke"), str(workdir))
    assert checkpoint.Checkpointer(str(workdir / "checkpoints")).steps() == [3]

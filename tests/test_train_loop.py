"""Tests of the training loop's parts: boundaries, windows, finiteness checks, early stopping,
restore-or-init, the recorder and the compiled steps' trace counts (rnnlab.training.loop, position,
metrics, steps)."""

from __future__ import annotations

import collections
import json
import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from rnnlab.training import checkpoint, loop, metrics, models, position, steps, tasks
from rnnlab.training.sharding import make_mesh, replicate, shard_batch
from rnnlab.training.workdir import METRICS_FILE, read_metrics
from tests.train_fixtures import fake_batch, fake_spec, smoke_config


def _tc(**fields):
    tc = ml_collections.ConfigDict({"num_steps": 20, "log_every": 4, "eval_every": 6, "checkpoint_every": 0,
                                    "eval_split": "valid", "test_split": "test", "early_stopping_metric": "",
                                    "early_stopping_mode": "max", "patience": 0, "seed": 0})
    tc.update(fields)
    return tc


def _stats(loss: float, grad_norm: float = 1.0) -> tasks.Stats:
    return {"loss": (jnp.float32(loss * 2), jnp.float32(2.0)), "grad_norm": (jnp.float32(grad_norm), jnp.float32(1.0))}


class _Signal:
    def __init__(self, after=None):
        self.received, self.after, self.calls = None, after, 0


# --- boundaries and windows ------------------------------------------------------


def test_next_boundary_is_the_first_log_eval_checkpoint_or_last_step():
    tc = _tc(log_every=4, eval_every=6, checkpoint_every=10, num_steps=22)
    assert [loop.next_boundary(s, tc) for s in (0, 4, 6, 8, 10, 12, 18, 20, 21)] == [4, 6, 8, 10, 12, 16, 20, 22, 22]
    off = _tc(log_every=5, eval_every=0, checkpoint_every=0, num_steps=7)
    assert [loop.next_boundary(s, off) for s in (0, 5, 6)] == [5, 7, 7]


def test_train_steps_runs_until_the_boundary_and_sums_stats_and_tokens():
    # Given: a train_fn that counts, and batches of 3 rows with 2 valid steps each
    calls = []

    def train_fn(state, batch):
        calls.append(batch["lengths"].sum())
        return state + 1, _stats(loss=float(state))

    batches = iter([{"lengths": np.full(3, 2)}] * 10)
    window = loop.Window(start=4)
    # When
    state, step, checks = loop.train_steps(train_fn, 0, batches, lambda b: b, 4, 7, window)
    # Then: steps 5, 6, 7 ran; the window holds their summed stats and tokens
    assert (state, step) == (3, 7) and [c[0] for c in checks] == [5, 6, 7]
    assert window.tokens == 18 and tasks.finalize(jax.device_get(window.stats))["loss"] == pytest.approx(1.0)
    window.seconds = 1.5
    numbers = window.metrics(7, learning_rate=0.1)
    assert numbers["train/steps_per_sec"] == pytest.approx(2.0) and numbers["train/tokens_per_sec"] == 12.0
    assert numbers["train/learning_rate"] == pytest.approx(0.1) and numbers["train/loss"] == pytest.approx(1.0)


def test_train_steps_stops_before_the_next_step_after_a_signal():
    stop = _Signal()

    def train_fn(state, batch):
        stop.received = 15  # arrives during the first step
        return state + 1, _stats(0.5)

    state, step, checks = loop.train_steps(train_fn, 0, iter([{"lengths": np.ones(2)}] * 5), lambda b: b, 0, 5,
                                           loop.Window(0), stop)
    assert step == 1 and len(checks) == 1


def test_check_finite_names_the_first_bad_step_and_the_last_checkpoint():
    checks = [(s, *_stats(v).values()) for s, v in ((4, 0.3), (5, float("nan")), (6, float("inf")))]
    with pytest.raises(FloatingPointError, match="stopped at step 5: loss nan.*last good checkpoint is step 3 in /ck"):
        loop.check_finite(checks, 3, "/ck")
    bad_gradient = [(2, *_stats(0.1, grad_norm=float("inf")).values())]
    with pytest.raises(FloatingPointError, match="step 2: loss .*gradient norm inf; no checkpoint was saved"):
        loop.check_finite(bad_gradient, None, "/ck")
    loop.check_finite(checks[:1], None, "/ck")  # finite: nothing raised


# --- early stopping ----------------------------------------------------------------


@pytest.mark.parametrize("mode, values, best, best_step", [("max", [0.5, 0.7, 0.6, 0.6], 0.7, 2),
                                                           ("min", [0.5, 0.7, 0.6, 0.4], 0.4, 4)])
def test_early_stopping_keeps_the_best_and_counts_evaluations_without_one(mode, values, best, best_step):
    early = position.EarlyStopping()
    for step, value in enumerate(values, start=1):
        early = early.update(value, step, mode)
    assert (early.best, early.best_step) == (best, best_step)
    assert early.bad_evals == len(values) - best_step
    assert early.exhausted(2) == (early.bad_evals >= 2) and not early.exhausted(0)


def _run(tmp_path, tc, evaluate_split=None):
    config = ml_collections.ConfigDict({"train": tc, "data": {}})
    loader = types.SimpleNamespace(get_state=lambda: {"epoch": 0}, set_state=lambda s: loader.states.append(s),
                                   states=[])
    return position.Run(config=config, spec=None, mesh=make_mesh(1), shard={}, loader=loader, train_fn=None,
                        eval_fn=None, schedule=lambda s: 0.1,
                        checkpoints=checkpoint.Checkpointer(str(tmp_path / "checkpoints")),
                        pinned={"model.cell": "lstm"}, fingerprint={"dataset": "fake", "fingerprint": "o1"})


def test_evaluate_and_track_copies_the_best_params_and_stops_after_patience(tmp_path, monkeypatch):
    # Given: evaluations that improve once, then stay flat
    values = iter([0.5, 0.8, 0.7, 0.7])
    monkeypatch.setattr(loop, "evaluate_split", lambda run, split, params, carry: {"accuracy": next(values)})
    run = _run(tmp_path, _tc(early_stopping_metric="accuracy", patience=2))
    recorded = []
    recorder = types.SimpleNamespace(record=lambda step, numbers, **kw: recorded.append((step, numbers)))
    at = position.Position(state=types.SimpleNamespace(params={"w": np.zeros(1)}, opt_state=(), carry=None), step=0,
                           best_params=None)
    # When: four evaluations, the params changing before each
    for step in (1, 2, 3, 4):
        at.step, at.state = step, types.SimpleNamespace(params={"w": np.full(1, step)}, opt_state=(), carry=None)
        loop.evaluate_and_track(run, at, recorder)
    # Then: the best is step 2's, and two flat evaluations ended the run
    assert at.early.best_step == 2 and at.best_params["w"][0] == 2 and at.stopped_early
    assert recorded[1] == (2, {"valid/accuracy": 0.8}) and at.last_eval == (4, {"accuracy": 0.7})
    run.checkpoints.close()


def test_final_results_evaluate_the_best_params_again(tmp_path, monkeypatch):
    evaluated = []

    def evaluate_split(run, split, params, carry):
        evaluated.append((split, float(np.asarray(params["w"])[0])))
        return {"accuracy": float(np.asarray(params["w"])[0])}

    monkeypatch.setattr(loop, "evaluate_split", evaluate_split)
    run = _run(tmp_path, _tc(early_stopping_metric="accuracy"))
    recorder = types.SimpleNamespace(record=lambda *a, **kw: None)
    at = position.Position(state=types.SimpleNamespace(params={"w": np.full(1, 9.0)}, opt_state=(), carry=None), step=9,
                           best_params={"w": np.full(1, 4.0)}, early=position.EarlyStopping(0.4, 4, 5),
                           last_eval=(9, {"accuracy": 9.0}))
    results = loop.final_results(run, at, recorder)
    assert evaluated == [("valid", 4.0), ("test", 4.0)]  # the best params, not the last ones
    assert results["best_step"] == 4 and results["valid"] == {"accuracy": 4.0} and results["step"] == 9
    run.checkpoints.close()


# --- restore or init -----------------------------------------------------------------


def _state(value: float) -> steps.TrainState:
    return steps.TrainState(np.asarray(int(value), np.int32), {"w": np.full(3, value, np.float32)},
                            (), np.zeros(2, np.uint32))


def test_restore_or_init_starts_fresh_then_resumes_what_save_wrote(tmp_path):
    # Given: a run without checkpoints
    run = _run(tmp_path, _tc(early_stopping_metric="accuracy", patience=3))
    fresh = position.restore_or_init(run, _state(0))
    assert fresh.step == 0 and fresh.last_saved is None and fresh.early == position.EarlyStopping()
    # When: a position is saved, and a new run restores
    saved = position.Position(_state(5), 5, {"w": np.full(3, 2.0, np.float32)}, position.EarlyStopping(0.9, 2, 3),
                              stopped_early=True)
    position.save(run, saved)
    restored = position.restore_or_init(run, _state(0))
    # Then: everything comes back, and the loader is moved to the saved data position
    assert saved.last_saved == 5 and restored.step == 5 and restored.last_saved == 5 and restored.stopped_early
    assert restored.early == position.EarlyStopping(0.9, 2, 3) and restored.best_params["w"][0] == 2.0
    assert run.loader.states == [{"epoch": 0}]
    run.checkpoints.close()


def test_restore_or_init_refuses_a_checkpoint_of_another_run_or_other_data(tmp_path):
    run = _run(tmp_path, _tc())
    position.save(run, position.Position(_state(2), 2, {"w": np.zeros(3, np.float32)}))
    with pytest.raises(ValueError, match=r"(?s)saved by another run.*model.cell: saved 'lstm', requested 'gru'"):
        position.restore_or_init(run._replace(pinned={"model.cell": "gru"}), _state(0))
    with pytest.raises(ValueError, match=r"(?s)the data changed.*fingerprint: 'o1' when saved, 'o2' now"):
        position.restore_or_init(run._replace(fingerprint={"dataset": "fake", "fingerprint": "o2"}), _state(0))
    run.checkpoints.close()


# --- the recorder and the compiled steps -------------------------------------------------


def test_recorder_writes_every_record_to_the_jsonl_and_the_log(tmp_path, monkeypatch):
    logged = []  # the log lines (absl's handler state depends on the tests run before this one)
    monkeypatch.setattr(metrics, "log_metrics", lambda *args, **kw: logged.append(metrics.format_metrics(*args, **kw)))
    with metrics.Recorder(str(tmp_path), 0, 10) as recorder:
        recorder.record(2, {"train/loss": 0.5}, eta=4.0)
        recorder.record(3, {"valid/accuracy": 0.75})
    assert read_metrics(str(tmp_path)) == [{"step": 2, "train/loss": 0.5}, {"step": 3, "valid/accuracy": 0.75}]
    assert logged == ["step 2/10  train/loss 0.5000  eta 4s", "step 3/10  valid/accuracy 0.7500"]
    with metrics.Recorder(str(tmp_path), 2, 10, enabled=False) as quiet:
        quiet.record(5, {"train/loss": 0.1})
    assert [json.loads(line)["step"] for line in open(tmp_path / METRICS_FILE)] == [2, 3]


def test_compile_steps_counts_one_trace_per_batch_shape():
    config = smoke_config("unused", "bow,smoke")
    spec = fake_spec("classify")
    model = models.build_model(config.model, spec)
    tx = optax.sgd(0.1)
    mesh = make_mesh(1)
    traces = collections.Counter()
    train_fn, eval_fn = steps.compile_steps(model, tx, tasks.classify_stats, mesh, traces=traces)
    state = replicate(steps.init_state(model, tx, jax.random.PRNGKey(0), fake_batch(spec)), mesh)
    for num_steps in (7, 7, 5):
        batch = shard_batch(fake_batch(spec, steps=num_steps), mesh)
        state, _ = train_fn(state, batch)
        eval_fn(state.params, batch)
    assert traces == {"train_step": 2, "eval_step": 2}

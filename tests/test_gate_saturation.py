"""Tests of the per-unit keep-gate saturation (rnnlab.analysis.gate_analysis) on smoke runs (seconds).

The kept fractions are checked against NumPy loops of the cells (tests/reference.py) over the
restored params, and the keep convention of each cell family against the cell's own dynamics.
"""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

import rnnlab
from rnnlab.analysis import saturation_report
from rnnlab.analysis import saturation
from rnnlab.inference import trained_run
from rnnlab.training import train
from tests import reference
from tests.train_fixtures import smoke_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two smoke runs of the negation corpus in one folder:

    ``lstm__seed0``: a 2-layer bidirectional LSTM, 12 steps, checkpoints every 3, 2 kept (9, 12);
    ``gru__seed0``: a GRU whose learning rate (1e-30) leaves its params at their initial values.
    """
    root = tmp_path_factory.mktemp("saturation")
    lstm = smoke_config(root / "tfds", "cell=lstm,bidirectional,layers=2,smoke", **{
        "train.num_steps": 12, "train.max_to_keep": 2, "optim.learning_rate": 1e-2})
    gru = smoke_config(root / "tfds", "cell=gru,smoke", **{"optim.learning_rate": 1e-30, "train.seed": 3})
    dirs = {"lstm": str(root / "runs" / "lstm__seed0"), "gru": str(root / "runs" / "gru__seed3")}
    results = {"lstm": train.train_and_evaluate(lstm, dirs["lstm"]),
               "gru": train.train_and_evaluate(gru, dirs["gru"])}
    return dirs, results


# ----------------------------------------------------------------------------- NumPy reference


def _reference_keep(kind, params, xs, length, reverse, forget_bias=1.0):
    """``(keep f64[length, H] in time order, ys f64[T, H])``: the kept fraction of one layer and direction.

    Written from the equations: LSTM ``f = sigmoid(x W_f + h U_f + b_f + forget_bias)``, GRU
    ``z = sigmoid(x W_z + h U_z + b_z)`` (rnnlab's GRU keeps ``z * h``); the state is carried by
    ``tests/reference.py``'s steps.
    """
    block = {"lstm": (1, 4), "gru": (1, 3)}[kind]  # (forget | update block, number of blocks)
    w_x, w_h, b = (np.split(np.asarray(params[k], np.float64), block[1], axis=-1)[block[0]]
                   for k in ("w_x", "w_h", "b"))
    carry = reference.zero_carry(kind, w_h.shape[0])
    keep, ys = np.zeros((length, w_h.shape[0])), np.zeros((xs.shape[0], w_h.shape[0]))
    for t in (range(length - 1, -1, -1) if reverse else range(length)):
        h = carry[0] if kind == "lstm" else carry
        a = xs[t] @ w_x + h @ w_h + b + (forget_bias if kind == "lstm" else 0.0)
        keep[t] = reference.sigmoid(a)
        carry, ys[t] = (reference.lstm_step(params, carry, xs[t], forget_bias=forget_bias) if kind == "lstm"
                        else reference.gru_step(params, carry, xs[t]))
    return keep, ys


def _reference_layers(run, batches):
    """``[f64[S, H]]`` per layer and direction, steps in the order of ``keep_values``."""
    config, params = run.config.model, run.params["encoder"]
    embedding = np.asarray(params["inputs"]["embed"]["embedding"], np.float64)
    directions = ("fwd", "bwd") if config.bidirectional else ("fwd",)
    out = [[] for _ in range(config.num_layers * len(directions))]
    for inputs, lengths, valid in batches:
        for ids, n, row in zip(inputs, lengths, valid):
            if not row.any():
                continue
            xs = embedding[ids]
            for i in range(config.num_layers):
                layer = params["rnn"][f"layer_{i}"]
                ys = []
                for k, d in enumerate(directions):
                    p = layer[d] if config.bidirectional else layer
                    keep, y = _reference_keep(config.cell, p, xs, int(n), d == "bwd", config.forget_bias)
                    out[i * len(directions) + k].append(keep)
                    ys.append(y)
                xs = np.concatenate(ys, axis=-1)
    return [np.concatenate(v) for v in out]


def _between(values, q):
    """A threshold near quantile ``q`` of ``values`` with no value within 1e-4 of it."""
    v = np.unique(np.asarray(values).ravel())
    gaps = np.flatnonzero(np.diff(v) > 2e-4)
    i = gaps[np.argmin(np.abs(gaps - q * len(v)))]
    return float((v[i] + v[i + 1]) / 2)


# ----------------------------------------------------------------------------- tests


def test_keep_gate_lstm_forget_gru_update_min_gru_complement():
    assert saturation.keep_gate("lstm").transform == "forget"
    assert saturation.keep_gate("gru").transform == "update"
    assert saturation.keep_gate("min_gru").transform == "1 - update"
    np.testing.assert_allclose(saturation.keep_gate("min_gru").keep(np.array([0.2, 0.9])), [0.8, 0.1])
    assert set(saturation.KEEP_GATES) <= set(rnnlab.cell_names())
    for cell, why in (("tanh", "has no gate"), ("lstm_nfg", "no forget gate"), ("gru_nug", "no update gate"),
                      ("my_cell", "not an LSTM- or GRU-family")):
        with pytest.raises(ValueError, match=why):
            saturation.keep_gate(cell)


@pytest.mark.parametrize("cell, num_blocks, biases", [
    ("lstm", 4, {1: 20.0, 0: -20.0}),  # forget f ~ 1 keeps c (and input i ~ 0 adds nothing)
    ("gru", 3, {1: 20.0}),             # update z ~ 1 keeps h (rnnlab's and PyTorch's convention)
    ("min_gru", 2, {0: -20.0}),        # minGRU: z ~ 0 keeps h
])
def test_keep_near_one_means_the_cell_keeps_its_state(cell, num_blocks, biases):
    # Given a cell whose keep gate is pushed to "keep" by its bias, and a random old state
    H, D = 4, 3
    c = rnnlab.get_cell(cell, H)
    params = dict(c.init(jax.random.PRNGKey(0), D))
    b = np.array(params["b"]).reshape(num_blocks, H)
    for block, bias in biases.items():
        b[block] = bias
    params["b"] = b.reshape(-1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=D).astype(np.float32)
    h0 = rng.normal(size=H).astype(np.float32)
    carry = rnnlab.LSTMState(h=h0, c=h0 * 2) if cell == "lstm" else h0
    # When one step runs and its gates are read
    new, _ = c.step(params, carry, x)
    gates = c.gates(params, carry, x)
    keep = saturation.keep_gate(cell).keep(np.asarray(gates[saturation.keep_gate(cell).gate]))
    # Then the reported keep is ~1 and the state (c for the LSTM, h for the GRUs) is the old one
    np.testing.assert_allclose(keep, 1.0, atol=1e-4)
    old, kept = (h0 * 2, new.c) if cell == "lstm" else (h0, new)
    np.testing.assert_allclose(np.asarray(kept), old, atol=1e-3)


def test_unit_statistics_by_hand():
    # Given 4 steps of 3 units
    keep = np.array([[0.95, 0.05, 0.5], [0.91, 0.5, 0.1], [0.2, 0.02, 0.9], [0.99, 0.03, 0.6]])
    s = saturation.unit_statistics(keep, high=0.9, low=0.1, memory_fraction=0.75)
    np.testing.assert_allclose(s["per_unit"]["near_1"], [0.75, 0.0, 0.25])
    np.testing.assert_allclose(s["per_unit"]["near_0"], [0.0, 0.75, 0.25])
    np.testing.assert_allclose(s["per_unit"]["mean"], keep.mean(0))
    assert (s["memory_units"], s["reset_units"], s["units"], s["steps"]) == (1, 1, 3, 4)
    assert s["near_1"] == pytest.approx(4 / 12) and s["near_0"] == pytest.approx(4 / 12)
    with pytest.raises(ValueError, match="S > 0"):
        saturation.unit_statistics(np.zeros((0, 3)))


def test_restore_step_lists_kept_checkpoints_and_refuses_others(runs):
    dirs, results = runs
    assert trained_run.checkpoint_steps(dirs["lstm"]) == [9, 12]
    last = trained_run.restore(dirs["lstm"], params="state")
    assert (last.step, last.params_step, last.best_step) == (12, 12, results["lstm"]["best_step"])
    best = last.at_step(9, "best")
    assert best.step == 9 and best.params_step == best.best_step <= 9
    with pytest.raises(ValueError, match=r"keeps no checkpoint of step 3; it keeps \[9, 12\]"):
        trained_run.restore(dirs["lstm"], step=3)
    with pytest.raises(ValueError, match="params must be one of"):
        last.at_step(12, "newest")
    # the default is unchanged: as the training loop ends (best params under early stopping)
    final = trained_run.restore(dirs["lstm"])
    assert final.step == 12 and final.params_step == results["lstm"]["best_step"]


def test_init_is_rebuilt_from_the_runs_seed(runs):
    # Given the GRU run whose learning rate of 1e-30 left every param where training started
    dirs, _ = runs
    trained = trained_run.restore(dirs["gru"], params="state")
    # When its initialisation is rebuilt from the config (no checkpoint holds step 0)
    init = trained.at_step(0)
    # Then it is the params the training loop started from (zero biases moved by ~1e-30 only)
    assert init.step == 0 and init.params_step == 0
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-20), init.params, trained.params)
    # And another seed gives other params
    config = trained_run.read_config(dirs["gru"])
    config.train.seed = 4
    moved = dataclasses.replace(trained, config=config, _tracer=None).at_step(0).params
    assert not np.allclose(moved["encoder"]["rnn"]["layer_0"]["w_h"], init.params["encoder"]["rnn"]["layer_0"]["w_h"])


def test_lstm_keep_fractions_match_numpy_per_layer_and_direction(runs):
    # Given the 2-layer bidirectional LSTM at its first kept checkpoint, and 12 test examples
    dirs, _ = runs
    run = trained_run.restore(dirs["lstm"], step=9, params="state")
    batches = saturation.evaluation_batches(run, "test", max_examples=12)
    assert sum(int(v.any(axis=1).sum()) for _, _, v in batches) == 12
    # When the kept fractions are traced, and computed by NumPy loops of the cell
    traced = saturation.keep_values(run, batches)
    expected = _reference_layers(run, batches)
    # Then every layer and direction agrees step by step
    assert [(v["layer"], v["direction"]) for v in traced] == [(0, "fwd"), (0, "bwd"), (1, "fwd"), (1, "bwd")]
    for v, ref in zip(traced, expected):
        assert v["keep"].shape == ref.shape == (sum(int(n.sum()) for _, _, n in batches), 8)
        np.testing.assert_allclose(v["keep"], ref, atol=2e-5)
        # And so do the per-unit fractions, at thresholds the values straddle
        high, low = _between(ref, 0.7), _between(ref, 0.3)
        got = saturation.unit_statistics(v["keep"], high, low, memory_fraction=0.5)
        np.testing.assert_array_equal(got["per_unit"]["near_1"], np.mean(ref >= high, axis=0))
        np.testing.assert_array_equal(got["per_unit"]["near_0"], np.mean(ref <= low, axis=0))
        assert got["memory_units"] == int(np.sum(np.mean(ref >= high, axis=0) >= 0.5))
        assert 0 < got["near_1"] < 1 and 0 < got["near_0"] < 1


def test_gru_keep_is_the_update_gate_not_its_complement(runs):
    dirs, _ = runs
    run = trained_run.restore(dirs["gru"], params="state")
    batches = saturation.evaluation_batches(run, "test", max_examples=5)
    (traced,) = saturation.keep_values(run, batches)
    (z,) = _reference_layers(run, batches)
    np.testing.assert_allclose(traced["keep"], z, atol=2e-5)
    assert np.abs((1.0 - z) - z).max() > 1e-2  # the complement would have failed


def test_saturation_report_checkpoints_groups_and_skips(runs, tmp_path):
    # Given the two runs, a second seed of the LSTM (a copy: same values), a tanh run and a plain folder
    dirs, results = runs
    root = tmp_path / "runs"
    shutil.copytree(dirs["lstm"], root / "lstm__seed0")
    shutil.copytree(dirs["lstm"], root / "lstm__seed1")
    shutil.copytree(dirs["gru"], root / "gru__seed3")
    os.makedirs(root / "tanh__seed0")
    config = json.load(open(os.path.join(dirs["gru"], "config.json")))
    config["model"]["cell"] = "tanh"
    json.dump(config, open(root / "tanh__seed0" / "config.json", "w"))
    json.dump({"step": 6}, open(root / "tanh__seed0" / "results.json", "w"))
    os.makedirs(root / "notes")
    workdirs = [str(root / n) for n in ("lstm__seed0", "lstm__seed1", "gru__seed3", "tanh__seed0", "notes")]
    # When the report is written
    out = str(tmp_path / "out")
    data = saturation_report.saturation_report(workdirs, out, max_examples=16, targets=["valid/accuracy>=0.99"])
    # Then it writes the three files, groups the seeds and skips what it cannot measure
    assert sorted(os.listdir(out)) == ["saturation.json", "saturation.md", "saturation.png"]
    assert list(data["groups"]) == ["gru", "lstm"]
    assert [s["run"] for s in data["skipped"]] == ["tanh__seed0", "notes"]
    assert "tanh RNN has no gate" in data["skipped"][0]["reason"]
    assert "not a run directory" in data["skipped"][1]["reason"]
    lstm, gru = data["groups"]["lstm"], data["groups"]["gru"]
    assert gru["keep"] == "update" and lstm["keep"] == "forget" and lstm["seeds"] == [0, 0]
    # And each run has init, first kept, last and best with their steps
    record = lstm["runs"][0]
    assert record["kept_steps"] == [9, 12] and not record["first_is_first_saved"]
    assert {k: v["step"] for k, v in record["checkpoints"].items()} == {"init": 0, "first": 9, "last": 12,
                                                                        "best": 12}
    assert record["best_step"] == results["lstm"]["best_step"] == record["checkpoints"]["best"]["params_step"]
    assert record["learned"] is (results["lstm"]["valid"]["accuracy"] >= 0.99)
    # And init differs from the trained params
    init, last = (np.concatenate([l["per_unit"]["mean"] for l in record["checkpoints"][k]["layers"]])
                  for k in ("init", "last"))
    assert init.shape == (32,) and np.abs(init - last).max() > 1e-3
    # And the group mean is over its seeds (identical copies: std 0)
    stats = lstm["summary"]["last"]["L1 bwd"]["mean_keep"]
    assert stats[2] == 2 and stats[1] == pytest.approx(0.0, abs=1e-12)
    assert stats[0] == pytest.approx(record["checkpoints"]["last"]["layers"][3]["mean_keep"])
    # And the files hold the same numbers, per seed and per unit, without absolute paths
    saved = json.load(open(os.path.join(out, "saturation.json")))
    assert len(saved["groups"]["lstm"]["runs"]) == 2
    assert len(saved["groups"]["gru"]["runs"][0]["checkpoints"]["init"]["layers"][0]["per_unit"]["near_1"]) == 8
    assert str(tmp_path) not in open(os.path.join(out, "saturation.json")).read()
    md = open(os.path.join(out, "saturation.md")).read()
    assert "earliest checkpoint still kept" in md and "| lstm | L1 bwd | best |" in md


def test_summarize_group_mean_and_sample_std_over_seeds():
    def record(memory, keep):
        layer = {"layer": 0, "direction": "fwd", "units": 4, "memory_units": memory, "reset_units": 0,
                 "near_1": 0.0, "near_0": 0.0, "mean_keep": keep}
        return {"checkpoints": {"last": {"step": 10, "params_step": 10, "layers": [layer]}}}

    summary = saturation_report.summarize_group([record(1, 0.5), record(3, 0.7), record(2, 0.9)])
    mean, std, n = summary["last"]["L0 fwd"]["memory_units"]
    assert (mean, n) == (2.0, 3) and std == pytest.approx(np.std([1, 3, 2], ddof=1))
    assert summary["last"]["L0 fwd"]["mean_keep"][0] == pytest.approx(0.7)
    assert "init" not in summary


def test_cli_writes_the_report(runs, tmp_path):
    dirs, _ = runs
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}
    out = str(tmp_path / "out")
    proc = subprocess.run(
        [sys.executable, "-m", "rnnlab", "gates", dirs["gru"], f"--out={out}",
         "--max_examples=4", "--memory_fraction=0.6"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Keep-gate saturation" in proc.stdout
    saved = json.load(open(os.path.join(out, "saturation.json")))
    assert saved["settings"]["memory_fraction"] == 0.6 and list(saved["groups"]) == ["gru"]


def test_read_config_fills_fields_added_after_a_run(runs, tmp_path):
    # Given a run's config.json from before model.zoneout, recurrent_dropout and word_dropout existed
    dirs, _ = runs
    config = json.load(open(os.path.join(dirs["gru"], "config.json")))
    for field in ("zoneout", "recurrent_dropout", "word_dropout"):
        del config["model"][field]
    json.dump(config, open(tmp_path / "config.json", "w"))
    # Then it reads back with those features off, and builds
    read = trained_run.read_config(str(tmp_path))
    assert (read.model.zoneout, read.model.recurrent_dropout, read.model.word_dropout) == (0.0, 0.0, 0.0)
    assert read.model.cell == "gru" and read.data.buckets == tuple(config["data"]["buckets"])


# ----------------------------------------------------------------------------- clamping the keep gate


@pytest.mark.parametrize("kind, options", [("lstm", {}), ("lstm", {"forget_bias": 3.0}), ("lstm_cifg", {}),
                                           ("gru", {}), ("min_gru", {})])
def test_clamped_units_keep_the_given_fraction_at_every_step_and_the_rest_is_unchanged(kind, options):
    # Given a cell with random params (biases too) and a sequence
    cell = rnnlab.get_cell(kind, 5, **options)
    rng = np.random.default_rng(0)
    shapes = jax.eval_shape(lambda key: cell.init(key, 3), jax.random.key(0))
    params = {k: (0.5 * rng.standard_normal(s.shape)).astype(np.float32) for k, s in shapes.items()}
    before = {k: v.copy() for k, v in params.items()}
    xs = rng.standard_normal((9, 3)).astype(np.float32)
    # When units 1 and 3 are clamped to keep all of their state and 0.25 of it
    clamped = saturation.clamp_keep_gate(cell, params, [1, 3], [1.0, 0.25])
    # Then the cell's own trace shows exactly those fractions at every step (the convention of
    # saturation.keep_gate), the other units' gates are unchanged from the same (zero) state at step 0,
    # and the params passed in are untouched
    gate = saturation.keep_gate(kind)
    traced = gate.keep(np.asarray(rnnlab.gate_trace(cell, clamped, xs)[gate.gate]))
    np.testing.assert_allclose(traced[:, 1], 1.0, atol=1e-7)
    np.testing.assert_allclose(traced[:, 3], 0.25, atol=1e-6)
    original = gate.keep(np.asarray(rnnlab.gate_trace(cell, params, xs)[gate.gate]))
    np.testing.assert_array_equal(traced[0, [0, 2, 4]], original[0, [0, 2, 4]])
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])


def test_clamping_refuses_what_it_cannot_clamp():
    for kind in ("min_lstm", "tanh"):  # a normalised forget gate; no keep gate
        cell = rnnlab.get_cell(kind, 4)
        params = jax.tree.map(np.asarray, cell.init(jax.random.key(0), 3))
        with pytest.raises(ValueError, match="cannot be clamped|no keep gate"):
            saturation.clamp_keep_gate(cell, params, [0], 1.0)
    cell = rnnlab.get_cell("lstm", 4)
    params = jax.tree.map(np.asarray, cell.init(jax.random.key(0), 3))
    with pytest.raises(ValueError, match="units must lie in 0..3"):
        saturation.clamp_keep_gate(cell, params, [4], 1.0)
    with pytest.raises(ValueError, match=r"keep must lie in \[0, 1\]"):
        saturation.clamp_keep_gate(cell, params, [0], 1.5)
    peephole = rnnlab.get_cell("lstm", 4, peephole=True)
    with pytest.raises(ValueError, match="needs params w_x, b"):
        saturation.clamp_keep_gate(peephole, jax.tree.map(np.asarray, peephole.init(jax.random.key(0), 3)), [0], 1.0)


def test_evaluate_gives_the_runs_results_and_measures_a_clamp(runs):
    # Given the GRU smoke run restored at its final params
    dirs, results = runs
    run = trained_run.restore(dirs["gru"])
    # Then evaluating it on test gives its results.json numbers
    got = run.evaluate("test")
    assert got == pytest.approx(results["gru"]["test"], rel=1e-6)
    # And with every unit's update gate clamped to keep nothing, the metric is measured on the changed params
    layer = run.params["encoder"]["rnn"]["layer_0"]
    cell = rnnlab.get_cell("gru", layer["w_h"].shape[0])
    changed = jax.tree.map(np.asarray, run.params)
    changed["encoder"]["rnn"]["layer_0"] = saturation.clamp_keep_gate(cell, layer, range(cell.hidden_size), 0.0)
    assert run.evaluate("test", changed)["loss"] != pytest.approx(got["loss"], rel=1e-6)


def test_saturation_titles_drop_the_folder_path_the_groups_share():
    assert saturation_report.short_titles(["runs/tuned/copy100/cell=gru", "runs/tuned/adding100/cell=gru"]) == [
        "copy100/cell=gru", "adding100/cell=gru"]
    assert saturation_report.short_titles(["runs/a/x"]) == ["runs/a/x"]  # one group: nothing is shared with another
    assert saturation_report.short_titles(["a/x", "a/y/z"]) == ["x", "y/z"]

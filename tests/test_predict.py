"""Tests of rnnlab.experiments.predict on a smoke run of the generated negation corpus (seconds)."""

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
import rnnlab.data
from rnnlab.training import train
from rnnlab.experiments import predict
from tests.train_fixtures import smoke_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A 2-layer bidirectional LSTM trained for a few steps (with early stopping on valid accuracy)."""
    root = tmp_path_factory.mktemp("predict")
    config = smoke_config(root / "tfds", "cell=lstm,bidirectional,layers=2,smoke")
    workdir = str(root / "run")
    results = train.train_and_evaluate(config, workdir)
    return workdir, config, results


def _test_sentences(config):
    spec = rnnlab.data.prepare(config.data)
    texts, targets = [], []
    for batch in rnnlab.data.make_loader(config.data, "test", seed=0, shuffle=False, num_epochs=1):
        for ids, n, y, w in zip(batch["inputs"], batch["lengths"], batch["targets"], batch["weights"]):
            if w > 0:
                texts.append(" ".join(rnnlab.data.decode(spec, ids, n)))
                targets.append(int(y))
    return texts, np.asarray(targets)


def test_load_reproduces_the_runs_test_accuracy_from_raw_text(run_dir):
    # Given a trained run and its test sentences written out as raw text
    workdir, config, results = run_dir
    texts, targets = _test_sentences(config)
    # When the predictor restored from the workdir reads them
    predictor = predict.load(workdir)
    probs = predictor(texts)
    # Then it gives probabilities, and the accuracy the run reported for its best parameters
    assert probs.shape == (len(texts), 2)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    accuracy = float(np.mean(probs.argmax(-1) == targets))
    assert accuracy == pytest.approx(results["test"]["accuracy"], abs=1e-6)
    assert predictor.run.step == results["step"]


def test_unknown_words_map_to_unk_and_bad_input_is_refused(run_dir):
    predictor = predict.load(run_dir[0])
    ids, lengths, tokens = predictor.encode(["Zzyzx isn't GOOD", "good"])
    assert tokens[0] == ["zzyzx", "is", "n't", "good"] and lengths.tolist() == [4, 1]
    vocab = predictor.run.spec.vocab
    assert ids[0, 0] == 1 and vocab[ids[0, 3]] == "good" and ids.shape == (2, 4)
    with pytest.raises(ValueError, match="has no words"):
        predictor(["good", "  "])
    with pytest.raises(ValueError, match="not one string"):
        predictor("good")


def test_gates_per_layer_and_direction_match_gate_trace(run_dir):
    # Given the predictor of a 2-layer bidirectional LSTM
    predictor = predict.load(run_dir[0])
    sentence = "the film was not good"
    # When it traces the gates of one sentence
    layers = predictor.gates(sentence)
    # Then every layer and direction is there, each gate [L, H] with values in range
    assert [(g["layer"], g["direction"]) for g in layers] == [(0, "fwd"), (0, "bwd"), (1, "fwd"), (1, "bwd")]
    H = predictor.run.config.model.hidden_size
    for entry in layers:
        assert set(entry["gates"]) == {"input", "forget", "candidate", "output"}
        assert all(v.shape == (5, H) for v in entry["gates"].values())
        assert 0.0 <= entry["gates"]["forget"].min() and entry["gates"]["forget"].max() <= 1.0
    # And the first layer's forward gates are gate_trace over the sentence's embeddings
    params = predictor.run.params["encoder"]
    ids, lengths, _ = predictor.encode([sentence])
    xs = params["inputs"]["embed"]["embedding"][ids[0]]
    cell = rnnlab.lstm(H, forget_bias=predictor.run.config.model.forget_bias)
    expected = rnnlab.gate_trace(cell, params["rnn"]["layer_0"]["fwd"], xs, lengths[0])
    np.testing.assert_allclose(layers[0]["gates"]["forget"], np.asarray(expected["forget"])[:5], atol=1e-6)
    assert not np.allclose(layers[2]["gates"]["forget"], layers[0]["gates"]["forget"])


def test_restore_refuses_what_is_not_a_classification_run(run_dir, tmp_path):
    run = predict.restore(run_dir[0])
    tagging = dataclasses.replace(run, spec=dataclasses.replace(run.spec, task="tag"))
    with pytest.raises(ValueError, match="'tag' task .* classification runs only"):
        predict.Predictor(tagging)
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        predict.restore(str(tmp_path))
    shutil.copy(os.path.join(run_dir[0], "config.json"), tmp_path / "config.json")
    with pytest.raises(ValueError, match="has no checkpoint"):
        predict.restore(str(tmp_path))


def test_restore_skips_a_checkpoint_whose_checksum_fails(run_dir, tmp_path):
    # Given a copy of the run whose newest checkpoint's info carries a wrong checksum
    workdir = str(tmp_path / "run")
    shutil.copytree(run_dir[0], workdir)
    steps = sorted(int(s) for s in os.listdir(os.path.join(workdir, "checkpoints")) if s.isdigit())
    info = os.path.join(workdir, "checkpoints", str(steps[-1]), "info", "metadata")
    with open(info) as f:
        saved = json.load(f)
    saved["sha256"] = "0" * 64
    with open(info, "w") as f:
        json.dump(saved, f)
    # When it is restored, Then the previous checkpoint is used
    assert predict.restore(workdir).step == steps[-2]


def test_cli_prints_json_lines_with_gates(run_dir, tmp_path):
    # Given two sentences and a blank line on stdin
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-m", "rnnlab.predict", f"--workdir={run_dir[0]}", "--gates"],
        input="the film was good\n\nit was not good\n", capture_output=True, text=True, env=env, cwd=ROOT,
        timeout=120,
    )
    # Then stdout holds one JSON object per sentence, with probabilities and gates
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["text"] for r in records] == ["the film was good", "it was not good"]
    for r in records:
        assert r["label"] == int(np.argmax(r["probs"])) and sum(r["probs"]) == pytest.approx(1.0, abs=1e-4)
        assert len(r["gates"]) == 4 and len(r["gates"][0]["gates"]["forget"]) == len(r["tokens"])


def test_report_gate_analysis_restores_through_predict(run_dir):
    # Given the report's view of the same run (restored by predict.restore)
    from rnnlab.experiments import gate_analysis

    model = gate_analysis.load_trained(run_dir[0])
    ids, words = gate_analysis.example_sentences(model, words=("good", "bad", "not"), count=1)[0]
    # When it traces a batch, Then it gets the first layer's forward gates, as the predictor does
    gates = gate_analysis.trace_batch(model, ids[None], np.array([len(ids)]))
    expected = predict.Predictor(model).gates(" ".join(words))[0]["gates"]
    np.testing.assert_allclose(gates["forget"][0, : len(ids)], expected["forget"], atol=1e-6)
    values = gate_analysis.gate_values(model, "forget", max_examples=8)
    assert values.size > 0 and 0.0 <= values.min() and values.max() <= 1.0
    assert gate_analysis.count_params(run_dir[0]) == run_dir[2]["num_params"]


def test_cli_refuses_a_directory_that_is_not_a_run_with_one_line(tmp_path):
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-m", "rnnlab.predict", f"--workdir={tmp_path}"], input="good\n",
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert proc.returncode != 0 and not proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == f"rnnlab.predict: {str(tmp_path)!r} is not a run directory: it has no config.json"


def test_a_run_without_early_stopping_predicts_with_its_last_params(tmp_path):
    # Given a bag-of-words run trained without early stopping (its best_params stay the initial ones)
    config = smoke_config(tmp_path / "tfds", "bow,smoke", **{"train.early_stopping_metric": "", "train.num_steps": 12})
    workdir = str(tmp_path / "bow")
    results = train.train_and_evaluate(config, workdir)
    # When it is restored, Then the predictor reproduces the run's test accuracy (the last params)
    texts, targets = _test_sentences(config)
    accuracy = float(np.mean(predict.load(workdir)(texts).argmax(-1) == targets))
    assert accuracy == pytest.approx(results["test"]["accuracy"], abs=1e-6)
    with pytest.raises(ValueError, match="no recurrent layers"):
        predict.load(workdir).gates("good")


def test_gate_report_of_a_trained_lstm_writes_its_table_and_figures(run_dir, tmp_path):
    # Given the trained LSTM as one group of runs
    from rnnlab.experiments import gate_analysis, stats

    groups = {"lstm": [stats.load_run(run_dir[0])]}
    # When the report's gate section is made
    md, figures = gate_analysis.gate_report(groups, str(tmp_path), max_examples=8)
    # Then it has a saturation row for the group and writes every figure it names
    assert "Forget-gate saturation" in md and "| lstm | 1 |" in md
    assert figures and all(os.path.isfile(p) for p in figures)

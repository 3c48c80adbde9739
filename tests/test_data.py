"""Tests of rnnlab.data: registry, batching, exact resume and the negation corpus."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rnnlab.data as rd
from rnnlab.data import grammar
from rnnlab.data.negation import VOCAB, SentimentOptions, generate_negation


def negation_config(data_dir, **overrides):
    config = {
        "name": "negation",
        "data_dir": str(data_dir),
        "batch_size": 16,
        "buckets": (16, 24, 32),
        "num_train": 200,
        "num_valid": 37,
        "num_test": 50,
    }
    config.update(overrides)
    return config


@pytest.fixture(scope="module")
def neg_config(tmp_path_factory):
    config = negation_config(tmp_path_factory.mktemp("tfds"))
    rd.prepare(config)
    return config


def take(loader, n):
    return [next(loader) for _ in range(n)]


def assert_batches_equal(xs, ys):
    assert len(xs) == len(ys)
    for x, y in zip(xs, ys):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k], err_msg=k)


def test_dataset_names_lists_negation_and_unknown_name_lists_known():
    assert "negation" in rd.dataset_names()
    with pytest.raises(ValueError, match="known datasets: .*negation"):
        rd.prepare({"name": "no_such_data"})


def test_prepare_negation_spec(neg_config):
    spec = rd.prepare(neg_config)
    assert (spec.name, spec.task, spec.input_kind) == ("negation", "classify", "tokens")
    assert spec.num_examples == {"train": 200, "valid": 37, "test": 50}
    assert spec.splits == ("train", "valid", "test")
    assert spec.vocab[:2] == ("<pad>", "<unk>") and spec.vocab_size == len(spec.vocab)
    assert spec.num_outputs == 2 and spec.input_size is None and spec.extras == ("negated",)


def test_negation_batch_shapes_dtypes_and_padding(neg_config):
    loader = rd.make_loader(neg_config, "train", seed=0, shuffle=True, num_epochs=None)
    for batch in take(loader, 20):
        b, t = batch["inputs"].shape
        assert b == 16 and t in (16, 24, 32)
        assert batch["inputs"].dtype == np.int32 and batch["lengths"].dtype == np.int32
        assert batch["targets"].shape == (16,) and batch["targets"].dtype == np.int32
        assert batch["weights"].dtype == np.float32 and batch["negated"].dtype == np.bool_
        assert t == min(x for x in (16, 24, 32) if x >= batch["lengths"].max())
        steps = np.arange(t)[None, :]
        assert (batch["inputs"][steps >= batch["lengths"][:, None]] == 0).all()
        assert (batch["inputs"][steps < batch["lengths"][:, None]] > 1).all()  # no pad/unk inside
        np.testing.assert_array_equal(batch["weights"], 1.0)  # training batches are all real


def test_negation_labels_follow_the_rule_on_decoded_tokens(neg_config):
    spec = rd.prepare(neg_config)
    loader = rd.make_loader(neg_config, "valid", seed=0, shuffle=False, num_epochs=1)
    for batch in loader:
        for ids, n, y, neg in zip(batch["inputs"], batch["lengths"], batch["targets"], batch["negated"]):
            tokens = [spec.vocab[i] for i in ids[:n]]
            assert y == int(grammar.sentence_polarity(tokens) > 0)
            assert neg == any(w in grammar.NEGATORS for w in tokens)


def example_keys(batch):
    """One hashable key per real row: its tokens."""
    rows = batch["weights"] > 0
    return [tuple(x[:n]) for x, n in zip(batch["inputs"][rows], batch["lengths"][rows])]


def test_eval_sees_every_example_exactly_once(neg_config):
    loader = rd.make_loader(neg_config, "valid", seed=3, shuffle=True, num_epochs=1)
    batches = list(loader)
    assert len(batches) == loader.batches_per_epoch
    assert all(b["inputs"].shape[0] == 16 for b in batches)
    assert sum(b["weights"].sum() for b in batches) == 37
    seen = Counter(k for b in batches for k in example_keys(b))
    reference = rd.make_loader(neg_config, "valid", seed=0, shuffle=False, num_epochs=1)
    expected = Counter(k for b in reference for k in example_keys(b))
    assert seen == expected and sum(seen.values()) == 37


def test_two_epochs_reshuffle_and_repeat_examples(neg_config):
    loader = rd.make_loader(neg_config, "test", seed=1, shuffle=True, num_epochs=2)
    batches = list(loader)
    per_epoch = loader.batches_per_epoch
    assert len(batches) == 2 * per_epoch
    first, second = batches[:per_epoch], batches[per_epoch:]
    assert Counter(k for b in first for k in example_keys(b)) == Counter(
        k for b in second for k in example_keys(b)
    )
    assert [example_keys(b) for b in first] != [example_keys(b) for b in second]


def test_seeded_shuffle_is_reproducible_and_seed_matters(neg_config):
    a = take(rd.make_loader(neg_config, "train", seed=5, shuffle=True, num_epochs=None), 5)
    b = take(rd.make_loader(neg_config, "train", seed=5, shuffle=True, num_epochs=None), 5)
    c = take(rd.make_loader(neg_config, "train", seed=6, shuffle=True, num_epochs=None), 5)
    assert_batches_equal(a, b)
    assert any(not np.array_equal(x["inputs"], y["inputs"]) for x, y in zip(a, c))


def test_state_restore_gives_identical_next_batches(neg_config):
    loader = rd.make_loader(neg_config, "train", seed=2, shuffle=True, num_epochs=None)
    take(loader, loader.batches_per_epoch + 3)  # cross an epoch boundary
    state = json.loads(json.dumps(loader.get_state()))  # survives JSON
    expected = take(loader, 4)
    resumed = rd.make_loader(neg_config, "train", seed=2, shuffle=True, num_epochs=None)
    resumed.set_state(state)
    assert_batches_equal(take(resumed, 4), expected)
    other = rd.make_loader(neg_config, "train", seed=9, shuffle=True, num_epochs=None)
    with pytest.raises(ValueError, match="seed"):
        other.set_state(state)


def test_generator_fields_change_the_prepared_copy(neg_config):
    changed = dict(neg_config, gen_seed=1)
    a = next(rd.make_loader(neg_config, "valid", seed=0, shuffle=False, num_epochs=1))
    b = next(rd.make_loader(changed, "valid", seed=0, shuffle=False, num_epochs=1))
    assert not np.array_equal(a["inputs"], b["inputs"])
    again = next(rd.make_loader(neg_config, "valid", seed=0, shuffle=False, num_epochs=1))
    np.testing.assert_array_equal(a["inputs"], again["inputs"])


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("num_train", -5, "data.num_train must be positive"),
        ("max_len", 4, "data.max_len must be >= 16"),
        ("negation_prob", 1.5, "data.negation_prob must lie in"),
        ("batch_size", 0, "data.batch_size must be positive"),
        ("buckets", (32, 16), "data.buckets must be strictly ascending"),
        ("num_train", "many", "data.num_train must be an integer"),
        ("crop", "yes", "data.crop must be a bool"),
    ],
)
def test_bad_field_values_fail_naming_the_field(tmp_path, field, value, message):
    with pytest.raises(ValueError, match=message):
        rd.prepare(negation_config(tmp_path, **{field: value}))


def test_examples_longer_than_largest_bucket_fail_unless_crop(tmp_path):
    config = negation_config(tmp_path, buckets=(8, 12))
    with pytest.raises(ValueError, match="longer than the largest bucket"):
        rd.prepare(config)
    cropped = dict(config, crop=True)
    batch = next(rd.make_loader(cropped, "train", seed=0, shuffle=True, num_epochs=None))
    assert batch["inputs"].shape[1] in (8, 12) and batch["lengths"].max() <= 12


def test_unknown_split_and_bad_epochs(neg_config):
    with pytest.raises(ValueError, match="no split 'dev'"):
        rd.make_loader(neg_config, "dev", seed=0, shuffle=False, num_epochs=1)
    with pytest.raises(ValueError, match="num_epochs"):
        rd.make_loader(neg_config, "train", seed=0, shuffle=False, num_epochs=0)


def test_check_token_ids_reports_never_clamps():
    rd.check_token_ids(np.array([[0, 3, 4]]), 5, "x")
    with pytest.raises(ValueError, match=r"token ids \[-1, 7\] lie outside the vocabulary \[0, 5\)"):
        rd.check_token_ids(np.array([[7, 2, -1]]), 5, "x")


def test_batch_plan_buckets_fill_and_weights():
    lengths = np.array([3, 5, 9, 2, 10, 4, 7])
    plan = rd.batch_plan(lengths, (4, 8, 16), 2, seed=0, epoch=0, shuffle=False, fill_with_examples=False)
    assert [size for _, _, size in plan] == [4, 4, 8, 16]
    for idx, w, size in plan:
        assert (lengths[idx] <= size).all()
    real = np.concatenate([idx[w > 0] for idx, w, _ in plan])
    assert sorted(real.tolist()) == list(range(7))
    filled = rd.batch_plan(lengths, (4, 8, 16), 2, seed=0, epoch=0, shuffle=True, fill_with_examples=True)
    assert all((w == 1).all() for _, w, _ in filled)


# ---- the negation statistic: word counts cannot solve it, the order rule can ----

def _count_matrix(examples):
    x = np.zeros((len(examples), len(VOCAB)))
    for row, ex in zip(x, examples):
        np.add.at(row, ex["inputs"], 1.0)
    return x, np.asarray([ex["targets"] for ex in examples])


def _logistic_regression(x, y, steps=1500, lr=0.5):
    w, b = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        g = 1.0 / (1.0 + np.exp(-(x @ w + b))) - y
        w -= lr * (x.T @ g / len(y) + 1e-4 * w)
        b -= lr * g.mean()
    return w, b


def test_negation_bag_of_words_stays_far_below_the_order_rule():
    # Given a generated corpus
    splits = generate_negation(SentimentOptions(num_train=4000, num_valid=1, num_test=2000, gen_seed=7))
    x_train, y_train = _count_matrix(splits["train"])
    x_test, y_test = _count_matrix(splits["test"])
    # When a logistic regression on word counts is trained
    w, b = _logistic_regression(x_train, y_train)
    bow = ((x_test @ w + b > 0) == y_test).mean()
    # and a nonlinear count model sees the counts of positive, negative words and negators
    def coarse(ex):
        words = [VOCAB[i] for i in ex["inputs"]]
        return tuple(sum(w in group for w in words) for group in (grammar.POSITIVE, grammar.NEGATIVE,
                                                                   grammar.NEGATORS))
    table = defaultdict(Counter)
    for ex in splits["train"]:
        table[coarse(ex)][ex["targets"]] += 1
    table_acc = np.mean([
        (table[coarse(ex)].most_common(1)[0][0] if table[coarse(ex)] else 1) == ex["targets"]
        for ex in splits["test"]
    ])
    # and the rule reads the order
    rule = np.mean([
        int(grammar.sentence_polarity([VOCAB[i] for i in ex["inputs"]]) > 0) == ex["targets"]
        for ex in splits["test"]
    ])
    # Then counts stay near chance while the order rule is exact
    assert rule == 1.0
    assert 0.45 < bow < 0.70, bow
    assert table_acc < 0.70, table_acc
    assert abs(y_test.mean() - 0.5) < 0.05


def test_same_words_in_another_order_change_the_label():
    # "not" in scope of "good" vs out of scope: same multiset, different labels
    a = "the film was not good , no doubt".split()
    b = "no doubt , the film was not good".split()
    c = "not to mention the music , the film was good".split()
    d = "the film was good , not to mention the music".split()
    assert sorted(a) == sorted(b) and grammar.sentence_polarity(a) == grammar.sentence_polarity(b) == -1
    assert sorted(c) == sorted(d) and grammar.sentence_polarity(c) == grammar.sentence_polarity(d) == 1
    assert grammar.sentence_polarity("the film was never not good".split()) == 1
    e = "the film was not good , but the plot was bad".split()
    f = "the film was good , but the plot was not bad".split()
    assert sorted(e) == sorted(f) and grammar.sentence_polarity(e) != grammar.sentence_polarity(f)


def test_concurrent_prepare_of_one_copy_is_safe(tmp_path):
    import threading

    config = negation_config(tmp_path, num_train=50, num_valid=5, num_test=5)
    results, errors = [], []

    def run():
        try:
            results.append(rd.prepare(config))
        except Exception as e:  # noqa: BLE001  (collected for the assertion below)
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 2 and results[0] == results[1]


def test_decode_gives_the_words_of_a_batch_row(neg_config):
    spec = rd.prepare(neg_config)
    batch = next(rd.make_loader(neg_config, "valid", seed=0, shuffle=False, num_epochs=1))
    words = rd.decode(spec, batch["inputs"][0], batch["lengths"][0])
    assert len(words) == batch["lengths"][0] and all(w in grammar.WORDS for w in words)
    assert rd.decode(spec, [0, 1]) == ["<pad>", "<unk>"]


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 40), min_size=1, max_size=60),
    batch_size=st.integers(1, 9),
    buckets=st.lists(st.integers(1, 40), min_size=1, max_size=4, unique=True).map(sorted),
    shuffle=st.booleans(),
    fill=st.booleans(),
    epoch=st.integers(0, 3),
)
def test_batch_plan_properties(lengths, batch_size, buckets, shuffle, fill, epoch):
    lengths = np.asarray(lengths)
    plan = rd.batch_plan(lengths, buckets, batch_size, seed=1, epoch=epoch, shuffle=shuffle,
                         fill_with_examples=fill)
    # every example once with weight 1 (training fill: at least once, repeats fill short batches),
    # in the smallest bucket that holds it (or the last)
    real = np.concatenate([idx[w > 0] for idx, w, _ in plan])
    if fill:
        assert set(real.tolist()) == set(range(len(lengths)))
    else:
        assert sorted(real.tolist()) == list(range(len(lengths)))
    for idx, w, size in plan:
        assert len(idx) == len(w) == batch_size and size in buckets
        fits = [b for b in buckets if b >= lengths[idx].max()]
        assert size == (fits[0] if fits else buckets[-1])
        assert (w == 1).all() if fill else (w[: int(w.sum())] == 1).all() and (w[int(w.sum()):] == 0).all()
    again = rd.batch_plan(lengths, buckets, batch_size, seed=1, epoch=epoch, shuffle=shuffle,
                          fill_with_examples=fill)
    assert all((a[0] == b[0]).all() for a, b in zip(plan, again))


def test_processes_split_each_global_batch(neg_config):
    whole = list(rd.make_loader(neg_config, "valid", seed=4, shuffle=True, num_epochs=1))
    parts = [list(rd.make_loader(neg_config, "valid", seed=4, shuffle=True, num_epochs=1,
                                 process_index=i, process_count=4)) for i in range(4)]
    assert all(len(p) == len(whole) for p in parts)
    for k, batch in enumerate(whole):
        for key in batch:
            np.testing.assert_array_equal(np.concatenate([p[k][key] for p in parts]), batch[key], err_msg=key)
        assert all(p[k]["inputs"].shape == (4, batch["inputs"].shape[1]) for p in parts)
    with pytest.raises(ValueError, match="process_count 3"):
        rd.make_loader(neg_config, "valid", seed=4, shuffle=True, num_epochs=1, process_index=0, process_count=3)


def test_reads_an_ml_collections_config_section(tmp_path):
    import ml_collections

    data = ml_collections.ConfigDict({
        "name": "negation", "data_dir": str(tmp_path), "batch_size": 8, "buckets": (16, 32),
        "num_train": 30, "num_valid": 5, "num_test": 5, "max_len": 32, "gen_seed": 0,
        "path": ml_collections.config_dict.placeholder(str),
    })
    spec = rd.prepare(data)
    assert spec.num_examples == {"train": 30, "valid": 5, "test": 5}
    assert next(rd.make_loader(data, "train", seed=0, shuffle=True, num_epochs=None))["inputs"].shape[0] == 8


def test_data_fingerprint_is_stable_ignores_loader_fields_and_follows_the_generator(neg_config, tmp_path):
    fingerprint = rd.data_fingerprint(neg_config)
    assert fingerprint == rd.data_fingerprint(dict(neg_config, batch_size=8, num_threads=0))
    assert fingerprint["dataset"] == "negation" and fingerprint["files"] == {}
    other = rd.data_fingerprint(dict(neg_config, gen_seed=1))
    assert other["fingerprint"] != fingerprint["fingerprint"] and other["examples"] != fingerprint["examples"]


def test_source_file_contents_name_the_prepared_copy(tmp_path):
    # a change of the bytes (same size, same time) gives another copy, never a stale one
    import os

    from rnnlab.data.registry import Dataset

    path = tmp_path / "source.txt"
    path.write_text("1 good film\n")
    stat = os.stat(path)

    class Files(Dataset):
        Options = SentimentOptions

        def source_files(self, options):
            return [str(path)]

    options = SentimentOptions()
    before = Files().fingerprint(options)
    path.write_text("0 good film\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert os.stat(path).st_size == stat.st_size and Files().fingerprint(options) != before

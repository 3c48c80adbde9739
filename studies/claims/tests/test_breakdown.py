"""Tests of studies.claims.breakdown: tail lengths from tokens, accuracy by tail on a smoke run,
and the left-to-right ceiling report."""

import json
import os

import numpy as np
import pytest

from studies.claims.configs import future_context as claim_future_context
from studies.claims.configs import negation as claim_negation
from rnnlab.data import grammar
from rnnlab.data.negation import VOCAB, generate_negation
from studies.claims import by_tail
from studies.claims import ceilings as ceiling_report

import rnnlab.data

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))  # the checkout


def test_tail_length_recovers_the_tail_the_generator_appended():
    # Given sentences of every structure, half with a distractor, each with a known tail appended
    rng = np.random.default_rng(0)
    probs = (0.5, 0.35, 0.15)
    suffixes = 0
    for k in range(400):
        structure = ("single", "and", "but", "yet", "although")[k % 5]
        tokens, _ = grammar.sentence(rng, 1 if k % 2 else -1, structure, probs, distractor_prob=0.7)
        suffixes += tokens[-1] in ("doubt", "music", "else")
        tail = int(rng.integers(0, 41))
        # When the tail length is read back from the tokens alone
        # Then it is the one appended
        assert by_tail.tail_length(tokens + grammar.neutral_tail(rng, tail)) == tail
    assert suffixes > 50  # distractor suffixes, which look like a tail's start, were exercised


def test_tail_lengths_of_generated_splits():
    options = rnnlab.data.get_dataset("negation").options(claim_negation.get_config("tail").data)
    test = generate_negation(options)["test"]
    tails = np.asarray([by_tail.tail_length([VOCAB[i] for i in ex["inputs"].tolist()]) for ex in test])
    lengths = np.asarray([ex["length"] for ex in test])
    assert tails.min() == 0 and tails.max() == 40 and (lengths - tails <= 30).all()
    assert abs(tails.mean() - 20) < 2  # uniform on 0..40 (room is never short: sentences <= 30 of 64)
    plain = rnnlab.data.get_dataset("negation").options(claim_negation.get_config().data)
    assert all(by_tail.tail_length([VOCAB[i] for i in ex["inputs"].tolist()]) == 0
               for ex in generate_negation(plain)["test"])


def test_count_by_bucket_by_hand():
    tails = np.array([0, 0, 5, 10, 11, 40, 40])
    correct = np.array([1, 0, 1, 1, 0, 1, 1], bool)
    negated = np.array([1, 0, 0, 1, 1, 1, 0], bool)
    out = by_tail.count_by_bucket(tails, correct, negated)
    assert list(out) == ["0", "1-10", "11-20", "21-30", "31-40"]
    assert out["0"]["all"] == {"n": 2, "correct": 1, "accuracy": 0.5}
    assert out["0"]["negated"]["accuracy"] == 1.0 and out["0"]["not_negated"]["accuracy"] == 0.0
    assert out["1-10"]["all"]["n"] == 2 and out["11-20"]["all"]["accuracy"] == 0.0
    assert out["21-30"]["all"]["n"] == 0 and np.isnan(out["21-30"]["all"]["accuracy"])
    with pytest.raises(ValueError, match="no bucket"):
        by_tail.count_by_bucket(np.array([41]), correct[:1], negated[:1])


def test_group_labels_name_the_parent_only_when_needed(tmp_path):
    dirs = [str(tmp_path / m / f"best__seed{s}") for m in ("bow", "cell=gru") for s in (1, 2)]
    labels = by_tail.group_labels(dirs)
    assert labels[dirs[0]] == labels[dirs[1]] == "bow/best" and labels[dirs[2]] == "cell=gru/best"
    flat = [str(tmp_path / "negation-tail,cell=gru__seed0"), str(tmp_path / "negation-tail,bow__seed0")]
    assert list(by_tail.group_labels(flat).values()) == ["negation-tail,cell=gru", "negation-tail,bow"]


@pytest.fixture(scope="module")
def tail_run(tmp_path_factory):
    """A smoke run of claim 1 with tails (100 test sentences: the last batch has padding rows)."""
    from rnnlab.training import train

    root = tmp_path_factory.mktemp("breakdown")
    config = claim_negation.get_config("tail,smoke")
    config.data.data_dir = str(root / "tfds")
    config.data.num_test = 100
    workdir = str(root / "negation-tail__seed0")
    results = train.train_and_evaluate(config, workdir)
    return workdir, results


def test_evaluate_by_tail_adds_up_to_the_runs_test_accuracy(tail_run):
    # Given a trained tail run
    workdir, results = tail_run
    # When its best checkpoint is evaluated by tail length
    out = by_tail.evaluate_by_tail(workdir)
    buckets = out["by_tail"].values()
    # Then the buckets hold the whole test split once, split into negated and not
    assert sum(b["all"]["n"] for b in buckets) == 100
    for b in buckets:
        assert b["negated"]["n"] + b["not_negated"]["n"] == b["all"]["n"]
    # and their accuracies, weighted by their sizes, give the run's own test numbers
    weighted = sum(b["all"]["accuracy"] * b["all"]["n"] for b in buckets if b["all"]["n"]) / 100
    assert weighted == pytest.approx(results["test"]["accuracy"], abs=1e-9)
    assert out["overall"]["all"]["accuracy"] == pytest.approx(results["test"]["accuracy"], abs=1e-9)
    negated = [b["negated"] for b in buckets if b["negated"]["n"]]
    assert sum(b["correct"] for b in negated) / sum(b["n"] for b in negated) == pytest.approx(
        results["test"]["negated_accuracy"], abs=1e-9)
    assert out["checkpoint_step"] == results["step"] and out["reported"] == results["test"]["accuracy"]


def test_write_by_tail_writes_tables_json_and_figure(tail_run, tmp_path):
    workdir, results = tail_run
    out = by_tail.write_by_tail([workdir], str(tmp_path / "by_tail"))
    for name in ("by_tail.md", "by_tail.json", "by_tail.png"):
        assert os.path.getsize(tmp_path / "by_tail" / name) > 0
    saved = json.loads((tmp_path / "by_tail" / "by_tail.json").read_text())
    group = saved["groups"]["negation-tail"]
    assert saved["buckets"] == ["0", "1-10", "11-20", "21-30", "31-40"] and group["seeds"] == [0]
    assert group["overall"]["all"][0] == pytest.approx(results["test"]["accuracy"])
    assert "| negation-tail | 1 |" in out["markdown"]
    assert not os.path.isabs(saved["runs"][0]["workdir"])


def test_write_ceilings_scores_configs_and_checks_a_runs_data(tmp_path):
    # Given the claim config, and a run directory of it with its recorded data fingerprint
    config = claim_future_context.get_config()
    run = tmp_path / "future_context__seed0"
    run.mkdir()
    (run / "config.json").write_text(config.to_json())
    splits, _ = rnnlab.data.get_dataset("future_context").generate(
        rnnlab.data.get_dataset("future_context").options(config.data))
    (run / "results.json").write_text(json.dumps({
        "test": {"masked_accuracy": 0.9},
        "data_fingerprint": {"examples": ceiling_report.examples_hash(splits)}}))
    # When the ceiling report reads both
    spec = os.path.join(ROOT, "studies/claims/configs/future_context.py")
    out = ceiling_report.write_ceilings([spec, str(run)], str(tmp_path / "ceilings"))
    # Then the config's test split is at the known ceiling, and the run is recognised on the same data
    assert out["configs"][spec]["masked_accuracy"] == pytest.approx(1456 / 1784)
    assert out["configs"][spec]["expected"] == pytest.approx(29 / 36)
    assert out["runs"][0]["data_matches_run"] is True
    assert out["runs"][0]["ceiling"]["masked_accuracy"] == pytest.approx(1456 / 1784)
    assert out["groups"]["future_context"]["above_ceiling"] == 1
    assert os.path.getsize(tmp_path / "ceilings" / "ceilings.md") > 0


def test_ceiling_of_refuses_other_datasets():
    with pytest.raises(ValueError, match="future_context"):
        ceiling_report.ceiling_of(claim_negation.get_config().data)


@pytest.fixture(scope="module")
def tagger_run(tmp_path_factory):
    """A smoke run of claim 2 (a left-to-right LSTM tagger)."""
    from rnnlab.training import train

    root = tmp_path_factory.mktemp("ceiling")
    config = claim_future_context.get_config("smoke")
    config.data.data_dir = str(root / "tfds")
    workdir = str(root / "future_context__seed0")
    return workdir, config, train.train_and_evaluate(config, workdir)


def test_compare_with_rule_reproduces_the_runs_test_accuracy_and_the_rule(tagger_run):
    # Given a trained tagger and its own test split, regenerated
    from rnnlab.data import ceilings
    from rnnlab.inference import trained_run

    workdir, config, results = tagger_run
    dataset = rnnlab.data.get_dataset("future_context")
    options = dataset.options(config.data)
    test = dataset.generate(options)[0]["test"]
    # When the run and the optimal causal rule tag it
    out = ceiling_report.compare_with_rule(trained_run.restore(workdir), test, options, batch_size=7)
    # Then the run scores what training reported, and the rule what ceilings.score_causal says
    assert out["model"] == pytest.approx(results["test"]["masked_accuracy"], abs=1e-9)
    scored = ceilings.score_causal(test, options)
    assert out["ceiling"] == pytest.approx(scored["masked_accuracy"]) and out["words"] == scored["words"]
    # and fresh sentences are new ones, scored the same way
    fresh = ceiling_report.fresh_comparison(workdir, 50)
    assert fresh["sentences"] == 50 and 50 <= fresh["words"] <= 100 and 0 <= fresh["disagree"] <= fresh["words"]

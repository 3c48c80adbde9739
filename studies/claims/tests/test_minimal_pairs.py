"""Minimal pairs of the negation corpus (studies.claims.minimal_pairs): same words, opposite labels."""

import numpy as np

from rnnlab.data import grammar, negation
from studies.claims import minimal_pairs
from tests import committed


def test_swap_clauses_keeps_the_joins_and_moves_the_clauses():
    tokens = "the plot was bad , but the cast is great".split()
    clause_of = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]
    assert minimal_pairs.swap_clauses(tokens, clause_of, "but") == "the cast is great , but the plot was bad".split()
    tokens = "although the plot was bad , the cast is great".split()
    clause_of = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert minimal_pairs.swap_clauses(tokens, clause_of, "although") == \
        "although the cast is great , the plot was bad".split()


def test_pairs_hold_the_same_words_with_opposite_labels_by_the_grammars_rule():
    pairs = minimal_pairs.clause_order_pairs(300, tail_len=40, max_len=64, seed=3)
    assert len(pairs) == 300
    for p in pairs:
        assert sorted(p["a"]) == sorted(p["b"]) and p["a"] != p["b"] and len(p["a"]) <= 64
        assert p["label_a"] == int(grammar.sentence_polarity(p["a"]) > 0) == 1 - p["label_b"]
    assert 0.35 < np.mean([p["label_a"] for p in pairs]) < 0.65  # both labels, about equally
    assert any(t in grammar.NEGATORS for p in pairs for t in p["a"])  # negation inside the clauses too
    assert minimal_pairs.clause_order_pairs(5, 40, 64, seed=3) == pairs[:5]  # a pure function of the seed
    # Typed as text, they read back as the same tokens (what a trained run's predictor sees)
    assert all(negation.tokenize_sentence(" ".join(p["b"])) == p["b"] for p in pairs)


def test_an_order_blind_reader_gets_no_pair_right():
    pairs = minimal_pairs.clause_order_pairs(50, tail_len=0, max_len=32)
    label_a = np.asarray([p["label_a"] for p in pairs])
    # A bag of words answers both sentences of a pair alike: each pair has one error
    blind = minimal_pairs.score_pairs(label_a, label_a, pairs)
    seen = sum(p["structure"] in ("but", "yet") for p in pairs)
    assert blind == {"n": 50, "n_seen": seen, "sentence_accuracy": 0.5, "pair_accuracy": 0.0,
                     "pair_accuracy_seen": 0.0, "pair_accuracy_unseen": 0.0, "same_answer": 1.0}
    # The rule itself gets every pair right; a reader right on the trained connectives only is told apart
    rule = minimal_pairs.score_pairs(label_a, 1 - label_a, pairs)
    assert (rule["pair_accuracy"], rule["same_answer"]) == (1.0, 0.0)
    trained_only = np.where([p["structure"] == "although" for p in pairs], label_a, 1 - label_a)
    split = minimal_pairs.score_pairs(label_a, trained_only, pairs)
    assert (split["pair_accuracy_seen"], split["pair_accuracy_unseen"]) == (1.0, 0.0)
    assert minimal_pairs.CORPUS_STRUCTURES == ("but", "yet") and 0 < seen < 50


def test_findings_block_and_runs_agree_with_the_committed_json():
    results = committed.results("by_tail", "minimal_pairs.json")
    assert committed.block("findings.md", "minimal-pairs") == minimal_pairs.table(results).strip()
    # The scored runs retrain the tuned round's: as findings.md says, 14 of the 15 give their seed's test
    # accuracy in tuned.json exactly, and the other (the GRU's seed 2) is within 0.002 of it
    rows = {r["model"]: r for r in committed.results("tuned", "tuned.json")["tasks"]["negation_tail"]["rows"]}
    gaps = [abs(r["test_accuracy"] - v) for model, runs in results.items()
            for r, v in zip(runs, rows[minimal_pairs.TUNED_MODELS[model]]["test"]["values"])]
    assert len(gaps) == 15 and max(gaps) <= 0.002 + 1e-9 and sum(g < 5e-4 for g in gaps) == 14

"""Tests of rnnlab.data.ceilings: the left-to-right ceiling of future_context, exact vs sampled."""

import collections

import numpy as np
import pytest

from rnnlab.data import ceilings, grammar
from rnnlab.data.future_context import future_context_example
from rnnlab.data.negation import VOCAB, SentimentOptions, draw_sentence
from rnnlab.data.future_context import STRUCTURE_PROBS, STRUCTURES

def _sample(options: SentimentOptions, n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [future_context_example(rng, options) for _ in range(n)]


def test_left_to_right_ceiling_default_is_29_over_36():
    # By hand: single .2 (1 word, right), and .2 (2 right), but .2 / yet .15 (1 of 2 right),
    # although .25 (2 right): 1.45 right of 1.8 words; per sentence .2 + .2 + .1 + .075 + .25.
    terms = ceilings.ceiling_terms(SentimentOptions())
    assert ceilings.left_to_right_ceiling(SentimentOptions()) == pytest.approx(29 / 36, abs=1e-12)
    assert terms.words == pytest.approx(1.8, abs=1e-12)
    assert terms.per_sentence == pytest.approx(0.825, abs=1e-12)
    # and it is the same at every max_len that redraws nothing (the longest sentence has 30 tokens)
    assert ceilings.left_to_right_ceiling(SentimentOptions(max_len=30)) == pytest.approx(29 / 36, abs=1e-12)
    assert ceilings.left_to_right_ceiling(SentimentOptions(max_len=29)) != pytest.approx(29 / 36, abs=1e-9)


def test_clause_length_pmf_matches_grammar_clause():
    options = SentimentOptions()
    pmf = ceilings.clause_length_pmf(options.negation_probs)
    assert sum(pmf.values()) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    n = 20000
    counts = collections.Counter(len(grammar.clause(rng, 1, options.negation_probs)) for _ in range(n))
    assert set(counts) <= set(pmf)
    for length, p in pmf.items():
        assert counts[length] / n == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / n) + 1e-4)


def test_view_table_masses_sum_to_one_and_match_structure_priors():
    table = ceilings.view_table(SentimentOptions())
    total = np.sum([list(m) for m in table.values()], axis=0)
    prior = dict(zip(STRUCTURES, STRUCTURE_PROBS))
    np.testing.assert_allclose(total, [prior["single"], prior["and"], prior["but"] + prior["yet"] + prior["although"]],
                               atol=1e-12)
    for view, m in table.items():  # without redraws: "same" has 8/15 of every view not opened by "although"
        if view.although:
            assert m.single == m.same == 0 and m.opposite > 0
        else:
            assert (m.single + m.same) / (m.single + m.same + m.opposite) == pytest.approx(8 / 15)


@pytest.mark.parametrize("max_len", [32, 16])
def test_left_to_right_ceiling_matches_monte_carlo(max_len):
    # Given many generated sentences (at max_len 16 most two-clause draws are redrawn)
    options = SentimentOptions(max_len=max_len)
    examples = _sample(options, 12000, seed=max_len)
    # When the optimal causal rule tags them
    scored = ceilings.score_causal(examples, options)
    terms = ceilings.ceiling_terms(options)
    # Then its pooled and per-sentence accuracies are the exact expectations, within sampling error
    se = np.sqrt(0.25 / scored["sentences"])
    assert scored["masked_accuracy"] == pytest.approx(terms.correct / terms.words, abs=4 * se)
    assert scored["per_sentence"] == pytest.approx(terms.per_sentence, abs=4 * se)
    assert scored["words"] / scored["sentences"] == pytest.approx(terms.words, abs=4 * se)


def test_view_posterior_matches_monte_carlo_under_redraws():
    # At max_len 16 the posterior of "same" depends on the prefix: a long first clause leaves no room
    options = SentimentOptions(max_len=16)
    table = ceilings.view_table(options)
    rng = np.random.default_rng(1)
    same, seen = collections.Counter(), collections.Counter()
    for _ in range(20000):
        tokens, _, label, structure = draw_sentence(rng, options, STRUCTURES, STRUCTURE_PROBS)
        view = ceilings.first_word_view(tokens)
        effective = grammar.effective_polarities(tokens)
        seen[view] += 1
        same[view] += int(effective[np.flatnonzero(effective)[0]] == label)
    posteriors = [(m.single + m.same) / sum(m) for v, m in table.items() if not v.although and sum(m) > 0.02]
    assert max(posteriors) - min(posteriors) > 0.1  # among frequent views: the check below can fail
    for view, n in seen.items():
        m = table[view]
        assert n / 20000 == pytest.approx(sum(m), abs=4 * np.sqrt(sum(m) / 20000) + 1e-3)
        if n >= 400:
            p = (m.single + m.same) / sum(m)
            assert same[view] / n == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / n) + 1e-3)


def test_causal_tags_depend_only_on_the_prefix():
    options = SentimentOptions(max_len=16)
    table = ceilings.view_table(options)
    for ex in _sample(options, 200, seed=3) + _sample(SentimentOptions(), 200, seed=4):
        tokens = [VOCAB[i] for i in ex["inputs"].tolist()]
        tags = ceilings.causal_tags(tokens, options, table)
        assert ((tags != 0) == (ex["target_mask"] > 0)).all()
        for t in range(len(tokens)):
            assert ceilings.causal_tags(tokens[: t + 1], options, table)[t] == tags[t]

"""The Bayes-optimal left-to-right ceiling (rnnlab.data.ceilings) on the claims study's own test split."""

import numpy as np
import pytest

from rnnlab.data import ceilings, grammar
from rnnlab.data.future_context import generate_future_context
from rnnlab.data.negation import VOCAB, SentimentOptions


def _claim_options(gen_seed: int = 0) -> SentimentOptions:
    """The data options of ``studies/claims/configs/future_context.py`` (its test split)."""
    from studies.claims.configs import future_context as claim

    import rnnlab.data

    config = claim.get_config()
    config.data.gen_seed = gen_seed
    return rnnlab.data.get_dataset("future_context").options(config.data)


def _simple_rule_accuracy(examples):
    """An independent reference without redraws: at the first sentiment word, its own polarity
    unless the sentence opens with "although"; later words, their own polarity (targets decide)."""
    right = words = 0
    for ex in examples:
        tokens = [VOCAB[i] for i in ex["inputs"].tolist()]
        positions = np.flatnonzero(ex["target_mask"])
        final = ex["targets"][positions[-1]]  # the last word's tag is its own effective polarity
        for k, t in enumerate(positions):
            own = 2 if grammar.effective_polarities(tokens[: t + 1])[t] > 0 else 1
            guess = (3 - own) if (k == 0 and tokens[0] == "although") else own
            right += int(guess == ex["targets"][t])
            words += 1
        assert final in (1, 2)
    return right / words


def test_ceiling_on_the_claim_test_split():
    # Given the claim config's test split (gen_seed 0, 1000 sentences)
    options = _claim_options()
    test = generate_future_context(options)["test"]
    # When the optimal causal rule tags it
    scored = ceilings.score_causal(test, options)
    # Then it equals the independent simple rule, and lies within sampling error of the expectation
    assert scored["sentences"] == 1000
    assert scored["masked_accuracy"] == pytest.approx(_simple_rule_accuracy(test), abs=1e-12)
    assert scored["masked_accuracy"] == pytest.approx(1456 / 1784, abs=1e-12)  # measured once; pins the data
    se = np.sqrt(0.25 / scored["sentences"])
    assert scored["masked_accuracy"] == pytest.approx(ceilings.left_to_right_ceiling(options), abs=3 * se)

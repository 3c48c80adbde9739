"""``negation``: a generated sentiment corpus where negators flip polarity within their scope.

Sentences come from :mod:`rnnlab.data.grammar`; the label is the polarity of
the last sentiment word after negation (1 positive, 0 negative). Example::

    the plot was n't very good , but the acting is never not wonderful   -> 1

Balance: labels are 50/50, each sentiment word is negated with probability
``negation_prob``, and out-of-scope negators (``"no doubt , ..."``) make the
*number* of negators an unreliable cue, so word counts predict the label only
weakly while a left-to-right reader of the order can be exact.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from rnnlab.data import grammar
from rnnlab.data.registry import Dataset, encode, make_vocab, register, require

VOCAB = make_vocab(grammar.WORDS)
STRUCTURES = ("single", "and", "but", "yet")
STRUCTURE_PROBS = (0.4, 0.2, 0.25, 0.15)


@dataclasses.dataclass(frozen=True)
class SentimentOptions:
    """Data config fields of the generated sentiment datasets (defaults used when absent).

    Attributes:
      num_train, num_valid, num_test: sentences per split.
      max_len: longest sentence in tokens (longer draws are redrawn; >= 32
        never redraws).
      gen_seed: seed of the generator (the data is a pure function of the options).
      negation_prob: probability that a clause's sentiment word has negators in scope.
      double_negation_prob: among negated clauses, the fraction with two negators.
      distractor_prob: probability of a phrase holding an out-of-scope negator.
    """

    num_train: int = 10000
    num_valid: int = 1000
    num_test: int = 1000
    max_len: int = 32
    gen_seed: int = 0
    negation_prob: float = 0.5
    double_negation_prob: float = 0.3
    distractor_prob: float = 0.35

    def validate(self) -> None:
        for field in ("num_train", "num_valid", "num_test"):
            require(getattr(self, field) > 0, field, "must be positive", getattr(self, field))
        require(self.max_len >= 16, "max_len", "must be >= 16 (the grammar's sentences need it)",
                self.max_len)
        for field in ("negation_prob", "double_negation_prob", "distractor_prob"):
            value = getattr(self, field)
            require(0.0 <= value <= 1.0, field, "must lie in [0, 1]", value)

    @property
    def negation_probs(self) -> tuple[float, float, float]:
        """Probabilities of 0, 1 and 2 negators in scope of a clause's sentiment word."""
        p, d = self.negation_prob, self.double_negation_prob
        return (1.0 - p, p * (1.0 - d), p * d)

    def split_sizes(self) -> dict[str, int]:
        return {"train": self.num_train, "valid": self.num_valid, "test": self.num_test}


def draw_sentence(rng: np.random.Generator, options: SentimentOptions, structures, probs):
    """One ``(tokens, clause_of, label ±1, structure)`` of at most ``max_len`` tokens."""
    while True:
        label = 1 if rng.random() < 0.5 else -1
        structure = str(rng.choice(structures, p=probs))
        tokens, clause_of = grammar.sentence(
            rng, label, structure, options.negation_probs, options.distractor_prob
        )
        if len(tokens) <= options.max_len:
            if grammar.sentence_polarity(tokens) != label:  # the generator obeys the rules
                raise AssertionError(f"grammar bug: {' '.join(tokens)!r} is not {label}")
            return tokens, clause_of, label, structure


def token_features() -> dict:
    """tfds features shared by the token datasets: ids and length."""
    return {"inputs": tfds.features.Tensor(shape=(None,), dtype=np.int32), "length": np.int32}


def vocab_fields(vocab) -> dict:
    """The spec fields of a token dataset with vocabulary ``vocab``."""
    return {"vocab": tuple(vocab), "vocab_size": len(vocab), "input_size": None}


def generate_negation(options: SentimentOptions) -> dict[str, list[dict]]:
    """``{split: [example]}``, each ``{inputs, length, targets, negated, tokens}``-free dict.

    Splits are drawn from independent streams of ``gen_seed``.
    """
    word_ids = {w: i for i, w in enumerate(VOCAB)}
    splits = {}
    for k, (split, n) in enumerate(options.split_sizes().items()):
        rng = np.random.default_rng([options.gen_seed, k])
        examples = []
        for _ in range(n):
            tokens, _, label, _ = draw_sentence(rng, options, STRUCTURES, STRUCTURE_PROBS)
            examples.append({
                "inputs": encode(tokens, word_ids),
                "length": len(tokens),
                "targets": int(label > 0),
                "negated": any(t in grammar.NEGATORS for t in tokens),
            })
        splits[split] = examples
    return splits


@register
class Negation(Dataset):
    """Binary sentiment with negation scope; batches carry ``negated`` (a negator occurs)."""

    name = "negation"
    Options = SentimentOptions
    task = "classify"
    input_kind = "tokens"
    extras = ("negated",)
    version = "1.0.0"

    def features(self, options):
        return {**token_features(), "targets": np.int32, "negated": np.bool_}

    def generate(self, options):
        return generate_negation(options), {"vocab": list(VOCAB)}

    def describe(self, options, metadata):
        return {**vocab_fields(metadata["vocab"]), "num_outputs": 2}

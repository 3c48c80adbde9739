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

from rnnlab.data import grammar, text
from rnnlab.data.registry import (
    Dataset,
    Extra,
    GeneratedOptions,
    encode,
    make_vocab,
    register,
    require,
    token_features,
    vocab_fields,
)

VOCAB = make_vocab(grammar.WORDS)
WORD_IDS = {w: i for i, w in enumerate(VOCAB)}
STRUCTURES = ("single", "and", "but", "yet")
STRUCTURE_PROBS = (0.4, 0.2, 0.25, 0.15)


@dataclasses.dataclass(frozen=True)
class SentimentOptions(GeneratedOptions):
    """Data config fields of the generated sentiment datasets (defaults used when absent).

    Attributes:
      num_train, num_valid, num_test, gen_seed: see :class:`GeneratedOptions`.
      max_len: longest sentence in tokens (longer draws are redrawn; >= 32
        never redraws).
      negation_prob: probability that a clause's sentiment word has negators in scope.
      double_negation_prob: among negated clauses, the fraction with two negators.
      distractor_prob: probability of a phrase holding an out-of-scope negator.
      tail_len: up to this many neutral filler tokens (uniform count) appended
        after the sentence, within ``max_len``: the decision must then be
        carried across them (0 = none; a long-memory variant).
    """

    max_len: int = 32
    negation_prob: float = 0.5
    double_negation_prob: float = 0.3
    distractor_prob: float = 0.35
    tail_len: int = 0

    def validate(self) -> None:
        super().validate()
        require(self.max_len >= 16, "max_len", "must be >= 16 (the grammar's sentences need it)",
                self.max_len)
        for field in ("negation_prob", "double_negation_prob", "distractor_prob"):
            value = getattr(self, field)
            require(0.0 <= value <= 1.0, field, "must lie in [0, 1]", value)
        require(self.tail_len >= 0, "tail_len", "must be >= 0", self.tail_len)

    @property
    def negation_probs(self) -> tuple[float, float, float]:
        """Probabilities of 0, 1 and 2 negators in scope of a clause's sentiment word."""
        p, d = self.negation_prob, self.double_negation_prob
        return (1.0 - p, p * (1.0 - d), p * d)


def draw_sentence(rng: np.random.Generator, options: SentimentOptions, structures, probs):
    """One ``(tokens, clause_of, label ±1, structure)`` of at most ``max_len`` tokens."""
    while True:
        label = 1 if rng.random() < 0.5 else -1
        structure = str(rng.choice(structures, p=probs))
        tokens, clause_of = grammar.sentence(
            rng, label, structure, options.negation_probs, options.distractor_prob
        )
        if len(tokens) <= options.max_len:
            if options.tail_len:
                room = options.max_len - len(tokens)
                tail = grammar.neutral_tail(rng, min(int(rng.integers(options.tail_len + 1)), room))
                tokens, clause_of = tokens + tail, clause_of + [clause_of[-1]] * len(tail)
            if grammar.sentence_polarity(tokens) != label:  # the generator obeys the rules
                raise AssertionError(f"grammar bug: {' '.join(tokens)!r} is not {label}")
            return tokens, clause_of, label, structure


def negation_example(rng: np.random.Generator, options: SentimentOptions) -> dict:
    """One example ``{inputs, length, targets, negated}`` (targets 1 positive, 0 negative)."""
    tokens, _, label, _ = draw_sentence(rng, options, STRUCTURES, STRUCTURE_PROBS)
    return {
        "inputs": encode(tokens, WORD_IDS),
        "length": len(tokens),
        "targets": int(label > 0),
        "negated": any(t in grammar.NEGATORS for t in tokens),
    }


def generate_negation(options: SentimentOptions) -> dict[str, list[dict]]:
    """``{split: [example]}`` (see :func:`negation_example`)."""
    return options.draw_splits(0, lambda rng: negation_example(rng, options))


@register
class Negation(Dataset):
    """Binary sentiment with negation scope; batches carry ``negated`` (a negator occurs)."""

    name = "negation"
    Options = SentimentOptions
    task = "classify"
    input_kind = "tokens"
    extras = {"negated": Extra(np.bool_, "negated_accuracy")}
    version = "1.0.0"

    def features(self, options):
        return {**token_features(per_step_targets=False), "negated": np.bool_}

    def generate(self, options):
        return generate_negation(options), {"vocab": list(VOCAB)}

    def describe(self, options, metadata):
        return {**vocab_fields(metadata["vocab"], num_outputs=2), "labels": ("negative", "positive")}

    def tokenize(self, options, sentence: str) -> list[str]:
        """A typed sentence in the grammar's tokens: treebank-style, lower-cased ("wasn't" -> ``was n't``)."""
        return tokenize_sentence(sentence)


def tokenize_sentence(sentence: str) -> list[str]:
    """The tokens of a typed sentence as the generated corpora write them (:func:`text.tokenize`, lower-cased)."""
    return text.tokenize(sentence, lowercase=True)

"""``future_context``: per-token sentiment tags that depend on words AFTER the token.

Every sentiment word is tagged with the polarity the whole sentence finally
takes, which later words may decide::

    the plot was good , but the acting was really bad
                 ^neg                          ^neg        (tags: 1 = negative)

Classes: 0 = not a sentiment word (and padding), 1 = negative, 2 = positive.
Class 0 is a class of its own (trivial from the word), so a loss over every
valid step works; batches also carry ``target_mask f32[B, T]``, 1.0 on
sentiment words, for the accuracy that matters. Read left to right, a word in
the first clause of ``A , but B`` / ``A , yet B`` / ``A and B`` / ``A`` cannot
know its tag; a bidirectional reader has seen the whole sentence.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rnnlab.data import grammar
from rnnlab.data.negation import VOCAB, WORD_IDS, SentimentOptions, draw_sentence, tokenize_sentence
from rnnlab.data.registry import TokenTagging, encode, register, vocab_fields

STRUCTURES = ("single", "and", "but", "yet", "although")
STRUCTURE_PROBS = (0.2, 0.2, 0.2, 0.15, 0.25)
NONE, NEGATIVE, POSITIVE = 0, 1, 2


def tag_tokens(tokens: Sequence[str]) -> np.ndarray:
    """``int32[L]``: on each sentiment word the sentence's final polarity
    (1 negative, 2 positive), 0 elsewhere. Uses only the tokens."""
    final = POSITIVE if grammar.sentence_polarity(tokens) > 0 else NEGATIVE
    return np.where(grammar.effective_polarities(tokens) != 0, final, NONE).astype(np.int32)


def future_context_example(rng: np.random.Generator, options: SentimentOptions) -> dict:
    """One example ``{inputs, length, targets int32[L], target_mask f32[L]}``."""
    tokens, _, _, _ = draw_sentence(rng, options, STRUCTURES, STRUCTURE_PROBS)
    tags = tag_tokens(tokens)
    return {
        "inputs": encode(tokens, WORD_IDS),
        "length": len(tokens),
        "targets": tags,
        "target_mask": (tags != NONE).astype(np.float32),
    }


def generate_future_context(options: SentimentOptions) -> dict[str, list[dict]]:
    """``{split: [example]}`` (see :func:`future_context_example`)."""
    return options.draw_splits(100, lambda rng: future_context_example(rng, options))


@register
class FutureContext(TokenTagging):
    """Tag each sentiment word with the sentence's final polarity (see the module docstring)."""

    name = "future_context"
    Options = SentimentOptions
    version = "1.0.0"

    def generate(self, options):
        return generate_future_context(options), {"vocab": list(VOCAB)}

    def tokenize(self, options, sentence: str) -> list[str]:
        """A typed sentence in the grammar's tokens (as :class:`rnnlab.data.negation.Negation` reads it)."""
        return tokenize_sentence(sentence)

    def describe(self, options, metadata):
        return {**vocab_fields(metadata["vocab"], num_outputs=3), "labels": ("other", "negative", "positive")}

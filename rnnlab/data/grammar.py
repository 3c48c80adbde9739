"""A small sentiment grammar with negation scope, shared by ``negation`` and ``future_context``.

The meaning of a sentence is defined by rules on its tokens (never by the
generator's intentions, which are only checked against them):

* **scope**: a negator (``not``, ``n't``, ``never``, ``hardly``, ``no``,
  ``nothing``) applies to the first sentiment word after it, if that word is
  at most :data:`SCOPE` tokens later. Otherwise it applies to nothing
  (``"no doubt , the film was good"``, ``"... good , not to mention the cast"``).
* **effective polarity** of a sentiment word: its lexical polarity, flipped
  once per negator applying to it (``"never not good"`` is positive).
* intensifiers (``very``, ``really``, ...) and fillers carry no polarity.

A clause is ``[filler] subject verb [negators] [intensifier] word``. Sentences
join clauses with ``and`` (same effective polarity), ``but``/``yet``
(opposite; the last clause decides) or ``although A , B`` (B decides), and may
carry a distractor phrase that holds a negator out of scope. Because the same
multiset of words can be ordered into sentences of either label, word counts
alone cannot tell them apart; reading the order can.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

SCOPE = 3
POSITIVE = ("good", "great", "excellent", "wonderful", "brilliant", "enjoyable", "charming", "fun")
NEGATIVE = ("bad", "awful", "terrible", "boring", "dull", "poor", "weak", "tedious")
NEGATORS = ("not", "n't", "never", "hardly", "no", "nothing")
DOUBLE_NEGATORS = ("not", "n't", "never", "hardly")
INTENSIFIERS = ("very", "really", "extremely", "quite", "so", "truly")
SUBJECTS = (
    ("the", "movie"), ("the", "film"), ("the", "plot"), ("the", "acting"), ("the", "story"),
    ("the", "cast"), ("the", "ending"), ("the", "script"), ("this", "film"), ("it",),
)
VERBS = ("was", "is", "seemed", "felt", "looked")
FILLERS = (("honestly", ","), ("overall", ","), ("i", "think"), ("in", "the", "end", ","),
           ("to", "be", "fair", ","), ("for", "me", ","))
DISTRACTOR_PREFIXES = (("no", "doubt", ","), ("not", "to", "mention", "the", "music", ","),
                       ("never", "mind", "the", "length", ","))
DISTRACTOR_SUFFIXES = ((",", "no", "doubt"), (",", "not", "to", "mention", "the", "music"),
                       (",", "if", "nothing", "else"))
CONNECTIVES = ("and", "but", "yet", "although", ",")
_POLARITY = {**{w: 1 for w in POSITIVE}, **{w: -1 for w in NEGATIVE}}


def _words() -> tuple[str, ...]:
    groups = (POSITIVE, NEGATIVE, NEGATORS, INTENSIFIERS, VERBS, CONNECTIVES)
    phrases = SUBJECTS + FILLERS + DISTRACTOR_PREFIXES + DISTRACTOR_SUFFIXES
    words = [w for g in groups for w in g] + [w for p in phrases for w in p]
    return tuple(dict.fromkeys(words))


WORDS = _words()
"""Every word the grammar can produce, in a fixed order (the vocabulary after pad/unk)."""


def polarity(token: str) -> int:
    """+1 positive word, -1 negative word, 0 anything else."""
    return _POLARITY.get(token, 0)


def effective_polarities(tokens: Sequence[str]) -> np.ndarray:
    """``int[L]``: each sentiment word's polarity after negation scope (0 elsewhere).

    A negator at ``i`` flips the first sentiment word ``j > i`` if ``j - i <= SCOPE``.
    Uses only the tokens (see the module docstring).
    """
    pol = np.asarray([polarity(t) for t in tokens], np.int64)
    out = pol.copy()
    sentiment = np.flatnonzero(pol)
    for i, t in enumerate(tokens):
        if t in NEGATORS:
            later = sentiment[sentiment > i]
            if len(later) and later[0] - i <= SCOPE:
                out[later[0]] *= -1
    return out


def sentence_polarity(tokens: Sequence[str]) -> int:
    """+1 or -1: the effective polarity of the deciding clause, i.e. the last sentiment word.

    Every sentence of this grammar decides on its last clause (``and`` clauses
    agree, ``but``/``yet``/``although`` let the last one win).

    Raises:
      ValueError: the sentence has no sentiment word.
    """
    eff = effective_polarities(tokens)
    nonzero = eff[eff != 0]
    if not len(nonzero):
        raise ValueError(f"no sentiment word in {' '.join(tokens)!r}")
    return int(nonzero[-1])


def _pick(rng: np.random.Generator, options: Sequence):
    return options[rng.integers(len(options))]


FILLER_PROB = 0.25  # a clause opens with a filler ("honestly , ...")
INTENSIFIER_PROB = 0.35  # an intensifier precedes the sentiment word


def clause(rng: np.random.Generator, effective: int, negation_probs: Sequence[float]) -> list[str]:
    """One clause whose sentiment word has effective polarity ``effective`` (+1/-1).

    ``negation_probs`` are the probabilities of 0, 1 and 2 negators in scope.
    """
    count = int(rng.choice(3, p=negation_probs))
    lexical = effective * (-1) ** count
    tokens = list(_pick(rng, FILLERS)) if rng.random() < FILLER_PROB else []
    tokens += list(_pick(rng, SUBJECTS)) + [_pick(rng, VERBS)]
    if count == 1:
        tokens.append(_pick(rng, NEGATORS))
    elif count == 2:
        tokens += [str(w) for w in rng.choice(DOUBLE_NEGATORS, size=2, replace=False)]
    if rng.random() < INTENSIFIER_PROB:
        tokens.append(_pick(rng, INTENSIFIERS))
    tokens.append(_pick(rng, POSITIVE if lexical > 0 else NEGATIVE))
    return tokens


def neutral_tail(rng: np.random.Generator, length: int) -> list[str]:
    """``length`` tokens of filler phrases (no sentiment word, no negator)."""
    tokens = []
    while len(tokens) < length:
        tokens += [","] + list(_pick(rng, FILLERS))
    return tokens[:length]


def sentence(
    rng: np.random.Generator,
    label: int,
    structure: str,
    negation_probs: Sequence[float],
    distractor_prob: float,
) -> tuple[list[str], list[int]]:
    """A sentence whose final polarity is ``label`` (+1/-1).

    Args:
      rng: the generator.
      label: the sentence's final polarity.
      structure: ``"single"``, ``"and"``, ``"but"``, ``"yet"`` or ``"although"``.
      negation_probs: probabilities of 0, 1, 2 negators in scope per clause.
      distractor_prob: probability of one out-of-scope negator phrase.

    Returns:
      ``(tokens, clause_of)``: the words and, per word, the clause index (0, 1).
    """
    if structure == "single":
        parts = [clause(rng, label, negation_probs)]
        joins = []
    else:
        first = label if structure == "and" else -label
        parts = [clause(rng, first, negation_probs), clause(rng, label, negation_probs)]
        joins = {"and": ["and"], "but": [",", "but"], "yet": [",", "yet"], "although": [","]}[structure]
    if rng.random() < distractor_prob:
        if rng.random() < 0.5:
            parts[-1] = parts[-1] + list(_pick(rng, DISTRACTOR_SUFFIXES))
        else:
            parts[0] = list(_pick(rng, DISTRACTOR_PREFIXES)) + parts[0]
    tokens, clause_of = [], []
    if structure == "although":
        tokens.append("although")
        clause_of.append(0)
    for c, part in enumerate(parts):
        if c:
            tokens += joins
            clause_of += [c] * len(joins)
        tokens += part
        clause_of += [c] * len(part)
    return tokens, clause_of

"""Ceilings: the best accuracy a reader can reach on a generated task, computed from the generator.

**Left to right on** ``future_context`` (claim 2). Every sentiment word is tagged with
the sentence's *final* polarity. A causal tagger predicts at step ``t`` from
``tokens[:t+1]`` only; the Bayes-optimal one predicts the more probable final
polarity given that prefix, and its expected accuracy on the sentiment words is
the ceiling of every left-to-right model. It is computed here exactly, by
enumerating the generator's choices that the decision can depend on.

Why a few choices suffice. A sentence (:func:`rnnlab.data.grammar.sentence`) is
``[although] [distractor prefix] clause1 [join clause2] [distractor suffix]``;
each clause ends with its one sentiment word, whose effective polarity ``e`` the
prefix shows (negators precede the word they flip). The final polarity is the
last clause's ``e``. So:

* at the **second** sentiment word the reader knows it is the last one (the
  grammar has at most two clauses): its ``e`` is the tag, always right;
* at the **first** sentiment word the tag is ``e1`` if the structure is
  ``single`` or ``and`` ("same") and ``-e1`` for ``but``, ``yet``, ``although``
  ("opposite"). Given the structure and the label, the first clause's tokens
  are drawn the same way whatever the structure (only through ``e1``, which the
  reader sees), so the posterior of "same" given the prefix depends on the
  prefix only through its *view* ``(although?, length of the distractor prefix,
  length of clause 1)``: ``although`` is always the first token; lengths enter
  because sentences longer than ``max_len`` are redrawn, and a longer prefix
  leaves less room for a second clause. With ``max_len >= 30`` (the longest
  sentence the grammar makes) nothing is redrawn and the posterior of "same"
  for a sentence not opened by ``although`` is the prior
  ``P(single or and) / P(not although) = 0.4 / 0.75 = 8/15``.

With the default structure probabilities (0.2 single, 0.2 and, 0.2 but, 0.15
yet, 0.25 although) and no redraws, the ceiling on the sentiment words
(pooled over words, as ``masked_accuracy`` is) is
``(0.2 + 2*0.2 + 0.2 + 0.15 + 2*0.25) / (1 + 0.8) = 1.45 / 1.8 = 29/36 = 0.8056``;
the mean over sentences of each sentence's accuracy is higher, 0.825, because
one-word sentences are always right and count as much as two-word ones.
"""

from __future__ import annotations

import collections
import itertools
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

import numpy as np

from rnnlab.data import grammar
from rnnlab.data.future_context import NEGATIVE, POSITIVE, STRUCTURE_PROBS, STRUCTURES
from rnnlab.data.negation import VOCAB, SentimentOptions

# The probabilities :func:`rnnlab.data.grammar.clause` draws with.
FILLER_PROB = grammar.FILLER_PROB
INTENSIFIER_PROB = grammar.INTENSIFIER_PROB
# Per structure: is the first clause's polarity the final one, tokens before clause 1
# ("although"), and tokens joining the two clauses (``None``: one clause).
SAME_AS_FINAL = {"single": True, "and": True, "but": False, "yet": False, "although": False}
LEAD = {"single": 0, "and": 0, "but": 0, "yet": 0, "although": 1}
JOIN = {"single": None, "and": 1, "but": 2, "yet": 2, "although": 1}


class View(NamedTuple):
    """What the prefix up to the first sentiment word says about the rest of the sentence.

    Attributes:
      although: the sentence opens with ``although`` (its structure is then known).
      prefix: tokens of the distractor prefix before clause 1 (0: none).
      clause: tokens of clause 1, its sentiment word included.
    """

    although: bool
    prefix: int
    clause: int


class CeilingTerms(NamedTuple):
    """Expectations per accepted sentence under the Bayes-optimal causal tagger.

    Attributes:
      correct: expected number of sentiment words tagged right.
      words: expected number of sentiment words.
      per_sentence: expected fraction of a sentence's sentiment words tagged right.
    """

    correct: float
    words: float
    per_sentence: float


def clause_length_pmf(negation_probs: Sequence[float]) -> dict[int, float]:
    """``{L: P(a clause has L tokens)}`` of :func:`rnnlab.data.grammar.clause`.

    A clause is ``[filler] subject verb [0-2 negators] [intensifier] word``.

    Args:
      negation_probs: ``(p0, p1, p2)``, probabilities of 0, 1, 2 negators.
    """
    parts = [
        {0: 1.0 - FILLER_PROB, **_uniform_lengths(grammar.FILLERS, FILLER_PROB)},
        _uniform_lengths(grammar.SUBJECTS, 1.0),
        {1: 1.0},  # verb
        {n: float(p) for n, p in enumerate(negation_probs) if p > 0},
        {0: 1.0 - INTENSIFIER_PROB, 1: INTENSIFIER_PROB},
        {1: 1.0},  # the sentiment word
    ]
    pmf = {0: 1.0}
    for part in parts:
        out = collections.defaultdict(float)
        for (a, p), (b, q) in itertools.product(pmf.items(), part.items()):
            out[a + b] += p * q
        pmf = dict(out)
    return pmf


def _uniform_lengths(phrases: Sequence[Sequence[str]], mass: float) -> dict[int, float]:
    """``{length: mass * fraction of phrases with that length}``."""
    counts = collections.Counter(len(p) for p in phrases)
    return {n: mass * c / len(phrases) for n, c in counts.items()}


def distractor_choices(distractor_prob: float) -> list[tuple[str, int, float]]:
    """``[(where, length, probability)]``: no distractor (``"none"``, 0), or one
    ``"prefix"`` before clause 1 / ``"suffix"`` after the last clause, each half of
    ``distractor_prob``, the phrase uniform (as :func:`rnnlab.data.grammar.sentence` draws)."""
    out = [("none", 0, 1.0 - distractor_prob)]
    for where, phrases in (("prefix", grammar.DISTRACTOR_PREFIXES), ("suffix", grammar.DISTRACTOR_SUFFIXES)):
        out += [(where, len(p), distractor_prob / 2 / len(phrases)) for p in phrases]
    return [c for c in out if c[2] > 0]


class Masses(NamedTuple):
    """Joint probabilities of one :class:`View` and how the sentence goes on.

    Attributes:
      single: P(view, one clause): the first word's polarity is final.
      same: P(view, two clauses, the second of the first's polarity) (``and``).
      opposite: P(view, two clauses of opposite polarities) (``but``, ``yet``, ``although``).
    """

    single: float
    same: float
    opposite: float


def view_table(options: SentimentOptions) -> dict[View, Masses]:
    """The joint probabilities behind the first sentiment word's decision, per :class:`View`.

    Enumerates structure, distractor and the two clause lengths, keeps the
    sentences of at most ``options.max_len`` tokens (the others are redrawn by
    :func:`rnnlab.data.negation.draw_sentence`, structure and label included)
    and renormalises: the masses of all views sum to 1.

    Raises:
      ValueError: no sentence fits ``max_len``.
    """
    clause = clause_length_pmf(options.negation_probs)
    table: dict[View, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0.0])
    for structure, prior in zip(STRUCTURES, STRUCTURE_PROBS):
        join = JOIN[structure]
        seconds = {0: 1.0} if join is None else clause
        kind = 0 if join is None else (1 if SAME_AS_FINAL[structure] else 2)
        for (where, extra, p_d), (l1, p1), (l2, p2) in itertools.product(
                distractor_choices(options.distractor_prob), clause.items(), seconds.items()):
            length = LEAD[structure] + extra + l1 + (0 if join is None else join + l2)
            if length <= options.max_len:
                view = View(structure == "although", extra if where == "prefix" else 0, l1)
                table[view][kind] += prior * p_d * p1 * p2
    total = sum(map(sum, table.values()))
    if total <= 0:
        raise ValueError(f"no sentence of the grammar fits max_len={options.max_len}")
    return {v: Masses(*(m / total for m in masses)) for v, masses in table.items()}


def picks_same(masses: Masses) -> bool:
    """The Bayes decision at the first sentiment word: is the final polarity more probably
    the first word's own (ties: yes)?"""
    return masses.single + masses.same >= masses.opposite


def ceiling_terms(options: SentimentOptions) -> CeilingTerms:
    """The Bayes-optimal causal tagger's expectations per sentence (see :class:`CeilingTerms`).

    At the first sentiment word it picks :func:`picks_same`; a second word is always right.
    """
    correct = words = per_sentence = 0.0
    for m in view_table(options).values():
        same = picks_same(m)
        first_right = {"single": same, "same": same, "opposite": not same}
        for kind in ("single", "same", "opposite"):
            mass, n = getattr(m, kind), 1 if kind == "single" else 2
            right = first_right[kind] + (n - 1)  # a second word is always right
            correct += mass * right
            words += mass * n
            per_sentence += mass * right / n
    return CeilingTerms(correct=correct, words=words, per_sentence=per_sentence)


def left_to_right_ceiling(options: SentimentOptions) -> float:
    """The expected accuracy on the sentiment words of the Bayes-optimal causal tagger.

    Pooled over words (``E[correct words] / E[sentiment words]``, the large-split
    limit of ``masked_accuracy``), exact under the generator's distribution
    (:func:`view_table`). ``29/36 = 0.8056`` for the default options.

    Args:
      options: the ``future_context`` data options (``max_len``,
        ``negation_prob``, ``double_negation_prob``, ``distractor_prob``; the
        tail and the split sizes do not matter).
    """
    terms = ceiling_terms(options)
    return terms.correct / terms.words


def first_word_view(tokens: Sequence[str]) -> View | None:
    """The :class:`View` of a sentence of the grammar at its first sentiment word.

    Uses only the tokens up to and including that word; ``None`` when there is
    no sentiment word.
    """
    first = next((i for i, t in enumerate(tokens) if grammar.polarity(t)), None)
    if first is None:
        return None
    start = int(bool(tokens) and tokens[0] == "although")
    prefix = next((len(p) for p in grammar.DISTRACTOR_PREFIXES if tuple(tokens[start:start + len(p)]) == p), 0)
    return View(bool(start), prefix, first + 1 - start - prefix)


def causal_tags(tokens: Sequence[str], options: SentimentOptions,
                table: Mapping[View, Masses] | None = None) -> np.ndarray:
    """``int32[L]``: the Bayes-optimal causal tagger's tags (1 negative, 2 positive, 0 elsewhere).

    The tag at ``t`` depends on ``tokens[:t+1]`` only: at the first sentiment
    word, the first word's effective polarity or its opposite, whichever final
    polarity is more probable given the prefix's :class:`View` (a view the
    generator cannot make: the same polarity); at later sentiment words, their
    own effective polarity (the last word decides).

    Args:
      tokens: one sentence of the grammar (a tail after it is allowed).
      options: the data options (they set the posterior through ``max_len``).
      table: :func:`view_table` of ``options``, to reuse across sentences.
    """
    if table is None:
        table = view_table(options)
    effective = grammar.effective_polarities(tokens)  # a word's own value needs only negators before it
    tags = np.zeros(len(tokens), np.int32)
    seen = 0
    for t in np.flatnonzero(effective):
        sign = int(effective[t])
        if seen == 0:
            masses = table.get(first_word_view(tokens[: t + 1]))
            sign = sign if masses is None or picks_same(masses) else -sign
        tags[t] = POSITIVE if sign > 0 else NEGATIVE
        seen += 1
    return tags


def score_causal(examples: Iterable[Mapping[str, Any]], options: SentimentOptions) -> dict[str, float]:
    """The Bayes-optimal causal tagger applied to generated examples and scored.

    Args:
      examples: ``future_context`` examples ``{inputs int32[L], targets int32[L],
        target_mask f32[L]}`` (ids of :data:`rnnlab.data.negation.VOCAB`).
      options: their data options.

    Returns:
      ``{"masked_accuracy": right / sentiment words (pooled, as in training),
      "per_sentence": mean over sentences of their own accuracy, "words",
      "sentences"}``.
    """
    table = view_table(options)
    right = words = 0
    per_sentence = []
    for ex in examples:
        tokens = [VOCAB[i] for i in np.asarray(ex["inputs"]).tolist()]
        mask = np.asarray(ex["target_mask"]) > 0
        hits = causal_tags(tokens, options, table)[mask] == np.asarray(ex["targets"])[mask]
        right += int(hits.sum())
        words += int(mask.sum())
        per_sentence.append(float(hits.mean()))
    return {"masked_accuracy": right / words, "per_sentence": float(np.mean(per_sentence)),
            "words": words, "sentences": len(per_sentence)}

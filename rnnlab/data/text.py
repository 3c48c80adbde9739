"""Words of English text: the negator list and a Penn-Treebank-style tokenizer.

:data:`NEGATORS` is THE definition of "a sentence with a negator" used by the
SST datasets' ``negated`` flag and by :mod:`rnnlab.experiments.gate_analysis`.
:func:`tokenize` splits raw text the way the Stanford Sentiment Treebank (and
GLUE SST-2, built from it) is tokenized, so a sentence typed by a user meets
the same tokens a model trained on the treebank saw.
"""

from __future__ import annotations

import re
from typing import Iterable

# Negators, as in the SST negation analyses (issue 10): "n't" is its own token in the treebank.
NEGATORS: tuple[str, ...] = (
    "not", "n't", "no", "never", "nothing", "none", "nobody", "neither", "nor", "without",
)

_CONTRACTIONS = [
    (re.compile(r"\b(ca|wo|sha)n't\b", re.I), r"\1 n't"),  # can't -> ca n't, won't -> wo n't (PTB)
    (re.compile(r"(\w)n't\b", re.I), r"\1 n't"),  # isn't -> is n't
    (re.compile(r"(\w)'(s|re|ve|ll|d|m)\b", re.I), r"\1 '\2"),  # it's -> it 's
]
_PUNCTUATION = re.compile(r"(\.\.\.|--|[.,!?;:()\"])")


def has_negator(words: Iterable[str]) -> bool:
    """Whether any of ``words`` (already lower-cased tokens) is one of :data:`NEGATORS`."""
    return any(w in NEGATORS for w in words)


def tokenize(text: str, lowercase: bool = True) -> list[str]:
    """Penn-Treebank-style tokens of one raw sentence, as in the SST files.

    Punctuation (``. , ! ? ; : ( ) "``, ``...``, ``--``) becomes its own token,
    ``n't`` and the clitics ``'s 're 've 'll 'd 'm`` are split off their word
    (``"isn't"`` -> ``is n't``, ``"can't"`` -> ``ca n't``), and with
    ``lowercase`` every token is lower-cased.

    Args:
      text: one sentence.
      lowercase: lower-case the tokens.

    Returns:
      The tokens, ``[]`` for blank text.
    """
    if not isinstance(text, str):
        raise TypeError(f"tokenize takes a string, got {type(text).__name__}")
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    tokens = _PUNCTUATION.sub(r" \1 ", text).split()
    return [t.lower() for t in tokens] if lowercase else tokens

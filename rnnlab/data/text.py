"""Words of text: the negator list and the tokenizers, chosen by name (:func:`get_tokenizer`).

:data:`NEGATORS` is THE definition of "a sentence with a negator" used by the
SST datasets' ``negated`` flag and by :mod:`rnnlab.analysis.gate_analysis`.
:func:`tokenize` splits raw text the way the Stanford Sentiment Treebank (and
GLUE SST-2, built from it) is tokenized, so a sentence typed by a user meets
the same tokens a model trained on the treebank saw. :data:`TOKENIZERS` names
every tokenizer a dataset of users' text files (``data.tokenizer``) may pick:
``treebank`` (:func:`tokenize`), ``whitespace`` and ``chars``.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable

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
    return _lowered(_PUNCTUATION.sub(r" \1 ", text).split(), lowercase)


def _lowered(tokens: list[str], lowercase: bool) -> list[str]:
    return [t.lower() for t in tokens] if lowercase else tokens


def tokenize_whitespace(text: str, lowercase: bool = True) -> list[str]:
    """The whitespace-separated words of ``text`` (lower-cased with ``lowercase``); ``[]`` for blank text."""
    return _lowered(text.split(), lowercase)


def tokenize_chars(text: str, lowercase: bool = True) -> list[str]:
    """The characters of ``text``, each run of whitespace kept as one ``" "`` between words.

    ``"ab  c"`` -> ``["a", "b", " ", "c"]``; leading and trailing whitespace is dropped.
    """
    return _lowered(list(" ".join(text.split())), lowercase)


# data.tokenizer name -> tokenizer(text, lowercase) -> tokens
TOKENIZERS: dict[str, Callable[[str, bool], list[str]]] = {
    "treebank": tokenize,
    "whitespace": tokenize_whitespace,
    "chars": tokenize_chars,
}


def get_tokenizer(name: str) -> Callable[[str, bool], list[str]]:
    """The tokenizer called ``name``: ``tokenizer(text, lowercase) -> list[str]``.

    Raises:
      ValueError: an unknown name (the message lists the known ones).
    """
    if name not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {name!r}; known tokenizers: {', '.join(sorted(TOKENIZERS))}")
    return TOKENIZERS[name]

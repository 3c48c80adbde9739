"""``sequence_tagging``: a user's tagged sentences in CoNLL-style column files.

``data.path`` is a folder with ``train``, ``valid`` (or ``dev``) and,
optionally, ``test`` files, with any extension (``.txt``, ``.conll``, none).
One token per line, columns separated by whitespace (spaces or tabs): the
token in column 0, its tag in column ``data.tag_column`` (-1: the last); a
blank line ends a sentence; ``-DOCSTART-`` lines are skipped::

    EU      B-ORG
    rejects O
    German  B-MISC
    call    O

The tags are those of the training file (``spec.labels``, sorted); for BIO /
BIOES tags the training loop also reports span-level precision, recall and F1
(:func:`rnnlab.training.tasks.span_table`). Tokens are kept as written unless
``data.lowercase``; the vocabulary is the training tokens seen at least
``data.min_count`` times, the others ``<unk>``. New sentences are split on
whitespace (:meth:`SequenceTagging.tokenize`).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple, Optional

import numpy as np
import tensorflow_datasets as tfds

from rnnlab.data import text, user_files
from rnnlab.data.registry import Dataset, register, require
from rnnlab.data.user_files import error_at

HOW = ("data.path must be a folder holding train, valid (or dev) and optionally test files (any extension) "
       "with one token per line, its tag in column data.tag_column, and a blank line after each sentence.")
DOCSTART = "-DOCSTART-"


@dataclasses.dataclass(frozen=True)
class TaggingOptions:
    """Data config fields of ``sequence_tagging``.

    Attributes:
      path: the folder of split files (required).
      tag_column: the column holding the tag (0 is the token; negative counts
        from the last column, -1 being the last).
      lowercase: lower-case the tokens.
      min_count: a training token enters the vocabulary if seen this often.
    """

    path: Optional[str] = None
    tag_column: int = -1
    lowercase: bool = False
    min_count: int = 1

    def validate(self) -> None:
        require(self.min_count >= 1, "min_count", "must be >= 1", self.min_count)
        require(self.tag_column != 0, "tag_column", "must not be 0 (column 0 holds the token)", self.tag_column)


class Sentence(NamedTuple):
    """One sentence of a CoNLL file: its tokens, their tags and the line of each (1-based)."""

    tokens: list[str]
    tags: list[str]
    lines: list[int]


def _columns(path: str, line: int, fields: list[str], width: Optional[int], tag_column: int) -> str:
    """The tag of a token line of ``fields``; checks the column count against the file's first line's."""
    if width is not None and len(fields) != width:
        raise error_at(path, f"line {line}", f"{len(fields)} columns, but the file's first token line has "
                       f"{width}: {' '.join(fields)!r}")
    if len(fields) < 2 or not -len(fields) <= tag_column < len(fields) or tag_column % len(fields) == 0:
        raise error_at(path, f"line {line}", f"no tag in column {tag_column} of {len(fields)} column(s) "
                       f"{' '.join(fields)!r} (data.tag_column)")
    return fields[tag_column]


def read_conll(path: str, tag_column: int = -1) -> list[Sentence]:
    """The sentences of one CoNLL-style file.

    Args:
      path: the file (UTF-8).
      tag_column: the column of the tag (negative: from the end).

    Raises:
      ValueError: non-UTF-8 bytes, a line without the tag column, a line with
        another number of columns than the file's first token line, or no
        sentence at all; the message names file and line.
    """
    sentences, current, width = [], Sentence([], [], []), None
    for line, raw in enumerate(user_files.read_text(path).split("\n"), 1):
        fields = raw.split()
        if fields and fields[0] == DOCSTART:
            continue
        if not fields:
            if current.tokens:
                sentences.append(current)
            current = Sentence([], [], [])
            continue
        tag = _columns(path, line, fields, width, tag_column)
        width = len(fields)
        current.tokens.append(fields[0])
        current.tags.append(tag)
        current.lines.append(line)
    if current.tokens:
        sentences.append(current)
    user_files.require_examples(path, len(sentences), "token lines")
    return sentences


@register
class SequenceTagging(Dataset):
    """Users' CoNLL-style files: a tag per token, tag names kept in ``spec.labels``."""

    name = "sequence_tagging"
    Options = TaggingOptions
    task = "tag"
    input_kind = "tokens"
    per_step = ("inputs", "targets")

    def source_files(self, options):
        return list(user_files.split_files(options.path, None, HOW).values())

    def features(self, options):
        ids = tfds.features.Tensor(shape=(None,), dtype=np.int32)
        return {"inputs": ids, "length": np.int32, "targets": ids}

    def tokenize(self, options: TaggingOptions, sentence: str) -> list[str]:
        """The tokens of a new sentence: split on whitespace (lower-cased with ``data.lowercase``)."""
        return text.tokenize_whitespace(sentence, options.lowercase)

    def generate(self, options):
        files = user_files.split_files(options.path, None, HOW)
        sentences = {s: read_conll(f, options.tag_column) for s, f in files.items()}
        names = user_files.label_names(tag for s in sentences["train"] for tag in s.tags)
        tokens = {s: [[t.lower() for t in x.tokens] if options.lowercase else x.tokens for x in xs]
                  for s, xs in sentences.items()}
        ids, vocab = user_files.encode_splits(tokens, options.min_count)
        examples = {}
        for split, xs in sentences.items():
            examples[split] = [
                {"inputs": x, "length": len(x), "targets": np.asarray(
                    user_files.label_ids(s.tags, s.lines, names, files[split], files["train"], "tag"), np.int32)}
                for x, s in zip(ids[split], xs)]
        return examples, {"vocab": list(vocab), "labels": list(names)}

    def describe(self, options, metadata):
        return user_files.labelled_token_fields(metadata)

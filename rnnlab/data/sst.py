"""The Stanford Sentiment Treebank, binary: ``sst`` (from PTB tree files) and ``glue_sst2`` (tfds).

``sst`` reads ``train.txt``, ``dev.txt`` and ``test.txt`` (one PTB-style tree
per line, labels 0..4 on every node) from the folder ``data.path``; the root
label gives the sentence label (0, 1 -> 0 negative; 3, 4 -> 1 positive;
neutral 2 dropped), splits ``train``, ``valid`` (dev), ``test``.

``glue_sst2`` reads ``tfds.data_source("glue/sst2")`` from the tfds data dir
``data.path`` (``None``: tfds' default), which needs the GLUE data prepared
there once (internet); splits ``train`` and ``valid`` (GLUE's test split has
no labels).

Both lower-case and split on spaces, build the vocabulary from the training
split (words seen at least ``data.min_count`` times, most frequent first; the
others map to ``<unk>`` = 1) and mark ``negated`` sentences: those with a
negator (:data:`NEGATORS`).
"""

from __future__ import annotations

import collections
import dataclasses
import re
from typing import Iterable, Optional, Sequence

import numpy as np
import tensorflow_datasets as tfds

from rnnlab.data.registry import (
    Dataset,
    encode,
    locate,
    make_vocab,
    register,
    require,
    token_features,
    vocab_fields,
)

NEGATORS = frozenset(
    {"not", "n't", "no", "never", "nothing", "none", "nobody", "neither", "nor", "without"}
)
SST_FILES = {"train": "train.txt", "valid": "dev.txt", "test": "test.txt"}
SST_HOW_TO_GET = (
    "Get trainDevTestTrees_PTB.zip from https://nlp.stanford.edu/sentiment/ and point "
    "data.path at its trees/ folder (train.txt, dev.txt, test.txt)."
)
_LEAF = re.compile(r"\(\d+ ([^()\s]+)\)")


@dataclasses.dataclass(frozen=True)
class SSTOptions:
    """Data config fields of ``sst`` and ``glue_sst2``.

    Attributes:
      path: ``sst``: the folder with ``train.txt``, ``dev.txt``, ``test.txt``
        (required). ``glue_sst2``: the tfds data dir holding ``glue/sst2``
        (``None``: tfds' default).
      min_count: a training word enters the vocabulary if seen this often.
      lowercase: lower-case the words.
    """

    path: Optional[str] = None
    min_count: int = 1
    lowercase: bool = True

    def validate(self) -> None:
        require(self.min_count >= 1, "min_count", "must be >= 1", self.min_count)


def parse_tree(line: str) -> tuple[int, list[str]]:
    """``(root label 0..4, leaf words)`` of one PTB-style SST tree.

    Raises:
      ValueError: the line is not a labelled tree.
    """
    match = re.match(r"\s*\((\d+)\s", line)
    words = _LEAF.findall(line)
    if match is None or not words:
        raise ValueError(f"not an SST tree: {line[:80]!r}")
    return int(match.group(1)), words


def sst_files(path: Optional[str]) -> dict[str, str]:
    """``{split: tree file}`` in the SST folder ``path``.

    Raises:
      FileNotFoundError: ``path`` is unset or a file is missing (the message
        says where it looked and how to get the data).
    """
    return {s: locate(path, f, SST_HOW_TO_GET, folder=True) for s, f in SST_FILES.items()}


def read_trees(files: dict[str, str]) -> dict[str, list[tuple[list[str], int]]]:
    """``{split: [(words, root label 0..4)]}`` from SST tree files ``{split: file}``."""
    out = {}
    for split, file in files.items():
        with open(file, encoding="utf-8") as f:
            out[split] = [parse_tree(line)[::-1] for line in f if line.strip()]
    return out


def build_vocab(sentences: Iterable[Sequence[str]], min_count: int) -> tuple[str, ...]:
    """id -> word: pad, unk, then words seen ``>= min_count`` times, most frequent first (ties
    alphabetical)."""
    counts = collections.Counter(w for s in sentences for w in s)
    kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return make_vocab(kept)


def binary_examples(
    splits: dict[str, list[tuple[list[str], int]]], labels: dict[int, int], options: SSTOptions
) -> tuple[dict[str, list[dict]], dict]:
    """Examples ``{inputs, length, targets, negated}`` of labelled sentences and the vocabulary.

    Args:
      splits: ``{split: [(words, raw label)]}``.
      labels: raw label -> binary label; raw labels not in it (neutral) are dropped.
      options: lowercase, min_count.
    """
    def norm(words):
        return [w.lower() for w in words] if options.lowercase else list(words)

    kept = {s: [(norm(w), labels[y]) for w, y in rows if y in labels and w] for s, rows in splits.items()}
    vocab = build_vocab((w for w, _ in kept["train"]), options.min_count)
    word_ids = {w: i for i, w in enumerate(vocab)}
    examples = {
        s: [{"inputs": encode(w, word_ids), "length": len(w), "targets": y,
             "negated": any(t in NEGATORS for t in w)} for w, y in rows]
        for s, rows in kept.items()
    }
    return examples, {"vocab": list(vocab)}


class _BinarySentiment(Dataset):
    """Shared parts of the binary sentiment datasets with a ``negated`` flag."""

    Options = SSTOptions
    task = "classify"
    input_kind = "tokens"
    extras = ("negated",)

    def features(self, options):
        return {**token_features(per_step_targets=False), "negated": np.bool_}

    def describe(self, options, metadata):
        return vocab_fields(metadata["vocab"], num_outputs=2)


@register
class SST(_BinarySentiment):
    """Binary SST sentences from the PTB tree files (neutral dropped)."""

    name = "sst"

    def source_files(self, options):
        return list(sst_files(options.path).values())

    def generate(self, options):
        return binary_examples(read_trees(sst_files(options.path)), {0: 0, 1: 0, 3: 1, 4: 1}, options)


def read_glue_sst2(data_dir: Optional[str]) -> dict[str, list[tuple[list[str], int]]]:
    """``{split: [(words, label 0/1)]}`` from ``tfds.data_source("glue/sst2")`` in ``data_dir``.

    Without a prepared copy in ``data_dir``, tfds downloads GLUE (needs internet).
    """
    import tensorflow_datasets.text.glue  # noqa: F401  (registers "glue" without TensorFlow)

    out = {}
    for split, glue_split in (("train", "train"), ("valid", "validation")):
        try:
            source = tfds.data_source("glue/sst2", split=glue_split, data_dir=data_dir)
        except Exception as e:  # tfds raises many kinds when it can neither read nor download
            raise FileNotFoundError(
                f"tfds could not read or prepare glue/sst2 in data.path = {data_dir!r} "
                f"(None: tfds' default data dir): {type(e).__name__}: {e}. Prepare it once with "
                "internet, or use data.name = 'sst' with the local tree files."
            ) from e
        rows = []
        for i in range(len(source)):
            ex = source[i]
            sentence = ex["sentence"]
            if isinstance(sentence, bytes):
                sentence = sentence.decode("utf-8")
            rows.append((str(sentence).split(), int(ex["label"])))
        out[split] = rows
    return out


@register
class GlueSST2(_BinarySentiment):
    """GLUE SST-2 through tfds (phrases in train, sentences in valid)."""

    name = "glue_sst2"
    splits = ("train", "valid")

    def generate(self, options):
        return binary_examples(read_glue_sst2(options.path), {0: 0, 1: 1}, options)

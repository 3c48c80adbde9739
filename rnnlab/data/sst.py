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


@dataclasses.dataclass(frozen=True)
class SSTOptions:
    """Data config fields of ``sst`` and ``glue_sst2``.

    Attributes:
      path: ``sst``: the folder with ``train.txt``, ``dev.txt``, ``test.txt``
        (required). ``glue_sst2``: the tfds data dir holding ``glue/sst2``
        (``None``: tfds' default).
      min_count: a training word enters the vocabulary if seen this often.
      lowercase: lower-case the words.
      phrases: ``sst`` only: train on every distinct labelled phrase of the
        training trees (as Tai et al. 2015), not only the sentences.
    """

    path: Optional[str] = None
    min_count: int = 1
    lowercase: bool = True
    phrases: bool = False

    def validate(self) -> None:
        require(self.min_count >= 1, "min_count", "must be >= 1", self.min_count)


def parse_tree(line: str) -> list[tuple[int, list[str]]]:
    """Every node of one PTB-style SST tree as ``(label 0..4, words)``, the root first.

    Raises:
      ValueError: the line is not a well-formed labelled tree.
    """
    nodes, stack = [], []  # stack of (label, words, index in nodes)
    tokens = re.findall(r"\(|\)|[^\s()]+", line)
    i = 0
    try:
        while i < len(tokens):
            if tokens[i] == "(":
                stack.append((int(tokens[i + 1]), [], len(nodes)))
                nodes.append(None)
                i += 2
            elif tokens[i] == ")":
                label, words, slot = stack.pop()
                nodes[slot] = (label, words)
                if stack:
                    stack[-1][1].extend(words)
                i += 1
            else:
                stack[-1][1].append(tokens[i])
                i += 1
    except (IndexError, ValueError):
        stack = [None]
    if stack or not nodes or not nodes[0][1]:
        raise ValueError(f"not an SST tree: {line[:80]!r}")
    return nodes


def sst_files(path: Optional[str]) -> dict[str, str]:
    """``{split: tree file}`` in the SST folder ``path``.

    Raises:
      FileNotFoundError: ``path`` is unset or a file is missing (the message
        says where it looked and how to get the data).
    """
    return {s: locate(path, f, SST_HOW_TO_GET, folder=True) for s, f in SST_FILES.items()}


def read_trees(files: dict[str, str], phrases: bool) -> dict[str, list[tuple[list[str], int]]]:
    """``{split: [(words, label 0..4)]}`` from SST tree files ``{split: file}``.

    Sentences (root labels) in every split; with ``phrases``, the training split
    holds every distinct labelled phrase instead (sentences included).
    """
    out = {}
    for split, file in files.items():
        with open(file, encoding="utf-8") as f:
            trees = [parse_tree(line) for line in f if line.strip()]
        if phrases and split == "train":
            unique = {tuple(words): label for nodes in trees for label, words in nodes}
            out[split] = [(list(words), label) for words, label in unique.items()]
        else:
            out[split] = [(nodes[0][1], nodes[0][0]) for nodes in trees]
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
        splits = read_trees(sst_files(options.path), options.phrases)
        return binary_examples(splits, {0: 0, 1: 0, 3: 1, 4: 1}, options)


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

"""The Stanford Sentiment Treebank: ``sst`` (PTB tree files) and ``glue_sst2`` (GLUE TSV files).

``sst`` reads ``train.txt``, ``dev.txt`` and ``test.txt`` (one PTB-style tree
per line, labels 0..4 on every node) from the folder ``data.path``; splits
``train``, ``valid`` (dev), ``test``. Labels: binary by default (0, 1 -> 0
negative; 3, 4 -> 1 positive; neutral 2 dropped) or, with
``data.fine_grained``, the five classes 0..4. ``data.phrases`` trains on every
distinct labelled phrase of the training trees (as Tai et al. 2015), not only
the sentences; the other splits stay sentences.

``glue_sst2`` reads the GLUE SST-2 files ``glue_sst2/train.tsv`` (67,349
phrases) and ``glue_sst2/dev.tsv`` (872 sentences) from the same folder
``data.path``; GLUE's test file has no labels, so its ``test`` split is the
binary test sentences of ``test.txt`` (the same sentences). With
``data.path`` unset it reads ``tfds.data_source("glue/sst2")`` from the tfds
data dir ``data.data_dir`` instead (needs the GLUE data prepared there once,
with internet): splits ``train`` and ``valid`` only. ``data.extra_train``
names a TSV file in GLUE's format whose rows join its training split
(augmentation: sentences written for a purpose, beside the phrases).

Both lower-case (``data.lowercase``), write the treebank's ``-LRB-`` / ``-RRB-``
as ``(`` / ``)`` as GLUE does, build the vocabulary from the training split
(words seen at least ``data.min_count`` times, most frequent first; the others
map to ``<unk>`` = 1) and mark ``negated`` sentences: those holding one of
:data:`rnnlab.data.text.NEGATORS`. New text is tokenized by
:meth:`tokenize` (:func:`rnnlab.data.text.tokenize`), as the treebank is.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Optional

import numpy as np
import tensorflow_datasets as tfds

from rnnlab.data import text
from rnnlab.data.registry import (
    Dataset,
    Extra,
    build_vocab,
    encode,
    locate,
    register,
    require,
    token_features,
    vocab_fields,
)

SST_FILES = {"train": "train.txt", "valid": "dev.txt", "test": "test.txt"}
GLUE_FILES = {"train": os.path.join("glue_sst2", "train.tsv"), "valid": os.path.join("glue_sst2", "dev.tsv")}
SST_HOW_TO_GET = (
    "Get trainDevTestTrees_PTB.zip from https://nlp.stanford.edu/sentiment/ and point "
    "data.path at its trees/ folder (train.txt, dev.txt, test.txt)."
)
GLUE_HOW_TO_GET = (
    "Get SST-2.zip from https://gluebenchmark.com/tasks, unpack its train.tsv and dev.tsv into "
    "glue_sst2/ inside the SST tree folder (which holds test.txt for the test labels), and point "
    "data.path at that folder."
)
BINARY_LABELS = {0: 0, 1: 0, 3: 1, 4: 1}  # SST class -> binary class; neutral (2) is dropped
FINE_LABELS = {k: k for k in range(5)}  # the five SST classes, very negative .. very positive
_BRACKETS = {"-LRB-": "(", "-RRB-": ")"}


@dataclasses.dataclass(frozen=True)
class SSTOptions:
    """Data config fields of ``sst`` and ``glue_sst2``.

    Attributes:
      path: the SST folder with ``train.txt``, ``dev.txt``, ``test.txt`` (and
        ``glue_sst2/{train,dev}.tsv`` for ``glue_sst2``). Required for ``sst``;
        ``glue_sst2`` without it reads tfds' ``glue/sst2`` from ``data.data_dir``.
      min_count: a training word enters the vocabulary if seen this often.
      lowercase: lower-case the words.
      phrases: ``sst`` only: train on every distinct labelled phrase of the
        training trees (as Tai et al. 2015), not only the sentences.
      fine_grained: ``sst`` only: the five classes 0..4 (very negative .. very
        positive), neutral kept; otherwise binary with neutral dropped.
      data_dir: ``glue_sst2`` without ``path``: the tfds data dir holding
        ``glue/sst2`` (the loader's ``data.data_dir``; ``None``: tfds' default).
      extra_train: ``glue_sst2`` only: a TSV file in GLUE's format (the header
        ``sentence<TAB>label``, tokenized sentences, labels 0 / 1) whose rows are
        added to the training split; relative to the working directory.
    """

    path: Optional[str] = None
    data_dir: Optional[str] = None
    min_count: int = 1
    lowercase: bool = True
    phrases: bool = False
    fine_grained: bool = False
    extra_train: Optional[str] = None

    def validate(self) -> None:
        require(self.min_count >= 1, "min_count", "must be >= 1", self.min_count)


# ------------------------------------------------------------------------------- readers


def parse_tree(line: str) -> list[tuple[int, list[str]]]:
    """Every node of one PTB-style SST tree as ``(label 0..4, words)``, the root first.

    Args:
      line: one tree, e.g. ``"(3 (2 is) (3 (2 n't) (4 bad)))"``; words as in the file.

    Raises:
      ValueError: the line is not exactly one well-formed labelled tree (:func:`parse_tree_spans`).
    """
    words, nodes = parse_tree_spans(line)
    return [(label, words[start:end]) for label, start, end in nodes]


def parse_tree_spans(line: str) -> tuple[list[str], list[tuple[int, int, int]]]:
    """The words of one PTB-style SST tree and every node as ``(label 0..4, start, end)``, the root first.

    A node covers ``words[start:end]``; the nodes come in the file's order (pre-order), so a parent
    precedes its children, e.g. ``"(3 (2 is) (3 (2 n't) (4 bad)))"`` ->
    ``(["is", "n't", "bad"], [(3, 0, 3), (2, 0, 1), (3, 1, 3), (2, 1, 2), (4, 2, 3)])``.

    Raises:
      ValueError: the line is not exactly one well-formed labelled tree (the
        message says what is wrong: unbalanced brackets, a label outside 0..4,
        a node without words, two trees on one line, text outside the tree).
    """
    words: list[str] = []
    nodes: list = []
    stack: list = []  # (label, start, index in nodes)
    tokens = re.findall(r"\(|\)|[^\s()]+", line)
    if not tokens:
        raise ValueError("empty line, expected a tree")
    if tokens[0] != "(":
        raise ValueError(f"text before the tree: {tokens[0]!r}")
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token == "(":
            if nodes and not stack:
                raise ValueError("two trees on one line (a new tree starts after the root closed)")
            if i + 1 >= len(tokens) or not re.fullmatch(r"-?\d+", tokens[i + 1]):
                label = tokens[i + 1] if i + 1 < len(tokens) else "end of line"
                raise ValueError(f"a node must start with its label 0..4, got {label!r}")
            label = int(tokens[i + 1])
            if not 0 <= label <= 4:
                raise ValueError(f"label {label} outside 0..4")
            stack.append((label, len(words), len(nodes)))
            nodes.append(None)
            i += 2
        elif token == ")":
            if not stack:
                raise ValueError("unbalanced brackets: ')' without a matching '('")
            label, start, slot = stack.pop()
            if start == len(words):
                raise ValueError(f"a node labelled {label} holds no words")
            nodes[slot] = (label, start, len(words))
            i += 1
        else:
            if not stack:
                raise ValueError(f"text outside the tree: {token!r}")
            words.append(token)
            i += 1
    if stack:
        raise ValueError(f"unbalanced brackets: {len(stack)} '(' not closed")
    return words, nodes


def _located(path: str, lineno: int, error: Exception) -> ValueError:
    return ValueError(f"{path}, line {lineno}: {error}")


def read_tree_spans(path: str) -> list[tuple[list[str], list[tuple[int, int, int]]]]:
    """Every tree of one SST tree file as :func:`parse_tree_spans` gives it: ``(words, [(label, start, end)])``,
    the treebank's ``-LRB-`` / ``-RRB-`` read as ``(`` / ``)`` (as GLUE writes them).

    Args:
      path: a file of one tree per line (blank lines are skipped).

    Raises:
      ValueError: a malformed tree; the message names the file and line.
    """
    trees = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                words, nodes = parse_tree_spans(line)
            except ValueError as e:
                raise _located(path, lineno, e) from None
            trees.append(([_BRACKETS.get(w, w) for w in words], nodes))
    return trees


def read_tree_file(path: str, phrases: bool = False) -> list[tuple[list[str], int]]:
    """``[(words, label 0..4)]`` from one SST tree file (:func:`read_tree_spans`): each root, or every distinct
    phrase.

    Args:
      path: a file of one tree per line (blank lines are skipped).
      phrases: every distinct labelled phrase (a later tree's label wins for a
        phrase seen twice); otherwise the sentences (root nodes).

    Raises:
      ValueError: a malformed tree; the message names the file and line.
    """
    trees = read_tree_spans(path)
    if phrases:
        unique = {tuple(words[start:end]): label for words, nodes in trees for label, start, end in nodes}
        return [(list(words), label) for words, label in unique.items()]
    return [(words, nodes[0][0]) for words, nodes in trees]


def read_glue_tsv(path: str) -> list[tuple[list[str], int]]:
    """``[(words, label 0/1)]`` from a GLUE SST-2 ``train.tsv`` / ``dev.tsv``.

    The file starts with the header ``sentence<TAB>label``; each row is an
    already tokenized, lower-cased sentence or phrase and its label.

    Raises:
      ValueError: a missing header, a row without two tab-separated fields, or
        a label other than 0 / 1; the message names the file and line.
    """
    rows = []
    with open(path, encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        if header != ["sentence", "label"]:
            raise ValueError(f"{path}, line 1: expected the header 'sentence<TAB>label', got {header!r}")
        for lineno, line in enumerate(f, 2):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) != 2:
                raise ValueError(f"{path}, line {lineno}: expected 'sentence<TAB>label', got {len(fields)} fields")
            if fields[1].strip() not in ("0", "1"):
                raise ValueError(f"{path}, line {lineno}: label {fields[1]!r} is not 0 or 1")
            rows.append((fields[0].split(), int(fields[1])))
    return rows


def sst_files(path: Optional[str]) -> dict[str, str]:
    """``{split: tree file}`` in the SST folder ``path``.

    Raises:
      FileNotFoundError: ``path`` is unset or a file is missing (the message
        says where it looked and how to get the data).
    """
    return {s: locate(path, f, SST_HOW_TO_GET, folder=True) for s, f in SST_FILES.items()}


def glue_files(path: Optional[str]) -> dict[str, str]:
    """``{split: file}``: the GLUE TSV files for train and valid, ``test.txt`` for test.

    Raises:
      FileNotFoundError: a file is missing (the message says where it looked
        and how to get the data).
    """
    files = {s: locate(path, f, GLUE_HOW_TO_GET, folder=True) for s, f in GLUE_FILES.items()}
    files["test"] = locate(path, SST_FILES["test"], GLUE_HOW_TO_GET, folder=True)
    return files


def extra_train_file(path: str) -> str:
    """The absolute path of ``data.extra_train``.

    Raises:
      FileNotFoundError: no file there (the message names the field).
    """
    return locate(path, os.path.basename(path), "data.extra_train names a TSV file in GLUE's format "
                  "(header sentence<TAB>label) whose rows join the training split.", field="data.extra_train")


def read_trees(files: dict[str, str], phrases: bool) -> dict[str, list[tuple[list[str], int]]]:
    """``{split: [(words, label 0..4)]}`` from SST tree files ``{split: file}``.

    Sentences in every split; with ``phrases``, the training split holds every
    distinct labelled phrase instead (sentences included).
    """
    return {split: read_tree_file(file, phrases and split == "train") for split, file in files.items()}


def read_glue_sst2(data_dir: Optional[str]) -> dict[str, list[tuple[list[str], int]]]:
    """``{split: [(words, label 0/1)]}`` from ``tfds.data_source("glue/sst2")`` in ``data_dir``.

    Splits ``train`` and ``valid`` (GLUE's test split has no labels). Without a
    prepared copy in ``data_dir``, tfds downloads GLUE (needs internet).
    """
    import tensorflow_datasets.text.glue  # noqa: F401  (registers "glue" without TensorFlow)

    out = {}
    for split, glue_split in (("train", "train"), ("valid", "validation")):
        try:
            source = tfds.data_source("glue/sst2", split=glue_split, data_dir=data_dir)
        except Exception as e:  # tfds raises many kinds when it can neither read nor download
            raise FileNotFoundError(
                f"tfds could not read or prepare glue/sst2 in data.data_dir = {data_dir!r} "
                f"(None: tfds' default data dir): {type(e).__name__}: {e}. Prepare it once with "
                f"internet, or set data.path to local files. {GLUE_HOW_TO_GET}"
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


# ------------------------------------------------------------------------------ examples


def labelled_examples(
    splits: dict[str, list[tuple[list[str], int]]], labels: dict[int, int], options: SSTOptions
) -> tuple[dict[str, list[dict]], dict]:
    """Examples ``{inputs, length, targets, negated}`` of labelled sentences and the vocabulary.

    Args:
      splits: ``{split: [(words, raw label)]}``.
      labels: raw label -> class; raw labels not in it (binary: neutral) are dropped.
      options: lowercase, min_count.

    Returns:
      ``({split: [example]}, {"vocab": [word]})``; ``inputs int32[L]`` are ids
      in the vocabulary of the training split.
    """
    def norm(words):
        return [w.lower() for w in words] if options.lowercase else list(words)

    kept = {s: [(norm(w), labels[y]) for w, y in rows if y in labels and w] for s, rows in splits.items()}
    vocab = build_vocab((w for w, _ in kept["train"]), options.min_count)
    word_ids = {w: i for i, w in enumerate(vocab)}
    examples = {
        s: [{"inputs": encode(w, word_ids), "length": len(w), "targets": y,
             "negated": text.has_negator(w)} for w, y in rows]
        for s, rows in kept.items()
    }
    return examples, {"vocab": list(vocab)}


class _Sentiment(Dataset):
    """Shared parts of the SST datasets: tokens, one class per sentence, a ``negated`` flag."""

    Options = SSTOptions
    task = "classify"
    input_kind = "tokens"
    extras = {"negated": Extra(np.bool_, "negated_accuracy")}
    version = "1.1.0"  # 1.1: brackets written "(" / ")"; fine_grained

    def features(self, options):
        return {**token_features(per_step_targets=False), "negated": np.bool_}

    def describe(self, options, metadata):
        return vocab_fields(metadata["vocab"], num_outputs=len(set(self.labels(options).values())))

    def labels(self, options: SSTOptions) -> dict[int, int]:
        """SST class 0..4 -> the model's class (classes missing from it are dropped)."""
        return FINE_LABELS if options.fine_grained else BINARY_LABELS

    def class_names(self, options: SSTOptions) -> tuple[str, ...]:
        """The name of each class, in class order."""
        if options.fine_grained:
            return ("very negative", "negative", "neutral", "positive", "very positive")
        return ("negative", "positive")

    def tokenize(self, options: SSTOptions, sentence: str) -> list[str]:
        """The tokens of a new raw sentence, as the treebank's were made (:func:`text.tokenize`)."""
        return text.tokenize(sentence, options.lowercase)


@register
class SST(_Sentiment):
    """SST sentences (or phrases) from the PTB tree files: binary or fine-grained."""

    name = "sst"

    def options(self, data_config):
        options = super().options(data_config)
        require(options.extra_train is None, "extra_train", "is for data.name = 'glue_sst2' (binary TSV rows)",
                options.extra_train)
        return options

    def source_files(self, options):
        return list(sst_files(options.path).values())

    def generate(self, options):
        splits = read_trees(sst_files(options.path), options.phrases)
        return labelled_examples(splits, self.labels(options), options)


@register
class GlueSST2(_Sentiment):
    """GLUE SST-2: phrases in train, sentences in valid; test from ``test.txt`` (binary)."""

    name = "glue_sst2"

    def options(self, data_config):
        options = super().options(data_config)
        require(not options.fine_grained, "fine_grained", "is for data.name = 'sst' (GLUE SST-2 is binary)",
                options.fine_grained)
        require(not options.phrases, "phrases", "is for data.name = 'sst' (GLUE SST-2 trains on phrases "
                "already)", options.phrases)
        return options

    def source_files(self, options):
        files = [] if options.path is None else list(glue_files(options.path).values())
        return files + ([extra_train_file(options.extra_train)] if options.extra_train else [])

    def generate(self, options):
        if options.path is None:
            splits = read_glue_sst2(options.data_dir)
        else:
            files = glue_files(options.path)
            splits = {s: read_glue_tsv(files[s]) for s in ("train", "valid")}
            splits["test"] = [(w, BINARY_LABELS[y]) for w, y in read_tree_file(files["test"]) if y in BINARY_LABELS]
        if options.extra_train:
            splits["train"] = splits["train"] + read_glue_tsv(extra_train_file(options.extra_train))
        return labelled_examples(splits, {0: 0, 1: 1}, options)


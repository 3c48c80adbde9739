"""Pieces shared by the datasets read from users' own files (text, CoNLL, NPZ).

A user's data is a folder ``data.path`` holding one file per split, named by
the split: ``train``, ``valid`` (or ``dev``) and, optionally, ``test``, each
with an extension of its format (:func:`split_files`). Every problem found in
a file is a ``ValueError`` whose message starts with the file and the line
(1-based) or example index (:func:`error_at`), raised while the dataset is
prepared (``rnnlab.data.prepare``), before anything is compiled. Labels are
strings named in the training file (:func:`label_names`); a label of another
split that the training file lacks is an error (:func:`label_ids`).
"""

from __future__ import annotations

import os
from typing import Iterable, Optional, Sequence

import numpy as np

from rnnlab.data.registry import build_vocab, encode, vocab_fields

# split -> the file names (without extension) it may have, in order of preference
SPLIT_STEMS = {"train": ("train",), "valid": ("valid", "dev"), "test": ("test",)}
REQUIRED_SPLITS = ("train", "valid")


def error_at(path: str, where: str, message: str) -> ValueError:
    """``ValueError("<path>, <where>: <message>")``, e.g. ``where = "line 3"`` or ``"example 7"``."""
    return ValueError(f"{path}, {where}: {message}")


def _matches(name: str, stem: str, extensions: Optional[Sequence[str]]) -> bool:
    """Whether the file ``name`` is ``stem`` with one of ``extensions`` (``None``: any or none)."""
    base, ext = os.path.splitext(name)
    if extensions is None:
        return base == stem or name == stem
    return base == stem and ext.lower() in extensions


def split_files(path: Optional[str], extensions: Optional[Sequence[str]], how: str) -> dict[str, str]:
    """``{split: file}`` of the split files in the folder ``path`` (``test`` only when present).

    Args:
      path: the config's ``data.path``: a folder.
      extensions: the allowed extensions, lower case with the dot (``(".tsv", ".csv")``);
        ``None``: any extension, or none.
      how: a sentence on what the folder must hold, for the error messages.

    Raises:
      FileNotFoundError: ``path`` is unset or not a folder, or it lacks a
        ``train`` or ``valid`` / ``dev`` file (the message says where it looked).
      ValueError: two files name the same split (e.g. ``train.tsv`` and ``train.csv``).
    """
    if path is None:
        raise FileNotFoundError(f"data.path is not set: point it at a folder of split files. {how}")
    folder = os.path.abspath(os.path.expanduser(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"data.path {path!r} is not a folder ({folder}). {how}")
    names = sorted(n for n in os.listdir(folder) if not n.startswith(".")
                   and os.path.isfile(os.path.join(folder, n)))
    files = {}
    for split, stems in SPLIT_STEMS.items():
        found = [n for stem in stems for n in names if _matches(n, stem, extensions)]
        if len(found) > 1:
            raise ValueError(f"{folder}: several files for split {split!r}: {', '.join(found)}; keep one")
        if found:
            files[split] = os.path.join(folder, found[0])
        elif split in REQUIRED_SPLITS:
            wanted = " or ".join(f"{s}{'.*' if extensions is None else '{' + ','.join(extensions) + '}'}"
                                 for s in stems)
            raise FileNotFoundError(f"no {split} file in {folder} (looked for {wanted}; found: "
                                    f"{', '.join(names) or 'nothing'}). {how}")
    return files


def read_text(path: str) -> str:
    """The contents of ``path`` as UTF-8 text (a leading byte-order mark dropped, ``\\r\\n`` -> ``\\n``).

    Raises:
      ValueError: bytes that are not UTF-8 (the message names the file, line and byte).
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise error_at(path, f"line {line}", f"not UTF-8 text (byte 0x{data[e.start]:02x}); save the file "
                       "as UTF-8") from None
    return text.removeprefix("\ufeff").replace("\r\n", "\n")


def label_names(labels: Iterable[str]) -> tuple[str, ...]:
    """The distinct ``labels`` in id order: numerically if all are integers (``"2" < "10"``), else sorted."""
    distinct = set(labels)
    if all(s.lstrip("-").isdigit() for s in distinct):
        return tuple(sorted(distinct, key=int))
    return tuple(sorted(distinct))


def label_ids(labels: Sequence[str], lines: Sequence[int], names: Sequence[str], path: str,
              train_path: str, what: str = "label") -> list[int]:
    """The id of each of ``labels`` in ``names``.

    Args:
      labels: the labels read from ``path``, one per item of ``lines`` (1-based).
      names: the labels of the training file, in id order.
      train_path: the training file, named in the message.
      what: "label" or "tag", for the message.

    Raises:
      ValueError: a label the training file lacks (the message names file and line).
    """
    ids = {name: i for i, name in enumerate(names)}
    out = []
    for label, line in zip(labels, lines):
        if label not in ids:
            raise error_at(path, f"line {line}", f"{what} {label!r} never occurs in the training file "
                           f"{train_path} (its {what}s: {', '.join(names)})")
        out.append(ids[label])
    return out


def require_examples(path: str, count: int, what: str) -> None:
    """Raises ``ValueError`` naming ``path`` when it holds no examples (``what`` says what was looked for)."""
    if not count:
        raise ValueError(f"{path}: no examples (the file holds no {what})")


def encode_splits(tokens: dict[str, list[list[str]]], min_count: int) -> tuple[dict[str, list[np.ndarray]], tuple]:
    """``({split: [ids int32[L]]}, vocab)``: the vocabulary of ``tokens["train"]`` (words seen
    ``>= min_count`` times), every split encoded in it (others -> ``<unk>``)."""
    vocab = build_vocab(tokens["train"], min_count)
    word_ids = {w: i for i, w in enumerate(vocab)}
    return {s: [encode(t, word_ids) for t in ts] for s, ts in tokens.items()}, vocab


def labelled_token_fields(metadata) -> dict:
    """The spec fields of a token dataset whose metadata holds ``vocab`` and ``labels`` (one per class or tag)."""
    return {**vocab_fields(metadata["vocab"], num_outputs=len(metadata["labels"])), "labels": tuple(metadata["labels"])}

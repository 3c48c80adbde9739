"""``text_classification``: a user's labelled texts in TSV, CSV or JSON Lines files.

``data.path`` is a folder with ``train``, ``valid`` (or ``dev``) and,
optionally, ``test`` files, each ``.tsv``, ``.csv`` or ``.jsonl`` (formats may
differ between splits)::

    train.tsv                         dev.jsonl
    text<TAB>label                    {"text": "a gorgeous film", "label": "pos"}
    a gorgeous film<TAB>pos           {"text": "dull", "label": "neg"}

TSV and CSV files start with a header naming the columns; JSON Lines files
hold one object per line. The fields ``data.text_field`` (``text``) and
``data.label_field`` (``label``) are read; other columns are ignored. Labels
are any strings (JSON numbers are read as their text); the classes are the
labels of the training file (:func:`rnnlab.data.user_files.label_names`),
kept as ``spec.labels``. Texts are split by ``data.tokenizer`` (``treebank``,
``whitespace``, ``chars``: :data:`rnnlab.data.text.TOKENIZERS`), lower-cased
with ``data.lowercase``; the vocabulary is the training words seen at least
``data.min_count`` times, the others ``<unk>``. Every malformed row is a
``ValueError`` naming file and line.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from typing import Any, Iterator, Mapping, Optional

from rnnlab.data import text, user_files
from rnnlab.data.registry import Dataset, register, require, token_features
from rnnlab.data.user_files import error_at

EXTENSIONS = (".tsv", ".csv", ".jsonl")
HOW = ("data.path must be a folder holding train, valid (or dev) and optionally test files in .tsv, .csv "
       "(with a header row) or .jsonl, with the fields data.text_field and data.label_field.")


@dataclasses.dataclass(frozen=True)
class TextOptions:
    """Data config fields of ``text_classification``.

    Attributes:
      path: the folder of split files (required).
      text_field: the column (TSV, CSV header) or key (JSONL) holding the text.
      label_field: the column or key holding the label.
      tokenizer: ``treebank`` | ``whitespace`` | ``chars`` (:data:`rnnlab.data.text.TOKENIZERS`).
      lowercase: lower-case the tokens.
      min_count: a training word enters the vocabulary if seen this often.
    """

    path: Optional[str] = None
    text_field: str = "text"
    label_field: str = "label"
    tokenizer: str = "treebank"
    lowercase: bool = True
    min_count: int = 1

    def validate(self) -> None:
        require(self.min_count >= 1, "min_count", "must be >= 1", self.min_count)
        require(self.tokenizer in text.TOKENIZERS, "tokenizer",
                f"must be one of {', '.join(sorted(text.TOKENIZERS))}", self.tokenizer)


def _table_records(path: str, contents: str, delimiter: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """``(line, {column: value})`` of the rows of a TSV (split on tabs) or CSV (quoted) file after its header."""
    if delimiter == "\t":
        rows = ((n, line.split("\t")) for n, line in enumerate(contents.split("\n"), 1))
    else:
        reader = csv.reader(io.StringIO(contents, newline=""))
        rows = ((reader.line_num, row) for row in reader)  # the row's last line (a quoted field may span lines)
    header, header_line = None, 0
    for line, fields in rows:
        if not any(f.strip() for f in fields):
            continue
        if header is None:
            header, header_line = [f.strip() for f in fields], line
            continue
        if len(fields) != len(header):
            raise error_at(path, f"line {line}", f"{len(fields)} fields, but the header (line {header_line}) "
                           f"names {len(header)}: {', '.join(header)}")
        yield line, dict(zip(header, fields))


def _jsonl_records(path: str, contents: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """``(line, object)`` of each non-blank line of a JSON Lines file."""
    for line, raw in enumerate(contents.split("\n"), 1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as e:
            raise error_at(path, f"line {line}", f"not JSON: {e.msg} (column {e.colno})") from None
        if not isinstance(record, dict):
            raise error_at(path, f"line {line}", f"expected a JSON object, got {type(record).__name__}")
        yield line, record


def _field(path: str, line: int, record: Mapping[str, Any], field: str, option: str) -> str:
    """``record[field]`` as a string; a missing or empty field is an error naming ``option`` (the setting that
    names the field, e.g. ``data.text_field``)."""
    if field not in record:
        raise error_at(path, f"line {line}", f"no field {field!r} (fields: {', '.join(map(str, record))}); "
                       f"name the right one with {option}")
    value = record[field]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise error_at(path, f"line {line}", f"field {field!r} must be a string, got {value!r}")
    value = str(value)
    if not value.strip():
        raise error_at(path, f"line {line}", f"field {field!r} is empty")
    return value


def read_text_file(path: str, text_field: str = "text", label_field: str = "label") -> list[tuple[int, str, str]]:
    """``[(line, text, label)]`` from one ``.tsv``, ``.csv`` or ``.jsonl`` file (by its extension).

    Args:
      path: the file; TSV and CSV start with a header row naming the columns.
      text_field, label_field: the columns (keys) read.

    Raises:
      ValueError: non-UTF-8 bytes, a row whose number of fields differs from
        the header's, a line that is not a JSON object, a missing or empty
        text or label, or no rows at all; the message names file and line.
    """
    rows = [(line, _field(path, line, r, text_field, "data.text_field"),
             _field(path, line, r, label_field, "data.label_field")) for line, r in _records(path)]
    _require_rows(path, len(rows))
    return rows


def read_texts(path: str, text_field: str = "text", option: str = "data.text_field") -> list[str]:
    """The ``text_field`` of each row of one ``.tsv``, ``.csv`` or ``.jsonl`` file (by its extension), other
    fields (a label) ignored: new inputs in the format of the training files.

    Args:
      path: the file; TSV and CSV start with a header row naming the columns.
      text_field: the column (key) read.
      option: the setting that names ``text_field``, for the error of a missing field.

    Raises:
      ValueError: as :func:`read_text_file`, for the text field alone.
    """
    texts = [_field(path, line, r, text_field, option) for line, r in _records(path)]
    _require_rows(path, len(texts))
    return texts


def _records(path: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    """``(line, {field: value})`` of each row of a ``.jsonl``, ``.tsv`` or ``.csv`` file (by its extension)."""
    contents = user_files.read_text(path)
    ext = os.path.splitext(path)[1].lower()
    return _jsonl_records(path, contents) if ext == ".jsonl" else \
        _table_records(path, contents, "\t" if ext == ".tsv" else ",")


def _require_rows(path: str, count: int) -> None:
    """Raises ``ValueError`` naming ``path`` if it holds no rows."""
    jsonl = os.path.splitext(path)[1].lower() == ".jsonl"
    user_files.require_examples(path, count, "JSON objects" if jsonl else "rows below a header")


@register
class TextClassification(Dataset):
    """Users' labelled texts (TSV, CSV, JSONL): one class per text, names kept in ``spec.labels``."""

    name = "text_classification"
    Options = TextOptions
    task = "classify"
    input_kind = "tokens"

    def source_files(self, options):
        return list(user_files.split_files(options.path, EXTENSIONS, HOW).values())

    def features(self, options):
        return token_features(per_step_targets=False)

    def tokenize(self, options: TextOptions, sentence: str) -> list[str]:
        """The tokens of a new raw text, as the training texts were split (``data.tokenizer``)."""
        return text.get_tokenizer(options.tokenizer)(sentence, options.lowercase)

    def generate(self, options):
        files = user_files.split_files(options.path, EXTENSIONS, HOW)
        rows = {s: read_text_file(f, options.text_field, options.label_field) for s, f in files.items()}
        tokens = {s: [self.tokenize(options, t) for _, t, _ in rs] for s, rs in rows.items()}
        for split, rs in rows.items():
            for (line, _, _), ts in zip(rs, tokens[split]):
                if not ts:
                    raise error_at(files[split], f"line {line}", f"the {options.tokenizer} tokenizer finds no "
                                   "tokens in the text")
        names = user_files.label_names(label for _, _, label in rows["train"])
        ids, vocab = user_files.encode_splits(tokens, options.min_count)
        examples = {}
        for split, rs in rows.items():
            targets = user_files.label_ids([r[2] for r in rs], [r[0] for r in rs], names, files[split],
                                           files["train"])
            examples[split] = [{"inputs": x, "length": len(x), "targets": y} for x, y in zip(ids[split], targets)]
        return examples, {"vocab": list(vocab), "labels": list(names)}

    def describe(self, options, metadata):
        return user_files.labelled_token_fields(metadata)

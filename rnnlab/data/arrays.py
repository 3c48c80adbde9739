"""``arrays``: a user's float sequences and targets in NumPy ``.npz`` files, for any task.

``data.path`` is a folder with ``train.npz``, ``valid.npz`` (or ``dev.npz``)
and, optionally, ``test.npz``, each holding:

- ``inputs``: a list (object array) of ``f32[T_i, D]`` sequences, or a padded
  ``f32[N, T, D]`` array with ``lengths int[N]`` (without ``lengths``: all T);
- ``targets`` for ``data.task``: ``classify`` ``int[N]`` (classes 0..C-1),
  ``tag`` ``int[N, T]`` or a list of ``int[T_i]``, ``regress`` ``float[N]``
  (one value per sequence) or ``float[N, T]`` / a list of ``float[T_i]`` (one
  per step), ``density`` ``float[N, T, F]`` or a list of ``float[T_i, F]`` in
  [0, 1].

D (and F) come from the training file and must agree across files; a padded
per-step target must be at least as long as its sequence. Every problem is a
``ValueError`` naming the file and the example index. ``.npz`` files with
lists are pickled object arrays: load only files you trust (as ``np.load``).
:func:`read_inputs` reads the inputs of one file for prediction.
"""

from __future__ import annotations

import dataclasses
import functools
import zipfile
from typing import Any, Mapping, NamedTuple, Optional

import numpy as np
import tensorflow_datasets as tfds

from rnnlab.data import user_files
from rnnlab.data.registry import TASKS, Dataset, file_sha256, register, require
from rnnlab.data.user_files import error_at

EXTENSIONS = (".npz",)
HOW = ("data.path must be a folder holding train.npz, valid.npz (or dev.npz) and optionally test.npz with "
       "'inputs' (a list of [T_i, D] arrays, or [N, T, D] with 'lengths') and 'targets' for data.task.")
# task -> (dims of one example's target: 0 a scalar, 1 per step, 2 per step with F, dtype kind)
TARGET_LAYOUTS = {"classify": (0, "int"), "tag": (1, "int"), "regress": (0, "float"), "density": (2, "float")}


@dataclasses.dataclass(frozen=True)
class ArraysOptions:
    """Data config fields of ``arrays``.

    Attributes:
      path: the folder of ``.npz`` split files (required).
      task: ``classify`` | ``tag`` | ``regress`` | ``density``: what ``targets`` holds.
    """

    path: Optional[str] = None
    task: str = "classify"

    def validate(self) -> None:
        require(self.task in TASKS, "task", f"must be one of {', '.join(TASKS)}", self.task)


def _load(path: str) -> Mapping[str, np.ndarray]:
    """The arrays of an ``.npz`` file, ``{key: array}`` (object arrays unpickled)."""
    if not zipfile.is_zipfile(path):  # np.load would unpickle any other file
        raise ValueError(f"{path}: not an .npz file (a zip archive of arrays, as np.savez writes)")
    try:
        with np.load(path, allow_pickle=True) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None


def _get(path: str, data: Mapping[str, np.ndarray], key: str) -> np.ndarray:
    if key not in data:
        raise ValueError(f"{path}: no array {key!r} (arrays: {', '.join(sorted(data)) or 'none'}). {HOW}")
    return data[key]


def _numeric(path: str, where: str, x: Any, kind: str) -> np.ndarray:
    """``x`` as an array of ``kind`` (``"int"`` or ``"float"``): integers, or finite real numbers."""
    x = np.asarray(x)
    if kind == "int" and not (np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_):
        raise error_at(path, where, f"expected integers, got dtype {x.dtype}")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise error_at(path, where, f"expected numbers, got dtype {x.dtype}")
    if kind == "float" and not np.all(np.isfinite(x)):
        raise error_at(path, where, "holds NaN or infinite values")
    return x


def _sequences(path: str, key: str, value: np.ndarray, ndim: int, kind: str,
               lengths: Optional[np.ndarray]) -> list[np.ndarray]:
    """The examples of ``value``: a list (object array) of ``ndim``-dim arrays, or one padded
    ``[N, T, ...]`` array cut to ``lengths`` (``None``: the whole T)."""
    if value.dtype == object and value.ndim == ndim + 1:  # np.array(equal-shaped arrays, dtype=object): padded
        value = np.asarray(value.tolist())
    if value.dtype == object:
        items = [_numeric(path, f"{key}[{i}]", item, kind) for i, item in enumerate(value.reshape(-1))]
        for i, item in enumerate(items):
            if item.ndim != ndim:
                raise error_at(path, f"{key}[{i}]", f"has shape {item.shape}, expected {ndim} dimension(s)")
        return items
    value = _numeric(path, key, value, kind)
    if value.ndim != ndim + 1:
        raise ValueError(f"{path}: {key} has shape {value.shape}: expected a list of {ndim}-dimensional "
                         f"arrays or one padded array of {ndim + 1} dimensions [N, T, ...]")
    if lengths is None:
        return list(value)
    for i, n in enumerate(lengths):
        if n > value.shape[1]:
            raise error_at(path, f"{key}[{i}]", f"length {n} exceeds the padded T = {value.shape[1]}")
    return [x[:n] for x, n in zip(value, lengths)]


def _lengths(path: str, data: Mapping[str, np.ndarray], num: int) -> Optional[np.ndarray]:
    """``lengths int[N]`` of a padded file (``None`` if absent); each in ``[1, T]`` (T checked by the caller)."""
    if "lengths" not in data:
        return None
    lengths = _numeric(path, "lengths", data["lengths"], "int")
    if lengths.shape != (num,):
        raise ValueError(f"{path}: lengths has shape {lengths.shape}, expected [{num}] (one per example)")
    for i, n in enumerate(lengths):
        if n < 1:
            raise error_at(path, f"lengths[{i}]", f"length {n} is below 1")
    return lengths.astype(np.int64)


def _inputs(path: str, data: Mapping[str, np.ndarray]) -> tuple[list[np.ndarray], Optional[np.ndarray]]:
    """``([f32[T_i, D]], lengths)`` of a loaded file: every sequence non-empty, one D."""
    value = _get(path, data, "inputs")
    lengths = _lengths(path, data, len(value)) if value.dtype != object else None
    xs = _sequences(path, "inputs", value, 2, "float", lengths)
    if not xs:
        raise ValueError(f"{path}: no examples (inputs is empty)")
    for i, x in enumerate(xs):
        if x.shape[0] == 0 or x.shape[1] != xs[0].shape[1]:
            raise error_at(path, f"inputs[{i}]", f"has shape {x.shape}, expected [T >= 1, D = {xs[0].shape[1]}] "
                           "(D of inputs[0])")
    return [x.astype(np.float32) for x in xs], lengths


def read_inputs(path: str) -> list[np.ndarray]:
    """The input sequences of one ``.npz`` file, as the ``arrays`` dataset reads them.

    Args:
      path: an ``.npz`` file whose ``inputs`` is a list (object array) of
        ``[T_i, D]`` arrays, or a padded ``[N, T, D]`` array with an optional
        ``lengths int[N]`` (without it every sequence has T steps). Other
        arrays (``targets``) are ignored.

    Returns:
      ``[f32[T_i, D]]``, one per example, every ``T_i >= 1`` and one D.

    Raises:
      ValueError: an unreadable file, no ``inputs``, sequences of different D,
        an empty sequence, lengths outside ``[1, T]``, or non-finite values;
        the message names the file and the example index.
    """
    return _inputs(path, _load(path))[0]


class Split(NamedTuple):
    """One file's examples: inputs ``[f32[T_i, D]]`` and targets (``[scalar]`` or ``[array[T_i, ...]]``)."""

    inputs: list[np.ndarray]
    targets: list[Any]
    per_step: bool


def _targets(path: str, data: Mapping[str, np.ndarray], task: str, xs: list[np.ndarray]) -> tuple[list[Any], bool]:
    """The targets of ``data`` for ``task``, checked against the inputs ``xs``: ``(targets, per_step)``."""
    value = _get(path, data, "targets")
    ndim, kind = TARGET_LAYOUTS[task]
    per_sequence = ndim == 0 and (value.dtype != object and value.ndim == 1 or task == "classify")
    if per_sequence:
        value = _numeric(path, "targets", value, kind)
        if value.shape != (len(xs),):
            raise ValueError(f"{path}: targets has shape {value.shape}, expected [{len(xs)}] (one per input "
                             f"sequence) for data.task = {task!r}")
        return list(value), False
    ys = _sequences(path, "targets", value, max(ndim, 1), kind, None)
    if len(ys) != len(xs):
        raise ValueError(f"{path}: targets holds {len(ys)} examples, inputs {len(xs)}")
    padded = value.dtype != object
    for i, (x, y) in enumerate(zip(xs, ys)):
        if (len(y) < len(x)) if padded else (len(y) != len(x)):
            raise error_at(path, f"targets[{i}]", f"has {len(y)} steps for an input of {len(x)} steps")
    return [y[: len(x)] for x, y in zip(xs, ys)], True


def read_split(path: str, task: str) -> Split:
    """The inputs and targets of one ``.npz`` split file for ``task`` (see the module docstring).

    Raises:
      ValueError: any problem of :func:`read_inputs`, or targets of the wrong
        shape, dtype or number for the task; the message names file and index.
    """
    data = _load(path)
    xs, _ = _inputs(path, data)
    ys, per_step = _targets(path, data, task, xs)
    return Split(xs, ys, per_step)


def _check_against_train(path: str, split: Split, train: Split, task: str, num_outputs: int) -> None:
    """Raises ``ValueError`` naming ``path`` and the index when ``split`` does not match the training file's layout."""
    d = train.inputs[0].shape[1]
    for i, x in enumerate(split.inputs):
        if x.shape[1] != d:
            raise error_at(path, f"inputs[{i}]", f"has D = {x.shape[1]}, the training file's inputs D = {d}")
    if split.per_step != train.per_step:
        raise ValueError(f"{path}: targets are {'per step' if split.per_step else 'per sequence'}, the training "
                         f"file's {'per step' if train.per_step else 'per sequence'}")
    for i, y in enumerate(split.targets):
        y = np.asarray(y)
        if task in ("classify", "tag") and (y.min(initial=0) < 0 or y.max(initial=0) >= num_outputs):
            bad = y[(y < 0) | (y >= num_outputs)].reshape(-1)[0]
            raise error_at(path, f"targets[{i}]", f"class {bad} never occurs in the training file (its classes: "
                           f"0..{num_outputs - 1})")
        if task == "density" and (y.shape[1] != num_outputs or y.min(initial=0) < 0 or y.max(initial=0) > 1):
            raise error_at(path, f"targets[{i}]", f"has shape {y.shape} with values in [{y.min()}, {y.max()}]; "
                           f"expected [T, F = {num_outputs}] (F of the training file) in [0, 1]")


def _num_outputs(train: Split, task: str) -> int:
    """C (classify, tag: the largest training class + 1), F (density) or 1 (regress)."""
    if task == "density":
        return int(train.targets[0].shape[1])
    if task == "regress":
        return 1
    return int(max(np.max(y) for y in train.targets)) + 1


@functools.lru_cache(maxsize=8)
def _read_files(files: tuple[tuple[str, str], ...], digests: tuple[str, ...], task: str) -> dict[str, Split]:
    """``{split: Split}`` of ``files``, checked against the training file (cached per file contents)."""
    del digests  # part of the cache key only
    splits = {split: read_split(path, task) for split, path in files}
    outputs = _num_outputs(splits["train"], task)
    for split, path in files:
        _check_against_train(path, splits[split], splits["train"], task, outputs)
    return splits


@register
class Arrays(Dataset):
    """Users' float sequences in ``.npz`` files; ``data.task`` says what the targets are."""

    name = "arrays"
    Options = ArraysOptions
    task = "classify"  # the default of data.task; the spec's task is data.task
    input_kind = "features"
    version = "1.0.0"

    def source_files(self, options):
        return list(user_files.split_files(options.path, EXTENSIONS, HOW).values())

    def _splits(self, options: ArraysOptions) -> dict[str, Split]:
        files = tuple(user_files.split_files(options.path, EXTENSIONS, HOW).items())
        return _read_files(files, tuple(file_sha256(p) for _, p in files), options.task)

    def features(self, options):
        train = self._splits(options)["train"]
        d = train.inputs[0].shape[1]
        step = (None,) + np.shape(train.targets[0])[1:] if train.per_step else ()
        dtype = np.int32 if TARGET_LAYOUTS[options.task][1] == "int" else np.float32
        targets = tfds.features.Tensor(shape=step, dtype=dtype) if step else dtype
        return {"inputs": tfds.features.Tensor(shape=(None, d), dtype=np.float32), "length": np.int32,
                "targets": targets}

    def generate(self, options):
        splits = self._splits(options)
        train = splits["train"]
        examples = {s: [{"inputs": x, "length": len(x), "targets": y} for x, y in zip(sp.inputs, sp.targets)]
                    for s, sp in splits.items()}
        num_outputs = _num_outputs(train, options.task)
        labels = [str(c) for c in range(num_outputs)] if options.task in ("classify", "tag") else None
        return examples, {"input_size": int(train.inputs[0].shape[1]), "num_outputs": num_outputs,
                          "per_step_targets": train.per_step, "labels": labels}

    def describe(self, options, metadata):
        labels = metadata.get("labels")
        return {"task": options.task, "per_step": ("inputs", "targets") if metadata["per_step_targets"] else ("inputs",),
                "vocab": None, "vocab_size": None, "input_size": metadata["input_size"],
                "num_outputs": metadata["num_outputs"], "labels": tuple(labels) if labels else None}

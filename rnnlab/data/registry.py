"""The dataset registry, the :class:`DatasetSpec` and reading the data config.

Every dataset is a :class:`Dataset` subclass registered by name with
:func:`register`. It declares its own options as a frozen dataclass
(``Options``) whose field defaults are THE defaults of the data config fields
that dataset reads (``configs/default.py`` takes its data section from them);
a config without a field gets the default, a config with a bad value fails
early with a message naming ``data.<field>``. Library code never branches on
dataset names: it asks the registry.

Fields every dataset reads are in :class:`LoaderOptions`.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
from typing import Any, Callable, ClassVar, Iterable, Mapping, NamedTuple, Optional, Sequence

import numpy as np
import tensorflow_datasets as tfds

from rnnlab.cells.registry import same_definition

# The dtype of a batch's inputs per input kind, and of its targets per task.
INPUT_DTYPES = {"tokens": np.int32, "features": np.float32}
TARGET_DTYPES = {"classify": np.int32, "tag": np.int32, "density": np.float32, "regress": np.float32}
TASKS = tuple(TARGET_DTYPES)
INPUT_KINDS = tuple(INPUT_DTYPES)
PAD_ID = 0
UNK_ID = 1
PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What the model and the training loop need to know about a prepared dataset.

    Attributes:
      name: the registered dataset name.
      task: ``"classify"`` (one label per sequence), ``"tag"`` (one label per
        step), ``"density"`` (a binary frame per step) or ``"regress"`` (one
        float per sequence).
      input_kind: ``"tokens"`` (``int32`` ids, 0 = padding) or ``"features"``
        (``float32`` vectors).
      vocab_size: for tokens, ids lie in ``[0, vocab_size)``; includes pad 0 and
        unknown 1. ``None`` for features.
      input_size: D for features, ``None`` for tokens.
      num_outputs: classes (classify, tag), frame size (density), 1 (regress).
      vocab: id -> word for tokens (``vocab[0] == "<pad>"``), else ``None``.
      splits: the split names, e.g. ``("train", "valid", "test")``.
      num_examples: examples per split.
      extras: optional batch keys this dataset adds beyond ``inputs``,
        ``lengths``, ``targets``, ``weights`` (e.g. ``("negated",)``).
      accuracies: ``(batch key, metric name)`` of the extras that mark a subset
        of the examples (or steps) whose accuracy is a metric of its own, e.g.
        ``(("negated", "negated_accuracy"),)`` (:class:`Extra`).
      labels: the name of each class (classify) or tag (tag), in id order, as
        the dataset's :meth:`Dataset.describe` gives them from the prepared
        metadata (e.g. ``("negative", "positive")``, ``("O", "B-PER", ...)``);
        ``None`` where the classes have no names (density, regress, ...).
      per_step: the batch keys with a time axis (padded to the bucket T), e.g.
        ``("inputs", "targets")`` for a tag task (:attr:`Dataset.per_step`).
    """

    name: str
    task: str
    input_kind: str
    vocab_size: Optional[int]
    input_size: Optional[int]
    num_outputs: int
    vocab: Optional[tuple[str, ...]]
    splits: tuple[str, ...]
    num_examples: dict[str, int]
    extras: tuple[str, ...] = ()
    accuracies: tuple[tuple[str, str], ...] = ()
    labels: Optional[tuple[str, ...]] = None
    per_step: tuple[str, ...] = ("inputs",)


class Extra(NamedTuple):
    """An optional batch key that a dataset adds (:attr:`Dataset.extras`): what generic code needs of it.

    Attributes:
      dtype: its dtype in a batch (``np.bool_``, ``np.float32``, ...).
      accuracy: the name of the accuracy over the examples (classify) or steps
        (tag) where the key is 1, e.g. ``"negated_accuracy"``; ``""`` for none.
    """

    dtype: Any
    accuracy: str = ""


def config_value(data_config: Any, field: str, default: Any) -> Any:
    """``data_config.<field>``, or ``default`` when the config lacks it or holds ``None``.

    ``data_config`` is an ``ml_collections.ConfigDict``, a dict or any object
    with attributes.
    """
    if isinstance(data_config, Mapping):
        value = data_config.get(field, None)
    else:
        try:
            value = getattr(data_config, field)
        except (AttributeError, KeyError):
            value = None
    return default if value is None else value


def _coerce(field: str, value: Any, default: Any) -> Any:
    """Checks ``value`` against the type of ``default``; returns it normalised."""
    name = f"data.{field}"
    if isinstance(default, bool):
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name} must be a bool, got {value!r}")
        return bool(value)
    if isinstance(default, int):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        return int(value)
    if isinstance(default, float):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            raise ValueError(f"{name} must be a number, got {value!r}")
        return float(value)
    if isinstance(default, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise ValueError(f"{name} must be a sequence, got {value!r}")
        return tuple(value)
    if isinstance(default, str) or default is None:
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {value!r}")
        return value
    return value


def read_options(cls: type, data_config: Any) -> Any:
    """Builds the frozen dataclass ``cls`` from the matching fields of ``data_config``.

    Fields the config lacks (or sets to ``None``) keep the dataclass default;
    present ones are type-checked, then ``cls.validate`` (if any) checks ranges.

    Raises:
      ValueError: a field has the wrong type or an invalid value (the message
        names ``data.<field>``).
    """
    values = {}
    for f in dataclasses.fields(cls):
        default = f.default
        value = config_value(data_config, f.name, None)
        values[f.name] = default if value is None else _coerce(f.name, value, default)
    options = cls(**values)
    validate = getattr(options, "validate", None)
    if validate is not None:
        validate()
    return options


def require(condition: bool, field: str, message: str, value: Any) -> None:
    """Raises ``ValueError("data.<field> <message>, got <value>")`` unless ``condition``."""
    if not condition:
        raise ValueError(f"data.{field} {message}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class LoaderOptions:
    """Data config fields every dataset reads (defaults used when a field is absent).

    Attributes:
      data_dir: where tfds writes and reads prepared datasets (``None``:
        ``~/tensorflow_datasets``).
      batch_size: B, rows in every batch (the last eval batch is filled with
        ``weights == 0`` rows).
      buckets: the padded lengths T a batch may have, ascending; a batch takes
        the smallest bucket that holds its longest example.
      crop: crop examples longer than ``max(buckets)`` (keeping their first
        steps) instead of refusing them at prepare time.
      num_threads: grain threads preparing batches ahead of the consumer.
    """

    data_dir: Optional[str] = None
    batch_size: int = 32
    buckets: tuple = (16, 32, 64)
    crop: bool = False
    num_threads: int = 2

    def validate(self) -> None:
        require(self.batch_size > 0, "batch_size", "must be positive", self.batch_size)
        b = self.buckets
        require(len(b) > 0, "buckets", "must not be empty", b)
        require(all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in b), "buckets",
                "must be integers", b)
        require(all(x > 0 for x in b), "buckets", "must be positive", b)
        require(list(b) == sorted(set(b)), "buckets", "must be strictly ascending", b)
        require(self.num_threads >= 0, "num_threads", "must be >= 0", self.num_threads)


@dataclasses.dataclass(frozen=True)
class GeneratedOptions:
    """Data config fields every generated dataset reads (defaults used when absent).

    Attributes:
      num_train, num_valid, num_test: examples per split.
      gen_seed: seed of the generator (the data is a pure function of the options).
    """

    num_train: int = 10000
    num_valid: int = 1000
    num_test: int = 1000
    gen_seed: int = 0

    def validate(self) -> None:
        for field in ("num_train", "num_valid", "num_test"):
            require(getattr(self, field) > 0, field, "must be positive", getattr(self, field))

    def draw_splits(self, offset: int, draw: Callable[[np.random.Generator], dict]) -> dict[str, list[dict]]:
        """``{split: [draw(rng) for each example]}``, each split from its own stream.

        Args:
          offset: keeps each dataset's random streams apart (same ``gen_seed``).
          draw: makes one example from the split's generator.
        """
        sizes = {"train": self.num_train, "valid": self.num_valid, "test": self.num_test}
        rngs = {s: np.random.default_rng([self.gen_seed, offset + k]) for k, s in enumerate(sizes)}
        return {s: [draw(rngs[s]) for _ in range(n)] for s, n in sizes.items()}


def locate(path: Optional[str], filename: str, how_to_get: str, folder: bool = False, field: str = "data.path") -> str:
    """The data file named by ``data.path`` (or another config ``field``): ``path`` itself, or ``path/filename``
    for a folder.

    Args:
      path: the config's ``data.path`` (or ``field``'s value).
      filename: the file's usual name.
      how_to_get: a sentence telling the user where to get the data.
      folder: ``path`` must be a folder holding ``filename``.
      field: the config field that names ``path``, for the messages.

    Raises:
      FileNotFoundError: ``path`` is unset or the file is missing (the message
        says where it looked and how to get the data).
    """
    if path is None:
        raise FileNotFoundError(f"{field} is not set: point it at {filename}. {how_to_get}")
    expanded = os.path.expanduser(path)
    candidate = os.path.join(expanded, filename) if folder or os.path.isdir(expanded) else expanded
    if not os.path.isfile(candidate):
        raise FileNotFoundError(f"no file at {candidate!r} (from {field} = {path!r}). {how_to_get}")
    return os.path.abspath(candidate)


def token_features(per_step_targets: bool) -> dict:
    """tfds features of a token dataset: ids, length, targets (per step or one per sequence)."""
    ids = tfds.features.Tensor(shape=(None,), dtype=np.int32)
    if not per_step_targets:
        return {"inputs": ids, "length": np.int32, "targets": np.int32}
    mask = tfds.features.Tensor(shape=(None,), dtype=np.float32)
    return {"inputs": ids, "length": np.int32, "targets": ids, "target_mask": mask}


def vocab_fields(vocab: Sequence[str], num_outputs: int) -> dict:
    """The spec fields a token dataset with vocabulary ``vocab`` describes."""
    return {"vocab": tuple(vocab), "vocab_size": len(vocab), "input_size": None, "num_outputs": num_outputs}


class Dataset:
    """A registered dataset: options, tfds features, example generation and spec.

    Subclasses set the class attributes and implement :meth:`features`,
    :meth:`generate` and :meth:`describe`. Examples are dicts with ``inputs``
    (per step), ``targets``, ``length`` and any ``extras`` (their batch dtypes
    and metrics declared as :class:`Extra`); keys named in
    ``per_step`` have the time axis first and are padded to the bucket.
    """

    name: ClassVar[str] = ""
    Options: ClassVar[type] = None  # a frozen dataclass; its defaults are the documented ones
    splits: ClassVar[tuple[str, ...]] = ("train", "valid", "test")
    task: ClassVar[str] = ""
    input_kind: ClassVar[str] = ""
    per_step: ClassVar[tuple[str, ...]] = ("inputs",)
    extras: ClassVar[Mapping[str, Extra]] = {}
    version: ClassVar[str] = "1.0.0"  # bump when generated data changes for the same options

    def options(self, data_config: Any) -> Any:
        """This dataset's options read from ``data_config`` (validated)."""
        return read_options(self.Options, data_config)

    def features(self, options: Any) -> dict:
        """The tfds features of one stored example."""
        raise NotImplementedError

    def generate(self, options: Any) -> tuple[dict[str, list[dict]], dict]:
        """Returns ``({split: [example, ...]}, metadata)``; metadata is JSON-able.

        Metadata may carry a ``"vocab"`` list (id -> word) for token datasets.
        """
        raise NotImplementedError

    def describe(self, options: Any, metadata: Mapping[str, Any]) -> dict:
        """Spec fields that depend on the options/metadata: vocab_size, input_size,
        num_outputs, vocab, and optionally labels (the class or tag names).

        A dataset whose task is chosen by its options or data (``arrays``) also
        returns ``task`` and ``per_step``; the others take the class attributes.
        """
        raise NotImplementedError

    def source_files(self, options: Any) -> list[str]:
        """Files the data is read from (their contents enter the fingerprint)."""
        return []

    def source_digests(self, options: Any) -> dict[str, str]:
        """``{path: SHA-256 of its bytes}`` of :meth:`source_files`."""
        return {path: file_sha256(path) for path in self.source_files(options)}

    def fingerprint(self, options: Any) -> str:
        """A short hash of the options, version and source file contents: the tfds builder config name.

        Any change to a source file's bytes gives a new name, so a changed file
        is prepared again instead of read from a stale copy.
        """
        blob = json.dumps(
            {"version": self.version, "options": dataclasses.asdict(options),
             "files": sorted(self.source_digests(options).items())},
            sort_keys=True,
            default=str,
        )
        return "o" + hashlib.sha1(blob.encode()).hexdigest()[:12]


_FILE_DIGESTS: dict[tuple, str] = {}


def file_sha256(path: str) -> str:
    """SHA-256 of the bytes of ``path`` (remembered per path, inode, size, mtime and ctime:
    a write changes the ctime even when it keeps the size and mtime)."""
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    if key not in _FILE_DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        _FILE_DIGESTS[key] = digest.hexdigest()
    return _FILE_DIGESTS[key]


class TokenTagging(Dataset):
    """Base of token datasets with a label per step and a ``target_mask`` of the steps that count."""

    task = "tag"
    input_kind = "tokens"
    per_step = ("inputs", "targets", "target_mask")
    extras = {"target_mask": Extra(np.float32, "masked_accuracy")}  # the steps that matter

    def features(self, options):
        return token_features(per_step_targets=True)


_REGISTRY: dict[str, Dataset] = {}


def register(cls: type) -> type:
    """Class decorator: registers one instance of a :class:`Dataset` subclass by its ``name``.

    The same class again (same module and qualified name: a notebook cell
    re-run, a plugin imported twice) replaces the registration; another class
    under a taken name is an error.
    """
    if not cls.name:
        raise ValueError(f"dataset class {cls.__qualname__} has an empty name")
    if cls.name in _REGISTRY and not same_definition(type(_REGISTRY[cls.name]), cls):
        taken = type(_REGISTRY[cls.name])
        raise ValueError(f"dataset name {cls.name!r} is already registered by {taken.__module__}.{taken.__qualname__}")
    if cls.task not in TASKS or cls.input_kind not in INPUT_KINDS:
        raise ValueError(f"dataset {cls.name!r}: bad task {cls.task!r} or input kind {cls.input_kind!r}")
    _REGISTRY[cls.name] = cls()
    return cls


def dataset_names() -> tuple[str, ...]:
    """The registered dataset names, sorted."""
    return tuple(sorted(_REGISTRY))


def get_dataset(name: Any) -> Dataset:
    """The registered dataset called ``name``.

    Raises:
      ValueError: unknown name (the message lists the known ones).
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"data.name: unknown dataset {name!r}; known datasets: {', '.join(dataset_names())}")
    return _REGISTRY[name]


def make_vocab(words: Iterable[str]) -> tuple[str, ...]:
    """id -> word: ``<pad>`` (0), ``<unk>`` (1), then ``words`` in their given order, deduplicated."""
    seen = dict.fromkeys([PAD_TOKEN, UNK_TOKEN])
    for w in words:
        seen.setdefault(w, None)
    return tuple(seen)


def decode(spec: DatasetSpec, ids: Sequence[int], length: Optional[int] = None) -> list[str]:
    """The words of ``ids int[T]`` (the first ``length`` of them), for plots and reports.

    Raises:
      ValueError: the dataset has no vocabulary (feature inputs).
    """
    if spec.vocab is None:
        raise ValueError(f"dataset {spec.name!r} has {spec.input_kind} inputs, not words")
    ids = np.asarray(ids)[: len(ids) if length is None else int(length)]
    return [spec.vocab[i] for i in ids.tolist()]


def build_vocab(sentences: Iterable[Sequence[str]], min_count: int) -> tuple[str, ...]:
    """id -> word: pad, unk, then words seen ``>= min_count`` times, most frequent first (ties
    alphabetical)."""
    counts = collections.Counter(w for s in sentences for w in s)
    kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return make_vocab(kept)


def encode(tokens: Iterable[str], word_ids: Mapping[str, int]) -> np.ndarray:
    """``int32[L]`` ids of ``tokens``; words outside the vocabulary map to ``<unk>`` (1)."""
    return np.asarray([word_ids.get(t, UNK_ID) for t in tokens], np.int32)

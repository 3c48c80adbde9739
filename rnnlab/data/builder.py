"""tfds builders for registered datasets, written as ``array_record`` (no TensorFlow).

One generic builder class per registered dataset. Its builder config name is
the dataset's :meth:`~rnnlab.data.registry.Dataset.fingerprint` (a hash of its
options and version), so changing a generator field prepares a new copy under
``data_dir/<name>/<fingerprint>/<version>`` instead of reusing stale data.
Preparing is idempotent: a prepared copy is read back as it is.
"""

from __future__ import annotations

import fcntl
import functools
import os
from typing import Any, Optional

import tensorflow_datasets as tfds
from absl import logging

from rnnlab.data.registry import Dataset


class _ArrayRecordBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Prepares one registered :class:`Dataset` with given options."""

    VERSION = tfds.core.Version("1.0.0")

    def __init__(self, *, dataset: Dataset, options: Any, data_dir: Optional[str]):
        self._dataset = dataset
        self._options = options
        self._generated = None
        super().__init__(config=self.BUILDER_CONFIGS[0].name, data_dir=data_dir, file_format="array_record")

    def _log_download_bytes(self) -> None:
        # tfds prints "Downloading and preparing dataset ..." to stdout; nothing is downloaded here.
        logging.info("preparing dataset %s in %s", self._dataset.name, self.data_dir)

    def _log_download_done(self) -> None:
        logging.info("dataset %s prepared in %s", self._dataset.name, self.data_dir)

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=f"rnnlab dataset {self._dataset.name!r}",
            features=tfds.features.FeaturesDict(self._dataset.features(self._options)),
            metadata=tfds.core.MetadataDict(),
            disable_shuffling=True,  # keep generation order: metadata["lengths"] indexes it
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # generated or read from local files
        splits, metadata = self._dataset.generate(self._options)
        empty = [k for k, v in splits.items() if not v]
        if empty:
            files = self._dataset.source_files(self._options)
            source = f" read from {', '.join(files)}" if files else ""
            raise ValueError(
                f"dataset {self._dataset.name!r}{source}: split {', '.join(map(repr, empty))} has no "
                f"examples (splits and sizes: {', '.join(f'{k} {len(v)}' for k, v in splits.items())})"
            )
        metadata = dict(metadata)
        metadata["lengths"] = {k: [int(ex["length"]) for ex in v] for k, v in splits.items()}
        self.info.metadata.update(metadata)
        return {k: self._generate_examples(v) for k, v in splits.items()}

    def _generate_examples(self, examples):
        for i, example in enumerate(examples):
            yield i, example


@functools.lru_cache(maxsize=None)
def _builder_class(name: str, fingerprint: str) -> type:
    """A builder subclass named like the dataset, whose one config is ``fingerprint``."""
    attributes = {"name": name, "BUILDER_CONFIGS": [tfds.core.BuilderConfig(name=fingerprint)]}
    return type(f"Builder_{name}_{fingerprint}", (_ArrayRecordBuilder,), attributes, skip_registration=True)


def prepared_builder(dataset: Dataset, options: Any, data_dir: Optional[str]) -> tfds.core.DatasetBuilder:
    """The tfds builder of ``dataset`` with ``options``, prepared in ``data_dir`` if needed.

    Args:
      dataset: a registered dataset.
      options: its options (see ``dataset.Options``).
      data_dir: the tfds data dir (``None``: tfds' default, ``~/tensorflow_datasets``).
    """
    if data_dir is not None:
        data_dir = os.path.expanduser(data_dir)
    builder_class = _builder_class(dataset.name, dataset.fingerprint(options))
    builder = builder_class(dataset=dataset, options=options, data_dir=data_dir)
    # One preparer at a time per copy (parallel runs share data_dir): an exclusive lock
    # beside the copy; a builder made after the lock sees what another process wrote.
    lock_path = os.path.dirname(builder.data_dir) + ".lock"
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            builder = builder_class(dataset=dataset, options=options, data_dir=data_dir)
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(try_download_gcs=False),
            )
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return builder

"""Input pipelines: tfds ``array_record`` datasets read with ``tfds.data_source`` + grain.

    spec = rnnlab.data.prepare(config.data)          # generate/prepare if needed
    loader = rnnlab.data.make_loader(config.data, "train", seed=0, shuffle=True, num_epochs=None)
    batch = next(loader)   # {"inputs", "lengths", "targets", "weights", *spec.extras}
    state = loader.get_state(); loader.set_state(state)   # exact resume
    rnnlab.data.data_fingerprint(config.data)          # identifies the data (checked on resume)

Datasets register themselves by name (:func:`dataset_names`); each reads its
own data config fields, documented with their defaults in its ``Options``
dataclass (see ``docs/data.md``). No TensorFlow is needed.
"""

# Importing the dataset modules registers their datasets.
from rnnlab.data import arrays, conll, future_context, music, negation, sst, synthetic, text_files  # noqa: F401
from rnnlab.data.batching import batch_plan, check_token_ids
from rnnlab.data.loader import Loader, data_fingerprint, make_loader, prepare
from rnnlab.data.registry import (
    Dataset,
    DatasetSpec,
    Extra,
    GeneratedOptions,
    LoaderOptions,
    TokenTagging,
    dataset_names,
    decode,
    get_dataset,
    register,
)

__all__ = [
    "Dataset",
    "DatasetSpec",
    "Extra",
    "GeneratedOptions",
    "Loader",
    "LoaderOptions",
    "TokenTagging",
    "batch_plan",
    "check_token_ids",
    "data_fingerprint",
    "dataset_names",
    "decode",
    "get_dataset",
    "make_loader",
    "prepare",
    "register",
]

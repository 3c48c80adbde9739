"""What the configs for users' own files share (``text_classification.py``, ``sequence_tagging.py``,
``arrays.py``): the base config of a dataset read from ``data.path`` and the cell variants.

Not a config itself: launch one of those files, e.g.
``python launch.py --config=configs/text_classification.py --workdir=runs/mytext --config.data.path=DIR``.
"""

import ml_collections

from configs import default


def base_config(dataset: str, *fields: str) -> ml_collections.ConfigDict:
    """The default config reading ``dataset`` from ``data.path`` (unset: the user names the folder),
    with the dataset's own ``fields`` at their defaults and a 2,000-step Adam run keeping the best
    validation parameters (``train.early_stopping_metric``, set by the caller) for the test split."""
    config = default.get_config()
    default.data_fields(config, dataset, *fields)
    config.data.name = dataset
    config.data.buckets = (16, 32, 64, 128)
    config.model.hidden_size = 128
    config.model.embed_size = 64
    config.optim.learning_rate = 3e-3
    config.train.num_steps = 2000
    config.train.log_every = 100
    config.train.eval_every = 250
    config.train.checkpoint_every = 500
    return config


def lstm(config: ml_collections.ConfigDict) -> None:
    """One unidirectional LSTM layer."""
    config.model.cell, config.model.bidirectional = "lstm", False


def gru(config: ml_collections.ConfigDict) -> None:
    """One unidirectional GRU layer (Cho et al. 2014 form)."""
    config.model.cell, config.model.bidirectional = "gru", False


def bilstm(config: ml_collections.ConfigDict) -> None:
    """One bidirectional LSTM layer (outputs of both directions concatenated)."""
    config.model.cell, config.model.bidirectional = "lstm", True


CELLS = {"lstm": lstm, "gru": gru, "bilstm": bilstm}  # variants that set the recurrent layer only

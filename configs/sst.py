"""Stanford Sentiment Treebank: sentiment of movie-review sentences, with negation.

Reads the PTB tree files ``train.txt``, ``dev.txt``, ``test.txt`` (and, for
``glue``, ``glue_sst2/{train,dev}.tsv``) from ``data.path``. Embeddings are
learned from scratch (no pretrained vectors: the project works offline)::

  python launch.py --config=configs/sst.py --workdir=runs/sst
  python launch.py --config=configs/sst.py:bilstm,phrases --workdir=runs/sst-bi-phrases
  python launch.py --config=configs/sst.py:glue,bilstm --workdir=runs/sst2-glue

Variants (combine with commas, applied left to right): ``bow`` (bag-of-words
baseline), ``lstm`` (the default), ``gru``, ``bilstm``, ``bilstm2`` (two
bidirectional layers), ``fine`` (five classes, neutral kept), ``glue`` (train on
the GLUE SST-2 phrases, evaluate on its dev sentences and the SST test
sentences), ``phrases`` (train on every labelled phrase of the trees, as Tai et
al. 2015), ``smoke``; any field as ``optim.weight_decay=1e-4``, ``lr=3e-3``.
Regularisation: dropout 0.5 on the embeddings and before the head, dropout
``model.dropout`` between stacked layers, decoupled weight decay
``optim.weight_decay``.
"""

import ml_collections

from configs import default


def lstm(config: ml_collections.ConfigDict) -> None:
    """One unidirectional LSTM layer (the default)."""
    config.model.kind, config.model.cell = "classifier", "lstm"


def gru(config: ml_collections.ConfigDict) -> None:
    """One unidirectional GRU layer (Cho et al. 2014 form)."""
    config.model.kind, config.model.cell = "classifier", "gru"


def bilstm(config: ml_collections.ConfigDict) -> None:
    """One bidirectional LSTM layer: both final states concatenated."""
    lstm(config)
    config.model.bidirectional = True


def bilstm2(config: ml_collections.ConfigDict) -> None:
    """Two bidirectional LSTM layers with dropout 0.3 between them."""
    bilstm(config)
    config.model.num_layers = 2
    config.model.dropout = 0.3


def fine(config: ml_collections.ConfigDict) -> None:
    """Five classes (very negative .. very positive), neutral sentences kept."""
    config.data.fine_grained = True


def glue(config: ml_collections.ConfigDict) -> None:
    """GLUE SST-2: 67,349 training phrases, 872 dev sentences; test from ``test.txt``."""
    config.data.name = "glue_sst2"


def phrases(config: ml_collections.ConfigDict) -> None:
    """Train on every distinct labelled phrase of the training trees."""
    config.data.phrases = True


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """LSTM, H=150, embeddings 100 (learned), dropout 0.5, Adam 1e-3, early stopping on dev accuracy."""
    config = default.get_config()
    default.data_fields(config, "sst", "phrases", "fine_grained", "min_count", "extra_train")  # varied below
    config.data.name = "sst"
    config.data.path = "../shared/data/sst"  # relative to the working directory
    config.data.buckets = (16, 32, 64)
    config.data.crop = True
    config.model.cell = "lstm"
    config.model.hidden_size = 150
    config.model.embed_size = 100
    config.model.embed_dropout = 0.5
    config.model.head_dropout = 0.5
    config.model.pooling = "last"
    config.optim.weight_decay = 0.0
    config.train.num_steps = 4000
    config.train.eval_every = 500
    config.train.checkpoint_every = 500
    config.train.early_stopping_metric = "accuracy"
    config.train.patience = 4
    variants = {"bow": default.bow, "lstm": lstm, "gru": gru, "bilstm": bilstm, "bilstm2": bilstm2, "fine": fine,
                "glue": glue, "phrases": phrases}
    return default.apply_variants(config, arg, variants)

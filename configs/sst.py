"""Stanford Sentiment Treebank, binary (positive / negative sentences, neutral dropped).

Reads the PTB tree files ``train.txt``, ``dev.txt``, ``test.txt`` from
``data.path``::

  python launch.py --config=configs/sst.py --workdir=runs/sst
  python launch.py --config=configs/sst.py:phrases,bidirectional --workdir=runs/sst-bi

Variants: ``phrases`` (train on every labelled phrase, as Tai et al. 2015),
``bow`` (bag-of-words baseline), ``cell=...``, ``bidirectional``, ``smoke``.
"""

import ml_collections

from configs import default
from configs.negation import bow


def phrases(config: ml_collections.ConfigDict) -> None:
    """Train on every distinct labelled phrase of the training trees."""
    config.data.phrases = True


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """LSTM, H=150, embeddings 100 (learned), dropout 0.5, Adam 1e-3."""
    config = default.get_config()
    with config.unlocked():
        config.data.phrases = False  # train on every labelled phrase (Tai et al. 2015)
        config.data.min_count = 1  # a training word enters the vocabulary if seen this often
    config.data.name = "sst"
    config.data.path = "../shared/data/sst"
    config.data.buckets = (16, 32, 64)
    config.data.crop = True
    config.model.cell = "lstm"
    config.model.hidden_size = 150
    config.model.embed_size = 100
    config.model.embed_dropout = 0.5
    config.model.head_dropout = 0.5
    config.model.pooling = "last"
    config.train.num_steps = 4000
    config.train.eval_every = 500
    config.train.checkpoint_every = 500
    config.train.early_stopping_metric = "accuracy"
    config.train.patience = 4
    return default.apply_variants(config, arg, {"phrases": phrases, "bow": bow})

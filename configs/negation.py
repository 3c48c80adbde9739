"""The main job: an LSTM reads a generated sentiment corpus with negation.

Negators ("not", "never", "n't", ...) flip the polarity of the sentiment words
in their scope, so word counts alone (the bag-of-words baseline) cannot reach
the accuracy of a model that reads the order. About two minutes on a 2-core CPU::

  python launch.py --config=configs/negation.py --workdir=runs/negation

Variants: ``--config=configs/negation.py:cell=gru,smoke``; ``bow`` is the
bag-of-words baseline (``--config=configs/negation.py:bow``).
"""

import ml_collections

from configs import default


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """The negation job; ``arg`` holds variants (see ``default.apply_variants``)."""
    config = default.get_config()
    config.data.name = "negation"
    config.data.num_train = 10000
    config.data.buckets = (16, 32)
    config.data.max_len = 32
    config.model.kind = "classifier"
    config.model.cell = "lstm"
    config.model.hidden_size = 64
    config.model.embed_size = 32
    config.model.pooling = "last"
    config.optim.learning_rate = 3e-3
    config.train.num_steps = 1500
    config.train.log_every = 100
    config.train.eval_every = 500
    config.train.checkpoint_every = 500
    config.train.early_stopping_metric = "accuracy"
    return default.apply_variants(config, arg, {"bow": default.bow})

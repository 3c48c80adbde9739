"""Claim 2, future context: per-token tags decided by later words need a bidirectional reader.

Each sentiment word is tagged with the polarity the whole sentence finally takes
("the plot was good , but the acting was bad": "good" is tagged negative), so
a left-to-right tagger must guess on the first clause. Uni- vs bidirectional
LSTM and GRU at EQUAL PARAMETER COUNT: the unidirectional models have H=48, the
bidirectional ones the per-direction H whose recurrent layer + head has the
closest count (:func:`studies.claims.configs.matched_hidden`). One run::

    python launch.py --config=studies/claims/configs/future_context.py:cell=gru,bi --workdir=runs/x

The experiment::

    python -m rnnlab sweep studies/claims/configs/future_context.py --seeds=0,1,2 --out=runs/claims
    python -m rnnlab report runs/claims/future_context-* --out=docs/results/future_context

Variants: ``cell=lstm|gru``, ``bi`` (bidirectional at the matched size), ``until_flat``
(early stopping when validation is flat, capped), ``smoke``.
"""

import ml_collections

from configs import default
from studies.claims import configs as claims

NUM_TAGS = 3  # none, negative, positive


def bi(config: ml_collections.ConfigDict) -> None:
    """Bidirectional, with the hidden size that matches the unidirectional model's parameters."""
    model = config.model
    target = claims.model_params(model.cell, model.embed_size, model.hidden_size, NUM_TAGS)
    model.hidden_size = claims.matched_hidden(target, model.cell, model.embed_size, NUM_TAGS, bidirectional=True)
    model.bidirectional = True


def until_flat(config: ml_collections.ConfigDict) -> None:
    """Until validation accuracy on the sentiment words is flat for 800 steps; cap 3000 steps."""
    claims.until_flat(config, cap=3000, patience=8)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Small tagger: 4000 training sentences, H=48 unidirectional, 800 Adam steps."""
    config = default.get_config()
    config.data.name = "future_context"
    config.data.num_train = 4000
    config.data.num_valid = 500
    config.data.num_test = 1000
    config.data.max_len = 32
    config.data.buckets = (16, 32)
    config.data.batch_size = 32
    config.model.kind = "tagger"
    config.model.cell = "lstm"
    config.model.hidden_size = 48
    config.model.embed_size = 32
    config.optim.learning_rate = 3e-3
    config.train.num_steps = 800
    config.train.log_every = 50
    config.train.eval_every = 100
    config.train.checkpoint_every = 400
    config.train.early_stopping_metric = "masked_accuracy"  # on the sentiment words
    return default.apply_variants(config, arg, {"bi": bi, "until_flat": until_flat})


def get_sweep() -> list[str]:
    """Uni and bi, LSTM and GRU."""
    return ["cell=lstm", "cell=lstm,bi", "cell=gru", "cell=gru,bi"]

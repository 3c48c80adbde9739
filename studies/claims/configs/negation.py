"""Claim 1, negation: a bag of words cannot tell "not good" from "good"; recurrent readers can.

Bag of words vs tanh RNN vs GRU vs LSTM vs BiLSTM (all H=32 per direction) on the
generated negation corpus (negators, scope up to 3 words, double negation,
intensifiers, "but"/"yet" contrasts, out-of-scope distractor negators). Test
accuracy overall and on the negated subset (``test/negated_accuracy``). One run::

    python launch.py --config=studies/claims/configs/negation.py:cell=gru --workdir=runs/claims/negation-cell=gru__seed0

The experiment (the variants of :func:`get_sweep`, 3 seeds)::

    python -m rnnlab sweep studies/claims/configs/negation.py --seeds=0,1,2 --out=runs/claims
    python -m rnnlab report runs/claims/negation-* --out=docs/results/negation

Variants: ``bow`` (bag of words), ``cell=tanh|gru|lstm``, ``bidirectional``, ``tail``
(append up to 40 neutral filler tokens to every sentence, so the decision must be
carried to the end), ``until_flat`` (early stopping when validation is flat, capped),
``match_lstm`` (this cell at the LSTM's parameter count), ``smoke``.
"""

import ml_collections

from configs import default
from studies.claims import configs as claims


NUM_CLASSES = 2  # negative, positive


def tail(config: ml_collections.ConfigDict) -> None:
    """Up to 40 neutral filler tokens after each sentence: the polarity must be carried across them."""
    config.data.tail_len = 40
    config.data.max_len = 64
    config.data.buckets = (32, 64)


def until_flat(config: ml_collections.ConfigDict) -> None:
    """Until validation accuracy is flat for 800 steps (8 evaluations); cap 3000 steps."""
    claims.until_flat(config, cap=3000, patience=8)


def match_lstm(config: ml_collections.ConfigDict) -> None:
    """This cell at the parameter count of the LSTM of the current H (embeddings -> 2 classes)."""
    claims.match_lstm(config, config.model.embed_size, NUM_CLASSES)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """Small negation classifier: 4000 training sentences, H=32, 800 Adam steps."""
    config = default.get_config()
    config.data.name = "negation"
    config.data.num_train = 4000
    config.data.num_valid = 500
    config.data.num_test = 1000
    config.data.max_len = 32
    config.data.buckets = (16, 32)
    config.data.batch_size = 32
    config.model.kind = "classifier"
    config.model.cell = "lstm"
    config.model.hidden_size = 32
    config.model.embed_size = 32
    config.model.pooling = "last"
    config.optim.learning_rate = 3e-3
    config.train.num_steps = 800
    config.train.log_every = 50
    config.train.eval_every = 100
    config.train.checkpoint_every = 400
    config.train.early_stopping_metric = "accuracy"
    named = {"bow": default.bow, "tail": tail, "until_flat": until_flat, "match_lstm": match_lstm}
    return default.apply_variants(config, arg, named)


MODELS = ["bow", "cell=tanh", "cell=gru", "cell=lstm", "cell=lstm,bidirectional"]


def get_sweep() -> list[str]:
    """The compared models, on the corpus and on the corpus with neutral tails."""
    return MODELS + [f"tail,{m}" for m in MODELS]

"""Claim 3, long memory: gates let information pass many steps; a tanh RNN forgets.

Two generated tasks at T in {50, 100, 200, 400}: the adding problem (regress
the sum of the two marked values; always answering 1.0 gives mse 1/6) and
delayed recall (``copy``: 2 symbols of 8, recalled after T-2 steps; guessing
gives 1/8 on the recalled steps; the loss counts the recalled steps only).
tanh RNN vs GRU vs LSTM, H=32, the same 600-step budget. Success: test mse <
0.01 (adding), test accuracy on the recalled steps >= 0.95 (copy); steps to
success come from the validation curve. One run::

    python launch.py --config=studies/claims/configs/long_memory.py:adding,t100,cell=gru --workdir=runs/x

The experiment::

    python -m rnnlab sweep studies/claims/configs/long_memory.py --seeds=0,1,2 --out=runs/claims
    python -m rnnlab report runs/claims/long_memory-adding* --out=docs/results/adding
    python -m rnnlab report runs/claims/long_memory-copy* --out=docs/results/copy

Variants: ``adding`` | ``copy``, ``t50`` | ``t100`` | ``t200`` | ``t400``, ``cell=...``,
``long`` (2000 steps instead of 600), ``until_flat`` (early stopping when validation is
flat, capped), ``match_lstm`` (this cell at the LSTM's parameter count), ``smoke``.
"""

import functools

import ml_collections

from configs import default
from studies.claims import configs as claims

LENGTHS = (50, 100, 200, 400)
CELLS = ("tanh", "gru", "lstm")
SUCCESS = {"adding": ("mse", 0.01, "min"), "copy": ("masked_accuracy", 0.95, "max")}


def adding(config: ml_collections.ConfigDict) -> None:
    """The adding problem: features D=2 -> RNN -> last state -> 1 output (mse)."""
    config.data.name = "adding"
    config.model.kind = "classifier"
    config.model.pooling = "last"
    config.train.early_stopping_metric = "mse"
    config.train.early_stopping_mode = "min"


def copy(config: ml_collections.ConfigDict) -> None:
    """Delayed recall: tokens -> RNN -> a symbol per step (accuracy on the recalled steps)."""
    config.data.name = "copy"
    config.model.kind = "tagger"
    config.train.loss_mask = "target_mask"  # the loss on the recalled steps only (2-10% of T)
    config.train.early_stopping_metric = "masked_accuracy"
    config.train.early_stopping_mode = "max"


def length(config: ml_collections.ConfigDict, seq_len: int) -> None:
    """Sequences of ``seq_len`` steps, one bucket."""
    config.data.seq_len = seq_len
    config.data.max_len = seq_len
    config.data.buckets = (seq_len,)


def long(config: ml_collections.ConfigDict) -> None:
    """A budget of 2000 steps instead of 600 (is a failure a matter of budget?)."""
    config.train.num_steps = 2000
    config.train.checkpoint_every = 1000


def until_flat(config: ml_collections.ConfigDict) -> None:
    """Until validation is flat for 500 steps (10 evaluations); cap 2000 steps (1500 at T=400)."""
    claims.until_flat(config, cap=2000 if config.data.seq_len <= 200 else 1500, patience=10)


def match_lstm(config: ml_collections.ConfigDict) -> None:
    """This cell at the parameter count of the LSTM of the current H (adding: D=2 -> 1 output;
    copy: embeddings -> one class per vocabulary id: pad, unk, blank, go and the symbols)."""
    if config.data.name == "adding":
        claims.match_lstm(config, input_size=2, num_outputs=1)
    else:
        claims.match_lstm(config, config.model.embed_size, num_outputs=4 + config.data.num_symbols)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """H=32, batch 64, 4000 training sequences, Adam 1e-2 with clipping 1.0, 600 steps."""
    config = default.get_config()
    default.data_fields(config, "copy", "seq_len", "copy_length", "num_symbols")  # adding reads seq_len too
    config.data.copy_length = 2  # symbols to remember (5 needed > 2000 steps at T=50 in pilots)
    config.data.num_train = 4000
    config.data.num_valid = 256
    config.data.num_test = 512
    config.data.batch_size = 64
    config.model.cell = "lstm"
    config.model.hidden_size = 32
    config.model.embed_size = 16
    config.optim.learning_rate = 1e-2
    config.optim.clip_norm = 1.0
    config.train.num_steps = 600
    config.train.log_every = 50
    config.train.eval_every = 50
    config.train.checkpoint_every = 300
    adding(config)
    length(config, 100)
    named = {"adding": adding, "copy": copy, "long": long, "until_flat": until_flat, "match_lstm": match_lstm}
    named.update({f"t{t}": functools.partial(length, seq_len=t) for t in LENGTHS})
    return default.apply_variants(config, arg, named)


SWEPT = {"adding": LENGTHS, "copy": LENGTHS}  # the grid run on the 2-core CPU (see docs/findings.md)


def get_sweep() -> list[str]:
    """Each task x the lengths in :data:`SWEPT` x every cell."""
    grid = [f"{task},t{t},cell={cell}" for task, lengths in SWEPT.items() for t in lengths for cell in CELLS]
    return grid + ["adding,t100,cell=lstm,long", "adding,t100,cell=tanh,long", "copy,t50,cell=lstm,long",
                   "copy,t100,cell=lstm,long", "copy,t100,cell=tanh,long"]

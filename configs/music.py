"""Polyphonic music: a per-step Bernoulli density model of piano rolls (Chung et al. 2014, Table 2).

Reads the Boulanger-Lewandowski ``.mat`` files from ``data.path`` (a folder
holding ``JSB_Chorales.mat``, ``Nottingham.mat``, ``MuseData.mat``,
``Piano_midi.mat``) and reports the NLL per time step (``test/nll``). The
models are Chung et al.'s ~20k-parameter ones (:data:`HIDDEN`): tanh 100
units, GRU 46 (reset before the recurrent product), LSTM 36 with peepholes,
sigmoid outputs over the 88 notes. One run::

  python launch.py --config=configs/music.py:dataset=jsb,cell=gru,paper --workdir=runs/music-jsb-gru

The paper's recipe (``paper``): RMSProp, weight noise std 0.075, gradient norm
clipped at 1, early stopping on validation NLL, the best-validation parameters
evaluated on test. Without ``paper``: Adam, no weight noise, the rest equal.
The paper's learning-rate search (best of 10 samples log-uniform in
[e^-12, e^-6], on validation NLL), then 3 seeds of the best::

  python -m rnnlab search configs/music.py:dataset=jsb,cell=gru,paper --trials=10 \\
      --space='optim.learning_rate=loguniform(6e-6,2.5e-3)' --metric=valid/nll:min \\
      --seeds=3 --out=runs/music/jsb-gru-paper

Long pieces train faster in chunks with the state carried over (truncated BPTT, evaluation
still on whole pieces; docs/training.md)::

  python launch.py --config=configs/music.py:dataset=nottingham,cell=gru,data.chunk_len=100 \
      --workdir=runs/music-nottingham-gru-c100

Variants: ``dataset=jsb|nottingham|musedata|piano`` (each sets its buckets,
steps and evaluation interval from the tables below), ``cell=tanh|gru|lstm``
(each sets its size from :data:`HIDDEN`; any other registered cell, e.g. a gate variant, with
``hidden=H``), ``paper``, ``smoke``, or any
``section.field=value``.
"""

import ml_collections

from configs import default
from rnnlab.cells import cell_names, cell_option_names

# Padded lengths per corpus. The largest bucket holds the longest piece of every split (train /
# valid / test longest: JSB 129/144/160, Nottingham 1788/1473/1793, MuseData 3457/3723/4273,
# Piano-midi 3857/1637/2645), so evaluation never crops.
BUCKETS = {
    "jsb": (64, 128, 160),
    "nottingham": (128, 256, 512, 1024, 2048),
    "musedata": (256, 512, 1024, 2048, 4352),
    "piano": (512, 1024, 2048, 3968),
}
# (training steps at most, steps between validations); early stopping usually ends runs sooner.
SCHEDULE = {
    "jsb": (6000, 250),
    "nottingham": (30000, 1000),
    "musedata": (30000, 1000),
    "piano": (10000, 500),
}
# Chung et al. 2014, Table 1: units per cell for about 20k parameters.
HIDDEN = {"tanh": 100, "gru": 46, "lstm": 36}
WEIGHT_NOISE = 0.075  # Graves 2011 / Chung et al. 2014: std of the Gaussian noise on the weights


def paper(config: ml_collections.ConfigDict) -> None:
    """Chung et al. 2014's training recipe: RMSProp, weight noise 0.075, clipping at 1."""
    config.optim.name = "rmsprop"
    config.optim.momentum = 0.0  # plain RMSProp (Tieleman & Hinton 2012); the paper names no momentum
    config.train.weight_noise = WEIGHT_NOISE


def smoke(config: ml_collections.ConfigDict) -> None:
    """A few seconds on a CPU: tiny model, every piece cropped to 64 steps."""
    default.smoke(config)
    config.data.buckets = (64,)
    config.data.crop = True


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    """JSB Chorales, GRU by default; Adam 1e-3, clipping 1.0, early stopping on valid NLL.

    Args:
      arg: variants, e.g. ``"dataset=musedata,cell=lstm,paper"``.
    """
    config = default.get_config()
    config.data.name = "jsb"
    config.data.path = "../shared/data/polyphonic"
    config.data.batch_size = 16
    config.data.buckets = ()  # () = the corpus's own, from BUCKETS
    config.model.kind = "density"
    config.model.cell = "gru"
    config.model.hidden_size = 0  # 0 = the cell's ~20k-parameter size, from HIDDEN
    config.model.peephole = True  # lstm only: Graves 2013's diagonal peepholes
    config.model.reset_after = False  # gru only: reset before the recurrent product (Cho et al. 2014)
    config.optim.name = "adam"
    config.optim.learning_rate = 1e-3
    config.optim.clip_norm = 1.0
    config.train.num_steps = 0  # 0 = the corpus's own, from SCHEDULE
    config.train.eval_every = 0
    config.train.log_every = 100
    config.train.final_splits = ("train",)  # Table 2 gives train NLL too: of the best-validation params
    config.train.early_stopping_metric = "nll"
    config.train.early_stopping_mode = "min"
    config.train.patience = 6
    default.apply_variants(config, arg, {"paper": paper, "smoke": smoke})
    if config.model.cell in cell_names() and "peephole" not in cell_option_names(config.model.cell):
        config.model.peephole = False  # the LSTM's peepholes; a cell without them refuses the option
    # Fields left at 0 / () by the variants come from the tables of the final dataset and cell.
    if config.model.cell not in HIDDEN and not config.model.hidden_size:
        raise ValueError(f"configs/music.py: cell {config.model.cell!r} has no size in HIDDEN "
                         f"({', '.join(HIDDEN)}); give one, e.g. hidden=36")
    if config.data.name not in BUCKETS:
        raise ValueError(f"configs/music.py: dataset must be one of {', '.join(BUCKETS)}, got {config.data.name!r}")
    if not config.data.buckets:
        config.data.buckets = BUCKETS[config.data.name]
    if not config.model.hidden_size:
        config.model.hidden_size = HIDDEN[config.model.cell]
    num_steps, eval_every = SCHEDULE[config.data.name]
    if not config.train.num_steps:
        config.train.num_steps = num_steps
    if not config.train.eval_every:
        config.train.eval_every = eval_every
    config.train.checkpoint_every = config.train.eval_every
    return config
